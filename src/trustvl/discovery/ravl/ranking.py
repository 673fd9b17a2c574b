"""RaVL step 5's order of kept clusters (:func:`rank_key`) and how a ranking is scored against the truth:
the concatenated ranked regions (:func:`ranked_regions`) and :func:`precision_at_k`."""

from __future__ import annotations

from typing import Any

import numpy as np

from trustvl.discovery.ravl.results import DiscoveryResult, SpuriousCluster
from trustvl.errors import TrustVLInputError

__all__ = ["precision_at_k", "rank_key", "ranked_regions"]


def rank_key(cluster: SpuriousCluster) -> tuple[float, float, int, int]:
    """Step-5 order: score desc; ties: influence desc, size desc, medoid region index asc (package docstring)."""
    return (-round(cluster.score, 12), -cluster.influence, -cluster.size, cluster.medoid_index)


def ranked_regions(result: DiscoveryResult) -> np.ndarray:
    """The ranked clusters' ranked regions, concatenated: the order precision@k reads."""
    return result.ranked_region_indices()


def precision_at_k(result: DiscoveryResult, region_is_spurious: Any, k: int = 10) -> float:
    """Fraction of the top ``k`` ranked regions that contain the artefact (always divided by ``k``).

    ``region_is_spurious``: boolean ``[n_regions]`` ground truth (for the whole-image baseline:
    ``[n_images]``, whether the image contains the artefact). See the package docstring.
    """
    truth = np.asarray(region_is_spurious).astype(bool)
    if truth.ndim != 1 or len(truth) != result.n_regions:
        raise TrustVLInputError(
            f"region_is_spurious has shape {truth.shape}; expected ({result.n_regions},), one flag per region"
        )
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise TrustVLInputError(f"k={k!r}; expected a positive integer")
    top = ranked_regions(result)[:k]
    return float(truth[top].sum()) / float(k)
