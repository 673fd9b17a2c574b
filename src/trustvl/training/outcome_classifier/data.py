"""The outcome classifier's training data: each scene's target value per head (:func:`scene_targets`), uint8
renders scaled to the classifier's input (:func:`uint8_to_unit`), and the labelled images, a seeded share of
them replaced by their VAE reconstructions (:class:`LabelledImages`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from trustvl.data_builders.synthworld import unsafe_subtype

__all__ = ["LabelledImages", "scene_targets", "uint8_to_unit"]


def scene_targets(specs: Sequence[Any], heads: dict[str, Sequence[str]]) -> torch.Tensor:
    """``[N, n_heads]`` value indices of each scene's main person / occupation / unsafe element."""
    rows = []
    for spec in specs:
        row = []
        for head, values in heads.items():
            if head == "occupation":
                value = spec.occupation
            elif head == "unsafe":
                value = "none" if spec.unsafe is None else unsafe_subtype(spec.unsafe)
            else:
                value = spec.people[0].attributes[head]
            row.append(list(values).index(value))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long)


def uint8_to_unit(images: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` → float ``[N, 3, H, W]`` in [-1, 1] (the classifier's and the VAE's input),
    resized to ``size`` × ``size`` by nearest-neighbour sampling when given (the classifier's processor
    does the same)."""
    x = images.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="nearest")
    return x


class LabelledImages(torch.utils.data.Dataset):
    """Rows ``{"pixel_values", "targets"}``; row ``i`` shows the reconstruction instead of the render with
    probability ``recon_prob`` (decided by a seeded draw per row, so a resumed run sees the same data)."""

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        recon: torch.Tensor | None = None,
        recon_prob: float = 0.0,
        seed: int = 0,
        size: int | None = None,
    ) -> None:
        self.images, self.targets, self.recon, self.size = images, targets, recon, size
        g = torch.Generator().manual_seed(seed)
        self.use_recon = (torch.rand(len(images), generator=g) < recon_prob) if recon is not None else None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        src = self.recon if self.use_recon is not None and bool(self.use_recon[i]) else self.images
        return {"pixel_values": uint8_to_unit(src[i : i + 1], self.size)[0], "targets": self.targets[i]}
