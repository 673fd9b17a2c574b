r"""Fairness metrics for ranked retrieval (Geyik et al. 2019, arXiv 1905.01989; SPEC §1).

A query (a text prompt) ranks a gallery of ``N`` images; every image carries the value ``a`` of a
protected attribute with ``m`` values, coded ``0..m-1``. ``q`` is the target distribution over those
values: :func:`uniform_target` ("equal opportunity") or :func:`gallery_target` ("demographic parity").

* ``p_a@k = count_a(top k) / k``; ``Skew_a@k = ln(p_a@k / q_a)``. A zero count is floored to ``1/k``
  (the convention of the public reference implementation), so every Skew is finite.
* ``MaxSkew@k = max_a Skew_a@k`` and ``MinSkew@k = min_a Skew_a@k``.
* ``NDKL = (1/Z) sum_{i=1..N} KL(p@i || q) / log2(i+1)``, ``Z = sum_{i=1..N} 1/log2(i+1)``,
  ``KL(p || q) = sum_a p_a ln(p_a / q_a)`` with ``0 ln 0 = 0``.

Lower ``|Skew|`` and lower NDKL are fairer.

Conventions (documented choices)
--------------------------------
* **Ranking.** Scores are ranked in descending order; ties are broken by gallery index (lower index
  first), i.e. a *stable* descending sort, so results are deterministic and identical on CPU and CUDA.
  ``-0.0`` and ``+0.0`` are equal scores; non-finite scores are rejected.
* **Shapes.** ``ranked_labels`` is ``[n_queries, n]`` (or ``[n]`` for one query) of attribute ids in rank
  order, best first; every metric returns a 1-D ``float64`` tensor with one value per query (length 1
  for a 1-D input), on the input's device.
* **Targets.** ``target`` is a probability vector of length ``m`` (entries >= 0, sum 1 within 1e-6); the
  labels must lie in ``0..m-1``. Skew needs every ``q_a > 0`` (``ln(p/0)`` is infinite even with the
  floor), so a zero entry is an input error for :func:`skew`, :func:`max_skew` and :func:`min_skew`.
  NDKL accepts ``q_a = 0``: a value that never occurs contributes ``0 ln 0 = 0``; if it does occur the
  KL divergence, and NDKL, is ``+inf`` (mathematically exact).
* **Sign properties.** ``MaxSkew@k >= 0`` always: the unfloored proportions sum to 1 like ``q``, so some
  ``count_a/k >= q_a``, and flooring only raises ``p``. ``MinSkew@k <= 0`` holds whenever some value
  with a non-zero count has ``count_a/k <= q_a``, in particular whenever every value occurs in the top k
  **or** ``k * min_a q_a >= 1`` (then a value with zero count has ``p_a = 1/k <= q_a``). Outside these
  conditions the floor can make MinSkew positive: ``q = (0.9, 0.05, 0.05)``, ``k = 1``, top label 0 gives
  Skews ``(ln(1/0.9), ln 20, ln 20)``, all > 0. (Floating-point rounding can make a value that is
  mathematically 0 come out as about ``±1e-16``.)
* **NDKL** is computed over the whole ranking given (pass the full ranking of the gallery for the
  paper's definition). NDKL >= 0; it is 0 iff every prefix matches ``q``; since ``p@1`` is one-hot this
  happens only for a one-hot ``q`` (e.g. ``m = 1``) with every label equal to its support; for any
  ``q`` with two or more positive entries NDKL > 0. Rounding noise below 0 is clamped to 0.

Implementation notes
--------------------
NDKL is vectorised with cumulative counts: ``c_a(i)``, the count of value ``a`` among the first ``i``
items, is an ``int32`` cumulative sum of the (one-hot) labels; then
``i * KL(p@i || q) = sum_a T_a[c_a(i)] - i ln i`` with the float64 lookup table
``T_a[c] = c ln c - c ln q_a``, so ``Z * NDKL = sum_a sum_i (w_i/i) T_a[c_a(i)] - sum_i w_i ln i``
(``w_i = 1/log2(i+1)``): per value one cumulative sum, one table lookup and one matrix-vector product,
all float64 where it matters. A one-hot ``q`` is handled exactly (0 or ``+inf``).

The float64 tables of both metrics (Skew: ``T[c, a] = ln(max(c, 1)/k) - ln q_a``, so Skew is a lookup at
the top-k counts; NDKL: the ``T_a`` above, ``w_i/i``, ``sum_i w_i ln i`` and ``Z``) come from the numpy
module :mod:`trustvl.metrics._fairness_core`, the single source of the formulas: an identical copy of it
ships in each ``evaluate`` module folder (``evaluate_metrics/``), which computes the same values without
trustvl. This module adds the torch counting, blocking and devices.

Work is done in blocks of queries, so memory stays bounded (e.g. 1,000 queries over a 100,000-image
gallery): on accelerators one block of about 2**24 positions at a time; on CPU blocks of about 2**21
positions handed out dynamically to ``torch.get_num_threads()`` Python threads that each run torch with
one intra-op thread (see :func:`_run_blocks`; this stays fast when other processes share the cores).

The full ranking is a stable sort of integer keys that order like the scores (IEEE bit patterns, see
:func:`_ascending_keys`). On CPU every query is sorted on its own: PyTorch radix-sorts a long 1-D integer
tensor, several times faster than a batched stable float sort. On other devices it is one batched
``torch.sort(stable=True)`` per block. With ``k`` given (``8k <= n``), a CPU ``topk`` on unique composite
keys ``(score key, gallery index)`` returns the same top ``k`` exactly. All paths give the same order.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import torch

from trustvl.errors import TrustVLInputError
from trustvl.metrics._fairness_core import ndkl_tables, skew_table
from trustvl.metrics._validation import (
    check_k,
    check_label_range,
    check_nonempty,
    integer_labels,
    probability_vector,
    real_scores,
)

__all__ = [
    "gallery_target",
    "max_skew",
    "min_skew",
    "ndkl",
    "rank_indices",
    "rank_labels",
    "skew",
    "uniform_target",
]

# Positions (queries x ranking length) per block of work: on accelerators one block at a time (bounds the
# float64 work buffers to ~128 MB); on CPU smaller blocks, spread over worker threads (see _run_blocks).
_CHUNK_ELEMENTS = 1 << 24
_CPU_BLOCK_ELEMENTS = 1 << 21
# On CPU a 1-D integer sort at least this long uses PyTorch's (fbgemm) radix sort.
_CPU_RADIX_MIN = 32768

_WHY_SKEW_POSITIVE = " because Skew_a = ln(p_a/q_a) is infinite for q_a = 0 (even with the 1/k floor)"


# ----------------------------------------------------------------------------------------------------
# targets
# ----------------------------------------------------------------------------------------------------
def uniform_target(m: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The uniform target ``q_a = 1/m`` ("equal opportunity"), a ``float64`` tensor of length ``m``."""
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise TrustVLInputError(f"m = {m!r}; expected a positive integer number of attribute values")
    return torch.full((m,), 1.0 / m, dtype=torch.float64, device=device)


def gallery_target(gallery_labels, m: int | None = None) -> torch.Tensor:
    """The gallery's own proportions of each attribute value ("demographic parity").

    ``gallery_labels`` is ``[n_gallery]`` of ids ``0..m-1``; ``m`` defaults to ``max(label) + 1``. Returns a
    ``float64`` tensor of length ``m`` on the labels' device; values absent from the gallery get 0 (which
    :func:`skew` rejects: renumber the values so that every id occurs).
    """
    labels = integer_labels(gallery_labels, "gallery_labels")
    if labels.dim() != 1:
        raise TrustVLInputError(
            f"gallery_labels has shape {tuple(labels.shape)}; expected a 1-D tensor of attribute ids"
        )
    check_nonempty(labels, "gallery_labels")
    hi = int(labels.max().item())
    if m is None:
        m = hi + 1
    elif isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise TrustVLInputError(f"m = {m!r}; expected a positive integer number of attribute values")
    check_label_range(labels, m, "gallery_labels", "argument m")
    counts = torch.bincount(labels.long(), minlength=m).to(torch.float64)
    return counts / labels.numel()


# ----------------------------------------------------------------------------------------------------
# input normalisation
# ----------------------------------------------------------------------------------------------------
def _ranked_2d(ranked_labels, name: str = "ranked_labels") -> torch.Tensor:
    labels = integer_labels(ranked_labels, name)
    if labels.dim() == 1:
        labels = labels.unsqueeze(0)
    if labels.dim() != 2:
        raise TrustVLInputError(
            f"{name} has shape {tuple(labels.shape)}; expected [n_queries, n] or [n] attribute ids in rank order"
        )
    if labels.shape[0] == 0 or labels.shape[1] == 0:
        raise TrustVLInputError(
            f"{name} is empty (shape {tuple(labels.shape)}); expected at least one query and one ranked item"
        )
    return labels


def _prepare(ranked_labels, target, *, strictly_positive: bool) -> tuple[torch.Tensor, torch.Tensor]:
    labels = _ranked_2d(ranked_labels)
    q = probability_vector(
        target,
        "target",
        strictly_positive=strictly_positive,
        device=labels.device,
        why_positive=_WHY_SKEW_POSITIVE,
    )
    check_label_range(labels, q.numel(), "ranked_labels", "the length of target")
    return labels, q


# ----------------------------------------------------------------------------------------------------
# Skew
# ----------------------------------------------------------------------------------------------------
def _skew_validated(labels: torch.Tensor, q: torch.Tensor, k: int) -> torch.Tensor:
    n_queries, m = labels.shape[0], q.numel()
    top = labels[:, :k].long()
    offsets = torch.arange(n_queries, device=labels.device).unsqueeze(1) * m
    counts = torch.bincount((top + offsets).reshape(-1), minlength=n_queries * m).view(n_queries, m)
    # Skew_a@k = T[count_a, a]: the table of the numpy core shared with the evaluate modules
    table = torch.from_numpy(skew_table(q.cpu().numpy(), k)).to(labels.device)
    return table.gather(0, counts)


def skew(ranked_labels, target, k: int) -> torch.Tensor:
    """``Skew_a@k = ln(p_a@k / q_a)`` for every query and attribute value: a ``[n_queries, m]`` float64 tensor.

    ``p_a@k = count_a(top k) / k`` with a zero count floored to ``1/k``. ``target`` must be strictly
    positive. ``1 <= k <= n``.
    """
    labels, q = _prepare(ranked_labels, target, strictly_positive=True)
    k = check_k(k, labels.shape[1], "k", "the ranking length n")
    return _skew_validated(labels, q, k)


def max_skew(ranked_labels, target, k: int) -> torch.Tensor:
    """``MaxSkew@k = max_a Skew_a@k`` per query (1-D float64 tensor). Always >= 0 (see module notes)."""
    return skew(ranked_labels, target, k).amax(dim=1)


def min_skew(ranked_labels, target, k: int) -> torch.Tensor:
    """``MinSkew@k = min_a Skew_a@k`` per query (1-D float64 tensor).

    <= 0 whenever every attribute value occurs in the top k or ``k * min(target) >= 1``; otherwise the
    ``1/k`` floor can make it positive (see the module notes).
    """
    return skew(ranked_labels, target, k).amin(dim=1)


# ----------------------------------------------------------------------------------------------------
# NDKL
# ----------------------------------------------------------------------------------------------------
class _NdklKernel:
    """Tables for NDKL over rankings of length ``n`` against target ``q`` (float64, on ``q``'s device).

    With ``c_a(i)`` the count of value ``a`` among the first ``i`` items,
    ``i * KL(p@i || q) = sum_a T_a[c_a(i)] - i ln i`` where ``T_a[c] = c ln c - c ln q_a`` (``T_a[0] = 0``).
    So ``Z * NDKL = sum_a sum_i (w_i / i) T_a[c_a(i)] - sum_i w_i ln i`` with ``w_i = 1/log2(i+1)``: per
    value one int32 cumulative sum, one table lookup and one matrix-vector product.
    A one-hot ``q`` (including ``m = 1``) is handled exactly: NDKL is 0 when every label is its support,
    else ``+inf``. The tables are read-only; work buffers come from :meth:`buffers` (one set per thread).
    """

    def __init__(self, n: int, q: torch.Tensor):
        dev = q.device
        self.n, self.m = n, q.numel()
        tables = ndkl_tables(n, q.cpu().numpy())  # the numpy core shared with the evaluate modules
        self.support = tables.support
        self.table = torch.from_numpy(tables.table).to(dev)
        self.w_over_i = torch.from_numpy(tables.w_over_i).to(dev)
        self.offset = tables.offset  # sum_i w_i ln i
        self.z = tables.z
        self.pos = torch.arange(1, n + 1, dtype=torch.int32, device=dev)

    def buffers(self, rows: int) -> dict[str, torch.Tensor]:
        """Work buffers for blocks of up to ``rows`` queries."""
        if self.support is not None:
            return {}
        dev, shape = self.pos.device, (rows, self.n)
        buf = {
            "count": torch.empty(shape, dtype=torch.int32, device=dev),
            "values": torch.empty(shape, dtype=torch.float64, device=dev),
            "part": torch.empty(rows, dtype=torch.float64, device=dev),
        }
        if self.m > 2:
            buf["running"] = torch.empty(shape, dtype=torch.int32, device=dev)
            buf["onehot"] = torch.empty(shape, dtype=torch.bool, device=dev)
        return buf

    def _accumulate(self, a: int, counts: torch.Tensor, out: torch.Tensor, buf: dict, first: bool) -> None:
        """``out (+)= sum_i (w_i / i) T_a[counts[:, i]]``."""
        r = counts.shape[0]
        values = buf["values"][:r]
        torch.index_select(self.table[a], 0, counts.reshape(-1), out=values.view(-1))
        if first:
            torch.mv(values, self.w_over_i, out=out)
        else:
            part = buf["part"][:r]
            torch.mv(values, self.w_over_i, out=part)
            out.add_(part)

    def __call__(self, labels: torch.Tensor, out: torch.Tensor, buf: dict) -> None:
        """NDKL of validated ``labels [r, n]`` written into ``out [r]`` (``r`` <= the buffers' rows)."""
        r = labels.shape[0]
        if self.support is not None:
            out.copy_(torch.where((labels == self.support).all(dim=1), 0.0, torch.inf))
            return
        count = buf["count"][:r]
        if self.m == 2:  # labels are 0/1: their cumulative sum is c_1 directly
            torch.cumsum(labels, dim=1, dtype=torch.int32, out=count)
            self._accumulate(1, count, out, buf, first=True)
            torch.sub(self.pos, count, out=count)  # c_0 = i - c_1
            self._accumulate(0, count, out, buf, first=False)
        else:
            running, onehot = buf["running"][:r], buf["onehot"][:r]
            for a in range(self.m - 1):
                torch.eq(labels, a, out=onehot)
                torch.cumsum(onehot, dim=1, dtype=torch.int32, out=count)
                if a == 0:
                    running.copy_(count)
                else:
                    running.add_(count)
                self._accumulate(a, count, out, buf, first=a == 0)
            torch.sub(self.pos, running, out=running)  # the last value's count
            self._accumulate(self.m - 1, running, out, buf, first=False)
        # rounding can leave about -1e-16 * Z where the exact value is 0; NDKL >= 0 (= core.ndkl_from_sum)
        out.sub_(self.offset).clamp_(min=0.0).div_(self.z)


def _block_rows(n_rows: int, n_cols: int, device: torch.device) -> int:
    per_block = _CPU_BLOCK_ELEMENTS if device.type == "cpu" else _CHUNK_ELEMENTS
    return max(1, min(n_rows, per_block // max(n_cols, 1)))


def _run_blocks(n_rows: int, block: int, device: torch.device, fn) -> None:
    """Call ``fn(start, stop)`` for consecutive blocks of ``block`` rows covering ``0..n_rows``.

    On CPU with several intra-op threads the blocks are handed out dynamically to that many Python
    threads, each running torch with one intra-op thread (torch releases the GIL inside its ops). Compared
    with OpenMP teams inside every op this balances the load when other processes share the cores: a
    team waits for its slowest thread at every barrier, which was measured to make per-query radix sorts
    up to 40x slower on a busy 2-core machine. The intra-op thread count is restored afterwards. An error
    in a block is re-raised for the first failing block, so messages are deterministic.
    """
    starts = list(range(0, n_rows, block))
    workers = min(torch.get_num_threads(), len(starts)) if device.type == "cpu" else 1
    if workers <= 1:
        for start in starts:
            fn(start, min(n_rows, start + block))
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(
            workers, "trustvl-metrics", initializer=torch.set_num_threads, initargs=(1,)
        ) as pool:
            futures = [pool.submit(fn, start, min(n_rows, start + block)) for start in starts]
            for future in futures:
                future.result()
    finally:
        torch.set_num_threads(previous)


def _ndkl_validated(labels: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    n_queries, n = labels.shape
    kernel = _NdklKernel(n, q)
    out = torch.empty(n_queries, dtype=torch.float64, device=labels.device)
    block = _block_rows(n_queries, n, labels.device)
    local = threading.local()

    def work(start: int, stop: int) -> None:
        if not hasattr(local, "buf"):
            local.buf = kernel.buffers(block)
        kernel(labels[start:stop], out[start:stop], local.buf)

    _run_blocks(n_queries, block, labels.device, work)
    return out


def ndkl(ranked_labels, target) -> torch.Tensor:
    """Normalised discounted KL divergence of each ranking from ``target``: a 1-D float64 tensor, one per query.

    ``NDKL = (1/Z) sum_{i=1..N} KL(p@i || q) / log2(i+1)`` over the whole ranking given (length ``N``).
    ``target`` may have zero entries (see the module notes). Vectorised with cumulative counts and
    chunked over queries.
    """
    labels, q = _prepare(ranked_labels, target, strictly_positive=False)
    return _ndkl_validated(labels, q)


# ----------------------------------------------------------------------------------------------------
# ranking
# ----------------------------------------------------------------------------------------------------
def _key_layout(dtype: torch.dtype) -> tuple[torch.dtype, torch.dtype, int, int] | None:
    """(float dtype, same-width int dtype, sign shift, magnitude mask) for float scores; None for integers."""
    if dtype in (torch.float16, torch.bfloat16, torch.float32):
        return torch.float32, torch.int32, 31, 0x7FFFFFFF
    if dtype == torch.float64:
        return torch.float64, torch.int64, 63, 0x7FFFFFFFFFFFFFFF
    return None


def _ascending_keys(scores: torch.Tensor, out: torch.Tensor | None = None, tmp: torch.Tensor | None = None):
    """Integer keys whose ascending order is the descending order of ``scores`` (equal scores, equal keys).

    A float maps through its IEEE bit pattern ``b`` (as a signed integer): ``b ^ ((b >> sign) & mask)``
    orders like the float (negative values get their magnitude bits flipped), and a final bitwise not
    (``~x = -x - 1``) reverses the order without overflow; both are folded into
    ``key = b ^ ~((b >> sign) & mask)``. ``-0.0`` is first turned into ``+0.0`` (``x + 0.0``). 16- and
    32-bit floats give int32 keys, float64 gives int64 keys; integer scores give ``~score`` (int64).
    ``out``/``tmp`` are optional reusable buffers (float and int of the key width, same shape).
    """
    layout = _key_layout(scores.dtype)
    if layout is None:
        return torch.bitwise_not(scores.to(torch.int64))
    fdtype, idtype, shift, mask = layout
    if out is None:
        out = torch.empty(scores.shape, dtype=fdtype, device=scores.device)
        tmp = torch.empty(scores.shape, dtype=idtype, device=scores.device)
    torch.add(scores, 0.0, out=out)  # also casts float16/bfloat16 up to float32 exactly
    bits = out.view(idtype)
    torch.bitwise_right_shift(bits, shift, out=tmp)
    tmp.bitwise_and_(mask).bitwise_not_()
    return bits.bitwise_xor_(tmp)


def ranking_keys(scores: torch.Tensor) -> torch.Tensor:
    """Integer keys of float or integer ``scores`` whose ascending order is the rank order (score descending).

    Equal scores give equal keys (``-0.0`` and ``+0.0`` too), so (key, gallery index) ascending is exactly
    the order of :func:`rank_indices`; used to merge rankings of gallery chunks (metrics/chunked_ranking.py).
    """
    return _ascending_keys(scores)


def _rank_chunk(scores: torch.Tensor, k: int | None) -> torch.Tensor:
    """Gallery indices of ``scores [r, n]`` in rank order (score desc, index asc): ``[r, k or n]`` int64."""
    r, n = scores.shape
    layout = _key_layout(scores.dtype)
    cpu = scores.device.type == "cpu"
    if cpu and k is not None and k < n and 8 * k <= n and layout is not None and layout[1] == torch.int32:
        # unique composite keys (score key, gallery index): topk then returns exactly the stable order
        composite = _ascending_keys(scores).to(torch.int64).mul_(n).add_(torch.arange(n, dtype=torch.int64))
        return torch.topk(composite, k, dim=1, largest=False, sorted=True).indices
    if cpu and n >= _CPU_RADIX_MIN:
        # one query at a time: PyTorch radix-sorts a long 1-D integer tensor (stable)
        order = torch.empty((r, n), dtype=torch.int64)
        keys = _ascending_keys(scores)
        scratch = torch.empty(n, dtype=keys.dtype)
        for row in range(r):
            torch.sort(keys[row], stable=True, out=(scratch, order[row]))
    else:
        order = torch.sort(_ascending_keys(scores), dim=1, stable=True).indices
    return order if k is None else order[:, :k]


def _scores_2d(scores) -> tuple[torch.Tensor, bool]:
    s = real_scores(scores, "scores")
    squeeze = s.dim() == 1
    if squeeze:
        s = s.unsqueeze(0)
    if s.dim() != 2:
        raise TrustVLInputError(
            f"scores has shape {tuple(s.shape)}; expected [n_queries, n_gallery] or [n_gallery]"
        )
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise TrustVLInputError(
            f"scores is empty (shape {tuple(s.shape)}); expected at least one query and one gallery image"
        )
    return s, squeeze


def rank_indices(scores, k: int | None = None) -> torch.Tensor:
    """Gallery indices in rank order: score descending, ties by gallery index (stable, deterministic).

    ``scores`` is ``[n_queries, n_gallery]`` (or ``[n_gallery]``); returns int64 ``[n_queries, k or n_gallery]``
    (or 1-D for 1-D scores) on the scores' device. Non-finite scores are rejected.
    """
    s, squeeze = _scores_2d(scores)
    n_queries, n = s.shape
    if k is not None:
        k = check_k(k, n, "k", "the gallery size")
    out = torch.empty((n_queries, k or n), dtype=torch.int64, device=s.device)

    def work(start: int, stop: int) -> None:
        chunk = s[start:stop]
        _check_finite_offset(chunk, start)
        out[start:stop] = _rank_chunk(chunk, k)

    _run_blocks(n_queries, _block_rows(n_queries, n, s.device), s.device, work)
    return out[0] if squeeze else out


def _check_finite_offset(chunk: torch.Tensor, start: int) -> None:
    if not chunk.is_floating_point():
        return
    lo, hi = torch.aminmax(chunk)  # NaN propagates, so both finite <=> every score finite
    if bool(torch.isfinite(lo)) and bool(torch.isfinite(hi)):
        return
    bad = torch.nonzero(~torch.isfinite(chunk))[0].tolist()
    value = chunk[bad[0], bad[1]].item()
    raise TrustVLInputError(
        f"scores[{bad[0] + start}, {bad[1]}] = {value} is not finite; expected finite scores"
    )


def _gallery_labels(gallery_labels, n_gallery: int, device: torch.device, name: str) -> torch.Tensor:
    labels = integer_labels(gallery_labels, name)
    if labels.dim() not in (1, 2):
        raise TrustVLInputError(
            f"{name} has shape {tuple(labels.shape)}; expected [n_gallery] or [n_gallery, n_attributes]"
        )
    check_nonempty(labels, name)
    if labels.shape[0] != n_gallery:
        raise TrustVLInputError(
            f"{name} has {labels.shape[0]} entries but scores rank {n_gallery} gallery images; "
            "expected one label per gallery image"
        )
    return labels.to(device)


def rank_labels(scores, gallery_labels, k: int | None = None) -> torch.Tensor:
    """Attribute labels of the gallery in rank order (score descending, ties by gallery index).

    * ``scores``: ``[n_queries, n_gallery]`` or ``[n_gallery]`` (float or int; non-finite rejected).
    * ``gallery_labels``: ``[n_gallery]`` (one attribute) or ``[n_gallery, n_attributes]`` (several
      attributes at once, ranked with one sort).
    * ``k``: keep only the top ``k`` (``1 <= k <= n_gallery``); ``None`` ranks the whole gallery (needed
      for NDKL).

    Returns ``[n_queries, k or n_gallery]`` for 1-D labels, ``[n_queries, k or n_gallery, n_attributes]``
    for 2-D labels (the query axis is dropped for 1-D scores), on the scores' device. The labels' integer
    dtype is kept (``bool`` becomes ``uint8``), so a small dtype such as ``torch.uint8`` keeps the output
    of a large gallery small. Select one attribute with ``out[..., j]``.
    """
    s, squeeze = _scores_2d(scores)
    n_queries, n = s.shape
    labels = _gallery_labels(gallery_labels, n, s.device, "gallery_labels")
    if k is not None:
        k = check_k(k, n, "k", "the gallery size")
    width = k or n
    out = torch.empty((n_queries, width, *labels.shape[1:]), dtype=labels.dtype, device=s.device)

    def work(start: int, stop: int) -> None:
        chunk = s[start:stop]
        _check_finite_offset(chunk, start)
        order = _rank_chunk(chunk, k)
        out[start:stop] = labels.index_select(0, order.reshape(-1)).view(
            order.shape[0], width, *labels.shape[1:]
        )

    _run_blocks(n_queries, _block_rows(n_queries, n, s.device), s.device, work)
    return out[0] if squeeze else out
