"""Estimates with a bootstrap interval over samples (images, queries, probe rows): the trust report's one way
to put an interval on a mean, a minimum over groups, an AUROC or a RaVL cluster score.

Every statistic here is computed from per-sample values weighted by the resample counts of
:func:`trustvl.metrics.gallery_resample_counts` (seeded; the same ``(n, n_resamples, seed)`` give the same
resamples), so two models measured on the same samples share their resamples and compare paired
(:func:`trustvl.metrics.paired_comparison`). The counts are drawn a block of resamples at a time
(:func:`replicates_of`, :func:`trustvl.metrics.resampled_replicates`), never as the whole
``[n_resamples, n]`` matrix, with the replicates of the whole matrix bit-for-bit. The interval is centred on
the measured value (:func:`trustvl.metrics.centred_interval`: ± 1.96·SE, truncated to the statistic's
range).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from trustvl.evaluation.results import UncertaintySettings
from trustvl.evaluation.trust_report.schema import Estimate
from trustvl.metrics import centred_interval, resampled_means, resampled_replicates

__all__ = [
    "auroc",
    "estimate",
    "replicates_of",
    "resampled",
    "weighted_auroc",
    "weighted_mean",
    "worst_group",
]


def resampled(n: int, settings: UncertaintySettings | None) -> bool:
    """Whether an estimate over ``n`` samples gets a bootstrap interval: with uncertainty and >= 2 samples."""
    return settings is not None and n >= 2


def replicates_of(
    statistic: Callable[[torch.Tensor], torch.Tensor], n: int, settings: UncertaintySettings | None
) -> torch.Tensor | None:
    """``statistic(weights)`` for every resample's float64 counts ``weights`` ``[r, n]`` (the rows of
    ``gallery_resample_counts(n, settings.n_resamples, settings.seed)``, a block of rows at a time:
    :func:`trustvl.metrics.resampled_replicates`, whose rule ``statistic`` follows), concatenated; None
    without uncertainty or with fewer than 2 samples (:func:`resampled`)."""
    if not resampled(n, settings):
        return None
    return resampled_replicates(statistic, int(n), settings.n_resamples, settings.seed)


def estimate(
    value: float,
    replicates: torch.Tensor | None,
    settings: UncertaintySettings | None,
    n: int,
    lower: float | None = None,
    upper: float | None = None,
) -> Estimate:
    """An :class:`Estimate` of ``value`` with the centred interval of its finite ``replicates``."""
    out = Estimate(float(value), n=int(n))
    if replicates is None or settings is None:
        return out
    reps = replicates[torch.isfinite(replicates)]
    if reps.numel() < 2:
        return out
    out.interval = centred_interval(out.value, reps, settings.level, lower=lower, upper=upper)
    out.replicates = replicates.tolist()
    return out


def weighted_mean(
    values: np.ndarray | torch.Tensor,
    settings: UncertaintySettings | None,
    lower: float = 0.0,
    upper: float = 1.0,
) -> Estimate:
    """The mean of per-sample ``values`` in [``lower``, ``upper``] (a hit, a share in [0, 1]; a difference of
    two shares in [−1, 1]) with its bootstrap interval."""
    v = torch.as_tensor(np.asarray(values, dtype=np.float64))
    reps = resampled_means(v, settings.n_resamples, settings.seed) if resampled(v.numel(), settings) else None
    return estimate(float(v.mean()), reps, settings, v.numel(), lower, upper)


def worst_group(
    correct: np.ndarray, groups: np.ndarray, settings: UncertaintySettings | None, value: float | None = None
) -> Estimate:
    """The lowest accuracy over the groups (ids in ``groups``) with its bootstrap interval; a group drawn
    zero times in a resample is left out of that resample's minimum."""
    _, inverse = np.unique(groups, return_inverse=True)
    onehot = torch.nn.functional.one_hot(torch.as_tensor(inverse), int(inverse.max()) + 1).double()
    hit = torch.as_tensor(correct, dtype=torch.float64)
    point = float(((hit @ onehot) / onehot.sum(0)).min()) if value is None else float(value)
    hits = onehot * hit[:, None]

    def lowest(weights: torch.Tensor) -> torch.Tensor:
        size = weights @ onehot
        acc = (weights @ hits) / size.clamp(min=1)
        return torch.where(size > 0, acc, torch.full_like(acc, float("inf"))).min(dim=1).values

    return estimate(point, replicates_of(lowest, len(hit), settings), settings, len(hit), 0.0, 1.0)


def _weighted_auroc_of(
    scores: torch.Tensor, positive: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`weighted_auroc` of ``scores`` and ``positive`` as a function of the weights (sorted once)."""
    order = torch.argsort(scores, stable=True)
    s, pos = scores[order], positive[order].double()
    _, inverse, counts = torch.unique_consecutive(s, return_inverse=True, return_counts=True)
    n_groups = int(counts.numel())

    def of(weights: torch.Tensor) -> torch.Tensor:
        w = weights[:, order]
        w_neg, w_pos = w * (1 - pos), w * pos
        # negatives strictly below each sample, plus half of the negatives tied with it
        neg_in_group = torch.zeros(w.shape[0], n_groups, dtype=torch.float64).index_add_(1, inverse, w_neg)
        below = torch.cumsum(neg_in_group, dim=1) - neg_in_group
        credit = below[:, inverse] + 0.5 * neg_in_group[:, inverse]
        total = w_pos.sum(1) * w_neg.sum(1)
        return (w_pos * credit).sum(1) / total.clamp(min=1e-12)

    return of


def weighted_auroc(scores: torch.Tensor, positive: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """AUROC of ``scores`` (positives above negatives), each sample weighted, for every row of ``weights``
    ``[R, n]`` at once; ties count one half. Returns ``[R]``. With integer weights (resample counts) every
    sum is exact, so a row's value does not depend on the other rows."""
    return _weighted_auroc_of(scores, positive)(weights)


def auroc(scores: torch.Tensor, positive: torch.Tensor, settings: UncertaintySettings | None) -> Estimate:
    """AUROC (positives above negatives) with its bootstrap interval over the samples."""
    scores = torch.as_tensor(scores, dtype=torch.float64)
    positive = torch.as_tensor(positive, dtype=torch.bool)
    of = _weighted_auroc_of(scores, positive)
    point = float(of(torch.ones(1, len(scores), dtype=torch.float64))[0])
    pos, neg = positive.double(), (~positive).double()

    def resampled_auroc(weights: torch.Tensor) -> torch.Tensor:
        reps = of(weights)
        n_pos, n_neg = weights @ pos, weights @ neg
        return torch.where((n_pos > 0) & (n_neg > 0), reps, torch.full_like(reps, float("nan")))

    reps = replicates_of(resampled_auroc, len(scores), settings)
    return estimate(point, reps, settings, len(scores), 0.0, 1.0)
