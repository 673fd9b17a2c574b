"""RaVL steps 3-4 for every cluster at once: the per-class accuracy gap and the influence
(:func:`score_clusters`; definitions in the package docstring)."""

from __future__ import annotations

import numpy as np

__all__ = ["score_clusters"]


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
    Inputs are assumed validated (see :func:`~trustvl.discovery.ravl.discover_spurious_regions`).
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
