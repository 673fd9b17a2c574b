"""Plain words for fairness numbers: names a person reads ("skin tone", "MaxSkew@100") and values with their
uncertainty ("0.156 [0.122, 0.190]", "-0.113 [-0.150, -0.080], better").

Every job that prints or writes a fairness number formats it here, so an interval, a floor or a verdict is
never left out in one place and shown in another. Changes are signed (``debiased − base``: negative
MaxSkew/NDKL is fairer) and carry the paired verdict of :class:`~trustvl.evaluation.results.MetricChange`;
without uncertainty (``uncertainty=None``) the words say "no interval".
"""

from __future__ import annotations

from trustvl.evaluation.results import AttributeEffect, EvaluationResult, MetricChange
from trustvl.metrics import ConfidenceInterval

__all__ = [
    "NEAR_FLOOR_NOTE",
    "UNCERTAINTY_NOTE",
    "attribute_name",
    "change_text",
    "effect_lines",
    "evaluation_lines",
    "interval_text",
    "metric_name",
    "value_text",
]

#: Said next to a number whose interval is flagged ``bootstrap_biased`` (SPEC §1).
NEAR_FLOOR_NOTE = "near the sampling floor at this gallery size"

UNCERTAINTY_NOTE = (
    "Intervals are 95% intervals centred on the measured mean: the mean ± 1.96 standard deviations of its"
    " gallery bootstrap (the gallery resampled with replacement, 200 times by default, seed 0), cut at the"
    " metric's range (MaxSkew and NDKL >= 0). A resample repeats some images, which makes rankings lumpier;"
    " where the resampled means sit more than half a standard deviation from the measured one, the number is"
    f' marked "{NEAR_FLOOR_NOTE}" (the interval is not shifted). A change is judged by the interval of'
    " the paired difference (both models on the same resamples), where that shift cancels. The floor is the"
    " mean over rankings random within each class: what a model blind to the attribute scores on this gallery."
)

_METRICS = {"max_skew": "MaxSkew@{k}", "min_skew": "MinSkew@{k}", "ndkl": "NDKL"}


def attribute_name(name: str) -> str:
    """``"skin_tone"`` → ``"skin tone"``."""
    return name.replace("_", " ")


def metric_name(metric: str, k: int | None = None) -> str:
    """``("max_skew", 100)`` → ``"MaxSkew@100"``; ``"ndkl"`` → ``"NDKL"``."""
    return _METRICS[metric].format(k=k)


def interval_text(interval: ConfidenceInterval | None, digits: int = 3, signed: bool = False) -> str:
    """``"[0.122, 0.190]"`` (``""`` without an interval); a flagged interval adds ``" (near the sampling floor
    at this gallery size)"``."""
    if interval is None:
        return ""
    spec = f"+.{digits}f" if signed else f".{digits}f"
    text = f"[{interval.low:{spec}}, {interval.high:{spec}}]"
    return f"{text} ({NEAR_FLOOR_NOTE})" if interval.bootstrap_biased else text


def value_text(value: float, interval: ConfidenceInterval | None, digits: int = 3) -> str:
    """``"0.156 [0.122, 0.190]"``: a mean and its interval (and the floor note when the interval is flagged)."""
    text = f"{value:.{digits}f}"
    return f"{text} {interval_text(interval, digits)}" if interval is not None else text


def change_text(change: MetricChange | None, difference: float, digits: int = 3) -> str:
    """``"-0.113 [-0.150, -0.080], better"``; without a paired change ``"-0.113 (no interval)"``."""
    if change is None:
        return f"{difference:+.{digits}f} (no interval)"
    return f"{change.difference:+.{digits}f} {interval_text(change.interval, digits, signed=True)}, {change.verdict}"


def effect_lines(attribute: str, effect: AttributeEffect, after: str = "CF_α") -> list[str]:
    """Two summary lines (MaxSkew@k, NDKL) of one attribute's change from the base to ``after``."""
    lines = []
    for label, base, base_ci, new, new_ci, change, floor, digits in (
        (
            metric_name("max_skew", effect.k),
            effect.base_max_skew,
            effect.base_max_skew_interval,
            effect.cf_alpha_max_skew,
            effect.cf_alpha_max_skew_interval,
            effect.max_skew_change,
            effect.max_skew_floor,
            3,
        ),
        (
            "NDKL",
            effect.base_ndkl,
            effect.base_ndkl_interval,
            effect.cf_alpha_ndkl,
            effect.cf_alpha_ndkl_interval,
            effect.ndkl_change,
            effect.ndkl_floor,
            4,
        ),
    ):
        floor_text = f"; floor {floor:.{digits}f}" if floor is not None else ""
        lines.append(
            f"{attribute_name(attribute)}: {label} base {value_text(base, base_ci, digits)} -> {after}"
            f" {value_text(new, new_ci, digits)}: {change_text(change, new - base, digits)}{floor_text}"
        )
    return lines


def _with_floor(value: float, interval: ConfidenceInterval | None, floor: float | None, digits: int) -> str:
    text = value_text(value, interval, digits)
    return text if floor is None else f"{text} (floor {floor:.{digits}f})"


def evaluation_lines(evaluation: EvaluationResult) -> list[str]:
    """One line per attribute: every MaxSkew@k and NDKL with its interval and floor."""
    lines = []
    for name, a in evaluation.fairness.items():
        parts = [
            f"{metric_name('max_skew', k)} {_with_floor(s.max_skew, s.max_skew_interval, s.max_skew_floor, 3)}"
            for k, s in a.at_k.items()
        ]
        parts.append(f"NDKL {_with_floor(a.ndkl, a.ndkl_interval, a.ndkl_floor, 4)}")
        lines.append(f"{attribute_name(name)}: " + ", ".join(parts))
    return lines
