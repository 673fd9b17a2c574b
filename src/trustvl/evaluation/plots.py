"""The PNG plots of trustvl's reports (matplotlib's Agg backend: no display needed).

Each function draws one figure from plain numbers or typed results, writes it to ``path`` and returns
``path``; :class:`~trustvl.evaluation.report.Report` pages embed them by relative path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from trustvl.evaluation.results import AlphaSweepResult  # noqa: E402


def plot_skew_per_prompt(
    path: Path, prompts: Sequence[str], max_skew: Sequence[float], min_skew: Sequence[float], title: str
) -> Path:
    """Horizontal bars of MaxSkew (right) and MinSkew (left) for each prompt."""
    n = len(prompts)
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * n + 1.2)))
    y = range(n)
    ax.barh(list(y), list(max_skew), color="#d9534f", label="MaxSkew")
    ax.barh(list(y), list(min_skew), color="#337ab7", label="MinSkew")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(list(y))
    ax.set_yticklabels([p if len(p) <= 40 else p[:37] + "..." for p in prompts], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("skew (ln of observed / target share in top k)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_group_shares(
    path: Path,
    prompts: Sequence[str],
    group_names: Sequence[str],
    shares: Sequence[Sequence[float]],
    target: Sequence[float],
    title: str,
) -> Path:
    """Stacked bars: each prompt's top-k share per group, with the target as a reference bar."""
    labels = ["target", *prompts]
    rows = [list(target), *[list(s) for s in shares]]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * len(labels) + 1.2)))
    left = [0.0] * len(labels)
    cmap = plt.get_cmap("viridis", max(len(group_names), 2))
    for g, name in enumerate(group_names):
        vals = [r[g] for r in rows]
        ax.barh(range(len(labels)), vals, left=left, color=cmap(g), label=str(name))
        left = [a + b for a, b in zip(left, vals)]
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels([p if len(p) <= 40 else p[:37] + "..." for p in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the top k")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_pareto(path: Path, sweep: AlphaSweepResult) -> Path:
    """Fairness (mean MaxSkew@k and NDKL of the primary attribute, lower is fairer) vs zero-shot accuracy."""
    attr, k = sweep.primary_attribute, sweep.k_shown
    points = sweep.points
    acc = [100 * p.evaluation.zero_shot_top1 for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, values, label in (
        (axes[0], [p.evaluation.fairness[attr].at_k[k].max_skew for p in points], f"mean MaxSkew@{k}"),
        (axes[1], [p.evaluation.fairness[attr].ndkl for p in points], "mean NDKL"),
    ):
        ax.plot(values, acc, "-o", color="#5b6abf")
        for x, y, p in zip(values, acc, points):
            ax.annotate(f"α={p.alpha:g}", (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set_xlabel(f"{label} ({attr}) — lower is fairer")
        ax.set_ylabel("zero-shot top-1 (%)")
        ax.grid(alpha=0.3)
    fig.suptitle("CF_α: fairness vs accuracy across α", fontsize=11)
    return _save(fig, path)


def plot_skews_by_alpha(path: Path, sweep: AlphaSweepResult) -> Path:
    """Mean MaxSkew@k and mean NDKL of **every** attribute against α (the base model at α = 0).

    The Pareto plot shows the primary attribute only; this one shows whether the other attributes get
    better or worse along the α path (weight-space interpolation is not fairness interpolation: their
    skews can rise above the base model's at intermediate α).
    """
    k = sweep.k_shown
    points = sorted(sweep.points, key=lambda p: p.alpha)
    alphas = [p.alpha for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for attr in points[0].evaluation.fairness:
        axes[0].plot(alphas, [p.evaluation.fairness[attr].at_k[k].max_skew for p in points], "-o", label=attr)
        axes[1].plot(alphas, [p.evaluation.fairness[attr].ndkl for p in points], "-o", label=attr)
    for ax, label in ((axes[0], f"mean MaxSkew@{k}"), (axes[1], "mean NDKL")):
        ax.set_xlabel("α")
        ax.set_ylabel(f"{label} — lower is fairer")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("CF_α: every attribute's skew across α", fontsize=11)
    return _save(fig, path)
