"""Gallery bootstrap for retrieval fairness metrics (SPEC §1, "Uncertainty").

A fairness number depends on which images happen to be in the gallery. The bootstrap resamples the
gallery ``n_resamples`` times with replacement (same size ``N``, seeded), recomputes the metric's mean over
the queries on every resample; :func:`~trustvl.metrics.intervals.centred_interval` turns the replicates into the
reported interval (the estimate ± z·SE, SE their standard deviation, truncated to the metric's range).

Documented choices
------------------
* **Resamples.** ``torch.randint`` with a CPU ``torch.Generator`` seeded with ``seed``: the same
  ``(n_gallery, n_resamples, seed)`` give the same resamples on every machine, so two models evaluated on
  the same gallery share their resamples (the *paired* comparison of :mod:`trustvl.metrics.paired`).
* **No re-sorting.** An image drawn ``c`` times sits ``c`` times, adjacently, where it sat in the full
  ranking; ties between different images stay broken by gallery index. So a resampled ranking is the
  full ranking with image ``i`` repeated ``c_i`` times: one ``repeat_interleave`` over all resamples and
  queries at once (in chunks that bound memory), no Python loop over queries.
* **Memory.** The counts are drawn batch by batch as the rankings are scored (:func:`resample_count_blocks`),
  so host memory holds one batch's counts and rankings, whatever ``n_resamples``; the draws, and so the
  replicates, are the same as from the whole ``[n_resamples, n_gallery]`` tensor. The same holds for a
  statistic of weighted samples (a mean, an accuracy, an AUROC: :func:`resampled_replicates`,
  :func:`resampled_means`), whose float64 weights are built a block of resamples at a time.
* **Target.** The target ``q`` is held fixed (for ``target="gallery"``: the full gallery's proportions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from trustvl.errors import TrustVLInputError
from trustvl.metrics._validation import check_k
from trustvl.metrics.fairness import rank_indices
from trustvl.metrics.intervals import DEFAULT_LEVEL, check_level
from trustvl.metrics.ranking_replicates import FairnessReplicates, fairness_replicates, replicate_batch_size
from trustvl.utils.host_memory import release_free_heap

__all__ = [
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "WEIGHT_BLOCK_BYTES",
    "bootstrap_fairness",
    "gallery_resample_counts",
    "resample_count_blocks",
    "resampled_means",
    "resampled_ranking_batches",
    "resampled_rankings",
    "resampled_replicates",
    "weight_block_size",
    "within_stratum_resamples",
]

DEFAULT_RESAMPLES = 200
DEFAULT_SEED = 0

#: The most bytes of float64 resample weights ``[block, n]`` that :func:`resampled_replicates` holds at once.
WEIGHT_BLOCK_BYTES = 64 << 20


def check_resampling(n_resamples: int, seed: int, level: float = DEFAULT_LEVEL) -> None:
    """Raise :class:`TrustVLInputError` on a bad number of resamples, seed or confidence level."""
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 2:
        raise TrustVLInputError(f"n_resamples = {n_resamples!r}; expected an integer >= 2 (SPEC: >= 200)")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TrustVLInputError(f"seed = {seed!r}; expected a non-negative integer")
    check_level(level)


def _check_size(n: int, name: str = "n_gallery") -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise TrustVLInputError(f"{name} = {n!r}; expected a positive integer")


def gallery_resample_counts(
    n_gallery: int, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> torch.Tensor:
    """How often each image is drawn in each resample: int64 ``[n_resamples, n_gallery]``, rows sum to ``n_gallery``."""
    check_resampling(n_resamples, seed)
    _check_size(n_gallery)
    return next(resample_count_blocks(n_gallery, n_resamples, seed, n_resamples))


def resample_count_blocks(n_gallery: int, n_resamples: int, seed: int, block: int) -> Iterator[torch.Tensor]:
    """:func:`gallery_resample_counts`' rows, ``block`` resamples at a time: int64 ``[<= block, n_gallery]``.

    The blocks are drawn from one generator in resample order, so they concatenate to exactly
    ``gallery_resample_counts(n_gallery, n_resamples, seed)``; a caller that consumes one block before
    asking for the next holds ``block`` rows of counts, not ``n_resamples`` (1.6 GB for 1,000,000 images and
    200 resamples). The arguments are the caller's, already checked.
    """
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, n_resamples, block):
        counts = torch.empty(min(block, n_resamples - start), n_gallery, dtype=torch.int64)
        # one resample's draws at a time (the CPU generator yields the same numbers as one [n_resamples,
        # n_gallery] draw): only the counts are held, not the draws too
        for r in range(counts.shape[0]):
            drawn = torch.randint(n_gallery, (n_gallery,), generator=generator)
            counts[r] = torch.bincount(drawn, minlength=n_gallery)
        yield counts
        del counts  # before the next block is allocated


def resampled_rankings(order: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The rankings of resampled galleries: int64 ``[n_resamples, n_queries, n_gallery]`` gallery indices.

    ``order`` is the full ranking ``[n_queries, n_gallery]`` (:func:`~trustvl.metrics.rank_indices`),
    ``counts`` ``[n_resamples, n_gallery]`` (:func:`gallery_resample_counts`). Image ``i`` appears
    ``counts[r, i]`` times, adjacently, at its place in ``order``.
    """
    n_resamples, n = counts.shape
    order = order.to(counts.device)
    n_queries = order.shape[0]
    weights = counts[:, order]  # [R, Q, N]: multiplicity of the image at each rank; each row sums to N
    repeated = torch.repeat_interleave(order.expand(n_resamples, -1, -1).reshape(-1), weights.reshape(-1))
    return repeated.view(n_resamples, n_queries, n)


def resampled_ranking_batches(order: torch.Tensor, n_resamples: int, seed: int) -> Iterator[torch.Tensor]:
    """The resampled rankings (:func:`resampled_rankings`) of ``order`` ``[n_queries, n_gallery]`` (on the
    CPU), :func:`replicate_batch_size` resamples at a time, each batch's counts drawn only when it is asked
    for (never all ``[n_resamples, n_gallery]`` counts at once). The arguments are the caller's, checked."""
    size = replicate_batch_size(*order.shape)
    for counts in resample_count_blocks(order.shape[1], n_resamples, seed, size):
        yield resampled_rankings(order, counts)
        del counts  # before the next block is drawn


def weight_block_size(n: int) -> int:
    """Resamples per block of float64 weights over ``n`` samples: at most :data:`WEIGHT_BLOCK_BYTES` of them
    (8 resamples at 1,000,000 samples), at least one resample."""
    return max(1, WEIGHT_BLOCK_BYTES // (8 * n))


def resampled_replicates(
    statistic: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> torch.Tensor:
    """Bootstrap replicates of a statistic of ``n`` weighted samples (a mean, a worst-group accuracy, an
    AUROC): ``statistic(weights)`` ``[r, ...]`` for float64 resample counts ``weights`` ``[r, n]``,
    concatenated over all resamples: ``[n_resamples, ...]``.

    The weights are the rows of ``gallery_resample_counts(n, n_resamples, seed)``, drawn
    :func:`weight_block_size` resamples at a time (:func:`resample_count_blocks`) and released before the
    next block is drawn: memory holds one block (at most :data:`WEIGHT_BLOCK_BYTES`), not the whole matrix
    (1.6 GB at 1,000,000 samples and 200 resamples). Two statistics of the same ``(n, n_resamples, seed)``
    see the same resamples (a paired comparison). ``statistic`` computes each row's value from that row
    alone and in an order that does not depend on how many rows come with it (row-wise operations; sums of
    integer-valued products, which are exact); then the replicates are bit-for-bit those of
    ``statistic(gallery_resample_counts(n, n_resamples, seed).double())``. A matrix product of non-integer
    values is not such a statistic under a multi-threaded BLAS: :func:`resampled_means` says why, and is the
    mean's.
    """
    check_resampling(n_resamples, seed)
    _check_size(n, "n")
    block = weight_block_size(n)
    parts = []
    for counts in resample_count_blocks(n, n_resamples, seed, block):
        weights = counts.double()
        del counts  # the generator drops its own reference before it draws the next block
        parts.append(statistic(weights))
        del weights
        if block < n_resamples:
            release_free_heap()  # the freed block and the statistic's temporaries (utils/host_memory.py)
    return torch.cat(parts)


def resampled_means(values, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> torch.Tensor:
    """Bootstrap replicates of the mean of the per-sample ``values`` ``[n]`` (a hit, a share, a difference):
    ``counts @ values / n`` for every resample's counts, float64 ``[n_resamples]``
    (:func:`resampled_replicates`: a block of resamples at a time).

    The sum order. One block (up to ``WEIGHT_BLOCK_BYTES / (8 n_resamples)`` samples: 41,943 at 200
    resamples) is the whole product ``counts @ values / n``, bit for bit. With several blocks, a multi-threaded
    BLAS may sum a row of a few-row block in another order than a row of the whole matrix (MKL splits a row
    between threads for fewer than about 100 rows), so non-integer means can differ in their last bits from
    the whole product; they are the same for any two calls with the same ``(n, n_resamples, seed)`` and thread
    count, so paired comparisons are unaffected. Integer-valued means are exact either way.
    """
    check_resampling(n_resamples, seed)
    v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    n = v.numel()
    return resampled_replicates(lambda weights: weights @ v / n, n, n_resamples, seed)


def bootstrap_fairness(
    scores,
    gallery_labels,
    target,
    ks: Sequence[int],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    order: torch.Tensor | None = None,
) -> FairnessReplicates | list[FairnessReplicates]:
    """Bootstrap replicates of mean MaxSkew@k, MinSkew@k (each ``k``) and NDKL over the queries.

    Args:
        scores: ``[n_queries, n_gallery]`` similarities (the queries rank the gallery).
        gallery_labels: ``[n_gallery]`` attribute ids, or ``[n_gallery, n_attributes]`` for several
            attributes sharing one ranking (then ``target`` is a sequence, one per attribute, and a list
            is returned).
        target: the target distribution (e.g. :func:`~trustvl.metrics.uniform_target`).
        ks: MaxSkew/MinSkew cut-offs.
        n_resamples, seed: the resamples (SPEC: >= 200, fixed seed).
        order: the full ranking if already computed (``rank_indices(scores)``), to skip the sort.

    Returns :class:`~trustvl.metrics.ranking_replicates.FairnessReplicates` (one per attribute for 2-D
    labels); :func:`~trustvl.metrics.centred_interval` turns a replicate tensor into the interval.

    Example::

        reps = bootstrap_fairness(scores, skin_tone, uniform_target(4), ks=[100])
        ci = centred_interval(max_skew(rank_labels(scores, skin_tone), uniform_target(4), 100).mean(),
                              reps.max_skew[100], lower=0.0)
    """
    check_resampling(n_resamples, seed)
    if order is None:
        order = rank_indices(scores)
    if order.dim() == 1:
        order = order.unsqueeze(0)
    labels, targets, single = labels_and_targets(gallery_labels, target, order.shape[1])
    ks = [check_k(k, order.shape[1], "k", "the gallery size") for k in ks]
    out = fairness_replicates(resampled_ranking_batches(order.cpu(), n_resamples, seed), labels, targets, ks)
    return out[0] if single else out


def labels_and_targets(gallery_labels, target, n: int):
    labels = torch.as_tensor(gallery_labels)
    single = labels.dim() == 1
    if single:
        labels, target = labels.unsqueeze(1), [target]
    if labels.dim() != 2 or labels.shape[0] != n:
        raise TrustVLInputError(
            f"gallery_labels has shape {tuple(labels.shape)}; expected [{n}] or [{n}, n_attributes]"
        )
    if len(target) != labels.shape[1]:
        raise TrustVLInputError(
            f"{len(target)} targets for {labels.shape[1]} attributes; expected one target per attribute"
        )
    columns = [labels[:, j].cpu() for j in range(labels.shape[1])]
    return columns, [torch.as_tensor(q, dtype=torch.float64).cpu() for q in target], single


def within_stratum_resamples(n_strata: int, n: int, n_resamples: int, seed: int) -> np.ndarray:
    """``[n_resamples, n_strata, n]`` indices drawn with replacement within each stratum of ``n`` items.

    The stratified bootstrap of per-prompt image sets (e.g. Fair Diffusion's ``n`` images per prompt): every
    resample keeps each prompt's image count; seeded numpy ``default_rng(seed)``, so two runs of the same
    prompts (with and without an instruction, same seeds) can share the indices and be compared paired.
    """
    check_resampling(n_resamples, seed)
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n_strata, n))
