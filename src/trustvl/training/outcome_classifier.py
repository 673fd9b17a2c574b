"""Train the SynthWorld outcome classifier (a multi-head ``ResNetForImageClassification``).

The classifier reads occupation, every appearance attribute and the unsafe element (none / gun / knife /
blood / syringe) of a SynthWorld image. It trains through trustvl's shared core with a per-head softmax
cross-entropy (:func:`~trustvl.modeling.outcome_classifier.multi_head_cross_entropy`) on the logits of
the model's own forward. Its job is judging *generated* images, which come out of a VAE decoder: so a
share of the training images (``recon_prob``) are the VAE's reconstructions of the renders, teaching the
classifier to read slightly blurred scenes too. Accuracy is measured on held-out renders of another
split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from trustvl.data_builders.synthworld import ATTRIBUTES, OCCUPATIONS, unsafe_subtype
from trustvl.modeling.outcome_classifier import UNSAFE_VALUES, multi_head_cross_entropy


def synthworld_heads(
    occupations: Sequence[str] = OCCUPATIONS, attributes: dict[str, Sequence[str]] | None = None
) -> dict[str, tuple[str, ...]]:
    """Head -> values of the SynthWorld outcome classifier (in label order): occupation, each appearance
    attribute, and the unsafe element (none / gun / knife / blood / syringe)."""
    attrs = dict(ATTRIBUTES) if attributes is None else dict(attributes)
    heads = {"occupation": tuple(occupations)}
    heads.update({a: tuple(v) for a, v in attrs.items()})
    heads["unsafe"] = UNSAFE_VALUES
    return heads


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


class MultiHeadLoss:
    """:data:`~trustvl.training.core.LossFn`: mean per-head cross-entropy; logs each head's accuracy."""

    def __init__(self, heads: dict[str, Sequence[str]]) -> None:
        self.names = list(heads)
        self.slices, start = [], 0
        for values in heads.values():
            self.slices.append((start, start + len(values)))
            start += len(values)

    def __call__(self, model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        logits = model(pixel_values=batch["pixel_values"]).logits
        loss, accs = multi_head_cross_entropy(logits, batch["targets"], self.slices)
        return loss, {f"acc_{n}": a for n, a in zip(self.names, accs, strict=True)}


@torch.no_grad()
def head_accuracy(
    model: torch.nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    heads: dict[str, Sequence[str]],
    batch_size: int = 512,
    size: int | None = None,
) -> dict[str, float]:
    """Per-head accuracy of ``model`` on uint8 images (argmax within each head), read at ``size``."""
    loss = MultiHeadLoss(heads)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = torch.zeros(len(heads))
    for i in range(0, len(images), batch_size):
        x = uint8_to_unit(images[i : i + batch_size], size).to(device)
        logits = model(pixel_values=x).logits.float().cpu()
        for k, (a, b) in enumerate(loss.slices):
            correct[k] += (logits[:, a:b].argmax(-1) == targets[i : i + batch_size, k]).sum()
    model.train(was_training)
    return {n: float(c) / max(len(images), 1) for n, c in zip(loss.names, correct, strict=True)}


__all__ = [
    "LabelledImages",
    "MultiHeadLoss",
    "head_accuracy",
    "scene_targets",
    "synthworld_heads",
    "uint8_to_unit",
]
