"""The outcome classifier's loss (:class:`MultiHeadLoss`): the mean over heads of each head's softmax
cross-entropy on the logits of the model's own forward
(:func:`~trustvl.modeling.outcome_classifier.multi_head_cross_entropy`), logging each head's accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from trustvl.modeling.outcome_classifier import multi_head_cross_entropy

__all__ = ["MultiHeadLoss"]


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
