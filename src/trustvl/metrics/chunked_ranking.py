"""Rankings of a gallery too large for one ``[n_queries, n_gallery]`` score matrix, computed chunk by chunk.

The gallery embeddings arrive in chunks (a ``[N, d]`` tensor split by :func:`gallery_chunks`, or the shards
of a :class:`~trustvl.utils.tensor_cache.ShardedTensorCache` read one by one). Each chunk is scored against
the queries, ranked on its own with :func:`~trustvl.metrics.fairness.rank_indices`, and merged into the
ranking so far. The result is exactly :func:`rank_indices` of the full score matrix (score descending, ties
by gallery index) as long as each chunk's scores equal the full matrix's columns:

* ``k`` given (MaxSkew@k / MinSkew@k): a running top-``k`` per query; only ``[n_queries, k]`` is kept
  between chunks, so memory is ``O(n_queries * (k + chunk))``.
* ``k=None`` (NDKL needs every prefix of the full ranking): every chunk's sorted run is kept on the host
  and the runs are merged pairwise, adjacent runs first (a k-way merge as a balanced tree), so only one
  chunk's scores are ever on the device. The output ``[n_queries, N]`` itself is the full ranking.

Why the merge is exact: scores are compared through the integer keys of :func:`~trustvl.metrics.fairness.ranking_keys` (equal scores,
equal keys; ``-0.0`` = ``+0.0``), and when two runs merge every index of the left run is below every index
of the right run, so an element of the left run goes before a right-run element with the same key. The
merged position of each element is its position in its own run plus the number of elements of the other
run that precede it (``torch.searchsorted``: ``side="left"`` for left-run elements, ``"right"`` for the
right run), which is a permutation, scattered in one op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch

from trustvl.errors import TrustVLInputError
from trustvl.metrics._validation import check_k
from trustvl.metrics.fairness import rank_indices, ranking_keys

__all__ = ["GalleryChunks", "chunked_rank_indices", "gallery_chunks", "merge_sorted_runs"]


@dataclass(frozen=True)
class GalleryChunks:
    """A gallery's ``[n_rows, dim]`` embeddings that are never one tensor: consecutive row blocks that
    ``read()`` yields one at a time, in gallery order (e.g. the shards of an embedding cache, loaded from
    disk as they are reached). Each iteration calls ``read()`` again, so the blocks can be passed over
    several times (ranking, zero-shot scores) while only one is in memory; a block may live on any device,
    :func:`chunked_rank_indices` moves it to the queries' device."""

    n_rows: int
    dim: int
    read: Callable[[], Iterable[torch.Tensor]]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_rows, self.dim)

    def __iter__(self) -> Iterator[torch.Tensor]:
        offset = 0
        for chunk in self.read():
            if chunk.dim() != 2 or chunk.shape[1] != self.dim:
                raise TrustVLInputError(
                    f"gallery chunk at row {offset} has shape {tuple(chunk.shape)}; expected [n, {self.dim}]"
                )
            offset += chunk.shape[0]
            yield chunk
        if offset != self.n_rows:
            raise TrustVLInputError(f"the gallery chunks hold {offset} rows; expected {self.n_rows}")

    def head(self, n: int) -> torch.Tensor:
        """The first ``n`` rows as one tensor (reads only the blocks that hold them)."""
        parts, have = [], 0
        for chunk in self.read():
            if have >= n:
                break
            parts.append(chunk[: n - have])
            have += parts[-1].shape[0]
        if have < n:
            raise TrustVLInputError(f"asked for the first {n} gallery rows; the gallery holds {have}")
        return torch.cat(parts)


def gallery_chunks(embeds: torch.Tensor, chunk_size: int) -> Iterator[torch.Tensor]:
    """Consecutive row blocks (views) of ``embeds [N, d]`` of ``chunk_size`` rows (the last may be shorter)."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise TrustVLInputError(f"chunk_size = {chunk_size!r}; expected an integer >= 1")
    for start in range(0, embeds.shape[0], chunk_size):
        yield embeds[start : start + chunk_size]


def merge_sorted_runs(
    left_keys: torch.Tensor, left_index: torch.Tensor, right_keys: torch.Tensor, right_index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge two per-row runs sorted by ascending key into one, left run first among equal keys.

    All tensors are ``[n_queries, length]`` (keys from ``ranking_keys``, indices int64); every index of
    the left run must be below every index of the right run, which makes the result the (key, index) order.
    """
    n_left, n_right = left_keys.shape[1], right_keys.shape[1]
    left_keys, right_keys = left_keys.contiguous(), right_keys.contiguous()
    # left element i goes after the right elements with a strictly smaller key; right element j after the
    # left elements with a key <= its own (ties: the lower gallery index, i.e. the left run, first)
    left_pos = torch.searchsorted(right_keys, left_keys, side="left")
    left_pos += torch.arange(n_left, device=left_keys.device)
    right_pos = torch.searchsorted(left_keys, right_keys, side="right")
    right_pos += torch.arange(n_right, device=right_keys.device)
    positions = torch.cat([left_pos, right_pos], dim=1)
    keys = torch.empty_like(positions, dtype=left_keys.dtype).scatter_(
        1, positions, torch.cat([left_keys, right_keys], dim=1)
    )
    index = torch.empty_like(positions).scatter_(1, positions, torch.cat([left_index, right_index], dim=1))
    return keys, index


def _sorted_run(queries: torch.Tensor, chunk: torch.Tensor, offset: int, k: int | None):
    """(keys, global indices) of one chunk's scores in rank order, the top ``k`` only when given."""
    scores = queries @ chunk.to(queries.device, queries.dtype).T
    local = rank_indices(scores, None if k is None else min(k, chunk.shape[0]))  # also rejects non-finite
    keys = ranking_keys(scores).gather(1, local)
    return keys, local.add_(offset)


def chunked_rank_indices(
    queries: torch.Tensor, chunks: Iterable[torch.Tensor], k: int | None = None
) -> torch.Tensor:
    """Gallery indices in rank order for the scores ``queries @ gallery.T``, the gallery given in chunks.

    * ``queries``: ``[n_queries, d]`` (the scores are computed on its device and in its dtype).
    * ``chunks``: ``[n_i, d]`` blocks of the gallery, in gallery order (the gallery index of a row is its
      offset in the concatenation).
    * ``k``: keep the top ``k`` (``1 <= k <= N``); ``None`` ranks the whole gallery (kept on the host).

    Returns int64 ``[n_queries, k or N]``, identical to ``rank_indices(queries @ gallery.T, k)``.
    """
    if queries.dim() != 2 or queries.shape[0] == 0:
        raise TrustVLInputError(f"queries has shape {tuple(queries.shape)}; expected [n_queries >= 1, d]")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise TrustVLInputError(f"k = {k!r}; expected an integer >= 1 or None")
    runs: list[tuple[torch.Tensor, torch.Tensor]] = []
    best: tuple[torch.Tensor, torch.Tensor] | None = None
    offset = 0
    for chunk in chunks:
        if chunk.dim() != 2 or chunk.shape[1] != queries.shape[1]:
            raise TrustVLInputError(
                f"gallery chunk at row {offset} has shape {tuple(chunk.shape)}; expected [n, {queries.shape[1]}]"
            )
        if chunk.shape[0] == 0:
            continue
        keys, index = _sorted_run(queries, chunk, offset, k)
        offset += chunk.shape[0]
        if k is None:
            runs.append((keys.cpu(), index.cpu()))
            continue
        if best is not None:
            keys, index = merge_sorted_runs(*best, keys, index)
            keys, index = keys[:, :k], index[:, :k]
        best = (keys, index)
    if offset == 0:
        raise TrustVLInputError("the gallery chunks hold no rows; expected at least one gallery image")
    if k is not None:
        check_k(k, offset, "k", "the gallery size")
        return best[1]
    while len(runs) > 1:  # adjacent pairs keep the left run's indices below the right run's
        merged = [merge_sorted_runs(*runs[i], *runs[i + 1]) for i in range(0, len(runs) - 1, 2)]
        runs = merged + ([runs[-1]] if len(runs) % 2 else [])
    return runs[0][1]
