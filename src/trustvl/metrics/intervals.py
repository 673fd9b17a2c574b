"""Confidence intervals of trustvl's measurements (SPEC §1, "Uncertainty"): one type, three constructions.

* :func:`centred_interval` — the default for every bootstrapped number: the estimate ± z·SE, SE the
  standard deviation of the seeded bootstrap replicates, truncated to the metric's range (MaxSkew, NDKL,
  KL >= 0; MinSkew <= 0; shares in [0, 1]). It always contains its estimate. When the bootstrap's bias
  (mean of the replicates − estimate) exceeds SE/2 the interval is *flagged* (``bootstrap_biased``), not
  shifted: for top-k metrics near their sampling floor, duplicated images make a resampled ranking lumpier
  and the replicates sit above the estimate, so a bias-corrected interval would move away from the measured
  value for a reason that is an artefact of resampling, not of the model.
* :func:`wilson_interval` — a group's share among ``n`` images (a binomial proportion).
* :func:`percentile_interval` — the 2.5 / 97.5 % percentiles of the replicates, kept as an option for users
  who want it. **Biased for top-k metrics** (MaxSkew@k, MinSkew@k, NDKL, mean |share − target|): their
  replicates sit on one side of the estimate, so the percentile interval can exclude the measured value
  (the demo once printed MaxSkew@100 0.126 [0.151, 0.275]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import torch

from trustvl.errors import TrustVLInputError

__all__ = [
    "DEFAULT_LEVEL",
    "ConfidenceInterval",
    "centred_interval",
    "check_level",
    "percentile_interval",
    "wilson_interval",
    "z_value",
]

DEFAULT_LEVEL = 0.95


@dataclass
class ConfidenceInterval:
    """A two-sided interval ``[low, high]`` at confidence ``level``.

    ``bootstrap_biased`` is ``True`` when the bootstrap's bias estimate (mean of the replicates − estimate)
    exceeds half the replicates' standard deviation: the number is near its sampling floor at this gallery
    (or sample) size, and the report says so next to it. Always ``False`` for Wilson intervals.
    """

    low: float
    high: float
    level: float = DEFAULT_LEVEL
    bootstrap_biased: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in ``[low, high]`` (closed)."""
        return self.low <= value <= self.high

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ConfidenceInterval | None:
        """The inverse of ``dataclasses.asdict``; results written before the bias flag existed read as unflagged."""
        return None if data is None else cls(**data)


def check_level(level: float) -> float:
    """``level`` as a float, or :class:`TrustVLInputError` unless strictly between 0 and 1."""
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < float(level) < 1.0:
        raise TrustVLInputError(f"level = {level!r}; expected a confidence level strictly between 0 and 1")
    return float(level)


def z_value(level: float = DEFAULT_LEVEL) -> float:
    """The two-sided normal quantile of ``level`` (1.959964 for 0.95)."""
    return NormalDist().inv_cdf(0.5 + check_level(level) / 2)


def _replicate_values(replicates) -> torch.Tensor:
    values = torch.as_tensor(replicates, dtype=torch.float64).flatten()
    if values.numel() == 0:
        raise TrustVLInputError("replicates is empty; expected at least one bootstrap value")
    return values


def centred_interval(
    estimate: float,
    replicates,
    level: float = DEFAULT_LEVEL,
    *,
    lower: float | None = None,
    upper: float | None = None,
) -> ConfidenceInterval:
    """``estimate ± z·SE`` truncated to ``[lower, upper]``, SE the standard deviation of ``replicates``.

    Args:
        estimate: the measured value (on the full sample); must lie in ``[lower, upper]``.
        replicates: the bootstrap replicates of the same metric (at least 2 values).
        level: confidence level (z from the normal distribution).
        lower, upper: the metric's range (``None``: unbounded on that side), e.g. ``lower=0`` for MaxSkew.

    The bias flag compares ``|mean(replicates) − estimate|`` with ``SE/2`` (see the module docstring).
    """
    values = _replicate_values(replicates)
    if values.numel() < 2:
        raise TrustVLInputError(f"{values.numel()} replicate; expected at least 2 to estimate a spread")
    estimate = float(estimate)
    if not math.isfinite(estimate):
        raise TrustVLInputError(f"estimate = {estimate!r}; expected a finite value")
    if (lower is not None and estimate < lower - 1e-12) or (upper is not None and estimate > upper + 1e-12):
        raise TrustVLInputError(f"estimate = {estimate!r}; expected a value in the range [{lower}, {upper}]")
    se = float(values.std(correction=1))
    half = z_value(level) * se
    low, high = estimate - half, estimate + half
    if lower is not None:
        low = max(low, float(lower))
    if upper is not None:
        high = min(high, float(upper))
    bias = float(values.mean()) - estimate
    return ConfidenceInterval(low, high, float(level), bool(abs(bias) > se / 2))


def wilson_interval(successes: int, trials: int, level: float = DEFAULT_LEVEL) -> ConfidenceInterval:
    """Wilson score interval of a binomial proportion (sensible at 0 and ``trials``, unlike the Wald one).

    It always contains ``successes / trials``; ``trials = 0`` gives ``[0, 1]``.
    """
    if trials <= 0:
        return ConfidenceInterval(0.0, 1.0, level)
    if not 0 <= successes <= trials:
        raise TrustVLInputError(f"successes = {successes!r}; expected an integer in [0, trials = {trials}]")
    z = z_value(level)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return ConfidenceInterval(low, high, level)


def percentile_interval(replicates, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """The ``(1 - level)/2`` and ``(1 + level)/2`` percentiles of ``replicates`` (linear interpolation).

    An option, not trustvl's default: biased for top-k metrics (see the module docstring), where it can
    exclude the estimate; :func:`centred_interval` is what every report uses.
    """
    check_level(level)
    values = _replicate_values(replicates)
    tail = (1.0 - float(level)) / 2.0
    low, high = torch.quantile(values, torch.tensor([tail, 1.0 - tail], dtype=torch.float64))
    return float(low), float(high)
