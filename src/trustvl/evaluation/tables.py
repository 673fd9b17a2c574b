"""Report tables built from typed results (:mod:`trustvl.evaluation.results`), one function per table.

Tables are narrow (at most 8 columns, so they fit a 1280-px page) and use plain names
(:mod:`trustvl.evaluation.wording`): a mean is shown with its 95 % bootstrap interval and its sampling
floor, a change with its sign, its paired interval and its verdict.
"""

from __future__ import annotations

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.report import Table
from trustvl.evaluation.results import AlphaSweepResult, AttributeEffect, EvaluationResult
from trustvl.evaluation.wording import attribute_name, change_text, metric_name, value_text

__all__ = [
    "accuracy_table",
    "effect_table",
    "fairness_summary_table",
    "per_prompt_table",
    "sweep_change_table",
    "sweep_table",
]


def _floor(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def fairness_summary_table(evaluation: EvaluationResult) -> Table:
    """One row per (attribute, metric): the mean over the prompts, its 95 % interval and the floor."""
    rows = []
    for name, a in evaluation.fairness.items():
        for k, s in a.at_k.items():
            rows.append(
                [
                    attribute_name(name),
                    metric_name("max_skew", k),
                    value_text(s.max_skew, s.max_skew_interval),
                    _floor(s.max_skew_floor),
                ]
            )
            rows.append(
                [
                    attribute_name(name),
                    metric_name("min_skew", k),
                    value_text(s.min_skew, s.min_skew_interval),
                    _floor(s.min_skew_floor),
                ]
            )
        rows.append(
            [attribute_name(name), "NDKL", value_text(a.ndkl, a.ndkl_interval, 4), _floor(a.ndkl_floor, 4)]
        )
    return Table(
        ["attribute", "metric", "mean over prompts [95% interval]", "floor (random within class)"], rows
    )


def per_prompt_table(evaluation: EvaluationResult, attribute: str, k: int) -> Table:
    """One row per prompt: MaxSkew@k, MinSkew@k and NDKL of ``attribute`` (single rankings: no interval)."""
    a = evaluation.fairness[attribute]
    s = a.at_k[k]
    rows = [
        [p, mx, mn, nd]
        for p, mx, mn, nd in zip(
            evaluation.prompts, s.max_skew_per_query, s.min_skew_per_query, a.ndkl_per_query
        )
    ]
    return Table(["prompt", f"MaxSkew@{k}", f"MinSkew@{k}", "NDKL"], rows)


def accuracy_table(evaluation: EvaluationResult, label: str = "class") -> Table:
    """Zero-shot top-1 and worst-group accuracy (``label`` × attribute)."""
    rows: list[list] = [["zero-shot top-1", evaluation.zero_shot_top1]]
    rows += [
        [f"worst-group accuracy ({attribute_name(label)} × {attribute_name(a)})", v]
        for a, v in evaluation.worst_group_accuracy.items()
    ]
    return Table(["metric", "value"], rows)


def effect_table(effect: dict[str, AttributeEffect], after: str = "CF_α (α = 1)") -> Table:
    """Two rows per attribute (MaxSkew@k, NDKL): base and ``after`` with intervals, the signed paired change
    with its interval, the verdict and the floor."""
    rows = []
    for name, e in effect.items():
        for label, base, base_ci, new, new_ci, change, floor, digits in (
            (
                metric_name("max_skew", e.k),
                e.base_max_skew,
                e.base_max_skew_interval,
                e.cf_alpha_max_skew,
                e.cf_alpha_max_skew_interval,
                e.max_skew_change,
                e.max_skew_floor,
                3,
            ),
            (
                "NDKL",
                e.base_ndkl,
                e.base_ndkl_interval,
                e.cf_alpha_ndkl,
                e.cf_alpha_ndkl_interval,
                e.ndkl_change,
                e.ndkl_floor,
                4,
            ),
        ):
            text = change_text(change, new - base, digits)
            rows.append(
                [
                    attribute_name(name),
                    label,
                    value_text(base, base_ci, digits),
                    value_text(new, new_ci, digits),
                    text.rsplit(", ", 1)[0],
                    change.verdict if change is not None else "no interval",
                    _floor(floor, digits),
                ]
            )
    return Table(
        ["attribute", "metric", "base [95%]", f"{after} [95%]", "change [95%]", "verdict", "floor"], rows
    )


def sweep_table(sweep: AlphaSweepResult, metric: str = "max_skew", with_accuracy: bool = True) -> Table:
    """One row per α: zero-shot top-1, R@5 text→image (when measured) and, per attribute, the mean
    ``metric`` (``"max_skew"``/``"min_skew"`` at :attr:`~trustvl.evaluation.results.AlphaSweepResult.k_shown`,
    or ``"ndkl"``) with its 95 % interval; a last row gives the sampling floor (its range over α).
    ``with_accuracy=False`` leaves out the accuracy columns (for a second table next to the first)."""
    k = sweep.k_shown
    first = sweep.points[0].evaluation
    attrs = list(first.fairness)
    digits = 4 if metric == "ndkl" else 3
    show_recall = with_accuracy and first.recall is not None
    headers = ["α", "zero-shot top-1"] if with_accuracy else ["α"]
    if show_recall:
        headers.append("R@5 text→image")
    headers += [f"{attribute_name(a)} {metric_name(metric, k)}" for a in attrs]

    def mean_ci_floor(ev: EvaluationResult, a: str):
        f = ev.fairness[a]
        if metric == "ndkl":
            return f.ndkl, f.ndkl_interval, f.ndkl_floor
        s = f.at_k[k]
        return getattr(s, metric), getattr(s, f"{metric}_interval"), getattr(s, f"{metric}_floor")

    rows = []
    for point in sweep.points:
        ev = point.evaluation
        row: list = [f"{point.alpha:g}", ev.zero_shot_top1] if with_accuracy else [f"{point.alpha:g}"]
        if show_recall:
            row.append(ev.recall.text_to_image.get(5, float("nan")) if ev.recall is not None else "")
        for a in attrs:
            value, interval, _ = mean_ci_floor(ev, a)
            row.append(value_text(value, interval, digits))
        rows.append(row)
    floors = [[mean_ci_floor(p.evaluation, a)[2] for p in sweep.points] for a in attrs]
    if all(None not in f for f in floors):
        row = ["floor"] + [""] * (len(headers) - 1 - len(attrs))
        for f in floors:
            lo, hi = min(f), max(f)
            row.append(
                f"{lo:.{digits}f}"
                if f"{lo:.{digits}f}" == f"{hi:.{digits}f}"
                else f"{lo:.{digits}f}–{hi:.{digits}f}"
            )
        rows.append(row)
    return Table(headers, rows)


def sweep_change_table(sweep: AlphaSweepResult, metric: str = "max_skew", against: str = "baseline") -> Table:
    """One row per α (but the baseline): each attribute's signed paired change of mean ``metric``
    (``"max_skew"`` at ``k_shown`` or ``"ndkl"``) against the baseline α (``against="baseline"``) or against
    the previous α (``against="previous"``: the monotonicity steps), its interval and verdict."""
    if against not in ("baseline", "previous"):
        raise TrustVLInputError(f"against={against!r} is not valid; expected 'baseline' or 'previous'")
    k = sweep.k_shown
    effects = sweep.effects() if against == "baseline" else sweep.steps()
    attrs = list(sweep.baseline.evaluation.fairness)
    headers = ["α", *[f"{attribute_name(a)} {metric_name(metric, k)}" for a in attrs]]
    ordered = sorted(p.alpha for p in sweep.points)
    previous = dict(zip(ordered[1:], ordered))
    rows = []
    for alpha, effect in effects.items():
        row: list = [f"{alpha:g}" if against == "baseline" else f"{previous[alpha]:g} → {alpha:g}"]
        for a in attrs:
            e = effect[a]
            if metric == "ndkl":
                row.append(change_text(e.ndkl_change, e.cf_alpha_ndkl - e.base_ndkl, 4))
            else:
                row.append(change_text(e.max_skew_change, e.cf_alpha_max_skew - e.base_max_skew))
        rows.append(row)
    return Table(headers, rows)
