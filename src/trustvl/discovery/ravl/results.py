"""Typed results of RaVL discovery: one cluster's statistics (:class:`SpuriousCluster`) and the whole
search's :class:`DiscoveryResult` (JSON via ``to_dict``/``to_json``)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trustvl.discovery.clustering import KMedoidsClustering
from trustvl.utils.io import write_json

__all__ = ["NOTHING_TO_DISCOVER", "DiscoveryResult", "SpuriousCluster"]

NOTHING_TO_DISCOVER = "nothing to discover: every image is classified correctly"


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(float(v)) else float(v) for v in values]


@dataclass
class SpuriousCluster:
    """One cluster's RaVL statistics. Per-class arrays have length ``n_classes``.

    ``region_indices`` are the cluster's regions ranked by ``region_similarity`` (cosine similarity to the
    medoid, descending); ``medoid_index`` is a region index; ``kept`` says whether step 5 kept it.
    """

    cluster_id: int
    score: float
    influence: float
    gap: np.ndarray
    acc_in: np.ndarray
    acc_out: np.ndarray
    n_in: np.ndarray
    n_out: np.ndarray
    influence_per_class: np.ndarray
    medoid_index: int
    size: int
    kept: bool
    region_indices: np.ndarray
    region_similarity: np.ndarray

    def to_dict(self, max_regions: int | None = 50, regions: Sequence[Any] | None = None) -> dict[str, Any]:
        idx = self.region_indices if max_regions is None else self.region_indices[:max_regions]
        out: dict[str, Any] = {
            "cluster_id": int(self.cluster_id),
            "score": float(self.score),
            "influence": float(self.influence),
            "kept": bool(self.kept),
            "size": int(self.size),
            "medoid_index": int(self.medoid_index),
            "gap": [float(v) for v in self.gap],
            "acc_in": _nan_to_none(self.acc_in),
            "acc_out": _nan_to_none(self.acc_out),
            "n_in": [int(v) for v in self.n_in],
            "n_out": [int(v) for v in self.n_out],
            "influence_per_class": [float(v) for v in self.influence_per_class],
            "ranked_regions": [int(i) for i in idx],
            "ranked_similarity": [round(float(s), 6) for s in self.region_similarity[: len(idx)]],
        }
        if regions is not None:
            out["ranked_region_boxes"] = [regions[int(i)].to_dict() for i in idx]
        return out


@dataclass
class DiscoveryResult:
    """What :func:`~trustvl.discovery.ravl.discover_spurious_regions` found.

    ``clusters``: the kept clusters, ranked (most spurious first). ``all_clusters``: every cluster, by id.
    ``message``: a human summary (``"nothing to discover: ..."`` when no image is misclassified).
    ``clustering``: the K-medoids result (None when nothing was clustered). ``regions``: the
    :class:`~trustvl.discovery.regions.Region` list when the caller (e.g. :func:`~trustvl.discovery.ravl.discover`) had one.
    ``medoid_embeds``: ``[k, d]`` float32, each cluster's medoid region embedding (row = cluster id; None when
    nothing was clustered), what ``flag_clusters="top1_similar"`` compares (not part of :meth:`to_dict`).
    """

    clusters: list[SpuriousCluster]
    all_clusters: list[SpuriousCluster]
    n_regions: int
    n_images: int
    n_classes: int
    message: str
    clustering: KMedoidsClustering | None = None
    image_accuracy: float = float("nan")
    params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    regions: list[Any] | None = None
    class_names: list[str] | None = None
    image_preds: np.ndarray | None = None
    medoid_embeds: np.ndarray | None = None

    @property
    def k(self) -> int:
        return 0 if self.clustering is None else int(self.clustering.k)

    def ranked_region_indices(self) -> np.ndarray:
        """All regions of the ranked clusters, concatenated in rank order (see
        :func:`~trustvl.discovery.ravl.precision_at_k`)."""
        if not self.clusters:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([c.region_indices for c in self.clusters]).astype(np.int64)

    def to_dict(self, max_regions: int | None = 50) -> dict[str, Any]:
        return {
            "message": self.message,
            "n_regions": int(self.n_regions),
            "n_images": int(self.n_images),
            "n_classes": int(self.n_classes),
            "class_names": self.class_names,
            "image_accuracy": None if not math.isfinite(self.image_accuracy) else float(self.image_accuracy),
            "k": self.k,
            "clustering": None if self.clustering is None else self.clustering.summary(),
            "params": self.params,
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
            "ranked_clusters": [c.to_dict(max_regions, self.regions) for c in self.clusters],
            "all_clusters": [
                {k: v for k, v in c.to_dict(0).items() if not k.startswith("ranked_")}
                for c in self.all_clusters
            ],
        }

    def to_json(self, path: str | os.PathLike | None = None, *, max_regions: int | None = 50) -> str:
        """JSON text of :meth:`to_dict`; also written (atomically) to ``path`` when given."""
        obj = self.to_dict(max_regions)
        if path is not None:
            write_json(path, obj)
        return json.dumps(obj, indent=2)
