"""Building blocks of a CLIP model: a text-tower config from a tokenizer, the image processor, and
uint8 images → normalised ``pixel_values`` without a PIL round trip."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trustvl.errors import TrustVLInputError
from trustvl.modeling.tokenization import clip_special_token_ids

__all__ = ["clip_image_processor", "clip_text_config", "normalize_uint8"]


def clip_text_config(
    tokenizer: Any,
    *,
    hidden_size: int,
    intermediate_size: int,
    num_layers: int,
    num_heads: int,
    max_length: int,
    projection_dim: int,
) -> dict[str, Any]:
    """``CLIPTextConfig`` keyword arguments for a text tower over ``tokenizer`` (its size and special ids)."""
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        max_position_embeddings=max_length,
        projection_dim=projection_dim,
        **clip_special_token_ids(tokenizer),
    )


def clip_image_processor(image_size: int) -> Any:
    """A CLIP image processor that resizes and centre-crops to ``image_size`` (no torchvision needed)."""
    try:  # transformers >= 5.x without torchvision: the PIL backend, saved as "CLIPImageProcessor"
        from transformers import CLIPImageProcessorPil as ImageProcessor
    except ImportError:  # pragma: no cover - older transformers
        from transformers import CLIPImageProcessor as ImageProcessor
    return ImageProcessor(
        do_resize=True,
        size={"shortest_edge": image_size},
        do_center_crop=True,
        crop_size={"height": image_size, "width": image_size},
    )


def normalize_uint8(images: np.ndarray | torch.Tensor, image_processor: Any) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` (or one ``[H, W, 3]``) → normalised float ``pixel_values`` ``[N, 3, H, W]``.

    Equals the CLIP image processor's output when the images already have its crop size (SynthWorld
    renders at the model's resolution), without a PIL round trip.
    """
    t = torch.as_tensor(images)
    if t.ndim == 3:
        t = t[None]
    crop = image_processor.crop_size
    if t.shape[1] != crop["height"] or t.shape[2] != crop["width"]:
        raise TrustVLInputError(
            f"images of {tuple(t.shape[1:3])} px; expected {crop['height']}x{crop['width']}"
            " (render SynthWorld at the model's resolution)"
        )
    x = t.permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(image_processor.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(image_processor.image_std).view(1, 3, 1, 1)
    return (x - mean) / std
