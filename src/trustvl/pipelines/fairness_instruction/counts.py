"""Exact integer counts from target shares: :func:`largest_remainder_counts` (ties to the earlier share)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from trustvl.errors import TrustVLInputError

__all__ = ["largest_remainder_counts"]


def largest_remainder_counts(shares: Sequence[float], total: int) -> list[int]:
    """Integer counts summing to ``total``, each ``floor(total·share)`` plus one for the largest remainders.

    Ties between equal remainders go to the earlier share, so the result is deterministic.
    """
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise TrustVLInputError(f"number of images {total!r} must be a non-negative whole number")
    exact = [share * total for share in shares]
    counts = [math.floor(x + 1e-9) for x in exact]
    order = sorted(range(len(shares)), key=lambda g: (-(exact[g] - counts[g]), g))
    for g in order[: total - sum(counts)]:
        counts[g] += 1
    return counts
