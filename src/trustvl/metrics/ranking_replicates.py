"""Fairness metrics of many rankings of one gallery at once: the shared core of the bootstrap and floor.

:func:`fairness_replicates` takes a *generator* of ranking batches ``[r, n_queries, n]`` (gallery
indices in rank order, one batch of ``r`` rankings of every query at a time) and returns, for every
replicate, MaxSkew@k / MinSkew@k (each ``k``) and NDKL averaged over the queries: the same metric
functions (:func:`~trustvl.metrics.skew`, whose max/min over values are MaxSkew/MinSkew, and
:func:`~trustvl.metrics.ndkl`) as the point values, so a replicate is computed exactly as a point value is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from trustvl.metrics.fairness import ndkl, skew
from trustvl.utils.host_memory import release_free_heap

__all__ = ["FairnessReplicates", "fairness_replicates", "replicate_batch_size"]

# Ranking positions (replicates x queries x gallery) handled per batch: bounds the int64 index buffer and
# the metrics' work buffers to a few hundred MB whatever the gallery size.
_BATCH_POSITIONS = 1 << 22


@dataclass(frozen=True)
class FairnessReplicates:
    """One value per replicate (a bootstrap resample or a random ranking) of each metric's mean over queries.

    Attributes:
        max_skew, min_skew: ``{k: float64 tensor [n_replicates]}``.
        ndkl: ``float64 tensor [n_replicates]`` (NDKL over the full ranking).
    """

    max_skew: dict[int, torch.Tensor]
    min_skew: dict[int, torch.Tensor]
    ndkl: torch.Tensor


def replicate_batch_size(n_queries: int, n_gallery: int) -> int:
    """How many replicates of all queries to rank at once (at least 1)."""
    return max(1, _BATCH_POSITIONS // max(1, n_queries * n_gallery))


def fairness_replicates(
    batches: Iterable[torch.Tensor],
    gallery_labels: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    ks: Sequence[int],
) -> list[FairnessReplicates]:
    """Per attribute ``j``: the metrics of ``gallery_labels[j]`` against ``targets[j]`` for every ranking.

    ``batches`` yields int64 ``[r, n_queries, n]`` gallery indices in rank order; the labels are
    ``[n_gallery]`` tensors of validated ids (``targets[j]`` has one entry per id). A batch is released
    before the next is asked for, so a generator that builds its batches lazily keeps one in memory.
    """
    parts: list[dict[str, list]] = [{"max": [], "min": [], "ndkl": []} for _ in gallery_labels]
    for batch in batches:
        r, n_queries, n = batch.shape
        flat = batch.reshape(r * n_queries, n)
        for labels, q, part in zip(gallery_labels, targets, parts):
            ranked = labels[flat]
            skews = [skew(ranked[:, :k], q, k) for k in ks]  # MaxSkew/MinSkew = its max/min over values
            part["max"].append(torch.stack([s.amax(1).view(r, n_queries).mean(1) for s in skews], 1))
            part["min"].append(torch.stack([s.amin(1).view(r, n_queries).mean(1) for s in skews], 1))
            part["ndkl"].append(ndkl(ranked, q).view(r, n_queries).mean(1))
        # free this batch before the generator builds the next one, and hand the freed heap back: else
        # the resident memory grows with every batch (utils/host_memory.py says why), 3x the counts' bytes
        del batch, flat, ranked, skews
        release_free_heap()
    out = []
    for part in parts:
        mx, mn = torch.cat(part["max"]), torch.cat(part["min"])
        out.append(
            FairnessReplicates(
                max_skew={k: mx[:, i] for i, k in enumerate(ks)},
                min_skew={k: mn[:, i] for i, k in enumerate(ks)},
                ndkl=torch.cat(part["ndkl"]),
            )
        )
    return out
