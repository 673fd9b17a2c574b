"""Feeding images to a CLIP image tower: decoding in DataLoader workers, preprocessing as torch ops on the device.

Two halves, so that decoding (CPU-bound, parallel over worker processes) overlaps the forward (on the device):

* :class:`ImageRows` — a map-style dataset of decoded images, each a ``uint8 [3, H, W]`` tensor (RGB). Workers
  of a :class:`torch.utils.data.DataLoader` call it; a batch of images of one size is stacked in the worker, so
  the main process receives one (pinned, on CUDA) tensor per batch. An unreadable image does not raise in the
  worker (DataLoader would re-raise another message) but comes back as :class:`Unreadable`, raised by the
  caller as a :class:`~trustvl.errors.TrustVLInputError` naming its row.
* :class:`PixelTransform` — what the model's own image processor does (resize the shortest edge, centre crop,
  rescale, normalise), read from that processor's settings and done with plain torch ops on the device:
  ``torch.nn.functional.interpolate`` (bicubic, antialias) rounded back to ``uint8`` as PIL does, then
  ``x * rescale_factor`` and ``(x - mean) / std``. No resize happens when an image already has the target
  size, so there the pixels equal the processor's bit for bit (on CPU, where the rescale runs in float64 as
  the processor's does); a resize matches PIL's bicubic within 1 grey level per pixel before rescaling
  (tests/modeling/test_image_loading.py states the tolerance).

A streamed gallery (a ``datasets`` ``IterableDataset``) has no random access, so it cannot feed
:class:`ImageRows`; it arrives as ``(row, encoded image)`` pairs that :func:`decode_rows` decodes a batch at a
time (:meth:`trustvl.modeling.embedding.ImageEmbedder.stream_batches` runs it in threads). :func:`open_image`
decodes an encoded value as ``datasets.Image`` does, so a streamed image equals the one a map-style dataset
hands out.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from trustvl.errors import TrustVLInputError

__all__ = [
    "ImageRows",
    "PixelTransform",
    "Unreadable",
    "collate_images",
    "decode_rows",
    "open_image",
    "to_uint8_chw",
]


@dataclass(frozen=True)
class Unreadable:
    """An image a worker could not decode: ``row`` of the source and why."""

    row: int
    reason: str


def to_uint8_chw(image: Any) -> torch.Tensor:
    """A PIL image or an ``[H, W(, C)]`` / ``[C, H, W]`` array as an RGB ``[3, H, W]`` tensor (``uint8`` for PIL
    and ``uint8`` arrays; other arrays keep their float values, rescaled later as the processor does)."""
    if isinstance(image, Image.Image):
        # a writable copy (torch refuses to wrap a read-only buffer); PIL is always [H, W, C]
        return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).contiguous()
    array = np.asarray(image)
    t = torch.from_numpy(array if array.flags.writeable else array.copy())
    if t.ndim == 2:
        t = t.unsqueeze(-1)
    if t.ndim != 3:
        raise TrustVLInputError(
            f"an image array of shape {tuple(t.shape)}; expected [H, W], [H, W, C] or [C, H, W]"
        )
    if t.shape[0] not in (1, 3):  # channels first when the first axis can be channels, as transformers infers
        if t.shape[-1] not in (1, 3, 4):
            raise TrustVLInputError(f"an image array of shape {tuple(t.shape)}; expected 1, 3 or 4 channels")
        t = t.permute(2, 0, 1)
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    elif t.shape[0] == 4:
        t = t[:3]
    return t.contiguous()


def open_image(value: Any) -> Any:
    """An encoded image as a PIL image, decoded as ``datasets.Image`` decodes one (read fully, then turned by
    its EXIF orientation): ``bytes``, a ``{"bytes": ..., "path": ...}`` dict (how ``datasets`` stores an image
    it has not decoded) or a local file path. A decoded image (PIL, array) is returned as it is."""
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if data is None and path is None:
            raise ValueError(f"an image value with neither bytes nor path: {value!r}")
        value = data if data is not None else path
    if isinstance(value, (bytes, bytearray, memoryview)):
        image = Image.open(io.BytesIO(value))
    elif isinstance(value, (str, Path)):
        image = Image.open(value)
    else:
        return value
    image.load()
    if image.getexif().get(Image.ExifTags.Base.Orientation) is not None:
        image = ImageOps.exif_transpose(image)
    return image


def _decode_one(row: int, fetch: Callable[[], Any]) -> torch.Tensor | Unreadable:
    """``fetch()``'s image as a ``uint8 [3, H, W]`` tensor, or :class:`Unreadable` naming ``row``."""
    try:
        return to_uint8_chw(open_image(fetch()))  # encoded values (bytes, paths) are decoded here
    except (OSError, ValueError) as err:  # PIL.UnidentifiedImageError is an OSError
        reason = "cannot identify image file" if isinstance(err, UnidentifiedImageError) else str(err)
        return Unreadable(row, " ".join(reason.split()))


def decode_rows(
    items: Sequence[tuple[int, Any]], decode: Callable[[Any], Any] = open_image
) -> torch.Tensor | list[Any]:
    """One batch of ``(row, encoded image)`` pairs decoded with ``decode`` and collated
    (:func:`collate_images`); an undecodable image is an :class:`Unreadable` naming its row."""
    return collate_images([_decode_one(row, lambda v=value: decode(v)) for row, value in items])


class ImageRows(torch.utils.data.Dataset):
    """Rows ``indices`` of ``source`` decoded to ``uint8 [3, H, W]`` tensors: ``source`` is a sequence of images
    (PIL, arrays, or encoded: bytes, ``{"bytes", "path"}`` dicts, file paths, see :func:`open_image`), or, with ``column``, a ``datasets.Dataset`` whose ``column`` holds them (read a batch of
    rows at a time, one Arrow slice, through :meth:`__getitems__`, which DataLoader calls)."""

    def __init__(self, source: Any, indices: Sequence[int] | None = None, column: str | None = None) -> None:
        self.source = source.select_columns([column]) if column is not None else source
        self.indices = range(len(source)) if indices is None else indices
        self.column = column

    def __len__(self) -> int:
        return len(self.indices)

    def _decode(self, row: int, fetch: Callable[[], Any]) -> torch.Tensor | Unreadable:
        return _decode_one(row, fetch)

    def _one(self, row: int) -> Any:
        return self.source[row][self.column] if self.column is not None else self.source[row]

    def __getitem__(self, i: int) -> torch.Tensor | Unreadable:
        row = int(self.indices[i])
        return self._decode(row, lambda: self._one(row))

    def __getitems__(self, positions: Sequence[int]) -> list[torch.Tensor | Unreadable]:
        rows = [int(self.indices[i]) for i in positions]
        if self.column is None:
            return [self._decode(r, lambda r=r: self._one(r)) for r in rows]
        try:
            images = self.source[rows][self.column]
        except (OSError, ValueError):  # one row is unreadable: decode one at a time to name it
            return [self._decode(r, lambda r=r: self._one(r)) for r in rows]
        return [self._decode(r, lambda im=im: im) for r, im in zip(rows, images)]


def collate_images(items: list[torch.Tensor | Unreadable]) -> torch.Tensor | list[Any]:
    """One ``[n, 3, H, W]`` tensor when every image has one size (the common case), else the list."""
    if items and all(isinstance(t, torch.Tensor) for t in items):
        first = items[0]
        if all(t.shape == first.shape and t.dtype == first.dtype for t in items):
            return torch.stack(items)
    return list(items)


def _size_of(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if isinstance(value, int):
        return {"height": value, "width": value}
    return {k: int(v) for k, v in dict(value).items() if v is not None}


@dataclass(frozen=True)
class PixelTransform:
    """The image processor's resize / centre crop / rescale / normalise (see the module docstring)."""

    shortest_edge: int | None
    resize_to: tuple[int, int] | None
    crop: tuple[int, int] | None
    rescale_factor: float | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None

    @classmethod
    def from_processor(cls, processor: Any) -> PixelTransform:
        """Read the settings of ``processor`` (a ``CLIPProcessor`` or its image processor)."""
        ip = getattr(processor, "image_processor", processor)
        size = _size_of(getattr(ip, "size", None)) if getattr(ip, "do_resize", False) else {}
        crop = _size_of(getattr(ip, "crop_size", None)) if getattr(ip, "do_center_crop", False) else {}
        resample = getattr(ip, "resample", 3)
        if size and int(resample) != int(Image.Resampling.BICUBIC):
            raise TrustVLInputError(
                f"the image processor resizes with resample={resample!r}; expected bicubic (3), the only one"
                " the torch preprocessing reproduces"
            )
        if size and "shortest_edge" not in size and not {"height", "width"} <= set(size):
            raise TrustVLInputError(
                f"image processor size={size!r}; expected shortest_edge or height and width"
            )
        return cls(
            shortest_edge=size.get("shortest_edge"),
            resize_to=(size["height"], size["width"]) if "height" in size and "width" in size else None,
            crop=(crop["height"], crop["width"]) if crop else None,
            rescale_factor=float(ip.rescale_factor) if getattr(ip, "do_rescale", False) else None,
            mean=tuple(float(m) for m in ip.image_mean) if getattr(ip, "do_normalize", False) else None,
            std=tuple(float(s) for s in ip.image_std) if getattr(ip, "do_normalize", False) else None,
        )

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The size after the resize (before the crop) of a ``height`` x ``width`` image."""
        if self.resize_to is not None:
            return self.resize_to
        if self.shortest_edge is None:
            return height, width
        # as transformers' get_resize_output_image_size(default_to_square=False)
        short, long = (height, width) if height <= width else (width, height)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        return (new_short, new_long) if height <= width else (new_long, new_short)

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        size = self.output_size(h, w)
        if size == (h, w):  # PIL returns the image itself: no resampling, exact
            return x
        was_uint8 = x.dtype == torch.uint8
        y = F.interpolate(x.float(), size=size, mode="bicubic", align_corners=False, antialias=True)
        # PIL resizes the uint8 image and rounds back to uint8; float arrays stay float
        return y.round_().clamp_(0, 255).to(torch.uint8) if was_uint8 else y

    def _crop(self, x: torch.Tensor) -> torch.Tensor:
        if self.crop is None:
            return x
        ch, cw = self.crop
        h, w = x.shape[-2:]
        if h < ch or w < cw:  # the processor pads with zeros around the image, then crops
            ph, pw = max(ch - h, 0), max(cw - w, 0)
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
            h, w = x.shape[-2:]
        top, left = int((h - ch) / 2), int((w - cw) / 2)
        return x[..., top : top + ch, left : left + cw]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """``[n, 3, H, W]`` (``uint8`` or float, on any device) → float32 ``pixel_values`` on that device."""
        x = self._crop(self._resize(images))
        if self.rescale_factor is not None:
            # the processor rescales in float64, then casts to float32; on CPU do the same (bit-exact), on an
            # accelerator float32 (float64 is slow there; the difference is below float32's resolution)
            wide = torch.float64 if x.device.type == "cpu" else torch.float32
            x = (x.to(wide) * self.rescale_factor).float()
        else:
            x = x.float()
        if self.mean is not None:
            mean = torch.tensor(self.mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
            std = torch.tensor(self.std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
            x = (x - mean) / std
        return x
