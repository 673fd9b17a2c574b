"""Safe-CLIP against its base model on the same query resamples: a paired change and verdict per metric
(:func:`compare_evaluations`)."""

from __future__ import annotations

from trustvl.evaluation.results import drop_pct, metric_change
from trustvl.evaluation.safe_clip.results import SafeCLIPComparison, SafeCLIPModelEvaluation

__all__ = ["LOWER_IS_BETTER", "NEUTRAL_METRICS", "compare_evaluations"]

#: Metrics without a preferred direction (their verdict says "higher" / "lower").
NEUTRAL_METRICS = {"recall/u2g"}
#: Metrics where lower is safer: the NSFW rates, both ways.
LOWER_IS_BETTER = {"nsfw_rate", "nsfw_rate_image_to_text"}


def compare_evaluations(
    base: SafeCLIPModelEvaluation, other: SafeCLIPModelEvaluation, level: float
) -> SafeCLIPComparison:
    """``other`` (Safe-CLIP) against ``base`` on the same resamples: a paired change per metric key both
    hold (verdicts of :data:`NEUTRAL_METRICS` read "higher"/"lower") and the relative NSFW-rate drops."""
    changes, differences = {}, {}
    for key in [k for k in other.metric_keys() if k in base.metric_keys()]:
        b, o = base.metric(key), other.metric(key)
        change = metric_change(
            b.value, o.value, b.replicates, o.replicates, level, lower_is_better=key in LOWER_IS_BETTER
        )
        if change is not None and key in NEUTRAL_METRICS:
            change.verdict = {"better": "higher", "worse": "lower"}.get(change.verdict, change.verdict)
        changes[key], differences[key] = change, o.value - b.value
    i2t = base.nsfw_rate_image_to_text, other.nsfw_rate_image_to_text
    return SafeCLIPComparison(
        changes,
        differences,
        drop_pct(base.nsfw_rate.value, other.nsfw_rate.value),
        drop_pct(i2t[0].value, i2t[1].value) if i2t[0] is not None and i2t[1] is not None else None,
    )
