"""Helpers shared by the CF_α build's stages and builder: per-image seeded generators, batch-length and
image checks, model names and stage descriptions, and the person-mask operations (dilation, paste-back)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from trustvl.data_builders.interfaces import Metadata, keep_outside_mask
from trustvl.errors import TrustVLInputError

__all__ = [
    "check_batch_lists",
    "describe_stage",
    "dilate_mask",
    "model_display_name",
    "paste_back",
    "stage_generators",
    "to_rgb",
]


def stage_generators(metadata: Sequence[Metadata] | None, n: int) -> list[torch.Generator]:
    """One CPU generator per image, seeded from ``metadata[i]["seed"]`` (unseeded when absent)."""
    gens = []
    for i in range(n):
        seed = None if metadata is None else metadata[i].get("seed")
        g = torch.Generator(device="cpu")
        if seed is None:
            g.seed()
        else:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise TrustVLInputError(f"metadata[{i}]['seed']={seed!r}; expected a non-negative int")
            g.manual_seed(int(seed))
        gens.append(g)
    return gens


def check_batch_lists(stage: str, n: int, **lists: Sequence[Any] | None) -> None:
    """Raise unless every given list (None: not given) has ``n`` items, one per image of the batch."""
    for name, seq in lists.items():
        if seq is not None and len(seq) != n:
            raise TrustVLInputError(f"{stage}: {name} has {len(seq)} items; expected {n}, one per image")


def model_display_name(model: Any) -> str:
    """The name a stage reports for its model: the Hub id or folder, else the loaded model's
    ``_name_or_path``, else its class name."""
    if isinstance(model, (str, os.PathLike)):
        return str(model)
    cfg = getattr(model, "config", None)
    name = getattr(cfg, "_name_or_path", None) if cfg is not None else None
    return str(name or getattr(model, "name_or_path", None) or type(model).__name__)


def to_rgb(image: Any, stage: str, i: int) -> Image.Image:
    """Image ``i`` of a ``stage``'s batch as RGB; anything but a ``PIL.Image`` is a bad input."""
    if not isinstance(image, Image.Image):
        raise TrustVLInputError(f"{stage}: image {i} is a {type(image).__name__}; expected a PIL.Image")
    return image if image.mode == "RGB" else image.convert("RGB")


def dilate_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a bool (H, W) mask by ``pixels`` (square max filter of side ``2*pixels+1``)."""
    mask = np.asarray(mask, dtype=bool)
    if pixels <= 0 or not mask.any():
        return mask
    t = torch.from_numpy(mask).to(torch.float32)[None, None]
    k = 2 * int(pixels) + 1
    out = torch.nn.functional.max_pool2d(t, kernel_size=k, stride=1, padding=int(pixels))
    return out[0, 0].numpy() > 0.5


def paste_back(original: Image.Image, edited: Image.Image, mask: np.ndarray) -> Image.Image:
    """``edited`` (resized to ``original`` if needed) inside ``mask``, ``original`` exactly elsewhere."""
    original = original.convert("RGB")
    if edited.size != original.size:
        edited = edited.convert("RGB").resize(original.size, Image.Resampling.BICUBIC)
    return keep_outside_mask(original, edited, np.asarray(mask, dtype=bool))


def describe_stage(stage: Any) -> dict[str, Any]:
    """A JSON-able description of a stage (its ``describe()`` when it has one, else its class name)."""
    describe = getattr(stage, "describe", None)
    if callable(describe):
        try:
            out = describe()
            if isinstance(out, Mapping):
                return dict(out)
        except Exception:  # noqa: BLE001 - a description is informative only
            pass
    cls = stage if isinstance(stage, type) else type(stage)
    return {"class": f"{cls.__module__}.{cls.__qualname__}"}
