"""The report of a Safe-CLIP evaluation: the overview and per-category tables, the NSFW-rate figure, and
:func:`safe_clip_report` that assembles them."""

from __future__ import annotations

from pathlib import Path

from trustvl.evaluation.report import Figure, Report, Table
from trustvl.evaluation.safe_clip.results import Rate, SafeCLIPEvalResult, SafeCLIPModelEvaluation
from trustvl.evaluation.safe_clip.retrieval import DIRECTION_NAMES
from trustvl.evaluation.wording import change_text, value_text

__all__ = ["category_table", "overview_table", "plot_nsfw_by_category", "safe_clip_report"]


def _models(result: SafeCLIPEvalResult) -> list[tuple[str, SafeCLIPModelEvaluation]]:
    return [("base", result.base)] * (result.base is not None) + [("Safe-CLIP", result.safe_clip)]


def _label(key: str, nsfw_k: int) -> str:
    if key.startswith("recall/"):
        _, direction, k = key.split("/")
        return f"R@{k} {DIRECTION_NAMES[direction]}"
    return {
        "nsfw_rate": f"NSFW rate@{nsfw_k} text→image",
        "nsfw_rate_image_to_text": f"NSFW rate@{nsfw_k} image→text",
    }.get(key, "zero-shot occupation accuracy")


def _rate_text(rate: Rate | None) -> str:
    return value_text(rate.value, rate.interval) if rate is not None else "— (no query of it on this side)"


def overview_table(result: SafeCLIPEvalResult) -> Table:
    """One row per metric: each model's value [95 % interval] and, with a base, the paired change."""
    models = _models(result)
    headers = ["metric", *[f"{n} [95% interval]" for n, _ in models]]
    if result.comparison is not None:
        headers.append("change (Safe-CLIP − base) [95%], verdict")
    rows = []
    for key in result.safe_clip.metric_keys():
        row = [_label(key, result.safe_clip.nsfw_k)]
        row += [_rate_text(e.metric(key)) if key in e.metric_keys() else "—" for _, e in models]
        if result.comparison is not None:
            if key in result.comparison.changes:
                row.append(change_text(result.comparison.changes[key], result.comparison.differences[key]))
            else:
                row.append("—")
        rows.append(row)
    for key, label in (("nsfw_rate_floor", "text→image"), ("nsfw_rate_image_to_text_floor", "image→text")):
        if getattr(result.safe_clip, key) is None:
            continue
        row = [f"NSFW rate@{result.safe_clip.nsfw_k} {label}, objective floor"]
        row += [_rate_text(getattr(e, key)) for _, e in models]
        rows.append(row + ["(a reference, not compared)"] * (result.comparison is not None))
    return Table(headers, rows)


def category_table(result: SafeCLIPEvalResult) -> Table:
    """One row per (category, model): n, both NSFW rates, R@1 U→V, R@1 S→V and zero-shot, with intervals."""
    rows = []
    for category in result.safe_clip.per_category:
        for name, evaluation in _models(result):
            c = evaluation.per_category[category]
            k1 = min(c.recall["u2v"])
            rows.append(
                [
                    category,
                    name,
                    c.n,
                    _rate_text(c.nsfw_rate),
                    _rate_text(c.nsfw_rate_image_to_text),
                    value_text(c.recall["u2v"][k1].value, c.recall["u2v"][k1].interval),
                    value_text(c.recall["s2v"][k1].value, c.recall["s2v"][k1].interval),
                    value_text(c.zero_shot_accuracy.value, c.zero_shot_accuracy.interval),
                ]
            )
    k1 = min(result.safe_clip.recall["u2v"])
    nsfw = f"NSFW rate@{result.safe_clip.nsfw_k}"
    headers = ["category", "model", "n", f"{nsfw} text→image", f"{nsfw} image→text"]
    return Table([*headers, f"R@{k1} U→V", f"R@{k1} S→V", "zero-shot"], rows)


def plot_nsfw_by_category(path: Path, result: SafeCLIPEvalResult) -> Path:
    """Bars of the text→image NSFW rate per category (and overall) for each model, with 95 % intervals (a
    category without a query on the query side is left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = ["all"] + [c for c, e in result.safe_clip.per_category.items() if e.nsfw_rate is not None]
    models = _models(result)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(groups), 3.2))
    width = 0.8 / len(models)
    for j, (name, evaluation) in enumerate(models):
        rates = [evaluation.nsfw_rate] + [evaluation.per_category[g].nsfw_rate for g in groups[1:]]
        values = [r.value for r in rates]
        err = None
        if all(r.interval is not None for r in rates):
            err = [
                [r.value - r.interval.low for r in rates],
                [r.interval.high - r.value for r in rates],
            ]
        ax.bar(
            [i + (j - (len(models) - 1) / 2) * width for i in range(len(groups))],
            values,
            width,
            yerr=err,
            label=name,
            capsize=3,
        )
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(f"NSFW rate@{result.safe_clip.nsfw_k} text→image")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def safe_clip_report(result: SafeCLIPEvalResult, folder: Path) -> Report:
    """The report of a Safe-CLIP evaluation (its figure is written into ``folder``)."""
    e = result.safe_clip
    pool = result.nsfw_pool
    m = pool.size if pool is not None else e.nsfw_rate.n
    intro = [
        f"Dataset `{result.dataset}`, split `{result.split}`, {result.n_quadruplets} quadruplets. Model `{e.model}`"
        + (f", compared with `{result.base.model}`." if result.base else "."),
        "Intervals: 95%, the rate ± 1.96·SE of a bootstrap over the queries (quadruplets resampled with"
        " replacement, galleries fixed), truncated to [0, 1]; changes: paired interval of Safe-CLIP − base on"
        " the same resamples, called better/worse only when it excludes 0.",
    ]
    if result.comparison is not None and result.base is not None:
        intro.append(
            f"**NSFW rate@{e.nsfw_k} text→image: {result.base.nsfw_rate.value:.3f} → {e.nsfw_rate.value:.3f}"
            f" ({result.comparison.nsfw_rate_drop_pct:.1f}% lower)"
            + (
                f"; image→text: {result.base.nsfw_rate_image_to_text.value:.3f} →"
                f" {e.nsfw_rate_image_to_text.value:.3f}"
                f" ({result.comparison.nsfw_rate_image_to_text_drop_pct:.1f}% lower).**"
                if result.comparison.nsfw_rate_image_to_text_drop_pct is not None
                and e.nsfw_rate_image_to_text is not None
                and result.base.nsfw_rate_image_to_text is not None
                else ".**"
            )
        )
    report = Report("Safe-CLIP evaluation", intro)
    report.add(
        "Retrieval, NSFW rate and zero-shot accuracy",
        "S/V: safe text/image, U/G: unsafe text/image. R@K: each query's own partner among all the split's"
        " images (or captions) of that kind. NSFW rates (Safe-CLIP's protocol; the split's scenes dealt into"
        f" two disjoint sides of {m} rows, seed {pool.seed if pool is not None else 'n/a'}): text→image, the"
        f" share of unsafe images among the top {e.nsfw_k} for each unsafe caption of the query side in a"
        f" gallery of the query side's {m} safe images plus {m} unsafe images of the other side's scenes (no"
        " twin of any gallery image); image→text, the share of unsafe captions among the top"
        f" {e.nsfw_k} for each of those {m} unsafe images in a pool of their {m} safe captions plus the query"
        f" side's {m} unsafe captions. Lower is safer. Objective floor: the same rate with every unsafe"
        " input embedded as its safe counterpart by that model (U as S, G as V), what a model meeting"
        " Safe-CLIP's objective exactly scores; the pool's scenes are as relevant to a query as the query"
        " side's, so it sits near the pool's share of the nearest scenes, not at 0.",
        overview_table(result),
    )
    report.add("Per category", category_table(result))
    plot_nsfw_by_category(folder / "nsfw_rate_by_category.png", result)
    report.add("NSFW rate by category", Figure("nsfw_rate_by_category.png", "NSFW rate by category"))
    return report
