"""RaVL discovery from precomputed region embeddings and zero-shot outputs (SPEC §3 steps 2-5):
:func:`discover_spurious_regions`, and the whole-image baseline :func:`discover_spurious_images`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from trustvl.discovery.clustering import KMedoidsClustering, cluster_embeddings, k_candidates
from trustvl.discovery.ravl.inputs import check_discovery_inputs
from trustvl.discovery.ravl.ranking import rank_key
from trustvl.discovery.ravl.results import NOTHING_TO_DISCOVER, DiscoveryResult, SpuriousCluster
from trustvl.discovery.ravl.statistics import score_clusters
from trustvl.errors import TrustVLInputError
from trustvl.utils.checks import check_embeddings

__all__ = ["discover_spurious_images", "discover_spurious_regions"]


def discover_spurious_regions(
    region_embeds: Any,
    region_image_index: Any,
    image_labels: Any,
    image_preds: Any,
    region_class_scores: Any,
    n_classes: int,
    *,
    k: int | None = None,
    seed: int = 0,
    min_influence: float = 0.25,
    min_regions_for_influence: int = 2,
    k_values: Any = None,
    max_exact: int | None = 10_000,
    max_iter: int = 300,
    algorithm: str = "alternate",
    n_cpu: int = 1,
    device: Any = "cpu",
    clustering: KMedoidsClustering | None = None,
    class_names: Sequence[str] | None = None,
) -> DiscoveryResult:
    """RaVL discovery (SPEC §3 steps 2-5) from precomputed region embeddings and zero-shot outputs.

    Args:
        region_embeds: ``[n_regions, d]`` region embeddings (normalised here).
        region_image_index: ``[n_regions]`` image of each region, in ``[0, n_images)``.
        image_labels, image_preds: ``[n_images]`` true and zero-shot predicted classes.
        region_class_scores: ``[n_regions, n_classes]`` zero-shot scores (e.g. cosine similarity to prompts).
        n_classes: C >= 2.
        k: number of clusters; default chosen by silhouette in ``[2C, 5C)`` (or among ``k_values``).
        seed: makes clustering deterministic.
        min_influence: step-5 influence threshold (0.25).
        min_regions_for_influence: step 4 counts only images with at least this many regions (2 = "more than
            one region").
        max_exact, max_iter, algorithm, n_cpu, device: see
            :func:`~trustvl.discovery.clustering.cluster_embeddings` (``max_exact=None``: exact mode on all
            regions; default: exact up to 10,000 regions, else a 10,000-region sweep and assignment).
        clustering: a precomputed :class:`KMedoidsClustering` of these regions (skips clustering).

    Raises:
        TrustVLInputError: fewer regions than clusters, a single class, predictions and labels of different
            lengths, non-finite embeddings or scores, out-of-range indices.
    """
    t0 = time.perf_counter()
    emb = check_embeddings(region_embeds, "region_embeds")
    n_regions = emb.shape[0]
    img, labels, preds, scores = check_discovery_inputs(
        region_image_index, image_labels, image_preds, region_class_scores, n_classes, n_regions
    )
    if class_names is not None and len(class_names) != n_classes:
        raise TrustVLInputError(
            f"{len(class_names)} class_names for n_classes={n_classes}; expected one per class"
        )
    min_k = (
        int(k)
        if k is not None
        else (min(int(v) for v in k_values) if k_values is not None else k_candidates(n_classes).start)
    )
    if k is not None and int(k) < 1:
        raise TrustVLInputError(f"k={k}; expected a positive number of clusters")
    if n_regions < min_k:
        raise TrustVLInputError(
            f"{n_regions} regions but k={min_k} clusters are needed; expected more regions than clusters"
        )
    params = {
        "k": k,
        "seed": seed,
        "min_influence": min_influence,
        "min_regions_for_influence": min_regions_for_influence,
        "max_exact": max_exact,
        "algorithm": algorithm,
        "k_values": None if k_values is None else [int(v) for v in k_values],
    }
    accuracy = float((labels == preds).mean())
    names = None if class_names is None else [str(c) for c in class_names]
    timings: dict[str, float] = {}
    if accuracy == 1.0:
        return DiscoveryResult(
            [],
            [],
            n_regions,
            len(labels),
            n_classes,
            NOTHING_TO_DISCOVER,
            None,
            accuracy,
            params,
            {"total": time.perf_counter() - t0},
            None,
            names,
            preds,
        )

    t = time.perf_counter()
    if clustering is None:
        clustering = cluster_embeddings(
            emb,
            n_classes,
            k=k,
            k_values=k_values,
            seed=seed,
            max_exact=max_exact,
            max_iter=max_iter,
            algorithm=algorithm,
            n_cpu=n_cpu,
            device=device,
        )
    elif len(clustering.labels) != n_regions:
        raise TrustVLInputError(
            f"clustering has {len(clustering.labels)} labels for {n_regions} regions; expected one per region"
        )
    timings["clustering"] = time.perf_counter() - t

    t = time.perf_counter()
    kk = int(clustering.k)
    cl = np.asarray(clustering.labels, dtype=np.int64)
    stats = score_clusters(
        cl, kk, img, labels, preds, scores, n_classes, min_regions_for_influence=min_regions_for_influence
    )
    gap = stats["gap"]
    score = np.abs(gap).sum(axis=1)
    both_signs = (gap > 0).any(axis=1) & (gap < 0).any(axis=1)
    kept = both_signs & (stats["influence"] >= min_influence)
    # regions ranked inside every cluster at once: by cluster, then similarity desc, then index
    ridx = np.arange(n_regions)
    sim = np.asarray(clustering.similarity, dtype=np.float32)
    order = np.lexsort((ridx, -sim.astype(np.float64), cl))
    bounds = np.searchsorted(cl[order], np.arange(kk + 1))
    all_clusters = []
    for j in range(kk):  # loop over clusters (<= 5C), not over images
        members = order[bounds[j] : bounds[j + 1]]
        all_clusters.append(
            SpuriousCluster(
                cluster_id=j,
                score=float(score[j]),
                influence=float(stats["influence"][j]),
                gap=gap[j],
                acc_in=stats["acc_in"][j],
                acc_out=stats["acc_out"][j],
                n_in=stats["n_in"][j],
                n_out=stats["n_out"][j],
                influence_per_class=stats["influence_per_class"][j],
                medoid_index=int(clustering.medoids[j]),
                size=len(members),
                kept=bool(kept[j]),
                region_indices=members,
                region_similarity=sim[members],
            )
        )
    ranked = sorted((c for c in all_clusters if c.kept), key=rank_key)
    timings["scoring"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    if ranked:
        message = (
            f"{len(ranked)} of {kk} clusters kept (gaps of both signs, influence >= {min_influence});"
            f" top cluster {ranked[0].cluster_id} with score {ranked[0].score:.4f}"
        )
    else:
        message = f"no cluster of {kk} has gaps of both signs and influence >= {min_influence}"
    return DiscoveryResult(
        ranked,
        all_clusters,
        n_regions,
        len(labels),
        n_classes,
        message,
        clustering,
        accuracy,
        params,
        timings,
        None,
        names,
        preds,
        np.asarray(emb[np.asarray(clustering.medoids, dtype=np.int64)], dtype=np.float32),
    )


def discover_spurious_images(
    image_embeds: Any,
    image_labels: Any,
    image_preds: Any,
    image_class_scores: Any,
    n_classes: int,
    **kwargs: Any,
) -> DiscoveryResult:
    """Whole-image baseline: :func:`discover_spurious_regions` with every image as its only region.

    ``min_regions_for_influence`` defaults to 1 here (see the package docstring); ranked "regions" are
    image indices, so score it with ``precision_at_k(result, image_has_artefact)``.
    """
    kwargs.setdefault("min_regions_for_influence", 1)
    n = len(image_labels)
    return discover_spurious_regions(
        image_embeds, np.arange(n), image_labels, image_preds, image_class_scores, n_classes, **kwargs
    )
