"""The model-index of a card made by ``trustvl publish``: the numbers of the run's metrics file.

The hub layer does not know trustvl's result types (they live in the evaluation layer, above it), so the
caller hands :func:`~trustvl.hub.publish.publish` a :data:`MetricsReader`: a function that loads a metrics
JSON object into the typed result it holds and asks that result for its model-index
(:func:`trustvl.evaluation.model_index.model_index_from_metrics` is trustvl's; ``trustvl publish`` passes it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.hub.cards import Metric

__all__ = ["METRICS_FILES", "MetricsReader", "read_json_object", "run_metrics"]

#: the files of a run folder that may hold its results, in the order they are tried
METRICS_FILES = ("trust_report.json", "metrics.json", "train_summary.json")

#: ``reader(data, alpha)``: the model-index metrics of the typed result that the JSON object ``data`` holds
#: (for an α sweep, those at ``alpha``, the published model's α), or None when it holds no result the
#: reader knows.
MetricsReader = Callable[[dict[str, Any], "float | None"], "list[Metric] | None"]


def read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise TrustVLInputError(f"metrics file {str(path)!r} is not readable JSON: {err}") from None
    if not isinstance(data, dict):
        raise TrustVLInputError(
            f"metrics file {str(path)!r} holds {type(data).__name__}; expected a JSON object"
        )
    return data


def run_metrics(
    metrics: str | None,
    folders: Sequence[Path],
    alpha: float | None,
    reader: MetricsReader | None,
) -> tuple[list[Metric], Path | None]:
    """The model-index of ``metrics`` (a file that must exist and hold a known result) or of the first
    :data:`METRICS_FILES` in ``folders`` that holds one; ``([], None)`` when there is none (or no reader)."""
    if metrics is not None:
        path = Path(metrics).expanduser()
        if not path.is_file():
            raise TrustVLInputError(f"--metrics {metrics!r} is not a file; expected a metrics JSON file")
        if reader is None:
            raise TrustVLInputError(
                f"--metrics {metrics!r}: no metrics reader was given to publish; pass"
                " read_metrics=trustvl.evaluation.model_index.model_index_from_metrics"
            )
        results = reader(read_json_object(path), alpha)
        if not results:
            raise TrustVLInputError(
                f"--metrics {metrics!r} is not a metrics file trustvl knows (an α sweep, audit, evaluation,"
                " Safe-CLIP evaluation or training summary with final_eval)"
            )
        return results, path
    if reader is None:
        return [], None
    for folder in folders:
        for name in METRICS_FILES:
            path = folder / name
            if path.is_file():
                results = reader(read_json_object(path), alpha)
                if results:
                    return results, path
    return [], None
