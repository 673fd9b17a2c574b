"""Seeded batch generation with any diffusers text-to-image pipeline.

Image ``i`` of a prompt is generated from its own ``torch.Generator`` seeded with ``seed + i``, so a
single image can be regenerated alone (same prompt, seed, steps, guidance and size) and results do not
depend on the batch size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from trustvl.errors import TrustVLInputError


@dataclass
class GeneratedImage:
    """One generated image and how to regenerate it."""

    image: Image.Image
    prompt: str
    seed: int
    num_inference_steps: int
    guidance_scale: float


def generate_images(
    pipe: Any,
    prompt: str,
    n: int,
    seed: int = 0,
    num_inference_steps: int = 20,
    guidance_scale: float = 5.0,
    batch_size: int = 64,
    negative_prompt: str | None = None,
) -> list[GeneratedImage]:
    """``n`` images of ``prompt``; image ``i`` uses seed ``seed + i``."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise TrustVLInputError(f"prompt={prompt!r} must be a non-empty string")
    if n < 1:
        raise TrustVLInputError(f"n={n} must be >= 1")
    if batch_size < 1:
        raise TrustVLInputError(f"batch_size={batch_size} must be >= 1")
    device = getattr(pipe, "device", torch.device("cpu"))
    out: list[GeneratedImage] = []
    for start in range(0, n, batch_size):
        seeds = list(range(seed + start, seed + min(n, start + batch_size)))
        generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        result = pipe(
            prompt=[prompt] * len(seeds),
            negative_prompt=None if negative_prompt is None else [negative_prompt] * len(seeds),
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            generator=generators,
            output_type="pil",
        )
        for s, im in zip(seeds, result.images, strict=True):
            out.append(GeneratedImage(im, prompt, s, num_inference_steps, guidance_scale))
    return out


def image_grid(images: Sequence[Image.Image], cols: int) -> Image.Image:
    """Tile equally sized images into a grid with ``cols`` columns."""
    if not images:
        raise TrustVLInputError("image_grid needs at least one image")
    w, h = images[0].size
    rows = (len(images) + cols - 1) // cols
    grid = Image.new("RGB", (cols * w, rows * h), (255, 255, 255))
    for k, im in enumerate(images):
        grid.paste(im.convert("RGB"), ((k % cols) * w, (k // cols) * h))
    return grid


def to_uint8(images: Sequence[Image.Image]) -> np.ndarray:
    """PIL images → uint8 ``[N, H, W, 3]``."""
    return np.stack([np.asarray(im.convert("RGB")) for im in images])


__all__ = ["GeneratedImage", "generate_images", "image_grid", "to_uint8"]
