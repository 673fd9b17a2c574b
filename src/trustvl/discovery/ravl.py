"""RaVL discovery of spurious regions (SPEC §3 steps 3-5), vectorised with numpy.

Given region embeddings (each region belongs to one image), image labels and zero-shot predictions, and
every region's zero-shot class scores, :func:`discover_spurious_regions` clusters the regions
(:mod:`trustvl.discovery.clustering`) and scores every cluster ``j`` and class ``l``:

* **gap** (step 3): the images of class ``l`` with at least one region in ``j`` ("in") against those
  with none ("out"): ``gap_l = 2 min(n_in, n_out) / (n_in + n_out) * (acc_in - acc_out)`` where ``acc`` is
  zero-shot image accuracy. **Definition:** ``gap_l = 0`` when ``n_in`` or ``n_out`` is 0 (no contrast to
  measure; this includes classes with no images), and ``acc_in``/``acc_out`` are then NaN (``null`` in
  JSON).
* **influence** (step 4): for each class ``l`` with ``gap_l < 0``, take the misclassified images of class
  ``l`` that have more than one region (``min_regions_for_influence=2``) **and at least one region in**
  ``j``; in each, the region with the highest zero-shot score for the image's *predicted* class (ties:
  lowest region index); ``influence_l`` = the fraction of those images whose top region lies in ``j`` (0
  when there are no such images or ``gap_l >= 0``). Only images with a region in ``j`` are counted, as
  in the paper's public code (SPEC §3 step 4). Cluster influence = ``max_l influence_l``.
* **keep and rank** (step 5): keep clusters whose gaps contain both signs (some ``gap_l > 0`` and some
  ``< 0``) and whose influence is ``>= min_influence`` (0.25); rank them by ``score = sum_l |gap_l|``,
  descending. **Ties** (scores equal after rounding to 12 decimals, so that summation order cannot
  decide): higher influence first, then the larger cluster, then the cluster whose medoid has the lower
  region index. The last key does not depend on how the clustering numbered its clusters, so the ranking
  is a function of the regions alone. Inside a cluster, regions are ranked by cosine similarity to the
  medoid (descending; ties by region index).

Everything is computed with a one-hot image x cluster membership matrix and per-class matrix products;
there is no Python loop over images or regions, so a million regions take seconds.

**Precision@k** (:func:`precision_at_k`): the ranked regions of the ranked clusters are concatenated (all
of the first cluster's regions in their order, then the second cluster's, ...); precision@k is the
fraction of the first ``k`` that contain the artefact, always divided by ``k`` (a result with fewer than
``k`` ranked regions, or none, counts the missing ones as misses).

**Whole-image baseline** (:func:`discover_spurious_images`): the same procedure where every image is its
own single region (image embeddings clustered, image scores as region scores). Step 4 then needs
``min_regions_for_influence=1`` (with one region per image the "region scoring highest for the predicted
class" is the image itself), otherwise no cluster could ever be kept. Its precision@k counts an *image*
as a hit when the artefact appears anywhere in it; this is lenient to the baseline (a whole image is a
coarser unit than a region), so the comparison favours the baseline, not RaVL.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trustvl.discovery.clustering import KMedoidsClustering, cluster_embeddings, k_candidates
from trustvl.errors import TrustVLInputError
from trustvl.utils.checks import check_embeddings

__all__ = [
    "DiscoveryResult",
    "NOTHING_TO_DISCOVER",
    "SpuriousCluster",
    "discover",
    "discover_spurious_images",
    "discover_spurious_regions",
    "precision_at_k",
    "ranked_regions",
    "score_clusters",
]

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
    """What :func:`discover_spurious_regions` found.

    ``clusters``: the kept clusters, ranked (most spurious first). ``all_clusters``: every cluster, by id.
    ``message``: a human summary (``"nothing to discover: ..."`` when no image is misclassified).
    ``clustering``: the K-medoids result (None when nothing was clustered). ``regions``: the
    :class:`~trustvl.discovery.regions.Region` list when the caller (e.g. :func:`discover`) had one.
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

    @property
    def k(self) -> int:
        return 0 if self.clustering is None else int(self.clustering.k)

    def ranked_region_indices(self) -> np.ndarray:
        """All regions of the ranked clusters, concatenated in rank order (see :func:`precision_at_k`)."""
        return ranked_regions(self)

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
            from trustvl.utils.io import write_json

            write_json(path, obj)
        return json.dumps(obj, indent=2)


def _as_int_vector(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise TrustVLInputError(f"{name} has shape {arr.shape}; expected a 1-D vector")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if (
            not np.issubdtype(arr.dtype, np.number)
            or not np.all(np.isfinite(arr))
            or np.any(arr != np.round(arr))
        ):
            raise TrustVLInputError(f"{name} must hold integers; got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _validate(region_image_index, image_labels, image_preds, region_class_scores, n_classes, n_regions):
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise TrustVLInputError(
            f"n_classes={n_classes!r}; expected at least 2 classes (a single class has no spurious contrast)"
        )
    img = _as_int_vector(region_image_index, "region_image_index")
    labels = _as_int_vector(image_labels, "image_labels")
    preds = _as_int_vector(image_preds, "image_preds")
    if len(labels) != len(preds):
        raise TrustVLInputError(
            f"image_preds has {len(preds)} entries but image_labels has {len(labels)};"
            " expected one prediction per labelled image"
        )
    if len(labels) == 0:
        raise TrustVLInputError("image_labels is empty; expected at least one image")
    if len(img) != n_regions:
        raise TrustVLInputError(
            f"region_image_index has {len(img)} entries but there are {n_regions} region"
            " embeddings; expected one image index per region"
        )
    n_images = len(labels)
    if img.min() < 0 or img.max() >= n_images:
        raise TrustVLInputError(
            f"region_image_index has values in [{img.min()}, {img.max()}]; expected image"
            f" indices in [0, {n_images})"
        )
    for name, arr in (("image_labels", labels), ("image_preds", preds)):
        if arr.min() < 0 or arr.max() >= n_classes:
            raise TrustVLInputError(
                f"{name} has values in [{arr.min()}, {arr.max()}]; expected class ids in [0, {n_classes})"
            )
    if np.unique(labels).size < 2:
        raise TrustVLInputError(
            f"image_labels hold a single class ({int(labels[0])}); expected images of at least 2 classes"
        )
    scores = region_class_scores
    if hasattr(scores, "detach"):
        scores = scores.detach().float().cpu().numpy()
    scores = np.asarray(scores, dtype=np.float32)
    if scores.shape != (n_regions, n_classes):
        raise TrustVLInputError(
            f"region_class_scores has shape {scores.shape}; expected ({n_regions},"
            f" {n_classes}) = (regions, classes)"
        )
    if not np.isfinite(scores).all():
        raise TrustVLInputError(
            "region_class_scores contains non-finite values (NaN or inf); expected finite scores"
        )
    return img, labels, preds, scores


def score_clusters(
    cluster_labels: np.ndarray,
    n_clusters: int,
    region_image_index: np.ndarray,
    image_labels: np.ndarray,
    image_preds: np.ndarray,
    region_class_scores: np.ndarray,
    n_classes: int,
    *,
    min_regions_for_influence: int = 2,
) -> dict[str, np.ndarray]:
    """RaVL steps 3-4 for every cluster at once; arrays of shape ``[n_clusters, n_classes]``.

    Returns ``gap, acc_in, acc_out, n_in, n_out, influence_per_class`` and ``influence`` ``[n_clusters]``.
    Inputs are assumed validated (see :func:`discover_spurious_regions`).
    """
    n_images = len(image_labels)
    k, c = int(n_clusters), int(n_classes)
    # one-hot membership: image i has >= 1 region in cluster j
    member = np.zeros((n_images, k), dtype=np.float64)
    member[region_image_index, cluster_labels] = 1.0
    onehot = np.zeros((n_images, c), dtype=np.float64)
    onehot[np.arange(n_images), image_labels] = 1.0
    correct = (image_preds == image_labels).astype(np.float64)
    n_in = onehot.T @ member  # [C, k]
    corr_in = (onehot * correct[:, None]).T @ member
    n_cls = onehot.sum(axis=0)[:, None]
    corr_cls = (onehot * correct[:, None]).sum(axis=0)[:, None]
    n_out = n_cls - n_in
    corr_out = corr_cls - corr_in
    with np.errstate(invalid="ignore", divide="ignore"):
        acc_in = np.where(n_in > 0, corr_in / n_in, np.nan)
        acc_out = np.where(n_out > 0, corr_out / n_out, np.nan)
        both = (n_in > 0) & (n_out > 0)
        weight = np.where(both, 2.0 * np.minimum(n_in, n_out) / np.maximum(n_in + n_out, 1.0), 0.0)
        gap = np.where(both, weight * (acc_in - acc_out), 0.0)

    # step 4: each eligible misclassified image's region scoring highest for the predicted class
    n_reg = np.bincount(region_image_index, minlength=n_images)
    region_score = region_class_scores[np.arange(len(region_image_index)), image_preds[region_image_index]]
    order = np.lexsort(
        (np.arange(len(region_image_index)), -region_score.astype(np.float64), region_image_index)
    )
    first = np.ones(len(order), dtype=bool)
    first[1:] = region_image_index[order[1:]] != region_image_index[order[:-1]]
    top_region = order[first]  # one per image that has regions, sorted by image index
    top_image = region_image_index[top_region]
    eligible = (image_preds[top_image] != image_labels[top_image]) & (
        n_reg[top_image] >= min_regions_for_influence
    )
    e_img = top_image[eligible]
    e_cls = image_labels[e_img]
    e_clu = cluster_labels[top_region[eligible]]
    hits = np.bincount(e_cls * k + e_clu, minlength=c * k).reshape(c, k).astype(np.float64)
    # denominator: eligible images of class l with at least one region in cluster j
    denom = onehot[e_img].T @ member[e_img]  # [C, k]
    with np.errstate(invalid="ignore", divide="ignore"):
        infl = np.where((denom > 0) & (gap < 0), hits / np.maximum(denom, 1.0), 0.0)
    return {
        "gap": gap.T,
        "acc_in": acc_in.T,
        "acc_out": acc_out.T,
        "n_in": n_in.T.astype(np.int64),
        "n_out": n_out.T.astype(np.int64),
        "influence_per_class": infl.T,
        "influence": infl.max(axis=0) if c else np.zeros(k),
    }


def _rank_key(cluster: SpuriousCluster) -> tuple[float, float, int, int]:
    """Step-5 order: score desc; ties: influence desc, size desc, medoid region index asc (module docstring)."""
    return (-round(cluster.score, 12), -cluster.influence, -cluster.size, cluster.medoid_index)


def ranked_regions(result: DiscoveryResult) -> np.ndarray:
    """The ranked clusters' ranked regions, concatenated: the order precision@k reads."""
    if not result.clusters:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([c.region_indices for c in result.clusters]).astype(np.int64)


def precision_at_k(result: DiscoveryResult, region_is_spurious: Any, k: int = 10) -> float:
    """Fraction of the top ``k`` ranked regions that contain the artefact (always divided by ``k``).

    ``region_is_spurious``: boolean ``[n_regions]`` ground truth (for the whole-image baseline:
    ``[n_images]``, whether the image contains the artefact). See the module docstring.
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
    img, labels, preds, scores = _validate(
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
    ranked = sorted((c for c in all_clusters if c.kept), key=_rank_key)
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

    ``min_regions_for_influence`` defaults to 1 here (see the module docstring); ranked "regions" are
    image indices, so score it with ``precision_at_k(result, image_has_artefact)``.
    """
    kwargs.setdefault("min_regions_for_influence", 1)
    n = len(image_labels)
    return discover_spurious_regions(
        image_embeds, np.arange(n), image_labels, image_preds, image_class_scores, n_classes, **kwargs
    )


def _prompt_embeddings(model, processor, class_prompts: Sequence[Any]) -> np.ndarray:
    """One normalised text embedding per class (the mean of its prompts when a class has several)."""
    from trustvl.modeling.embedding import embed_texts

    if len(class_prompts) < 2:
        raise TrustVLInputError(
            f"{len(class_prompts)} class prompts; expected one per class, at least 2 classes"
        )
    groups = [[p] if isinstance(p, str) else list(p) for p in class_prompts]
    if any(len(g) == 0 for g in groups):
        raise TrustVLInputError("a class has an empty prompt list; expected at least one prompt per class")
    flat = [p for g in groups for p in g]
    emb = embed_texts(model, processor, flat).numpy()
    out, start = [], 0
    for g in groups:
        m = emb[start : start + len(g)].mean(axis=0)
        out.append(m / max(float(np.linalg.norm(m)), 1e-12))
        start += len(g)
    return np.stack(out).astype(np.float32)


def discover(
    model,
    processor,
    images: Sequence[Any],
    labels: Any,
    class_prompts: Sequence[Any],
    *,
    regions: Any = "grid",
    grid_n: int = 2,
    batch_size: int = 64,
    progress: bool = True,
    class_names: Sequence[str] | None = None,
    fill: tuple[int, int, int] = (0, 0, 0),
    **kwargs: Any,
) -> DiscoveryResult:
    """End to end: embed images and regions with ``model``, zero-shot classify, run RaVL discovery.

    ``images``: PIL images (or arrays); ``labels``: class ids; ``class_prompts``: one prompt per class (or a
    list of prompts per class, averaged). ``regions``: anything :func:`~trustvl.discovery.regions.make_regions`
    accepts (``"grid"`` = ``grid_n x grid_n`` cells). Other keyword arguments go to
    :func:`discover_spurious_regions`. The result also carries ``regions`` (for visualisation) and the
    zero-shot ``image_preds``.
    """
    from trustvl.discovery.regions import embed_regions, make_regions, zero_shot_scores
    from trustvl.modeling.embedding import embed_images

    t0 = time.perf_counter()
    images = list(images)
    labels = _as_int_vector(labels, "labels")
    if len(labels) != len(images):
        raise TrustVLInputError(
            f"{len(labels)} labels for {len(images)} images; expected one label per image"
        )
    text = _prompt_embeddings(model, processor, class_prompts)
    img_emb = embed_images(
        model, processor, images, batch_size=batch_size, total=len(images), progress=progress
    ).numpy()
    preds = zero_shot_scores(img_emb, text).argmax(axis=1)
    region_list = make_regions(images, regions, n=grid_n)
    if not region_list:
        raise TrustVLInputError("no candidate regions were produced; expected at least one region")
    t_embed = time.perf_counter()
    reg_emb = embed_regions(
        model, processor, images, region_list, batch_size=batch_size, progress=progress, fill=fill
    )
    t_embed = time.perf_counter() - t_embed
    reg_scores = zero_shot_scores(reg_emb, text)
    region_image_index = np.array([r.image_index for r in region_list], dtype=np.int64)
    result = discover_spurious_regions(
        reg_emb, region_image_index, labels, preds, reg_scores, len(text), class_names=class_names, **kwargs
    )
    result.regions = region_list
    result.timings["embed_regions"] = t_embed
    result.timings["end_to_end"] = time.perf_counter() - t0
    return result
