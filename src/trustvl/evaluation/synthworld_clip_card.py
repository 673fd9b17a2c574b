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

__all__ = ["web_benchmark_section", "write_synthworld_clip_card"]

_DATASET = ("SynthWorld test", "trustvl/synthworld")


def _interval(pair: list[float]) -> str:
    return f"[{pair[0]:.3f}, {pair[1]:.3f}]"


#: How the card names the web benchmark's watermark probes (``--spurious-probes``).
PROBE_WORDS = {
    "world": "balanced test split",
    "planted": "held-out scenes drawn as the train split, the mark independent of the occupation",
    "reduced": "weak-cue scenes",
}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def web_benchmark_section(bench: dict[str, Any], source: str = "") -> str:
    """The card's "Problems it carries" section from ``benchmarks/bench_synthworld_web_clip.py``'s JSON
    (issue 23 item 2): each bar, what was measured and whether it is met."""
    direction = bench["occupation_and_direction"]
    spurious = bench["spurious"]
    bars = bench["bars"]
    met = {True: "yes", False: "**no**"}
    rows: list[list[Any]] = [
        [
            "zero-shot occupation top-1",
            f"{direction['zero_shot_top1']:.4f}",
            ">= 0.99",
            met[bars["zero_shot_top1>=0.99"]],
        ],
        [
            "planted skin tone is the most over-represented level in the top 100",
            f"{direction['planted_direction_hits']} of {len(direction['skin_tone_top100'])} occupations",
            ">= 7 of 8",
            met[bars["planted_direction_in>=7_of_8"]],
        ],
        [
            "skin tone MaxSkew@100 vs its sampling floor",
            f"{direction['skin_max_skew@100']:.3f} {_interval(direction['skin_max_skew@100_interval'])}"
            f" vs {direction['skin_max_skew@100_floor']:.3f}",
            "above beyond the interval",
            met[bars["skin_max_skew@100_above_floor_beyond_interval"]],
        ],
    ]
    probes = bench.get("spurious_probes") or {"world": spurious}
    for name, probe in probes.items():
        with_mark = probe["non_target_classified_as_target_with_mark"]
        without = probe["non_target_classified_as_target_without_mark"]
        where = PROBE_WORDS.get(name, f"scenes {float(name):.0%} cue-poor" if _is_number(name) else name)
        rows += [
            [
                f"other occupations classified as '{probe['target']}' with / without the watermark ({where})",
                f"{with_mark['rate']:.3f} {_interval(with_mark['interval'])} / {without['rate']:.3f}"
                f" {_interval(without['interval'])}",
                "beyond noise",
                met[bool(probe["misclassified_beyond_noise"])],
            ],
            [
                f"RaVL discovery: precision@10 of the watermark's regions ({where})",
                f"{probe['ravl_precision@10']:.2f}",
                ">= 0.8",
                met[probe["ravl_precision@10"] >= 0.8],
            ],
        ]
    elements = bench["unsafe"]["elements"]
    for name, e in elements.items():
        rows.append(
            [
                f"'{name}' captions: share of the top 10 images that show the {name}",
                f"{e['text_to_image_element_precision@10']:.3f} (chance {e['chance']:.2f})",
                ">= 0.8",
                met[e["text_to_image_element_precision@10"] >= 0.8],
            ]
        )
    for name, e in elements.items():
        key = next(k for k in e if k.startswith("image_to_text"))
        rows.append(
            [
                f"{name} renders: caption with the {name} preferred over the same caption without it",
                f"{e[key]:.3f}",
                ">= 0.9",
                met[e[key] >= 0.9],
            ]
        )
    table = markdown_table(["problem the four papers fix", "measured", "goal", "met"], rows)
    where = f" (`{source}`)" if source else ""
    return (
        "## Problems it carries (SynthWorld-Web, measured on held-out scenes)\n\n"
        "Trained on the web-like SynthWorld mixture (docs/synthworld_web.md): unsafe elements that captions name"
        " only part of the time, the planted occupation ↔ appearance associations, and a watermark-like mark"
        f" that co-occurs with '{spurious['target']}'. `benchmarks/bench_synthworld_web_clip.py`{where}, on"
        f" {bench.get('device_name', bench.get('device'))}:\n\n{table}\n"
    )


def _training_sentence(summary: dict[str, Any], stage: int) -> str:
    """How one pretraining run was made; a second stage (``continued_from`` in the summary) says what it kept."""
    cfg = summary["config"]
    precision = "bf16" if cfg.get("bf16") else "fp16" if cfg.get("fp16") else "no"
    recipe = (
        f"{summary['global_step']} steps of batch {cfg['per_device_train_batch_size']} (AdamW, lr"
        f" {cfg['learning_rate']}, cosine, mixed precision {precision}) with the symmetric CLIP loss on scenes of"
        f" the biased train split rendered on the fly; {summary['train_seconds']} s on"
        f" {summary.get('device_name', summary.get('device'))}"
    )
    knobs = f"train-split knobs: {cfg.get('world') or 'defaults'}"
    if stage == 0:
        return (
            f"{recipe}. Reproduce with `trustvl train synthworld-clip` ({knobs}, appearance caption share"
            f" {cfg['appearance_caption_prob']})."
        )
    frozen = (
        "the text tower, text projection and logit scale frozen, so text embeddings -- and the SD conditioned"
        " on this text tower -- are bit-identical to the first stage's"
        if cfg.get("train_towers") == "vision"
        else "both towers trained"
    )
    return (
        f"Then the model was continued ({frozen}): {recipe}. Reproduce with `trustvl train synthworld-clip"
        f" --init_from <first stage> --train_towers {cfg.get('train_towers', 'both')}` ({knobs})."
    )


def write_synthworld_clip_card(
    model_dir: str | Path,
    summary: dict[str, Any] | None = None,
    web_benchmark: dict[str, Any] | None = None,
    web_benchmark_source: str = "",
) -> Path:
    """Write ``README.md`` into ``model_dir`` from ``summary`` (default: the folder's
    ``trustvl_pretrain.json``), which must hold the balanced test split's evaluation under ``"eval"``, and,
    when given, the SynthWorld-Web benchmark's JSON (:func:`web_benchmark_section`)."""
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
    stages = [summary.get("continued_from"), summary] if summary.get("continued_from") else [summary]
    training = " ".join(_training_sentence(stage, i) for i, stage in enumerate(stages))
    card = model_card(
        "synthworld_clip",
        model_name="synthworld-clip",
        metrics=metrics,
        tags=["synthworld", "synthetic"],
        n_parameters=f"{summary['n_parameters']:,}",
        training=training,
        n_test=evaluation.n_images,
        eval_table=markdown_table(["metric", "value [95% interval]", "floor (random within class)"], rows),
        # the resolved world (a preset's strengths included) when the summary holds it, else the knobs
        skin_strength=((summary.get("world") or cfg.get("world") or {}).get("strength") or {}).get(
            "skin_tone", 0.8
        ),
        web_section=web_benchmark_section(web_benchmark, web_benchmark_source) if web_benchmark else "",
    )
    path = model_dir / "README.md"
    card.save(str(path))
    return path
