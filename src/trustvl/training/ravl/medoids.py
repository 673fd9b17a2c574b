"""Spurious region flags: the discovery clusters' medoids (:class:`SpuriousMedoids`) and nearest-medoid flags
of the clusters a flag strategy selects (:mod:`.flag_strategies`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trustvl.errors import TrustVLInputError
from trustvl.training.ravl.data import region_crops
from trustvl.training.ravl.flag_strategies import (
    DEFAULT_FLAG_STRATEGY,
    ClusterStatistics,
    FlagSelection,
    select_flag_clusters,
)

MEDOIDS_FILE = "spurious_medoids.npz"


def _float32_array(x: Any) -> np.ndarray:
    """A tensor or array-like as a float32 numpy array."""
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float32)


@dataclass
class SpuriousMedoids:
    """The discovery clusters in portable form: enough to flag regions of new images.

    Attributes:
        medoid_embeds: ``[k, d]`` L2-normalised embedding of every cluster's medoid (cluster id = row).
        kept: ``[k]`` whether discovery kept (ranked) the cluster as spurious.
        rank: ``[k]`` rank of a kept cluster (0 = most spurious), -1 for the others.
        model: the model whose embedding space this is (informational, e.g. a path), or `None`.
        statistics: discovery's per-cluster statistics (scores, gaps, influence), which the flag strategies
            other than ``"top1"``/``"all_kept"`` read; `None` in files written before they were saved.
    """

    medoid_embeds: np.ndarray
    kept: np.ndarray
    rank: np.ndarray
    model: str | None = None
    statistics: ClusterStatistics | None = None

    def __post_init__(self) -> None:
        emb = np.asarray(self.medoid_embeds, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] == 0 or not np.isfinite(emb).all():
            raise TrustVLInputError(
                f"medoid_embeds has shape {emb.shape}; expected a finite non-empty [k, d] array"
            )
        self.medoid_embeds = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        self.kept = np.asarray(self.kept, dtype=bool).reshape(-1)
        self.rank = np.asarray(self.rank, dtype=np.int64).reshape(-1)
        if len(self.kept) != len(emb) or len(self.rank) != len(emb):
            raise TrustVLInputError(
                f"kept ({len(self.kept)}) and rank ({len(self.rank)}) need one entry per medoid ({len(emb)})"
            )
        if self.statistics is not None and len(self.statistics.score) != len(emb):
            raise TrustVLInputError(
                f"statistics cover {len(self.statistics.score)} clusters; expected one per medoid ({len(emb)})"
            )

    @property
    def k(self) -> int:
        return int(self.medoid_embeds.shape[0])

    @property
    def n_spurious(self) -> int:
        return int(self.kept.sum())

    @classmethod
    def from_result(cls, result: Any, region_embeds: Any, *, model: str | None = None) -> SpuriousMedoids:
        """From a :class:`~trustvl.discovery.DiscoveryResult` and the ``[n_regions, d]`` region embeddings
        discovery clustered (the medoids are rows of it)."""
        if getattr(result, "clustering", None) is None or not getattr(result, "all_clusters", None):
            raise TrustVLInputError(
                f"the discovery result has no clustering ({getattr(result, 'message', '')!r}); there are no"
                " clusters to flag regions with"
            )
        emb = _float32_array(region_embeds)
        if emb.ndim != 2 or emb.shape[0] != result.n_regions:
            raise TrustVLInputError(
                f"region_embeds has shape {emb.shape}; expected ({result.n_regions}, d), the embeddings of the"
                " regions discovery clustered"
            )
        clusters = sorted(result.all_clusters, key=lambda c: c.cluster_id)
        rank = np.full(len(clusters), -1, dtype=np.int64)
        for r, c in enumerate(result.clusters):
            rank[c.cluster_id] = r
        return cls(
            medoid_embeds=emb[[c.medoid_index for c in clusters]],
            kept=np.array([c.kept for c in clusters], dtype=bool),
            rank=rank,
            model=model,
            statistics=ClusterStatistics.from_result(result),
        )

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez(
            tmp,
            medoid_embeds=self.medoid_embeds,
            kept=self.kept,
            rank=self.rank,
            model=np.array("" if self.model is None else str(self.model)),
            **(self.statistics.to_arrays() if self.statistics is not None else {}),
        )
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SpuriousMedoids:
        """Load a file written by :meth:`save`, or the ``spurious_medoids.npz`` inside a discovery folder."""
        path = Path(path)
        if path.is_dir():
            path = path / MEDOIDS_FILE
        if not path.is_file():
            raise TrustVLInputError(
                f"{str(path)!r} does not exist; expected a discovery folder written by"
                " trustvl.evaluation.ravl.run_discovery (with spurious_medoids.npz)"
            )
        with np.load(path, allow_pickle=False) as data:
            model = str(data["model"]) or None
            statistics = ClusterStatistics.from_arrays(data)
            return cls(data["medoid_embeds"], data["kept"], data["rank"], model, statistics)

    def selected(self, clusters: Sequence[int] | None = None, top: int | None = None) -> np.ndarray:
        """Boolean ``[k]`` mask of the clusters treated as spurious: ``clusters`` (ids) if given, else the kept
        ones, restricted to the ``top`` best ranked when ``top`` is set."""
        if clusters is not None and top is not None:
            raise TrustVLInputError("pass either clusters (explicit ids) or top (best ranked), not both")
        if clusters is not None:
            ids = np.asarray(list(clusters), dtype=np.int64)
            if ids.size and (ids.min() < 0 or ids.max() >= self.k):
                raise TrustVLInputError(f"clusters={list(clusters)}; expected cluster ids in [0, {self.k})")
            mask = np.zeros(self.k, dtype=bool)
            mask[ids] = True
        else:
            mask = self.kept.copy()
        if top is not None:
            if top < 1:
                raise TrustVLInputError(f"top={top}; expected a positive number of clusters")
            mask &= (self.rank >= 0) & (self.rank < top)
        return mask

    def select(
        self,
        strategy: str = DEFAULT_FLAG_STRATEGY,
        clusters: Sequence[int] | None = None,
        top: int | None = None,
        *,
        allow_empty: bool = False,
    ) -> FlagSelection:
        """The clusters mitigation acts on: ``strategy`` (:mod:`.flag_strategies`) among the candidates of
        :meth:`selected` (``clusters``/``top``).

        Raises:
            TrustVLInputError: nothing is selected (discovery kept no cluster, or the strategy kept none of
                the candidates) unless ``allow_empty``; a bad strategy.
        """
        candidates = self.selected(clusters, top)
        selection = select_flag_clusters(
            self.kept,
            self.rank,
            strategy,
            statistics=self.statistics,
            candidates=candidates,
            medoid_embeds=self.medoid_embeds,
        )
        if not allow_empty and not selection.mask.any():
            raise TrustVLInputError(
                f"no spurious cluster to mitigate: discovery kept {self.n_spurious} of its {self.k} clusters and"
                f" flag_clusters={strategy!r} selected none of the {int(candidates.sum())} candidates; there is"
                " nothing for the RaVL loss to suppress. Pass allow_empty=True to train with every region"
                " flagged non-spurious."
            )
        return selection

    def require_selection(self, clusters: Sequence[int] | None = None, top: int | None = None) -> np.ndarray:
        """:meth:`selected`, raising :class:`~trustvl.errors.TrustVLInputError` when it is empty."""
        mask = self.selected(clusters, top)
        if not mask.any():
            raise TrustVLInputError(
                f"no spurious cluster to mitigate: discovery kept none of its {self.k} clusters (or the"
                " selection is empty); there is nothing for the RaVL loss to suppress. Pass allow_empty=True"
                " to train with every region flagged non-spurious."
            )
        return mask

    def assign(self, region_embeds: Any) -> np.ndarray:
        """The nearest medoid (cluster id, highest cosine similarity) of each region embedding ``[n, d]``."""
        from trustvl.discovery.clustering import assign_to_medoids

        emb = _float32_array(region_embeds)
        if emb.ndim != 2 or emb.shape[1] != self.medoid_embeds.shape[1]:
            raise TrustVLInputError(
                f"region_embeds has shape {emb.shape}; expected [n, {self.medoid_embeds.shape[1]}] (the"
                " embedding size of the discovery model)"
            )
        if emb.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(assign_to_medoids(emb, self.medoid_embeds)[0], dtype=np.int64)

    def region_weights(self, region_embeds: Any, selection: FlagSelection) -> np.ndarray:
        """``[n]`` float weight of each region: its nearest cluster's weight in ``selection`` (0: not
        spurious; 1 for every acted-on cluster except under ``"score_weighted"``)."""
        if len(selection.weights) != self.k:
            raise TrustVLInputError(
                f"the selection covers {len(selection.weights)} clusters; expected {self.k}"
            )
        return np.asarray(selection.weights, dtype=np.float32)[self.assign(region_embeds)]

    def flags(
        self,
        region_embeds: Any,
        *,
        clusters: Sequence[int] | None = None,
        top: int | None = None,
        allow_empty: bool = False,
        strategy: str = DEFAULT_FLAG_STRATEGY,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(spurious [n] bool, nearest cluster [n] int64)`` of new region embeddings ``[n, d]``.

        Every region goes to its nearest medoid among *all* clusters (highest cosine similarity); it is
        spurious when ``strategy`` acts on that cluster (:meth:`select`; the default, ``"top1"``, flags
        the top-ranked kept cluster, within the ``clusters``/``top`` selection).

        Raises:
            TrustVLInputError: no cluster is selected (discovery kept none) unless ``allow_empty``, in which
                case every flag is False (:func:`~trustvl.training.ravl.train_ravl` then trains standard
                fine-tuning, ``L_CLIP`` alone).
        """
        selection = self.select(strategy, clusters, top, allow_empty=allow_empty)
        assigned = self.assign(region_embeds)
        return selection.mask[assigned], assigned


def spurious_region_flags(
    result: Any,
    discovery_region_embeds: Any,
    region_embeds: Any,
    *,
    clusters: Sequence[int] | None = None,
    top: int | None = None,
    allow_empty: bool = False,
    strategy: str = DEFAULT_FLAG_STRATEGY,
) -> np.ndarray:
    """Per-region spurious flags of new data by nearest-medoid assignment (see :class:`SpuriousMedoids`).

    Args:
        result: the :class:`~trustvl.discovery.DiscoveryResult`.
        discovery_region_embeds: ``[n_regions, d]`` embeddings of the regions discovery clustered.
        region_embeds: ``[n, d]`` embeddings (same model) of the regions to flag.
        clusters: candidate cluster ids (default: the kept ones); ``top``: only the ``top`` ranked.
        allow_empty: with no spurious cluster, return all-False instead of raising.
        strategy: which candidates are acted on (:mod:`.flag_strategies`).

    Returns:
        ``[n]`` bool.
    """
    medoids = SpuriousMedoids.from_result(result, discovery_region_embeds)
    return medoids.flags(
        region_embeds, clusters=clusters, top=top, allow_empty=allow_empty, strategy=strategy
    )[0]


def embed_region_grid(
    model: Any,
    processor: Any,
    images: Sequence[Any],
    *,
    grid_n: int = 2,
    batch_size: int = 128,
    progress: bool = False,
) -> np.ndarray:
    """``[n · grid_n², d]`` embeddings of the grid regions of ``images`` (row-major per image)."""
    from trustvl.modeling.embedding import embed_images

    n = len(images)
    if n == 0:
        raise TrustVLInputError("no images to flag; expected at least one image")
    crops = (c for img in images for c in region_crops(img, grid_n))
    emb = embed_images(
        model,
        processor,
        crops,
        batch_size=batch_size,
        total=n * grid_n * grid_n,
        progress=progress,
        desc="embedding regions for flags",
    )
    return _float32_array(emb)


def compute_region_weights(
    model: Any,
    processor: Any,
    images: Sequence[Any],
    medoids: SpuriousMedoids,
    selection: FlagSelection,
    *,
    grid_n: int = 2,
    batch_size: int = 128,
    progress: bool = False,
) -> np.ndarray:
    """Embed the grid regions of ``images`` with ``model`` (the discovery model) and weight them by the
    acted-on clusters of ``selection``: ``[n, R]`` float (0 = not spurious)."""
    emb = embed_region_grid(model, processor, images, grid_n=grid_n, batch_size=batch_size, progress=progress)
    return medoids.region_weights(emb, selection).reshape(len(images), grid_n * grid_n)


def compute_region_flags(
    model: Any,
    processor: Any,
    images: Sequence[Any],
    medoids: SpuriousMedoids,
    *,
    grid_n: int = 2,
    batch_size: int = 128,
    clusters: Sequence[int] | None = None,
    top: int | None = None,
    allow_empty: bool = False,
    progress: bool = False,
    strategy: str = DEFAULT_FLAG_STRATEGY,
) -> np.ndarray:
    """Embed the grid regions of ``images`` with ``model`` (the discovery model) and flag them: ``[n, R]``."""
    selection = medoids.select(strategy, clusters, top, allow_empty=allow_empty)
    weights = compute_region_weights(
        model, processor, images, medoids, selection, grid_n=grid_n, batch_size=batch_size, progress=progress
    )
    return weights > 0
