"""The statistics of the Fair Diffusion evaluation: Wilson intervals of a share, KL to the target, the paired
image-bootstrap indices and percentile intervals of its replicates."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import torch

from trustvl.evaluation.results import ConfidenceInterval
from trustvl.metrics import percentile_interval

__all__ = ["KL_TARGET_FLOOR", "wilson_interval"]

#: A zero target is replaced by this share in KL (then renormalised), so KL stays finite.
KL_TARGET_FLOOR = 1e-3


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> ConfidenceInterval:
    """Wilson score interval of a binomial proportion (sensible at 0 and ``trials``, unlike the Wald one)."""
    if trials <= 0:
        return ConfidenceInterval(0.0, 1.0, level)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return ConfidenceInterval(low, high, level)


def _kl(shares: np.ndarray, target: np.ndarray) -> np.ndarray:
    """KL(observed || target) over the last axis; observed renormalised; NaN where no image is in a group."""
    q = np.maximum(target, KL_TARGET_FLOOR)
    q = q / q.sum()
    total = shares.sum(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = shares / total
        terms = np.where(p > 0, p * np.log(p / q), 0.0)
    kl = terms.sum(-1)
    return np.where(total[..., 0] > 0, kl, np.nan)


def _resample_indices(n_prompts: int, n: int, n_resamples: int, seed: int) -> np.ndarray:
    """``[resamples, prompts, n]`` image indices drawn with replacement within each prompt (seeded)."""
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n_prompts, n))


def _interval(replicates: np.ndarray) -> ConfidenceInterval | None:
    finite = replicates[np.isfinite(replicates)]
    if finite.size < 2:
        return None
    low, high = percentile_interval(torch.as_tensor(finite))
    return ConfidenceInterval(low, high)
