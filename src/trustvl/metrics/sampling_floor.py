"""The sampling floor of a fairness metric (SPEC §1, "Uncertainty").

On a finite gallery a ranking that ignores appearance does not score 0: MaxSkew@100 of a balanced
4-valued attribute is well above 0 just because 100 draws are never exactly 25/25/25/25. The floor is the
metric's mean over ``n_rankings`` seeded rankings that are **random within each class**: every query keeps
the sequence of classes of its model ranking (which class sits at each rank), and the images of each class
are shuffled among that class's places. It is what a model with the same class ranking, but blind to the
attribute within a class, scores on this gallery; a measured value near the floor is as fair as this
gallery can show.

"Class" is the label used for zero-shot classification (e.g. the occupation); with no class labels the
whole gallery is one class and the floor is the metric's mean over uniformly random rankings. One random
permutation per class and replicate is shared by all queries (each query's ranking is still uniformly
random within class, so the mean is unbiased). Seeded with a CPU ``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from trustvl.errors import TrustVLInputError
from trustvl.metrics._validation import check_k
from trustvl.metrics.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, check_resampling, labels_and_targets
from trustvl.metrics.fairness import rank_indices
from trustvl.metrics.ranking_replicates import FairnessReplicates, fairness_replicates, replicate_batch_size

__all__ = ["FairnessFloor", "class_shuffled_rankings", "sampling_floor"]


class FairnessFloor(FairnessReplicates):
    """Per random ranking, the metrics' means over the queries; :meth:`mean` gives the floor values."""

    def mean(self) -> tuple[dict[int, float], dict[int, float], float]:
        """``(MaxSkew@k floors, MinSkew@k floors, NDKL floor)``: the means over the random rankings."""
        return (
            {k: float(v.mean()) for k, v in self.max_skew.items()},
            {k: float(v.mean()) for k, v in self.min_skew.items()},
            float(self.ndkl.mean()),
        )


def class_shuffled_rankings(
    order: torch.Tensor, classes: torch.Tensor, n_rankings: int, generator: torch.Generator
) -> torch.Tensor:
    """``n_rankings`` rankings of each query random within class: int64 ``[n_rankings, n_queries, n]``.

    ``order`` is ``[n_queries, n]`` gallery indices in rank order, ``classes`` ``[n]`` class ids.
    """
    n_queries, n = order.shape
    keys = torch.rand(n_rankings, n, generator=generator, dtype=torch.float64)
    # images grouped by class (ascending id), in random order within their class
    shuffled = torch.argsort(classes.double().unsqueeze(0) + keys.mul_(0.5), dim=1)
    # each query's ranks grouped the same way, in rank order: the j-th place of class c gets its j-th image
    places = torch.sort(classes[order], dim=1, stable=True).indices
    out = torch.empty(n_rankings, n_queries, n, dtype=torch.int64)
    return out.scatter_(
        2,
        places.unsqueeze(0).expand(n_rankings, -1, -1),
        shuffled.unsqueeze(1).expand(-1, n_queries, -1),
    )


def sampling_floor(
    scores,
    gallery_labels,
    target,
    ks: Sequence[int],
    *,
    classes=None,
    n_rankings: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    order: torch.Tensor | None = None,
) -> FairnessFloor | list[FairnessFloor]:
    """The sampling floor of mean MaxSkew@k, MinSkew@k (each ``k``) and NDKL over the queries.

    Arguments as :func:`~trustvl.metrics.bootstrap_fairness`; ``classes`` is ``[n_gallery]`` class ids
    (``None``: the whole gallery is one class). Returns :class:`FairnessFloor` (one per attribute for 2-D
    labels); ``floor.mean()`` gives the floor values.

    Example::

        mx, mn, nd = sampling_floor(scores, skin_tone, uniform_target(4), [100], classes=occupation).mean()
    """
    check_resampling(n_rankings, seed)
    if order is None:
        order = rank_indices(scores)
    if order.dim() == 1:
        order = order.unsqueeze(0)
    order = order.cpu()
    n = order.shape[1]
    labels, targets, single = labels_and_targets(gallery_labels, target, n)
    ks = [check_k(k, n, "k", "the gallery size") for k in ks]
    if classes is None:
        class_ids = torch.zeros(n, dtype=torch.int64)
    else:
        class_ids = torch.as_tensor(classes).cpu()
        if class_ids.shape != (n,) or class_ids.is_floating_point():
            raise TrustVLInputError(
                f"classes has shape {tuple(class_ids.shape)} and dtype {class_ids.dtype}; expected [{n}] integer ids"
            )
        class_ids = torch.unique(class_ids, return_inverse=True)[1]  # ids 0..C-1 (keys stay < C)
    generator = torch.Generator().manual_seed(seed)

    def batches() -> Iterator[torch.Tensor]:
        size = replicate_batch_size(*order.shape)
        for start in range(0, n_rankings, size):
            yield class_shuffled_rankings(order, class_ids, min(size, n_rankings - start), generator)

    out = [
        FairnessFloor(r.max_skew, r.min_skew, r.ndkl)
        for r in fairness_replicates(batches(), labels, targets, ks)
    ]
    return out[0] if single else out
