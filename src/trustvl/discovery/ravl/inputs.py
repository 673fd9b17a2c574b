"""Checks of RaVL discovery's inputs: integer vectors, index ranges, label/prediction lengths, the shape and
finiteness of the zero-shot scores (:func:`check_discovery_inputs`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from trustvl.errors import TrustVLInputError

__all__ = ["as_int_vector", "check_discovery_inputs"]


def as_int_vector(x: Any, name: str) -> np.ndarray:
    """``x`` (array, list or tensor) as a 1-D int64 vector; raises unless it holds whole numbers."""
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


def check_discovery_inputs(
    region_image_index, image_labels, image_preds, region_class_scores, n_classes, n_regions
):
    """The checked inputs of :func:`~trustvl.discovery.ravl.discover_spurious_regions` as numpy arrays:
    ``(region_image_index, image_labels, image_preds, region_class_scores)``."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise TrustVLInputError(
            f"n_classes={n_classes!r}; expected at least 2 classes (a single class has no spurious contrast)"
        )
    img = as_int_vector(region_image_index, "region_image_index")
    labels = as_int_vector(image_labels, "image_labels")
    preds = as_int_vector(image_preds, "image_preds")
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
