"""Paired comparison of two models on the same resamples (SPEC §1, "Uncertainty").

A change is **better** or **worse** only when the interval of the paired difference ``other − base``
excludes 0; otherwise it is **within noise**. The interval is centred on the measured difference: the point
difference ± z·SE, SE the standard deviation of the per-resample differences (each replicate computed on the
*same* resample for both models: same gallery size, ``n_resamples`` and ``seed``), so the two models' shared
resampling noise (and the upward bias of top-k replicates) cancels. Point values alone never decide. For
MaxSkew@k and NDKL lower is fairer; for MinSkew@k (<= 0) higher, i.e. closer to 0, is fairer: pass
``lower_is_better`` accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from trustvl.errors import TrustVLInputError
from trustvl.metrics.intervals import DEFAULT_LEVEL, ConfidenceInterval, centred_interval

__all__ = ["VERDICTS", "PairedComparison", "paired_comparison", "verdict"]

VERDICTS = ("better", "worse", "within noise")


@dataclass
class PairedComparison:
    """A paired change ``other − base`` of one metric: the point difference, its interval and the verdict.

    ``verdict`` is ``"better"``, ``"worse"`` (the interval excludes 0) or ``"within noise"``.
    """

    difference: float
    interval: ConfidenceInterval
    verdict: str

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PairedComparison | None:
        if data is None:
            return None
        return cls(data["difference"], ConfidenceInterval(**data["interval"]), data["verdict"])


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
    difference = float(other_value) - float(base_value)
    interval = centred_interval(difference, other - base, level)
    return PairedComparison(difference, interval, verdict(interval.low, interval.high, lower_is_better))
