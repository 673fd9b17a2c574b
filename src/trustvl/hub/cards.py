"""Model cards for trustvl's artefacts, as ``huggingface_hub.ModelCard`` with a ``model-index``.

Templates live in ``trustvl/hub/templates/*.md`` (Jinja, rendered by ``ModelCard.from_template``);
rendered cards of the models trustvl ships are kept in the repository's ``model_cards/`` folder.
"""

from __future__ import annotations

import os
import re
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


#: an ``owner/name`` (or bare ``name``) Hub model id
_HUB_MODEL_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")

#: Hub ids under which trustvl's embedded SynthWorld assets are published (``trustvl publish``)
EMBEDDED_HUB_IDS: dict[str, str] = {"synthworld-clip": "trustvl/synthworld-clip"}
#: the Hub id of the SynthWorld dataset family named in cards
SYNTHWORLD_DATASET_ID = "trustvl/synthworld"


def hub_reference(name_or_path: str | os.PathLike | None) -> str | None:
    """What a card's ``base_model`` metadata can name for a model given by Hub id or path: the id itself;
    the published id of an embedded trustvl asset (``…/assets/models/synthworld-clip``); None for any other
    local folder (a local path is not a Hub reference)."""
    if name_or_path is None:
        return None
    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    if path.exists():
        parts = path.resolve().parts
        if len(parts) >= 3 and parts[-3:-1] == ("assets", "models") and parts[-1] in EMBEDDED_HUB_IDS:
            return EMBEDDED_HUB_IDS[parts[-1]]
        return None
    return name


def display_name(name_or_path: str | os.PathLike | None) -> str:
    """How a card's text names a model: its Hub reference, else the local folder's name."""
    ref = hub_reference(name_or_path)
    if ref is not None:
        return ref
    return Path(os.fspath(name_or_path)).name if name_or_path is not None else "unknown"


def is_hub_model_id(name: str | None) -> bool:
    """Whether ``name`` reads as a Hub id (``owner/name``) and is not a local path."""
    return bool(name) and bool(_HUB_MODEL_ID.match(str(name))) and not Path(str(name)).expanduser().exists()


def model_index_dataset(dataset: Any) -> tuple[str, str]:
    """(name, type) of a model-index entry's dataset: a Hub id is both; a local folder is named by its
    basename (a local path is not a Hub reference)."""
    text = str(dataset or "evaluation data")
    if is_hub_model_id(text):
        return text, text
    base = Path(text).name or text
    return base, base


def eval_results(metrics: Sequence[Metric]) -> list[Any]:
    """huggingface_hub ``EvalResult`` entries (a card's model-index) for ``metrics``, values to 4 decimals."""
    from huggingface_hub import EvalResult

    return [
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
    from huggingface_hub import ModelCardData

    evals = eval_results(metrics)
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
    return render_model_card(template, data, model_name=model_name, **template_kwargs)


def render_model_card(template: str, card_data: Any, **template_kwargs: Any) -> Any:
    """Render ``templates/<template>.md`` (Jinja; ``{{ card_data }}`` is the YAML front matter) into a
    ``ModelCard`` whose metadata is ``card_data`` (a ``ModelCardData``)."""
    from huggingface_hub import ModelCard

    path = TEMPLATES / f"{template}.md"
    return ModelCard.from_template(card_data, template_path=str(path), **template_kwargs)
