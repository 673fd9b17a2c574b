"""Paired comparison of two models on the same gallery resamples (SPEC §1, "Uncertainty").

A change is **better** or **worse** only when the bootstrap interval of the paired difference
``other − base`` (each replicate computed on the *same* resample for both models: same gallery size,
``n_resamples`` and ``seed``) excludes 0; otherwise it is **within noise**. Point values alone never
decide. For MaxSkew@k and NDKL lower is fairer; for MinSkew@k (<= 0) higher, i.e. closer to 0, is fairer:
pass ``lower_is_better`` accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trustvl.errors import TrustVLInputError
from trustvl.metrics.bootstrap import DEFAULT_LEVEL, percentile_interval

__all__ = ["VERDICTS", "PairedComparison", "paired_comparison", "verdict"]

VERDICTS = ("better", "worse", "within noise")


@dataclass(frozen=True)
class PairedComparison:
    """``other − base``: the point difference, its paired bootstrap interval and the verdict."""

    difference: float
    low: float
    high: float
    level: float
    verdict: str


def verdict(low: float, high: float, lower_is_better: bool = True) -> str:
    """``"better"``/``"worse"`` when the interval of ``other − base`` excludes 0, else ``"within noise"``."""
    if high < 0:
        return "better" if lower_is_better else "worse"
    if low > 0:
        return "worse" if lower_is_better else "better"
    return "within noise"


def paired_comparison(
    base_value: float,
    other_value: float,
    base_replicates,
    other_replicates,
    *,
    lower_is_better: bool = True,
    level: float = DEFAULT_LEVEL,
) -> PairedComparison:
    """Compare ``other`` with ``base`` from their point values and their replicates on the same resamples."""
    base = torch.as_tensor(base_replicates, dtype=torch.float64).flatten()
    other = torch.as_tensor(other_replicates, dtype=torch.float64).flatten()
    if base.shape != other.shape:
        raise TrustVLInputError(
            f"base_replicates has {base.numel()} values but other_replicates has {other.numel()};"
            " expected the same resamples for both models"
        )
    low, high = percentile_interval(other - base, level)
    return PairedComparison(
        float(other_value) - float(base_value), low, high, float(level), verdict(low, high, lower_is_better)
    )
