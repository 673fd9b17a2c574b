"""Candidate regions of images as pixel geometry: boxes, grid cells, masks and crops (no model).

Every region, however it was produced, is a :class:`Region`: the index of its image, a pixel box
``(left, top, right, bottom)`` in PIL's convention (right/bottom exclusive) and an optional boolean
mask of the box's shape (``[bottom - top, right - left]``). Three ways to make them:

* equal grid cells: :func:`grid_regions` gives the ``n x n`` boxes of one image (``n=2``: quadrants,
  numbered row-major 0 = top-left, 1 = top-right, 2 = bottom-left, 3 = bottom-right);
* boxes given by the caller (one list per image), e.g. from a region-proposal model;
* masks from a segmenter callable ``segmenter(image) -> iterable of HxW boolean masks``: the region is
  the mask's bounding box, and its crop blanks every pixel outside the mask (``fill`` colour).

:func:`make_regions` turns any of these into one flat list of regions (image by image, in order);
:func:`crop_regions` / :func:`iter_region_crops` cut them out. This module lives in the data layer so
dataset builders (e.g. spurious digits' region truth) can use it; :mod:`trustvl.discovery.regions`
re-exports it next to the model-dependent part (region embeddings, zero-shot scores).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trustvl.errors import TrustVLInputError

__all__ = [
    "Box",
    "Region",
    "crop_region",
    "crop_regions",
    "grid_regions",
    "image_width_height",
    "iter_region_crops",
    "make_regions",
    "to_rgb_image",
]

Box = tuple[int, int, int, int]


@dataclass(frozen=True, eq=False)
class Region:
    """One candidate region: ``image_index``, pixel ``box`` (left, top, right, bottom) and optional ``mask``.

    ``mask``, when present, is a boolean array of shape ``(bottom - top, right - left)``: True where the
    region's pixels are; the crop keeps those and fills the rest.
    """

    image_index: int
    box: Box
    mask: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_index": int(self.image_index),
            "box": [int(v) for v in self.box],
            "has_mask": self.mask is not None,
        }


def image_width_height(image: Any) -> tuple[int, int]:
    """``(width, height)`` of a PIL image or an HxW[xC] array."""
    if hasattr(image, "size") and not isinstance(image, np.ndarray):
        w, h = image.size
        return int(w), int(h)
    arr = np.asarray(image)
    if arr.ndim < 2:
        raise TrustVLInputError(
            f"image of shape {arr.shape} is not an image; expected a PIL image or HxW[xC] array"
        )
    return int(arr.shape[1]), int(arr.shape[0])


def to_rgb_image(image: Any):
    """``image`` (PIL image or HxW[xC] array, values clipped to 0..255) as an RGB PIL image."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(arr).convert("RGB")


def grid_regions(image_size: int | tuple[int, int], n: int = 2) -> list[Box]:
    """The ``n x n`` equal cells of an image as boxes ``(left, top, right, bottom)``, row-major.

    ``image_size`` is an int (square) or ``(width, height)``. Cell edges are ``round(i * size / n)`` so the
    cells tile the image exactly even when the size is not a multiple of ``n``. ``n=2`` (default) gives
    the quadrants 0 = top-left, 1 = top-right, 2 = bottom-left, 3 = bottom-right.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise TrustVLInputError(f"grid size n={n!r} must be a positive integer")
    if isinstance(image_size, (int, np.integer)):
        w = h = int(image_size)
    else:
        try:
            w, h = (int(v) for v in image_size)
        except (TypeError, ValueError):
            raise TrustVLInputError(f"image_size={image_size!r} must be an int or (width, height)") from None
    if w < n or h < n:
        raise TrustVLInputError(
            f"image_size={image_size!r} is smaller than the grid n={n}; expected >= n pixels"
        )
    xs = [round(i * w / n) for i in range(n + 1)]
    ys = [round(i * h / n) for i in range(n + 1)]
    return [(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(n) for c in range(n)]


def _check_box(box: Any, size: tuple[int, int], where: str) -> Box:
    try:
        left, top, right, bottom = (int(v) for v in box)
    except (TypeError, ValueError):
        raise TrustVLInputError(
            f"{where}: box {box!r} must be 4 integers (left, top, right, bottom)"
        ) from None
    w, h = size
    if not (0 <= left < right <= w and 0 <= top < bottom <= h):
        raise TrustVLInputError(
            f"{where}: box {(left, top, right, bottom)} is empty or outside the {w}x{h} image; expected"
            " 0 <= left < right <= width and 0 <= top < bottom <= height"
        )
    return left, top, right, bottom


def _mask_region(index: int, mask: Any, size: tuple[int, int]) -> Region | None:
    m = np.asarray(mask).astype(bool)
    w, h = size
    if m.shape != (h, w):
        raise TrustVLInputError(
            f"image {index}: segmenter mask of shape {m.shape} does not match the image"
            f" ({h}, {w}); expected an HxW boolean mask"
        )
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        return None  # empty masks are skipped
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return Region(index, (left, top, right, bottom), m[top:bottom, left:right].copy())


def make_regions(images: Sequence[Any], regions: Any = "grid", *, n: int = 2) -> list[Region]:
    """Candidate regions of every image, as one flat list ordered by image, then region.

    ``regions`` is one of:

    * ``"grid"`` (``n x n`` cells, default quadrants) or an int ``n`` (an ``n x n`` grid);
    * a sequence with one entry per image, each a sequence of boxes ``(left, top, right, bottom)``;
    * a list of :class:`Region` (validated and returned as is);
    * a callable ``segmenter(image) -> iterable of HxW boolean masks`` (empty masks are skipped).
    """
    n_images = len(images)
    if isinstance(regions, str):
        if regions != "grid":
            raise TrustVLInputError(
                f"regions={regions!r} is not supported; expected 'grid', an int grid size,"
                " per-image boxes, a list of Region or a segmenter callable"
            )
        regions = n
    if isinstance(regions, (int, np.integer)) and not isinstance(regions, bool):
        out = []
        for i, img in enumerate(images):
            out.extend(Region(i, box) for box in grid_regions(image_width_height(img), int(regions)))
        return out
    if callable(regions):
        out = []
        for i, img in enumerate(images):
            size = image_width_height(img)
            for mask in regions(img):
                r = _mask_region(i, mask, size)
                if r is not None:
                    out.append(r)
        return out
    regions = list(regions)
    if regions and all(isinstance(r, Region) for r in regions):
        for r in regions:
            if not 0 <= r.image_index < n_images:
                raise TrustVLInputError(f"Region.image_index={r.image_index} is outside [0, {n_images})")
            _check_box(r.box, image_width_height(images[r.image_index]), f"image {r.image_index}")
        return regions
    if len(regions) != n_images:
        raise TrustVLInputError(
            f"got box lists for {len(regions)} images but {n_images} images; expected one"
            " list of boxes per image"
        )
    out = []
    for i, (img, boxes) in enumerate(zip(images, regions)):
        size = image_width_height(img)
        out.extend(Region(i, _check_box(b, size, f"image {i}")) for b in boxes)
    return out


def crop_region(image: Any, region: Region, fill: tuple[int, int, int] = (0, 0, 0)):
    """The PIL crop of ``region`` from ``image``; with a mask, pixels outside it are set to ``fill``."""
    from PIL import Image

    pil = to_rgb_image(image)
    crop = pil.crop(region.box)
    if region.mask is not None:
        background = Image.new("RGB", crop.size, tuple(int(v) for v in fill))
        keep = Image.fromarray(np.asarray(region.mask, dtype=np.uint8) * 255, mode="L")
        crop = Image.composite(crop, background, keep)
    return crop


def iter_region_crops(
    images: Sequence[Any], regions: Iterable[Region], *, fill: tuple[int, int, int] = (0, 0, 0)
) -> Iterator[Any]:
    """Yield the PIL crop of every region lazily (pixels outside a mask set to ``fill``)."""
    for r in regions:
        if not 0 <= r.image_index < len(images):
            raise TrustVLInputError(f"Region.image_index={r.image_index} is outside [0, {len(images)})")
        yield crop_region(images[r.image_index], r, fill)


def crop_regions(
    images: Sequence[Any], regions: Sequence[Region], *, fill: tuple[int, int, int] = (0, 0, 0)
) -> list[Any]:
    """PIL crops of ``regions`` (not resized: the model's processor resizes them when embedding)."""
    return list(iter_region_crops(images, regions, fill=fill))
