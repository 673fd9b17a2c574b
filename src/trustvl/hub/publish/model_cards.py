"""The model cards ``trustvl publish`` writes: the folder's own card when it already holds a model-index
(trustvl's training and demo cards), else one rendered from ``templates/published_{model,adapter}.md``
whose model-index comes from the run's results (:mod:`~trustvl.hub.publish.model_index`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trustvl.hub.cards import Metric, eval_results, is_hub_model_id, render_model_card
from trustvl.hub.publish.folders import front_matter

__all__ = ["adapter_card", "existing_model_card", "model_card_for", "results_section"]


def existing_model_card(readme: Path) -> Any | None:
    """The folder's own card when it already carries a ``model-index`` (made by trustvl's cards)."""
    from huggingface_hub import ModelCard

    if not readme.is_file() or "model-index" not in front_matter(readme):
        return None
    return ModelCard.load(readme)


def results_section(metrics: Sequence[Metric], source: Path | None) -> str:
    """The card's evaluation table (or a line saying there is none)."""
    if not metrics:
        return "No evaluation results were found next to this model; evaluate it with `trustvl eval`."
    rows = "\n".join(f"| {m.name} | {m.dataset_name} ({m.split}) | {float(m.value):.4f} |" for m in metrics)
    where = f" (from `{source.name}`)" if source is not None else ""
    return f"## Evaluation{where}\n\n| metric | data | value |\n| --- | --- | --- |\n{rows}"


def _card_data(
    repo_id: str,
    metrics: Sequence[Metric],
    base_model: str | None,
    library_name: str,
    tags: Sequence[str],
    license: str,
) -> Any:
    from huggingface_hub import ModelCardData

    return ModelCardData(
        model_name=repo_id.split("/")[-1],
        eval_results=eval_results(metrics) or None,
        base_model=base_model if is_hub_model_id(base_model) else None,
        library_name=library_name,
        license=license,
        tags=["trustvl", *tags],
        pipeline_tag="zero-shot-image-classification",
    )


def model_card_for(
    *,
    repo_id: str,
    architecture: str,
    base_model: str | None,
    remote_code: Sequence[str],
    metrics: Sequence[Metric],
    source: Path | None,
    license: str,
) -> Any:
    """The card of a published transformers model (``remote_code``: the module files shipped with it)."""
    data = _card_data(
        repo_id,
        metrics,
        base_model,
        "transformers",
        ["clip", *(["custom_code"] if remote_code else [])],
        license,
    )
    return render_model_card(
        "published_model",
        data,
        model_name=repo_id.split("/")[-1],  # the card data drops model_name once it holds a model-index
        architecture=architecture,
        base_model_text=base_model,
        repo_id=repo_id,
        remote_code=", ".join(f"`{name}`" for name in remote_code),
        results=results_section(metrics, source),
    )


def adapter_card(
    *,
    repo_id: str,
    adapter_config: dict[str, Any],
    base_model: str,
    metrics: Sequence[Metric],
    source: Path | None,
    license: str,
) -> Any:
    """The card of a published peft adapter of ``base_model`` (a Hub id)."""
    data = _card_data(
        repo_id, metrics, base_model, "peft", ["lora", "peft", f"base_model:adapter:{base_model}"], license
    )
    return render_model_card(
        "published_adapter",
        data,
        model_name=repo_id.split("/")[-1],
        peft_type=adapter_config.get("peft_type", "peft"),
        r=adapter_config.get("r"),
        lora_alpha=adapter_config.get("lora_alpha"),
        base_model=base_model,
        repo_id=repo_id,
        results=results_section(metrics, source),
    )
