"""A metrics JSON file's model-index, asked of the typed result the file holds.

``trustvl publish`` makes a model card for a run folder from the run's ``metrics.json`` or
``train_summary.json``. :func:`model_index_from_metrics` (a
:data:`~trustvl.hub.publish.model_index.MetricsReader`) loads the JSON object into the first result type
whose ``from_dict`` accepts it, in :data:`RESULT_TYPES` order, and returns that result's
``model_index_metrics()``. A file none of them reads (e.g. the demo's summary, whose model card already holds
its results) gives None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trustvl.evaluation.audit import AuditResult
from trustvl.evaluation.results import AlphaSweepResult, EvaluationResult
from trustvl.evaluation.safe_clip import SafeCLIPEvalResult
from trustvl.evaluation.trust_report import TrustReport
from trustvl.hub.cards import Metric, model_index_dataset

__all__ = ["RESULT_TYPES", "TrainingValidation", "model_index_from_metrics"]


@dataclass
class TrainingValidation:
    """The validation results a training run wrote into ``train_summary.json`` (``final_eval``, Safe-CLIP's
    recalls of the final model) with the dataset and split they were measured on."""

    final_eval: dict[str, float]
    dataset: str | None
    split: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingValidation:
        config = data.get("config") or {}
        values = {
            k: float(v)
            for k, v in data["final_eval"].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        return cls(values, config.get("dataset"), str(config.get("eval_split") or "validation"))

    def model_index_metrics(self) -> list[Metric]:
        name, dtype = model_index_dataset(self.dataset)
        retrieval = "image-text-retrieval"
        return [Metric(k, k, v, name, dtype, self.split, retrieval) for k, v in self.final_eval.items()]


#: the result types a metrics file may hold, most specific first (a bare evaluation last but one)
RESULT_TYPES: tuple[type, ...] = (
    TrustReport,
    AlphaSweepResult,
    AuditResult,
    SafeCLIPEvalResult,
    EvaluationResult,
    TrainingValidation,
)


def _load_result(data: dict[str, Any]) -> Any | None:
    for result_type in RESULT_TYPES:
        try:
            return result_type.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # not this type's schema
    return None


def model_index_from_metrics(data: dict[str, Any], alpha: float | None = None) -> list[Metric] | None:
    """The model-index metrics of the typed result in ``data`` (for an α sweep: at ``alpha``, the published
    model's α, else the largest α); None when ``data`` holds none of :data:`RESULT_TYPES`."""
    result = _load_result(data)
    if result is None:
        return None
    if isinstance(result, AlphaSweepResult):
        return result.model_index_metrics(alpha)
    return result.model_index_metrics()  # a bare EvaluationResult names no dataset: "evaluation data", test
