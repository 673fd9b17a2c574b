"""The pretraining data: SynthWorld train scenes rendered on access, each with one caption (context-only, naming
the appearance, or alt-text-like for the web preset), and the caption corpus the tokenizer is trained on."""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from trustvl.data_builders.synthworld import (
    WebCaptionPolicy,
    appearance_caption,
    caption_variants,
    occupation_prompt,
    sample_caption,
    web_caption,
)
from trustvl.modeling.clip_components import normalize_uint8

__all__ = ["SynthWorldCaptionDataset", "caption_corpus", "unit_hash"]


def unit_hash(*parts: Any) -> float:
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64


class SynthWorldCaptionDataset(torch.utils.data.Dataset):
    """Scenes ``0..n-1`` of a SynthWorld split with one caption each, rendered on access.

    Items: ``{"pixel_values": [3, H, W] float, "caption": str, "label": occupation id}``. With a
    ``web_policy`` the caption is :func:`web_caption`'s (``appearance_caption_prob`` unused).
    """

    def __init__(
        self,
        renderer: Any,
        image_processor: Any,
        n: int,
        split: str = "train",
        appearance_caption_prob: float = 0.0,
        web_policy: WebCaptionPolicy | None = None,
    ) -> None:
        self.renderer, self.image_processor, self.n, self.split = renderer, image_processor, n, split
        self.p_app = appearance_caption_prob
        self.web_policy = web_policy
        self._occ_index = {o: i for i, o in enumerate(renderer.config.occupations)}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        scene = self.renderer.scene(self.split, int(index))
        if self.web_policy is not None:
            caption = web_caption(scene.spec, self.renderer.config, self.web_policy)
        else:
            use_app = unit_hash(self.renderer.seed, self.split, int(index), "app") < self.p_app
            caption = appearance_caption(scene.spec) if use_app else sample_caption(scene.spec)
        return {
            "pixel_values": normalize_uint8(scene.image, self.image_processor)[0],
            "caption": caption,
            "label": self._occ_index[scene.spec.occupation],
        }


def caption_corpus(renderer: Any, n_scenes: int = 4000) -> list[str]:
    """Every caption variant (context and appearance) of ``n_scenes`` train and test scenes, plus prompts."""
    corpus = [occupation_prompt(o) for o in renderer.config.occupations]
    for split in ("train", "test"):
        for i in range(n_scenes // 2):
            corpus += caption_variants(renderer.sample_scene(split, i), context_only=False)
    return corpus
