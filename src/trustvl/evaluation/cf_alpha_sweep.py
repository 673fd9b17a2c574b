"""``trustvl eval cf-alpha``: sweep CF_α's α and measure the fairness–accuracy trade-off.

For each α the :class:`~trustvl.modeling.cf_alpha.CFAlphaCLIPModel` is set to ``θ0 + α·ΔW`` and
evaluated on a labelled, attributed image set: MaxSkew@k, MinSkew@k and NDKL per attribute for the
class prompts (``prompt_template`` filled with the label column's class names), zero-shot top-1,
worst-group accuracy (class × attribute) and, when a caption column exists, Recall@K between images and
captions. Writes ``metrics.json``, ``report.md``, ``report.html``, a table, ``pareto.png`` and ``skews_by_alpha.png``
(fairness vs accuracy, one point per α).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trustvl.errors import TrustVLInputError
from trustvl.utils.io import atomic_output_dir, write_json

DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass
class AlphaSweepConfig:
    """What to sweep.

    Attributes:
        model: folder (or Hub id) of a CF_α model (``trustvl train cf-alpha`` output).
        dataset: labelled image set with attribute columns (e.g. ``trustvl build synthworld`` output).
        out_dir: report folder (must be empty unless ``overwrite``).
        alphas: α values; each must lie in [0, 1] unless ``allow_extrapolation``.
        label_column: class column (ClassLabel) giving the prompts and zero-shot labels.
        attributes: attribute columns (default: ClassLabel columns other than the label).
        ks: cut-offs for MaxSkew/MinSkew (each ≤ the number of images).
        caption_column: captions for Recall@K (skipped when absent); ``recall_ks`` its cut-offs and
            ``n_recall`` the number of image–caption pairs used.
        primary_attribute: the attribute on the Pareto plot's x axis (default: the first).
    """

    model: str
    dataset: str
    out_dir: str
    alphas: list[float] = field(default_factory=lambda: list(DEFAULT_ALPHAS))
    split: str = "test"
    image_column: str = "image"
    label_column: str = "occupation"
    attributes: list[str] | None = None
    ks: list[int] = field(default_factory=lambda: [10, 100])
    prompt_template: str = "a photo of a {}"
    caption_column: str | None = "caption"
    recall_ks: list[int] = field(default_factory=lambda: [1, 5, 10])
    n_recall: int = 1000
    primary_attribute: str | None = None
    allow_extrapolation: bool = False
    batch_size: int = 128
    device: str = "auto"
    max_images: int | None = None
    overwrite: bool = False
    progress: bool = True

    def validate(self) -> None:
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


def sweep_alpha(cfg: AlphaSweepConfig) -> dict[str, Any]:
    """Run the α sweep and write its report; returns the metrics (also in ``metrics.json``)."""
    from datasets import ClassLabel

    from trustvl.evaluation.audit import attribute_columns, score_attributes
    from trustvl.hub.loading import load_dataset_any
    from trustvl.metrics import recall_at_k, worst_group_accuracy, zero_shot_accuracy
    from trustvl.modeling.embedding import embed_images, embed_texts, load_clip

    cfg.validate()
    ds = load_dataset_any(cfg.dataset, split=cfg.split)
    if cfg.max_images is not None:
        ds = ds.select(range(min(cfg.max_images, len(ds))))
    if len(ds) == 0:
        raise TrustVLInputError(f"dataset {cfg.dataset!r} split {cfg.split!r} is empty")
    attrs = attribute_columns(ds, cfg.image_column, cfg.label_column, cfg.attributes)
    feat = ds.features[cfg.label_column]
    if not isinstance(feat, ClassLabel):
        raise TrustVLInputError(
            f"label column {cfg.label_column!r} has type {feat}; expected a ClassLabel column"
        )
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
    prompts = [cfg.prompt_template.format(n.replace("_", " ")) for n in feat.names]
    images = _images(ds, cfg.image_column)
    captions = list(ds[cfg.caption_column])[: cfg.n_recall] if cfg.caption_column in ds.column_names else None
    rows: list[dict[str, Any]] = []
    per_alpha: dict[str, Any] = {}
    original_alpha = model.alpha
    for a in cfg.alphas:
        model.set_alpha(float(a))
        img = embed_images(
            model,
            processor,
            images,
            batch_size=cfg.batch_size,
            total=len(images),
            progress=cfg.progress,
            desc=f"α={a:g}",
        )
        txt = embed_texts(model, processor, prompts)
        scores = txt @ img.T
        correct = scores.argmax(0).numpy() == labels
        fair = score_attributes(scores, attrs, list(cfg.ks), "uniform")
        entry: dict[str, Any] = {
            "alpha": float(a),
            "zero_shot_top1": float(zero_shot_accuracy(scores.T, torch.as_tensor(labels))),
            "worst_group_accuracy": {
                x.name: float(worst_group_accuracy(correct, labels, x.values)) for x in attrs
            },
            "fairness": {
                name: {
                    "mean_ndkl": v["mean_ndkl"],
                    **{f"mean_max_skew@{k}": v["at_k"][k]["mean_max_skew"] for k in v["at_k"]},
                    **{f"mean_min_skew@{k}": v["at_k"][k]["mean_min_skew"] for k in v["at_k"]},
                }
                for name, v in fair.items()
            },
        }
        if captions:
            m = len(captions)
            sim = embed_texts(model, processor, captions) @ img[:m].T
            entry["recall"] = {
                f"text_to_image_R@{k}": float(recall_at_k(sim, k)) for k in cfg.recall_ks if k <= m
            }
            entry["recall"].update(
                {
                    f"image_to_text_R@{k}": float(recall_at_k(sim, k, direction="image_to_text"))
                    for k in cfg.recall_ks
                    if k <= m
                }
            )
        per_alpha[f"{a:g}"] = entry
        rows.append(entry)
    model.set_alpha(original_alpha)
    results = {
        "model": str(cfg.model),
        "dataset": str(cfg.dataset),
        "split": cfg.split,
        "n_images": len(ds),
        "prompts": prompts,
        "ks": list(cfg.ks),
        "primary_attribute": primary,
        "alphas": per_alpha,
    }
    with atomic_output_dir(cfg.out_dir, overwrite=cfg.overwrite) as stage:
        write_json(stage / "metrics.json", results)
        write_sweep_report(stage, results)
    return results


def sweep_table(results: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the α table (one row per α)."""
    k_mid = str(sorted(results["ks"])[len(results["ks"]) // 2])
    first = next(iter(results["alphas"].values()))
    attrs = list(first["fairness"])
    headers = ["α", "zero-shot top-1"]
    if "recall" in first:
        headers.append("R@5 text→image")
    for a in attrs:
        headers += [f"{a} MaxSkew@{k_mid}", f"{a} MinSkew@{k_mid}", f"{a} NDKL"]
    rows = []
    for e in results["alphas"].values():
        row: list[Any] = [e["alpha"], e["zero_shot_top1"]]
        if "recall" in e:
            row.append(e["recall"].get("text_to_image_R@5", float("nan")))
        for a in attrs:
            f = e["fairness"][a]
            row += [f[f"mean_max_skew@{k_mid}"], f[f"mean_min_skew@{k_mid}"], f["mean_ndkl"]]
        rows.append(row)
    return headers, rows


def plot_pareto(path: Path, results: dict[str, Any]) -> Path:
    """Fairness (mean MaxSkew@k and NDKL of the primary attribute, lower is fairer) vs zero-shot accuracy."""
    from trustvl.evaluation.report import plt

    attr = results["primary_attribute"]
    k_mid = str(sorted(results["ks"])[len(results["ks"]) // 2])
    entries = list(results["alphas"].values())
    acc = [100 * e["zero_shot_top1"] for e in entries]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in (
        (axes[0], f"mean_max_skew@{k_mid}", f"mean MaxSkew@{k_mid}"),
        (axes[1], "mean_ndkl", "mean NDKL"),
    ):
        xs = [e["fairness"][attr][key] for e in entries]
        ax.plot(xs, acc, "-o", color="#5b6abf")
        for x, y, e in zip(xs, acc, entries):
            ax.annotate(f"α={e['alpha']:g}", (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set_xlabel(f"{label} ({attr}) — lower is fairer")
        ax.set_ylabel("zero-shot top-1 (%)")
        ax.grid(alpha=0.3)
    fig.suptitle("CF_α: fairness vs accuracy across α", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_skews_by_alpha(path: Path, results: dict[str, Any]) -> Path:
    """Mean MaxSkew@k and mean NDKL of **every** attribute against α (the base model at α = 0).

    The Pareto plot shows the primary attribute only; this one shows whether the other attributes get
    better or worse along the α path (weight-space interpolation is not fairness interpolation: their
    skews can rise above the base model's at intermediate α).
    """
    from trustvl.evaluation.report import plt

    k_mid = str(sorted(results["ks"])[len(results["ks"]) // 2])
    entries = sorted(results["alphas"].values(), key=lambda e: e["alpha"])
    alphas = [e["alpha"] for e in entries]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in (
        (axes[0], f"mean_max_skew@{k_mid}", f"mean MaxSkew@{k_mid}"),
        (axes[1], "mean_ndkl", "mean NDKL"),
    ):
        for attr in entries[0]["fairness"]:
            ax.plot(alphas, [e["fairness"][attr][key] for e in entries], "-o", label=attr)
        ax.set_xlabel("α")
        ax.set_ylabel(f"{label} — lower is fairer")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("CF_α: every attribute's skew across α", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_sweep_report(stage: Path, results: dict[str, Any]) -> None:
    from trustvl.evaluation.report import html_image, html_page, html_table, markdown_table

    headers, rows = sweep_table(results)
    plot_pareto(stage / "pareto.png", results)
    plot_skews_by_alpha(stage / "skews_by_alpha.png", results)
    md = [
        f"# CF_α sweep: `{results['model']}`",
        "",
        f"{results['n_images']} images of `{results['dataset']}` ({results['split']}); α = 0 is the original"
        " model, α = 1 the fine-tuned one.",
        "",
        markdown_table(headers, rows),
        "",
        "![pareto](pareto.png)",
        "",
        "![skews by alpha](skews_by_alpha.png)",
        "",
    ]
    (stage / "report.md").write_text("\n".join(md), encoding="utf-8")
    page = html_page(
        "CF_α α sweep",
        [
            ("Table", html_table(headers, rows)),
            ("Fairness vs accuracy", html_image("pareto.png", "Pareto plot")),
            ("Every attribute across α", html_image("skews_by_alpha.png", "skews by alpha")),
        ],
    )
    (stage / "report.html").write_text(page, encoding="utf-8")
