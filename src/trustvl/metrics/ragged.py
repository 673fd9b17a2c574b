"""Per-query ranking metrics over rankings that may differ in length.

The fairness metrics of :mod:`trustvl.metrics.fairness` take a rectangular ``[n_queries, n]`` batch.
:func:`ragged_per_query` lets callers (e.g. the ``evaluate`` modules in ``evaluate_metrics/``) pass a list
of rankings of any lengths: equal lengths go through the metric in one batch, otherwise it is applied
one query at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["ragged_per_query"]


def ragged_per_query(metric: Callable[..., torch.Tensor], rankings: Sequence, *args) -> torch.Tensor:
    """``metric(rankings, *args)`` for rankings that may differ in length: a 1-D tensor, one value per query.

    ``metric`` is a per-query ranking metric such as :func:`~trustvl.metrics.max_skew`,
    :func:`~trustvl.metrics.min_skew` or :func:`~trustvl.metrics.ndkl`; ``args`` are its further
    arguments (the target, and ``k`` for the Skews). If every ranking has the same length (or there are
    none) they are passed to ``metric`` as one batch; otherwise ``metric`` is called on each ranking on its
    own and the results are concatenated in input order. Bad input raises whatever ``metric`` raises.
    """
    if len({len(r) for r in rankings}) <= 1:
        return metric(rankings, *args)
    return torch.cat([metric([r], *args) for r in rankings])
