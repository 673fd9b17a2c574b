"""Model cards for trustvl's artefacts, as ``huggingface_hub.ModelCard`` with a ``model-index``.

Templates live in ``trustvl/hub/templates/*.md`` (Jinja, rendered by ``ModelCard.from_template``);
rendered cards of the models trustvl ships are kept in the repository's ``model_cards/`` folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass
class Metric:
    """One reported number: ``metric_type`` e.g. ``"max_skew@100"``, on a dataset and split."""

    name: str
    metric_type: str
    value: float
    dataset_name: str
    dataset_type: str
    split: str = "test"
    task_type: str = "zero-shot-image-classification"


def model_card(
    template: str,
    *,
    model_name: str,
    metrics: Sequence[Metric],
    base_model: str | None = None,
    datasets: Sequence[str] | None = None,
    tags: Sequence[str] = (),
    license: str = "apache-2.0",
    **template_kwargs: Any,
):
    """Render ``templates/<template>.md`` into a ``ModelCard`` whose metadata holds a model-index."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    evals = [
        EvalResult(
            task_type=m.task_type,
            dataset_type=m.dataset_type,
            dataset_name=m.dataset_name,
            dataset_split=m.split,
            metric_type=m.metric_type,
            metric_name=m.name,
            metric_value=round(float(m.value), 4),
        )
        for m in metrics
    ]
    data = ModelCardData(
        model_name=model_name,
        eval_results=evals or None,
        base_model=base_model,
        datasets=list(datasets) if datasets else None,
        library_name="transformers",
        license=license,
        tags=["trustvl", "clip", *tags],
        pipeline_tag="zero-shot-image-classification",
    )
    path = TEMPLATES / f"{template}.md"
    return ModelCard.from_template(data, template_path=str(path), model_name=model_name, **template_kwargs)
