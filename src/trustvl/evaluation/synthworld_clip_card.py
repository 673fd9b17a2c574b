"""The SynthWorld CLIP's model card, written from its pretraining summary (``trustvl_pretrain.json``).

The summary's ``"eval"`` is an :class:`~trustvl.evaluation.results.EvaluationResult` (as a dict) of the
balanced SynthWorld test split, so the card's model-index results and its table come from the same typed
results as every other trustvl report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trustvl.evaluation.report import markdown_table
from trustvl.evaluation.results import EvaluationResult
from trustvl.evaluation.wording import attribute_name, metric_name, value_text
from trustvl.hub.cards import Metric, model_card

__all__ = ["write_synthworld_clip_card"]

_DATASET = ("SynthWorld test", "trustvl/synthworld")


def write_synthworld_clip_card(model_dir: str | Path, summary: dict[str, Any] | None = None) -> Path:
    """Write ``README.md`` into ``model_dir`` from ``summary`` (default: the folder's
    ``trustvl_pretrain.json``), which must hold the balanced test split's evaluation under ``"eval"``."""
    model_dir = Path(model_dir)
    if summary is None:
        summary = json.loads((model_dir / "trustvl_pretrain.json").read_text())
    evaluation = EvaluationResult.from_dict(summary["eval"])
    cfg = summary["config"]
    metrics = [Metric("zero-shot occupation top-1", "accuracy", evaluation.zero_shot_top1, *_DATASET)]
    rows: list[list[Any]] = [["zero-shot occupation top-1", evaluation.zero_shot_top1, ""]]
    for attribute, fairness in evaluation.fairness.items():
        values = [("NDKL", "ndkl", fairness.ndkl, fairness.ndkl_interval, fairness.ndkl_floor)]
        for k, at_k in sorted(fairness.at_k.items()):
            values.append(
                (
                    metric_name("max_skew", k),
                    f"max_skew@{k}",
                    at_k.max_skew,
                    at_k.max_skew_interval,
                    at_k.max_skew_floor,
                )
            )
            values.append(
                (
                    metric_name("min_skew", k),
                    f"min_skew@{k}",
                    at_k.min_skew,
                    at_k.min_skew_interval,
                    at_k.min_skew_floor,
                )
            )
        for label, metric_type, value, interval, floor in values:
            name = f"{attribute_name(attribute)} {label}"
            metrics.append(Metric(name, metric_type, value, *_DATASET))
            rows.append([name, value_text(value, interval, 4), "" if floor is None else f"{floor:.4f}"])
        rows.append(
            [
                f"worst-group accuracy (occupation × {attribute_name(attribute)})",
                evaluation.worst_group_accuracy[attribute],
                "",
            ]
        )
    precision = "bf16" if cfg.get("bf16") else "fp16" if cfg.get("fp16") else "no"
    training = (
        f"{summary['global_step']} steps of batch {cfg['per_device_train_batch_size']} (AdamW, lr"
        f" {cfg['learning_rate']}, cosine, mixed precision {precision}) with the symmetric CLIP loss on scenes of"
        f" the biased train split rendered on the fly; {summary['train_seconds']} s on"
        f" {summary.get('device_name', summary.get('device'))}. Reproduce with `trustvl train synthworld-clip`"
        f" (train-split knobs: {cfg.get('world') or 'defaults'}, appearance caption share"
        f" {cfg['appearance_caption_prob']})."
    )
    card = model_card(
        "synthworld_clip",
        model_name="synthworld-clip",
        metrics=metrics,
        tags=["synthworld", "synthetic"],
        n_parameters=f"{summary['n_parameters']:,}",
        training=training,
        n_test=evaluation.n_images,
        eval_table=markdown_table(["metric", "value [95% interval]", "floor (random within class)"], rows),
        skin_strength=(cfg.get("world") or {}).get("strength", {}).get("skin_tone", 0.8),
    )
    path = model_dir / "README.md"
    card.save(str(path))
    return path
