"""The caption converter's loss (:class:`CompletionLoss`): next-token cross-entropy on the completion tokens
only (the unsafe caption and the end-of-answer token); prompt and padding positions carry the label
:data:`~trustvl.training.caption_converter.data.IGNORE_INDEX` and are left out. It is computed from the LM's
logits in float32 (the LM is called without ``labels``) and also logs the batch's number of completion
tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trustvl.training.caption_converter.data import IGNORE_INDEX

__all__ = ["CompletionLoss"]


@dataclass
class CompletionLoss:
    """Next-token cross-entropy on the completion tokens (labels != -100), as a
    :data:`~trustvl.training.core.LossFn`; one forward of the (wrapped) model."""

    def __call__(
        self, model: nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        logits = out.logits[:, :-1].float()
        targets = batch["labels"][:, 1:]
        loss = nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX
        )
        n_tokens = (targets != IGNORE_INDEX).sum()
        return loss, {"completion_tokens": n_tokens.float()}
