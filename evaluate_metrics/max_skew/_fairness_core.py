r"""The maths of MaxSkew@k, MinSkew@k and NDKL (Geyik et al. 2019), in numpy only: the one source of truth.

This file depends on numpy and the standard library only. :mod:`trustvl.metrics.fairness` builds its
vectorised torch kernels (CPU or CUDA) on the float64 tables defined here, and an identical copy of this
file ships inside every ``evaluate`` module folder (``evaluate_metrics/<name>/_fairness_core.py``), so
``evaluate.load`` of a module works where trustvl is not installed. ``tests/metrics/test_evaluate_modules_standalone.py``
fails if a shipped copy differs from ``src/trustvl/metrics/_fairness_core.py``; refresh the copies with
``python scripts/sync_evaluate_modules.py``.

Definitions (SPEC §1). ``labels`` are attribute ids ``0..m-1`` of ranked items, best first; ``q`` the
target distribution over the ``m`` values.

* ``Skew_a@k = ln(p_a@k / q_a)`` with ``p_a@k = max(count_a(top k), 1) / k`` (a zero count is floored to
  ``1/k``, the convention of the public reference implementation). So Skew is a lookup in the table
  :func:`skew_table`: ``T[c, a] = ln(max(c, 1) / k) - ln q_a`` at ``c = count_a(top k)``.
  ``MaxSkew@k = max_a Skew_a@k``, ``MinSkew@k = min_a Skew_a@k``.
* ``NDKL = (1/Z) sum_{i=1..N} KL(p@i || q) / log2(i+1)``, ``Z = sum_i 1/log2(i+1)``, ``0 ln 0 = 0``.
  With ``c_a(i)`` the count of value ``a`` among the first ``i`` items,
  ``i * KL(p@i || q) = sum_a T_a[c_a(i)] - i ln i`` where ``T_a[c] = c ln c - c ln q_a`` (``T_a[0] = 0``),
  so ``Z * NDKL = sum_a sum_i (w_i / i) T_a[c_a(i)] - sum_i w_i ln i`` with ``w_i = 1/log2(i+1)``
  (:class:`NdklTables`). A one-hot ``q`` is exact: 0 if every label is its support, else ``+inf``.
  Rounding noise below 0 is clamped to 0 (:func:`ndkl_from_sum`).

Bad input raises :class:`ValueError` (trustvl raises its subclass ``TrustVLInputError`` with the same
message) naming the bad value and what was expected.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "PROBABILITY_ATOL",
    "NdklTables",
    "check_k",
    "max_skew",
    "min_skew",
    "ndkl",
    "ndkl_from_sum",
    "ndkl_tables",
    "per_query",
    "probability_vector",
    "ranked_labels",
    "skew",
    "skew_table",
]

#: Tolerance on ``sum(target) == 1``.
PROBABILITY_ATOL = 1e-6

WHY_SKEW_POSITIVE = " because Skew_a = ln(p_a/q_a) is infinite for q_a = 0 (even with the 1/k floor)"

# Ranking positions per block in :func:`ndkl` (bounds the float64 work buffer to ~16 MB).
_BLOCK_POSITIONS = 1 << 21


# ----------------------------------------------------------------------------------------------------
# the maths: tables shared with trustvl's torch kernels
# ----------------------------------------------------------------------------------------------------
def skew_table(q: np.ndarray, k: int) -> np.ndarray:
    """``T[c, a] = ln(max(c, 1) / k) - ln q_a`` for counts ``c = 0..k``: float64 ``[k + 1, m]``.

    ``Skew_a@k`` of a ranking is ``T[count_a(top k), a]``. ``q`` must be strictly positive.
    """
    counts = np.maximum(np.arange(k + 1, dtype=np.float64), 1.0)
    return np.log(counts / k)[:, None] - np.log(np.asarray(q, dtype=np.float64))[None, :]


class NdklTables:
    """The float64 tables of NDKL over rankings of length ``n`` against target ``q`` (see the module notes).

    Attributes:
        support: the value ``a`` with ``q_a = 1`` when ``q`` is one-hot (then NDKL is 0 or ``+inf``), else None.
        table: ``[m, n + 1]``, ``table[a, c] = c ln c - c ln q_a`` and ``table[a, 0] = 0``.
        w_over_i: ``[n]``, ``w_i / i`` for ``i = 1..n`` with ``w_i = 1/log2(i+1)``.
        offset: ``sum_i w_i ln i``.
        z: ``Z = sum_i w_i``.
    """

    def __init__(self, n: int, q: np.ndarray):
        q = np.asarray(q, dtype=np.float64)
        ones = np.flatnonzero(q == 1.0)
        self.support = int(ones[0]) if ones.size and bool((q[q != 1.0] == 0).all()) else None
        c = np.arange(n + 1, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            c_ln_c = c * np.log(np.maximum(c, 1.0))  # 0 ln 0 = 0
            table = c_ln_c[None, :] - c[None, :] * np.log(q)[:, None]
        table[:, 0] = 0.0  # a zero count contributes 0 (also when q_a = 0, where 0 * -inf would be nan)
        self.table = np.ascontiguousarray(table)
        pos = c[1:]
        w = 1.0 / np.log2(pos + 1.0)
        self.w_over_i = w / pos
        self.offset = float(np.sum(w * np.log(pos)))
        self.z = float(np.sum(w))


def ndkl_tables(n: int, q: np.ndarray) -> NdklTables:
    """:class:`NdklTables` for rankings of length ``n`` against ``q``."""
    return NdklTables(n, q)


def ndkl_from_sum(total: np.ndarray, tables: NdklTables) -> np.ndarray:
    """NDKL from ``total = sum_a sum_i (w_i / i) T_a[c_a(i)]``: ``max(total - offset, 0) / Z``."""
    return np.maximum(total - tables.offset, 0.0) / tables.z


# ----------------------------------------------------------------------------------------------------
# input checks (messages as trustvl's)
# ----------------------------------------------------------------------------------------------------
def _where(name: str, idx: tuple) -> str:
    return f"{name}[{', '.join(str(int(i)) for i in idx)}]" if idx else name


def _first(mask: np.ndarray) -> tuple:
    return tuple(int(i) for i in np.unravel_index(int(np.flatnonzero(mask)[0]), mask.shape))


def _numeric_array(x, name: str) -> np.ndarray:
    if isinstance(x, str | bytes) or x is None:
        raise ValueError(f"{name} must be an array or tensor of numbers, got {type(x).__name__} {x!r}")
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{name} could not be read as a rectangular array of numbers ({exc}); "
            "expected a tensor, a numpy array or equal-length nested lists"
        ) from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} has dtype {arr.dtype}; expected numbers (a rectangular array of ints or floats)"
        )
    return arr


def ranked_labels(x, name: str = "ranked_labels") -> np.ndarray:
    """``x`` as an int64 ``[n_queries, n]`` array of attribute ids (a 1-D ranking becomes one query)."""
    arr = _numeric_array(x, name)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            idx = _first(bad)
            raise ValueError(
                f"{name} must hold integer labels, but {_where(name, idx)} = {arr[idx].item()!r} is not a whole number"
            )
    arr = arr.astype(np.int64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(
            f"{name} has shape {tuple(arr.shape)}; expected [n_queries, n] or [n] attribute ids in rank order"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name} is empty (shape {tuple(arr.shape)}); expected at least one query and one ranked item"
        )
    return arr


def probability_vector(
    target, name: str = "target", *, strictly_positive: bool = False, why_positive: str = ""
):
    """``target`` as a float64 probability vector (1-D, finite, entries >= 0, sum 1 within the tolerance)."""
    if isinstance(target, str):
        raise ValueError(
            f"{name} = {target!r}: expected a probability vector (use uniform_target(m) or gallery_target(...))"
        )
    t = _numeric_array(target, name)
    if t.dtype.kind == "b":
        raise ValueError(f"{name} has dtype {t.dtype}; expected a real probability vector")
    t = t.astype(np.float64)
    if t.ndim != 1:
        raise ValueError(f"{name} has shape {tuple(t.shape)}; expected a 1-D probability vector")
    if t.size == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)}); expected at least one element")
    if not np.isfinite(t).all():
        idx = _first(~np.isfinite(t))
        raise ValueError(f"{_where(name, idx)} = {t[idx].item()} is not finite; expected probabilities")
    if (t < 0).any():
        idx = _first(t < 0)
        raise ValueError(
            f"{_where(name, idx)} = {t[idx].item()} is negative; expected a probability vector "
            "(entries >= 0 summing to 1)"
        )
    total = float(t.sum())
    if abs(total - 1.0) > PROBABILITY_ATOL:
        raise ValueError(
            f"{name} sums to {total!r}; expected a probability vector summing to 1 (within {PROBABILITY_ATOL})"
        )
    if strictly_positive and (t == 0).any():
        idx = _first(t == 0)
        raise ValueError(
            f"{_where(name, idx)} = 0; expected every entry > 0{why_positive}. Leave attribute values that "
            "cannot occur out of the label set (renumber to 0..m-1)"
        )
    return t


def check_label_range(
    labels: np.ndarray, m: int, name: str = "ranked_labels", m_source: str = "the length of target"
):
    """Check that every label is an attribute id in ``0..m-1``."""
    if (labels < 0).any():
        idx = _first(labels < 0)
        raise ValueError(
            f"{_where(name, idx)} = {int(labels[idx])} is negative; expected attribute ids in 0..{m - 1}"
        )
    if (labels >= m).any():
        idx = _first(labels >= m)
        raise ValueError(
            f"{_where(name, idx)} = {int(labels[idx])} is out of range; expected attribute ids in "
            f"0..{m - 1} (m = {m} from {m_source})"
        )


def check_k(k, n: int, name: str = "k", what: str = "the ranking length n") -> int:
    """Check that ``k`` is an integer with ``1 <= k <= n`` and return it as ``int``."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise ValueError(f"{name} = {k!r} must be an integer; expected 1 <= {name} <= {n}")
    k = int(k)
    if k <= 0:
        raise ValueError(f"{name} = {k} must be positive; expected 1 <= {name} <= {n}")
    if k > n:
        raise ValueError(f"{name} = {k} exceeds {what} ({n}); expected 1 <= {name} <= {n}")
    return k


def _prepare(labels, target, strictly_positive: bool) -> tuple[np.ndarray, np.ndarray]:
    labels = ranked_labels(labels)
    q = probability_vector(target, strictly_positive=strictly_positive, why_positive=WHY_SKEW_POSITIVE)
    check_label_range(labels, q.size)
    return labels, q


# ----------------------------------------------------------------------------------------------------
# numpy metrics (what the evaluate modules compute)
# ----------------------------------------------------------------------------------------------------
def skew(labels, target, k: int) -> np.ndarray:
    """``Skew_a@k`` for every query and value: float64 ``[n_queries, m]``."""
    labels, q = _prepare(labels, target, strictly_positive=True)
    k = check_k(k, labels.shape[1])
    n_queries, m = labels.shape[0], q.size
    rows = np.repeat(np.arange(n_queries), k)
    counts = np.zeros((n_queries, m), dtype=np.int64)
    np.add.at(counts, (rows, labels[:, :k].reshape(-1)), 1)
    return np.take_along_axis(skew_table(q, k), counts, axis=0)


def max_skew(labels, target, k: int) -> np.ndarray:
    """``MaxSkew@k = max_a Skew_a@k`` per query: 1-D float64."""
    return skew(labels, target, k).max(axis=1)


def min_skew(labels, target, k: int) -> np.ndarray:
    """``MinSkew@k = min_a Skew_a@k`` per query: 1-D float64."""
    return skew(labels, target, k).min(axis=1)


def ndkl(labels, target) -> np.ndarray:
    """NDKL of each ranking (over its whole length) from ``target``: 1-D float64, one value per query."""
    labels, q = _prepare(labels, target, strictly_positive=False)
    n_queries, n = labels.shape
    tables = ndkl_tables(n, q)
    if tables.support is not None:
        return np.where((labels == tables.support).all(axis=1), 0.0, np.inf)
    out = np.empty(n_queries, dtype=np.float64)
    block = max(1, _BLOCK_POSITIONS // n)
    for start in range(0, n_queries, block):
        chunk = labels[start : start + block]
        total = np.zeros(chunk.shape[0], dtype=np.float64)
        for a in range(q.size):
            counts = np.cumsum(chunk == a, axis=1)
            total += tables.table[a][counts] @ tables.w_over_i
        out[start : start + block] = ndkl_from_sum(total, tables)
    return out


_METRICS = {"max_skew": max_skew, "min_skew": min_skew, "ndkl": ndkl}


def per_query(metric: str, rankings, *args) -> np.ndarray:
    """``metric`` (``"max_skew"``, ``"min_skew"`` or ``"ndkl"``) of rankings that may differ in length.

    Equal lengths go through the metric as one batch; otherwise it is applied to each ranking on its own
    and the values are concatenated in input order. ``args`` are the target (and ``k`` for the Skews).
    """
    fn = _METRICS[metric]
    rankings = list(rankings)
    if len({len(r) for r in rankings}) <= 1:
        return fn(rankings, *args)
    return np.concatenate([fn([r], *args) for r in rankings])
