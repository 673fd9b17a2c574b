"""Intervals of the Fair Diffusion evaluation's means over prompts, from the paired, prompt-stratified image
bootstrap (:func:`trustvl.metrics.within_stratum_resamples`): each centred on its measured value
(:func:`trustvl.metrics.centred_interval`, truncated to the metric's range), and paired changes by
:func:`trustvl.metrics.paired_comparison`. Wilson intervals and KL live in :mod:`trustvl.metrics`."""

from __future__ import annotations

import numpy as np

from trustvl.evaluation.fair_diffusion.results import PairedMetric
from trustvl.metrics import ConfidenceInterval, centred_interval, paired_comparison

__all__ = ["finite_centred_interval", "paired_metric"]


def finite_centred_interval(
    estimate: float | None, replicates: np.ndarray, lower: float | None = None, upper: float | None = None
) -> ConfidenceInterval | None:
    """The centred interval of ``estimate`` from its finite replicates; ``None`` without 2 of them."""
    finite = replicates[np.isfinite(replicates)]
    if estimate is None or not np.isfinite(estimate) or finite.size < 2:
        return None
    return centred_interval(estimate, finite, lower=lower, upper=upper)


def paired_metric(
    plain: float, fair: float, plain_reps, fair_reps, lower_is_better: bool, upper: float | None = None
) -> PairedMetric:
    """Plain and guided values with their intervals and the paired change; ``upper``: the metric's range is
    ``[0, upper]`` (``None``: unbounded above, as KL)."""
    if plain_reps is None:
        return PairedMetric(plain, fair)
    change = None
    if np.isfinite(plain) and np.isfinite(fair):
        ok = np.isfinite(plain_reps) & np.isfinite(fair_reps)
        if ok.sum() >= 2:
            change = paired_comparison(
                plain, fair, plain_reps[ok], fair_reps[ok], lower_is_better=lower_is_better
            )
    return PairedMetric(
        plain,
        fair,
        finite_centred_interval(plain, plain_reps, 0.0, upper),
        finite_centred_interval(fair, fair_reps, 0.0, upper),
        change,
    )
