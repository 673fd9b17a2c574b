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
from trustvl.evaluation.wording import attribute_name  # noqa: E402


def plot_skew_per_prompt(
    path: Path,
    prompts: Sequence[str],
    max_skew: Sequence[float],
    min_skew: Sequence[float],
    title: str,
    floors: tuple[float, float] | None = None,
) -> Path:
    """Horizontal bars of MaxSkew (right) and MinSkew (left) for each prompt; ``floors`` (MaxSkew floor,
    MinSkew floor) are drawn as dashed lines: bars inside them are what a fair ranking shows on this gallery."""
    n = len(prompts)
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * n + 1.2)))
    y = range(n)
    ax.barh(list(y), list(max_skew), color="#d9534f", label="MaxSkew")
    ax.barh(list(y), list(min_skew), color="#337ab7", label="MinSkew")
    ax.axvline(0, color="black", linewidth=0.8)
    if floors is not None:
        for x in floors:
            ax.axvline(x, color="gray", linestyle="--", linewidth=1)
        ax.plot([], [], color="gray", linestyle="--", label="sampling floor")
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
    floor_shares: Sequence[float] | None = None,
) -> Path:
    """Stacked bars: each prompt's top-k share per group, with the target as a reference bar.

    ``floor_shares`` (each group's expected top-k share under the floor's random-within-class rankings,
    averaged over prompts) adds a "floor" bar and dashed lines at its group boundaries."""
    labels = ["target", *prompts]
    rows = [list(target), *[list(s) for s in shares]]
    if floor_shares is not None:
        labels.insert(1, "floor")
        rows.insert(1, list(floor_shares))
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
    if floor_shares is not None:
        edge = 0.0
        for share in list(floor_shares)[:-1]:
            edge += share
            ax.axvline(edge, color="black", linestyle="--", linewidth=0.8)
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


def _mean_interval_floor(fairness, metric: str, k: int) -> tuple[float, object, float | None]:
    if metric == "ndkl":
        return fairness.ndkl, fairness.ndkl_interval, fairness.ndkl_floor
    s = fairness.at_k[k]
    return s.max_skew, s.max_skew_interval, s.max_skew_floor


def _yerr(values: Sequence[float], intervals: Sequence) -> list[list[float]] | None:
    if any(i is None for i in intervals):
        return None
    # centred intervals contain their mean; truncation at the metric's range is what makes the arms unequal.
    # Results written before intervals were centred (issue 24) can hold an interval that misses its point:
    # its arm on that side is drawn as 0 (matplotlib refuses negative error bars) rather than failing.
    return [
        [max(0.0, v - i.low) for v, i in zip(values, intervals)],
        [max(0.0, i.high - v) for v, i in zip(values, intervals)],
    ]


def plot_pareto(path: Path, sweep: AlphaSweepResult) -> Path:
    """Fairness (mean MaxSkew@k and NDKL of the primary attribute, lower is fairer, with 95 % intervals and
    the sampling floor dashed) vs zero-shot accuracy."""
    attr, k = sweep.primary_attribute, sweep.k_shown
    points = sweep.points
    acc = [100 * p.evaluation.zero_shot_top1 for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric, label in ((axes[0], "max_skew", f"MaxSkew@{k}"), (axes[1], "ndkl", "NDKL")):
        values, intervals, floors = zip(
            *(_mean_interval_floor(p.evaluation.fairness[attr], metric, k) for p in points)
        )
        ax.errorbar(values, acc, xerr=_yerr(values, intervals), fmt="-o", color="#5b6abf", capsize=3)
        if None not in floors:
            ax.axvline(sum(floors) / len(floors), color="gray", linestyle="--", label="sampling floor")
            ax.legend(fontsize=8)
        for x, y, p in zip(values, acc, points):
            ax.annotate(f"α={p.alpha:g}", (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set_xlabel(f"{label} ({attribute_name(attr)}) — lower is fairer")
        ax.set_ylabel("zero-shot top-1 (%)")
        ax.grid(alpha=0.3)
    fig.suptitle("CF_α: fairness vs accuracy across α", fontsize=11)
    return _save(fig, path)


def plot_skews_by_alpha(path: Path, sweep: AlphaSweepResult) -> Path:
    """Mean MaxSkew@k and mean NDKL of **every** attribute against α (the base model at α = 0).

    Each attribute's line carries its 95 % intervals (a band), its sampling floor (dashed, same colour;
    averaged over α), a star at the α where it is lowest and a red-edged triangle at each α where it got
    worse than at the previous α beyond noise (:meth:`AlphaSweepResult.rises`). The Pareto plot shows the
    primary attribute only; this one shows whether the other attributes get better or worse along the α path
    (weight-space interpolation is not fairness interpolation).
    """
    k = sweep.k_shown
    points = sorted(sweep.points, key=lambda p: p.alpha)
    alphas = [p.alpha for p in points]
    rises = sweep.rises()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for attr in points[0].evaluation.fairness:
        for ax, metric in ((axes[0], "max_skew"), (axes[1], "ndkl")):
            values, intervals, floors = zip(
                *(_mean_interval_floor(p.evaluation.fairness[attr], metric, k) for p in points)
            )
            (line,) = ax.plot(alphas, values, "-o", label=attribute_name(attr), markersize=4)
            color = line.get_color()
            if None not in intervals:
                ax.fill_between(
                    alphas, [i.low for i in intervals], [i.high for i in intervals], color=color, alpha=0.15
                )
            if None not in floors:
                ax.axhline(sum(floors) / len(floors), color=color, linestyle="--", linewidth=1)
            best = sweep.best_alpha(attr, metric)
            ax.plot(
                [best], [values[alphas.index(best)]], "*", color=color, markersize=14, markeredgecolor="black"
            )
            risen = [r.alpha for r in rises if r.attribute == attr and r.metric == metric]
            if risen:
                ax.plot(
                    risen,
                    [values[alphas.index(a)] for a in risen],
                    "^",
                    color=color,
                    markersize=11,
                    markeredgecolor="red",
                    markeredgewidth=2,
                )
    for ax, label in ((axes[0], f"mean MaxSkew@{k}"), (axes[1], "mean NDKL")):
        ax.set_xlabel("α")
        ax.set_ylabel(f"{label} — lower is fairer")
        ax.grid(alpha=0.3)
    axes[0].plot([], [], color="gray", linestyle="--", label="sampling floor")
    axes[0].plot([], [], "*", color="gray", markersize=12, markeredgecolor="black", label="best α")
    axes[0].plot(
        [], [], "^", color="gray", markersize=10, markeredgecolor="red", label="worse than previous α"
    )
    axes[0].legend(fontsize=8)
    monotone = {None: "", True: " — monotone within noise"}.get(
        sweep.monotone, f" — {len(rises)} rise(s) beyond noise (red triangles)"
    )
    fig.suptitle(f"CF_α: every attribute across α (bands: 95% intervals){monotone}", fontsize=11)
    return _save(fig, path)


def plot_shares_vs_target(
    path: Path,
    prompts: Sequence[str],
    group_names: Sequence[str],
    plain: Sequence[Sequence[float]],
    fair: Sequence[Sequence[float]],
    target: Sequence[float],
    title: str,
) -> Path:
    """One panel per group: each prompt's share of that group without (grey) and with (colour) the fairness
    instruction, the target as a dashed line (Fair Diffusion's proportions plot)."""
    k, n = len(group_names), len(prompts)
    fig, axes = plt.subplots(
        1, k, figsize=(3.2 * k + 1.5, max(2.5, 0.3 * n + 1.3)), sharey=True, squeeze=False
    )
    y = list(range(n))
    for g, ax in enumerate(axes[0]):
        ax.barh([v - 0.2 for v in y], [row[g] for row in plain], height=0.4, color="#b0b0b0", label="plain")
        ax.barh(
            [v + 0.2 for v in y],
            [row[g] for row in fair],
            height=0.4,
            color="#5b6abf",
            label="Fair Diffusion",
        )
        ax.axvline(target[g], color="#d9534f", linestyle="--", linewidth=1.2, label="target")
        ax.set_xlim(0, 1)
        ax.set_title(
            str(group_names[g]) if len(str(group_names[g])) <= 32 else str(group_names[g])[:29] + "...",
            fontsize=9,
        )
        ax.set_xlabel("share of images")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(y)
    axes[0][0].set_yticklabels([p if len(p) <= 34 else p[:31] + "..." for p in prompts], fontsize=8)
    axes[0][0].invert_yaxis()
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
