"""Candidate regions of images (RaVL step 1, SPEC §3): decomposition, crops, embeddings, zero-shot scores.

The geometry (:class:`Region`, :func:`grid_regions`, :func:`make_regions`, crops) lives in the data layer,
:mod:`trustvl.data_builders.ravl.regions`, and is re-exported here; this module adds what needs a model:
:func:`embed_regions` embeds regions with the vision tower of a CLIP-style model (through
:func:`trustvl.modeling.embedding.embed_images`, i.e. ``model.get_image_features(pixel_values=...)``,
``.pooler_output`` in transformers 5), and :func:`zero_shot_scores` gives cosine-similarity logits against
class-prompt embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from trustvl.data_builders.ravl.regions import (
    Box,
    Region,
    crop_regions,
    grid_regions,
    iter_region_crops,
    make_regions,
)
from trustvl.errors import TrustVLInputError

__all__ = [
    "Box",
    "Region",
    "crop_regions",
    "embed_regions",
    "grid_regions",
    "iter_region_crops",
    "make_regions",
    "zero_shot_scores",
]


def embed_regions(
    model,
    processor,
    images: Sequence[Any],
    regions: Sequence[Region],
    batch_size: int = 64,
    progress: bool = True,
    *,
    fill: tuple[int, int, int] = (0, 0, 0),
) -> np.ndarray:
    """Embed every region's crop with the model's vision tower; L2-normalised float32 ``[n_regions, d]``.

    Crops are produced lazily batch by batch, so memory stays bounded for large region sets.
    """
    from trustvl.modeling.embedding import embed_images

    if len(regions) == 0:
        raise TrustVLInputError("no regions to embed; expected at least one region")
    emb = embed_images(
        model,
        processor,
        iter_region_crops(images, regions, fill=fill),
        batch_size=batch_size,
        total=len(regions),
        progress=progress,
        desc="embedding regions",
    )
    return emb.numpy().astype(np.float32, copy=False)


def _as_2d_float(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise TrustVLInputError(f"{name} has shape {arr.shape}; expected a 2-D [n, d] array")
    if not np.isfinite(arr).all():
        raise TrustVLInputError(f"{name} contains non-finite values (NaN or inf); expected finite embeddings")
    return arr


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def zero_shot_scores(embeds: Any, text_embeds: Any, *, scale: float = 1.0) -> np.ndarray:
    """Cosine-similarity logits ``scale * cos(embeds_i, text_c)`` as float32 ``[n, n_classes]``.

    Both inputs are L2-normalised here (whether or not they already were). With the default
    ``scale=1`` the values are plain cosine similarities; pass the model's ``logit_scale.exp()`` for
    CLIP logits (the argmax, and so every prediction, is the same).
    """
    e = _normalize(_as_2d_float(embeds, "embeds"))
    t = _normalize(_as_2d_float(text_embeds, "text_embeds"))
    if e.shape[1] != t.shape[1]:
        raise TrustVLInputError(
            f"embeds have dimension {e.shape[1]} but text_embeds {t.shape[1]}; expected equal"
        )
    return (float(scale) * (e @ t.T)).astype(np.float32)
