"""The data of the SynthWorld SD stages: rendered scene pools, their pixels (VAE stage), their latents
(``encode_pool``) and captioned latents with per-cell loss weights (UNet stage), tokenized as the pipeline does."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from trustvl.data_builders.synthworld import SynthWorldRenderer, sample_caption, unsafe_subtype
from trustvl.data_builders.synthworld.generation_captions import (
    APPEARANCE_KINDS,
    appearance_generation_caption,
)
from trustvl.training.outcome_classifier import uint8_to_unit

__all__ = ["CaptionedLatents", "PoolPixels", "ScenePool", "TokenizingCollator", "encode_pool"]


def _unit_hash(*parts: Any) -> float:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little") / 2**64


# ---------------------------------------------------------------------------------------------- scene pools
class _RenderIndex(torch.utils.data.Dataset):
    def __init__(self, renderer: SynthWorldRenderer, split: str, n: int) -> None:
        self.renderer, self.split, self.n = renderer, split, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Any, Any]:
        scene = self.renderer.scene(self.split, i)
        return torch.from_numpy(scene.image), scene.spec, scene.boxes.get("unsafe")


def _stack_scenes(rows: list[tuple[torch.Tensor, Any, Any]]) -> tuple[torch.Tensor, list[Any], list[Any]]:
    return torch.stack([r[0] for r in rows]), [r[1] for r in rows], [r[2] for r in rows]


@dataclass
class ScenePool:
    """Rendered scenes ``0..n-1`` of one split of one world: uint8 images, their specs and the pixel box
    ``(x0, y0, x1, y1)`` of each scene's unsafe element (None without one)."""

    renderer: SynthWorldRenderer
    split: str
    images: torch.Tensor
    specs: list[Any]
    unsafe_boxes: list[Any] = field(default_factory=list)

    @classmethod
    def render(cls, renderer: SynthWorldRenderer, split: str, n: int, workers: int = 0) -> ScenePool:
        loader = torch.utils.data.DataLoader(
            _RenderIndex(renderer, split, n), batch_size=256, num_workers=workers, shuffle=False,
            collate_fn=_stack_scenes,
        )  # fmt: skip
        batches = list(loader)
        images = torch.cat([b[0] for b in batches])
        return cls(
            renderer,
            split,
            images,
            [spec for b in batches for spec in b[1]],
            [box for b in batches for box in b[2]],
        )


class PoolPixels(torch.utils.data.Dataset):
    """Rows ``{"pixel_values"}`` in [-1, 1] of uint8 images (the VAE stage)."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": uint8_to_unit(self.images[i : i + 1])[0]}


@torch.no_grad()
def encode_pool(
    vae: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means (unscaled) and uint8 reconstructions of uint8 images."""
    vae = vae.to(device).eval()
    latents, recons = [], []
    for i in range(0, len(images), batch_size):
        x = uint8_to_unit(images[i : i + batch_size]).to(device)
        mean = vae.encode(x).latent_dist.mean
        rec = vae.decode(mean).sample
        latents.append(mean.float().cpu())
        recons.append(((rec.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu())
    return torch.cat(latents), torch.cat(recons)


class CaptionedLatents(torch.utils.data.Dataset):
    """Rows ``{"latents", "caption"}`` over ``caption_passes`` virtual passes of the two pools.

    Row ``i`` is scene ``i mod N`` (biased pool first, then the appearance pool) in pass ``i // N``;
    the pass number salts the caption draw, so each pass sees new phrasings. With ``unsafe_boxes`` (pixel
    boxes of each scene's unsafe element, None without one; images ``image_size`` wide) and
    ``region_weight`` > 1, rows also carry ``loss_weights``: a latent-resolution map that is
    ``region_weight`` on the latent cells the element's box touches and 1 elsewhere;
    ``element_region_weights`` (``{"knife": 8.0}``) overrides that weight for the elements it names.
    """

    def __init__(
        self,
        latents: torch.Tensor,
        biased_specs: list[Any],
        appearance_specs: list[Any],
        passes: int,
        cfg_dropout: float,
        seed: int,
        unsafe_boxes: list[Any] | None = None,
        region_weight: float = 1.0,
        image_size: int = 64,
        element_region_weights: dict[str, float] | None = None,
    ) -> None:
        self.latents = latents
        self.specs = list(biased_specs) + list(appearance_specs)
        self.n_biased = len(biased_specs)
        self.passes, self.cfg_dropout, self.seed = passes, cfg_dropout, seed
        self.element_region_weights = dict(element_region_weights or {})
        weighted = region_weight > 1.0 or any(w > 1.0 for w in self.element_region_weights.values())
        self.boxes = unsafe_boxes if unsafe_boxes is not None and weighted else None
        self.region_weight, self.image_size = float(region_weight), image_size

    def loss_weights(self, p: int) -> torch.Tensor:
        """The latent-resolution loss weight map of scene ``p``."""
        h, w = self.latents.shape[-2:]
        weights = torch.ones(h, w)
        box = self.boxes[p] if self.boxes is not None else None
        if box is not None:
            x0, y0, x1, y1 = box
            sy, sx = h / self.image_size, w / self.image_size
            r0, c0 = math.floor(y0 * sy), math.floor(x0 * sx)
            r1, c1 = max(r0 + 1, math.ceil(y1 * sy)), max(c0 + 1, math.ceil(x1 * sx))
            element = unsafe_subtype(self.specs[p].unsafe)
            weights[r0:r1, c0:c1] = self.element_region_weights.get(element, self.region_weight)
        return weights

    def __len__(self) -> int:
        return len(self.specs) * self.passes

    def caption(self, i: int) -> str:
        n = len(self.specs)
        p, k = i % n, i // n
        spec = self.specs[p]
        if _unit_hash(self.seed, p, k, "cfg") < self.cfg_dropout:
            return ""
        if p < self.n_biased:
            return sample_caption(spec, context_only=True, include_unsafe=True, salt=f"sd{k}")
        kind = APPEARANCE_KINDS[int(_unit_hash(self.seed, p, k, "kind") * len(APPEARANCE_KINDS))]
        return appearance_generation_caption(spec, kind, salt=k)

    def __getitem__(self, i: int) -> dict[str, Any]:
        p = i % len(self.specs)
        row = {"latents": self.latents[p], "caption": self.caption(i)}
        if self.boxes is not None:
            row["loss_weights"] = self.loss_weights(p)
        return row


class TokenizingCollator:
    """Stacks latents and tokenizes captions exactly as ``StableDiffusionPipeline.encode_prompt`` does
    (padded to ``model_max_length``, truncated, no attention mask)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids = self.tokenizer(
            [r["caption"] for r in rows],
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        batch = {"latents": torch.stack([r["latents"] for r in rows]), "input_ids": ids}
        if "loss_weights" in rows[0]:
            batch["loss_weights"] = torch.stack([r["loss_weights"] for r in rows])
        return batch
