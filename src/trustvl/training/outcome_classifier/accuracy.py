"""Per-head accuracy of an outcome classifier on uint8 images (:func:`head_accuracy`): how the SynthWorld SD
run judges the classifier on held-out renders and their VAE reconstructions."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trustvl.training.outcome_classifier.data import uint8_to_unit
from trustvl.training.outcome_classifier.loss import MultiHeadLoss

__all__ = ["head_accuracy"]


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
