"""KL divergence of observed group shares to a target distribution (Fair Diffusion's outcome, SPEC §5).

``KL(observed || target)`` over the last axis (ITI-GEN's direction): the observed shares are renormalised
over the items read as one of the groups, a zero target share is replaced by :data:`KL_TARGET_FLOOR` (then
the target is renormalised) so that the divergence stays finite, ``0·ln 0 = 0``, and a row with no item in
any group gives NaN (left out of means by the caller). Retrieval's NDKL uses its own prefix KL
(:func:`trustvl.metrics.ndkl`), which never meets an empty row.
"""

from __future__ import annotations

import numpy as np

__all__ = ["KL_TARGET_FLOOR", "kl_to_target"]

#: A zero target is replaced by this share in KL (then renormalised), so KL stays finite.
KL_TARGET_FLOOR = 1e-3


def kl_to_target(shares: np.ndarray, target: np.ndarray) -> np.ndarray:
    """KL(observed || target) over the last axis of ``shares`` (any leading shape); NaN for empty rows."""
    q = np.maximum(target, KL_TARGET_FLOOR)
    q = q / q.sum()
    total = shares.sum(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = shares / total
        terms = np.where(p > 0, p * np.log(p / q), 0.0)
    kl = terms.sum(-1)
    return np.where(total[..., 0] > 0, kl, np.nan)
