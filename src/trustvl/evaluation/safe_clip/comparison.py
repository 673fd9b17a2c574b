"""Safe-CLIP against its base model on the same query resamples: a paired change and verdict per metric
(:func:`compare_evaluations`)."""

from __future__ import annotations

from trustvl.evaluation.results import drop_pct, metric_change
from trustvl.evaluation.safe_clip.results import SafeCLIPComparison, SafeCLIPModelEvaluation

__all__ = ["NEUTRAL_METRICS", "compare_evaluations"]

#: Metrics without a preferred direction (their verdict says "higher" / "lower").
NEUTRAL_METRICS = {"recall/u2g"}


def compare_evaluations(
    base: SafeCLIPModelEvaluation, other: SafeCLIPModelEvaluation, level: float
) -> SafeCLIPComparison:
    """``other`` (Safe-CLIP) against ``base`` on the same resamples: a paired change per metric key (verdicts
    of :data:`NEUTRAL_METRICS` read "higher"/"lower") and the relative NSFW-rate drop."""
    changes, differences = {}, {}
    for key in other.metric_keys():
        b, o = base.metric(key), other.metric(key)
        change = metric_change(
            b.value, o.value, b.replicates, o.replicates, level, lower_is_better=key == "nsfw_rate"
        )
        if change is not None and key in NEUTRAL_METRICS:
            change.verdict = {"better": "higher", "worse": "lower"}.get(change.verdict, change.verdict)
        changes[key], differences[key] = change, o.value - b.value
    return SafeCLIPComparison(changes, differences, drop_pct(base.nsfw_rate.value, other.nsfw_rate.value))
