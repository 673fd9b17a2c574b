"""``trustvl eval cf-alpha``: sweep CF_α's α and measure the fairness–accuracy trade-off.

For each α the :class:`~trustvl.modeling.cf_alpha.CFAlphaCLIPModel` is set to ``θ0 + α·ΔW`` and
evaluated on a labelled, attributed image set: MaxSkew@k, MinSkew@k and NDKL per attribute for the
class prompts (``prompt_template`` filled with the label column's class names), zero-shot top-1,
worst-group accuracy (class × attribute) and, when a caption column exists, Recall@K between images and
captions, all with the one evaluator (:mod:`trustvl.evaluation.evaluator`). Returns an
:class:`~trustvl.evaluation.results.AlphaSweepResult` and writes it to ``metrics.json``, with ``report.md``,
``report.html``, ``pareto.png`` (fairness vs accuracy, one point per α) and ``skews_by_alpha.png``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.dataset_columns import attribute_columns
from trustvl.evaluation.evaluator import evaluate_model
from trustvl.evaluation.plots import plot_pareto, plot_skews_by_alpha
from trustvl.evaluation.report import Figure, Report
from trustvl.evaluation.results import AlphaPoint, AlphaSweepResult, UncertaintySettings
from trustvl.evaluation.tables import sweep_change_table, sweep_table
from trustvl.evaluation.wording import UNCERTAINTY_NOTE, attribute_name, metric_name
from trustvl.utils.class_labels import class_label_names
from trustvl.utils.io import atomic_output_dir, write_json
from trustvl.utils.options import (
    device_option,
    overwrite_option,
    progress_option,
    resamples_option,
    uncertainty_seed_option,
)

DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass
class AlphaSweepConfig:
    """What to sweep (``trustvl eval cf-alpha``: each field is a flag, its help below). ``n_resamples`` and
    ``uncertainty_seed`` drive the gallery bootstrap of the intervals, floors and verdicts (SPEC §1)."""

    model: str = field(
        metadata={"help": "folder (or Hub id) of a CF_α model (trustvl train cf-alpha output /model)"}
    )
    dataset: str = field(
        metadata={"help": "labelled image set with attribute columns (e.g. trustvl build synthworld output)"}
    )
    out_dir: str = field(
        metadata={"help": "report folder (must be empty unless --overwrite)", "aliases": ["--out"]}
    )
    alphas: list[float] = field(
        default_factory=lambda: list(DEFAULT_ALPHAS),
        metadata={"help": "α values, each in [0, 1] unless --allow-extrapolation"},
    )
    split: str = field(default="test", metadata={"help": "dataset split"})
    image_column: str = field(default="image", metadata={"help": "column holding the images"})
    label_column: str = field(
        default="occupation",
        metadata={"help": "class column (ClassLabel) giving the prompts and zero-shot labels"},
    )
    attributes: list[str] | None = field(
        default=None,
        metadata={"help": "attribute columns; None: the ClassLabel columns other than the label"},
    )
    ks: list[int] = field(
        default_factory=lambda: [10, 100],
        metadata={
            "help": "cut-offs for MaxSkew/MinSkew (each <= the number of images)",
            "aliases": ["--k"],
            "min": 1,
        },
    )
    prompt_template: str = field(
        default="a photo of a {}", metadata={"help": "template for class-name prompts"}
    )
    caption_column: str | None = field(
        default="caption", metadata={"help": "captions for Recall@K (skipped when the column is absent)"}
    )
    recall_ks: list[int] = field(
        default_factory=lambda: [1, 5, 10], metadata={"help": "Recall@K cut-offs", "min": 1}
    )
    n_recall: int = field(default=1000, metadata={"help": "image-caption pairs used for Recall@K", "min": 1})
    primary_attribute: str | None = field(
        default=None, metadata={"help": "the attribute on the Pareto plot's x axis; None: the first"}
    )
    allow_extrapolation: bool = field(default=False, metadata={"help": "allow α outside [0, 1]"})
    batch_size: int = field(default=128, metadata={"help": "images per forward", "min": 1})
    device: str = device_option()
    max_images: int | None = field(
        default=None, metadata={"help": "use only the first N images of the split", "min": 1}
    )
    overwrite: bool = overwrite_option("report folder")
    progress: bool = progress_option()
    n_resamples: int = resamples_option()
    uncertainty_seed: int = uncertainty_seed_option()

    def validate(self) -> None:
        UncertaintySettings.of(self.n_resamples, self.uncertainty_seed)
        if not self.alphas:
            raise TrustVLInputError("alphas is empty; expected at least one α value")
        for a in self.alphas:
            if not isinstance(a, (int, float)) or not math.isfinite(a):
                raise TrustVLInputError(f"alpha={a!r} is not a finite number")
            if not self.allow_extrapolation and not 0.0 <= a <= 1.0:
                raise TrustVLInputError(
                    f"alpha={a} is outside [0, 1]; pass allow_extrapolation (--allow-extrapolation) to extrapolate"
                )
        if not self.ks or any(not isinstance(k, int) or k <= 0 for k in self.ks):
            raise TrustVLInputError(f"ks={self.ks!r}; expected positive integers")


def _images(ds: Any, column: str) -> list[Any]:
    return [img.convert("RGB") for img in ds[column]]


#: Largest gallery of frozen-prefix states the sweep keeps in memory (bytes); above it every α embeds from pixels.
PREFIX_CACHE_BYTES = 2**30


def _frozen_prefix(model: Any, processor: Any, images: list[Any], cfg: AlphaSweepConfig, n_alphas: int):
    """``(start_layer, states)``: the gallery's hidden states entering the first vision layer with a LoRA delta,
    computed once because they are the same at every α; ``(0, None)`` when that saves nothing (no frozen
    layer, at most one α to embed) or the states would not fit in :data:`PREFIX_CACHE_BYTES`."""
    from trustvl.modeling.embedding import vision_prefix_states

    start = model.first_adapted_vision_layer() if hasattr(model, "first_adapted_vision_layer") else 0
    if start == 0 or n_alphas < 2:
        return 0, None
    if model.vision_hidden_states_nbytes(len(images)) > PREFIX_CACHE_BYTES:
        return 0, None
    states = vision_prefix_states(
        model, processor, images, start, batch_size=cfg.batch_size, progress=cfg.progress
    )
    return start, states


def sweep_alpha(cfg: AlphaSweepConfig, precomputed: dict[float, Any] | None = None) -> AlphaSweepResult:
    """Run the α sweep and write its report; returns the result (also in ``metrics.json``).

    ``precomputed`` maps α values to image embeddings of this gallery already computed with this model at
    that α (``[n_images, d]``, L2-normalised), e.g. α = 0 from an audit of the base model (a CF_α model at
    α = 0 is exactly its base); those α are evaluated without embedding the gallery again.
    """
    from trustvl.hub.loading import load_dataset_any
    from trustvl.modeling.embedding import embed_images, embed_vision_states, load_clip

    cfg.validate()
    ds = load_dataset_any(cfg.dataset, split=cfg.split)
    if cfg.max_images is not None:
        ds = ds.select(range(min(cfg.max_images, len(ds))))
    if len(ds) == 0:
        raise TrustVLInputError(f"dataset {cfg.dataset!r} split {cfg.split!r} is empty")
    attrs = attribute_columns(ds, cfg.image_column, cfg.label_column, cfg.attributes)
    class_names = class_label_names(ds, cfg.label_column)
    bad_k = [k for k in cfg.ks if k > len(ds)]
    if bad_k:
        raise TrustVLInputError(f"k={bad_k[0]} exceeds the gallery size {len(ds)}")
    primary = cfg.primary_attribute or attrs[0].name
    if primary not in [a.name for a in attrs]:
        raise TrustVLInputError(f"primary_attribute={primary!r} is not one of {[a.name for a in attrs]}")
    model, processor = load_clip(cfg.model, device=cfg.device)
    if not hasattr(model, "set_alpha"):
        raise TrustVLInputError(
            f"model {cfg.model!r} is a {type(model).__name__}; expected a CF_α model (trustvl train cf-alpha output)"
        )
    if cfg.allow_extrapolation:
        model.config.allow_alpha_extrapolation = True
    labels = np.asarray(list(ds[cfg.label_column]), dtype=np.int64)
    prompts = [cfg.prompt_template.format(n.replace("_", " ")) for n in class_names]
    images = _images(ds, cfg.image_column)
    captions = list(ds[cfg.caption_column])[: cfg.n_recall] if cfg.caption_column in ds.column_names else None
    known = {float(a): e for a, e in (precomputed or {}).items()}
    for a, e in known.items():
        if tuple(e.shape)[:1] != (len(ds),):
            raise TrustVLInputError(
                f"precomputed embeddings for alpha={a:g} have shape {tuple(e.shape)}; expected {len(ds)} rows"
            )
    to_embed = [a for a in cfg.alphas if float(a) not in known]
    start, states = _frozen_prefix(model, processor, images, cfg, n_alphas=len(to_embed))
    points = []
    original_alpha = model.alpha
    for a in cfg.alphas:
        model.set_alpha(float(a))
        if float(a) in known:
            image_embeds = torch.as_tensor(known[float(a)], dtype=torch.float32)
        elif states is not None:
            image_embeds = embed_vision_states(
                model, states, start, batch_size=cfg.batch_size, progress=cfg.progress, desc=f"α={a:g}"
            )
        else:
            image_embeds = embed_images(
                model,
                processor,
                images,
                batch_size=cfg.batch_size,
                total=len(images),
                progress=cfg.progress,
                desc=f"α={a:g}",
            )
        evaluation = evaluate_model(
            model,
            processor,
            image_embeds,
            prompts=prompts,
            attributes=attrs,
            ks=list(cfg.ks),
            target="uniform",
            labels=labels,
            class_names=class_names,
            captions=captions,
            recall_ks=cfg.recall_ks,
            uncertainty=UncertaintySettings.of(cfg.n_resamples, cfg.uncertainty_seed),
        )
        points.append(AlphaPoint(alpha=float(a), evaluation=evaluation))
    model.set_alpha(original_alpha)
    result = AlphaSweepResult(
        model=str(cfg.model),
        dataset=str(cfg.dataset),
        split=cfg.split,
        n_images=len(ds),
        ks=list(cfg.ks),
        primary_attribute=primary,
        points=points,
    )
    with atomic_output_dir(cfg.out_dir, overwrite=cfg.overwrite) as stage:
        write_json(stage / "metrics.json", result.to_dict())
        write_sweep_report(stage, result)
    return result


def sweep_report_sections(report: Report, sweep: AlphaSweepResult, folder: str = "") -> None:
    """Add the α sweep's sections to ``report``: the means with intervals and floor, the signed paired
    changes against the baseline α with verdicts, the best α of every attribute and the two plots
    (``folder`` is the plots' folder relative to the report)."""
    k = sweep.k_shown
    best = "; ".join(
        f"{attribute_name(a)} α = {sweep.best_alpha(a):g}" for a in sweep.baseline.evaluation.fairness
    )
    base = f"α = {sweep.baseline.alpha:g}"
    report.add(
        f"MaxSkew@{k} and NDKL across α",
        "Means over the prompts with 95% bootstrap intervals; the last row is the sampling floor (rankings"
        " random within each class). Lower is fairer.",
        sweep_table(sweep, "max_skew"),
        sweep_table(sweep, "ndkl", with_accuracy=False),
    )
    report.add(
        f"Changes against {base}",
        f"Signed paired changes (α − {base}, same bootstrap resamples) with their 95% intervals: **better** or"
        " **worse** only when the interval excludes 0, otherwise **within noise**. Negative is fairer.",
        sweep_change_table(sweep, "max_skew"),
        sweep_change_table(sweep, "ndkl"),
        f"Lowest mean MaxSkew@{k} (point value; starred on the plot): {best}.",
    )
    rises = sweep.rises()
    if sweep.monotone is None:
        verdict_line = "No replicates: monotonicity along α cannot be judged."
    elif not rises:
        verdict_line = (
            "**Monotone within noise**: no step to a larger α makes any attribute's MaxSkew@"
            f"{k} or NDKL worse beyond its interval."
        )
    else:
        verdict_line = "**Not monotone**: " + "; ".join(
            f"{attribute_name(r.attribute)} {metric_name(r.metric, k)} rises from α = {r.previous_alpha:g} to"
            f" {r.alpha:g} ({r.change.difference:+.3f} [{r.change.interval.low:+.3f},"
            f" {r.change.interval.high:+.3f}])"
            for r in rises
        )
    report.add(
        "Monotone along α?",
        "Each α against the previous one (paired, same resamples): a user sliding α up should never get a"
        " model less fair than the step before.",
        verdict_line,
        sweep_change_table(sweep, "max_skew", against="previous"),
        sweep_change_table(sweep, "ndkl", against="previous"),
    )
    report.add(
        "Fairness vs accuracy",
        Figure(f"{folder}pareto.png", "Pareto plot"),
        Figure(f"{folder}skews_by_alpha.png", "every attribute across α, with intervals, floors and best α"),
    )


def write_sweep_report(stage: Path, sweep: AlphaSweepResult) -> None:
    """``report.md``, ``report.html``, ``pareto.png`` and ``skews_by_alpha.png`` of a sweep, in ``stage``."""
    plot_pareto(stage / "pareto.png", sweep)
    plot_skews_by_alpha(stage / "skews_by_alpha.png", sweep)
    report = Report(
        "CF_α α sweep",
        intro=[
            f"Model `{sweep.model}`: {sweep.n_images} images of `{sweep.dataset}` ({sweep.split}); α = 0 is the"
            " original model, α = 1 the fine-tuned one. Lower MaxSkew and NDKL are fairer.",
            UNCERTAINTY_NOTE,
        ],
    )
    sweep_report_sections(report, sweep)
    report.write(stage)
