"""Candidate regions of images (RaVL step 1, SPEC §3): decomposition, crops, embeddings, zero-shot scores.

The geometry (:class:`Region`, :func:`grid_regions`, :func:`make_regions`, crops) lives in the data layer,
:mod:`trustvl.data_builders.ravl.regions`, and is re-exported here; this module adds what needs a model:
:func:`embed_regions` embeds regions with the vision tower of a CLIP-style model (through
:func:`trustvl.modeling.embedding.embed_images`, i.e. ``model.get_image_features(pixel_values=...)``,
``.pooler_output`` in transformers 5), and :func:`zero_shot_scores` gives cosine-similarity logits against
class-prompt embeddings.

**Region views** (:data:`REGION_VIEWS`, what the vision tower is shown for a region):

* ``"crop"`` (default): the region's box cut out; the processor resizes it to the model's input size, so a
  quarter cell of a 64 px image is seen twice as large as in the image.
* ``"in_place"``: the whole image's canvas with every pixel outside the region (its box, and its mask when
  it has one) set to ``fill``: the region keeps its size and position. A CLIP that reads a small artefact at
  the scale and place it was trained on (a watermark in a corner) sees it there; this is a mask region in
  SPEC §3 step 1's sense ("proposals/masks"), the mask being the region's box.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from trustvl.data_builders.ravl.regions import (
    Box,
    Region,
    crop_regions,
    grid_regions,
    iter_region_crops,
    make_regions,
    to_rgb_image,
)
from trustvl.errors import TrustVLInputError

__all__ = [
    "REGION_VIEWS",
    "Box",
    "Region",
    "crop_regions",
    "embed_regions",
    "grid_regions",
    "iter_region_crops",
    "make_regions",
    "region_views",
    "zero_shot_scores",
]

#: what :func:`embed_regions` shows the vision tower for a region (module docstring)
REGION_VIEWS = ("crop", "in_place")


def _check_view(view: str) -> None:
    if view not in REGION_VIEWS:
        raise TrustVLInputError(
            f"region view {view!r} is not supported; expected one of {list(REGION_VIEWS)}"
        )


def _in_place(image: Any, region: Region, fill: tuple[int, int, int]):
    """The image's canvas, ``fill`` outside the region's box (and mask), the region's pixels where they were."""
    from PIL import Image

    pil = to_rgb_image(image)
    keep = np.zeros((pil.height, pil.width), dtype=bool)
    left, top, right, bottom = region.box
    keep[top:bottom, left:right] = True if region.mask is None else np.asarray(region.mask, dtype=bool)
    canvas = np.empty((pil.height, pil.width, 3), dtype=np.uint8)
    canvas[:] = np.asarray(fill, dtype=np.uint8)
    canvas[keep] = np.asarray(pil)[keep]
    return Image.fromarray(canvas)


def region_views(
    images: Sequence[Any],
    regions: Iterable[Region],
    *,
    view: str = "crop",
    fill: tuple[int, int, int] = (0, 0, 0),
) -> Iterator[Any]:
    """Yield, lazily, the PIL image the vision tower sees for every region: its crop (``view="crop"``, as
    :func:`iter_region_crops`) or the region in place on a ``fill`` canvas of its image's size
    (``view="in_place"``)."""
    _check_view(view)
    if view == "crop":
        yield from iter_region_crops(images, regions, fill=fill)
        return
    for r in regions:
        if not 0 <= r.image_index < len(images):
            raise TrustVLInputError(f"Region.image_index={r.image_index} is outside [0, {len(images)})")
        yield _in_place(images[r.image_index], r, fill)


def embed_regions(
    model,
    processor,
    images: Sequence[Any],
    regions: Sequence[Region],
    batch_size: int = 64,
    progress: bool = True,
    *,
    fill: tuple[int, int, int] = (0, 0, 0),
    view: str = "crop",
) -> np.ndarray:
    """Embed every region with the model's vision tower; L2-normalised float32 ``[n_regions, d]``.

    ``view``: ``"crop"`` (default: the region's crop) or ``"in_place"`` (the region on a ``fill`` canvas of
    its image's size; module docstring). Views are produced lazily batch by batch, so memory stays bounded
    for large region sets.
    """
    from trustvl.modeling.embedding import embed_images

    _check_view(view)
    if len(regions) == 0:
        raise TrustVLInputError("no regions to embed; expected at least one region")
    emb = embed_images(
        model,
        processor,
        region_views(images, regions, view=view, fill=fill),
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
