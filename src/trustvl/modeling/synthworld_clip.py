"""SynthWorld CLIP: the small CLIP that trustvl pretrains on SynthWorld and ships as its embedded default.

Architecture (defaults, ~8 M parameters): ViT-S-like vision tower on 64×64 images (patch 8, width 256,
6 layers, 4 heads), text transformer (width 256, 4 layers, 4 heads, 32 positions) over a 1,024-token
CLIP-style BPE trained on SynthWorld captions, joint embedding of 256. It is a plain ``CLIPModel``:
``CLIPModel.from_pretrained(default_clip_path())`` loads it with vanilla transformers.

The checkpoint is produced by :mod:`trustvl.training.synthworld_clip` (``trustvl train
synthworld-clip``) and shipped inside the package under ``trustvl/assets/models/synthworld-clip``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import CLIPConfig, CLIPModel, CLIPProcessor

from trustvl.errors import TrustVLInputError
from trustvl.modeling.clip_components import clip_image_processor, clip_text_config
from trustvl.utils.assets import embedded_model_dir


@dataclass
class SynthWorldCLIPArchitecture:
    """Sizes of the SynthWorld CLIP (documented defaults keep it under 10 M parameters)."""

    image_size: int = 64
    patch_size: int = 8
    vision_width: int = 256
    vision_layers: int = 6
    vision_heads: int = 4
    text_width: int = 256
    text_layers: int = 4
    text_heads: int = 4
    max_length: int = 32
    projection_dim: int = 256
    mlp_ratio: int = 4


def build_synthworld_clip(
    tokenizer: Any, arch: SynthWorldCLIPArchitecture | None = None
) -> tuple[CLIPModel, CLIPProcessor]:
    """A randomly initialised SynthWorld CLIP and its processor, for the given (trained) tokenizer."""
    a = arch or SynthWorldCLIPArchitecture()
    if a.image_size % a.patch_size:
        raise TrustVLInputError(f"image_size={a.image_size} must be a multiple of patch_size={a.patch_size}")
    text = clip_text_config(
        tokenizer,
        hidden_size=a.text_width,
        intermediate_size=a.mlp_ratio * a.text_width,
        num_layers=a.text_layers,
        num_heads=a.text_heads,
        max_length=a.max_length,
        projection_dim=a.projection_dim,
    )
    vision = dict(
        image_size=a.image_size,
        patch_size=a.patch_size,
        num_channels=3,
        hidden_size=a.vision_width,
        intermediate_size=a.mlp_ratio * a.vision_width,
        num_hidden_layers=a.vision_layers,
        num_attention_heads=a.vision_heads,
        projection_dim=a.projection_dim,
    )
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=a.projection_dim)
    model = CLIPModel(config)
    processor = CLIPProcessor(image_processor=clip_image_processor(a.image_size), tokenizer=tokenizer)
    return model, processor


def default_clip_path() -> Path:
    """Folder of the shipped SynthWorld CLIP (``TRUSTVL_DEFAULT_CLIP`` overrides it)."""
    return embedded_model_dir(
        "synthworld-clip",
        env="TRUSTVL_DEFAULT_CLIP",
        marker="config.json",
        what="SynthWorld CLIP",
        made_by="trustvl train synthworld-clip",
    )


def load_default_clip(device: str = "auto", dtype: Any = None) -> tuple[CLIPModel, CLIPProcessor]:
    """Load the embedded default SynthWorld CLIP offline through ``CLIPModel.from_pretrained``."""
    from trustvl.modeling.embedding import load_clip

    return load_clip(default_clip_path(), device=device, dtype=dtype)
