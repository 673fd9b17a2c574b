"""Report tables built from typed results (:mod:`trustvl.evaluation.results`), one function per table."""

from __future__ import annotations

from trustvl.evaluation.report import Table
from trustvl.evaluation.results import AlphaSweepResult, EvaluationResult

__all__ = ["accuracy_table", "fairness_summary_table", "per_prompt_table", "sweep_table"]


def fairness_summary_table(evaluation: EvaluationResult) -> Table:
    """One row per (attribute, k): mean MaxSkew@k, mean MinSkew@k and mean NDKL over the prompts."""
    rows = [
        [name, k, s.max_skew, s.min_skew, a.ndkl]
        for name, a in evaluation.fairness.items()
        for k, s in a.at_k.items()
    ]
    return Table(["attribute", "k", "mean MaxSkew@k", "mean MinSkew@k", "mean NDKL"], rows)


def per_prompt_table(evaluation: EvaluationResult, attribute: str, k: int) -> Table:
    """One row per prompt: MaxSkew@k, MinSkew@k and NDKL of ``attribute``."""
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
    rows += [[f"worst-group accuracy ({label} × {a})", v] for a, v in evaluation.worst_group_accuracy.items()]
    return Table(["metric", "value"], rows)


def sweep_table(sweep: AlphaSweepResult) -> Table:
    """One row per α: zero-shot top-1, R@5 text→image (when measured) and, per attribute, MaxSkew@k,
    MinSkew@k (k = :attr:`~trustvl.evaluation.results.AlphaSweepResult.k_shown`) and NDKL."""
    k = sweep.k_shown
    first = sweep.points[0].evaluation
    attrs = list(first.fairness)
    headers = ["α", "zero-shot top-1"]
    if first.recall is not None:
        headers.append("R@5 text→image")
    for a in attrs:
        headers += [f"{a} MaxSkew@{k}", f"{a} MinSkew@{k}", f"{a} NDKL"]
    rows = []
    for point in sweep.points:
        ev = point.evaluation
        row: list = [point.alpha, ev.zero_shot_top1]
        if ev.recall is not None:
            row.append(ev.recall.text_to_image.get(5, float("nan")))
        for a in attrs:
            f = ev.fairness[a]
            row += [f.at_k[k].max_skew, f.at_k[k].min_skew, f.ndkl]
        rows.append(row)
    return Table(headers, rows)
