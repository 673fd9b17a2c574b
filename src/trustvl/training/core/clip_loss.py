"""The CLIP loss as a :data:`~trustvl.training.core.contract.LossFn` (:class:`ClipContrastiveLoss`): one
forward of a CLIP-style model, symmetric InfoNCE on its embeddings, optionally with global-batch negatives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trustvl.training.core.contract import model_inputs, unwrap_model
from trustvl.training.losses import clip_contrastive_loss, gather_with_grad

__all__ = ["ClipContrastiveLoss"]


@dataclass
class ClipContrastiveLoss:
    """The CLIP loss as a :data:`LossFn`: one forward of a CLIP-style model, symmetric InfoNCE on its
    ``image_embeds`` / ``text_embeds``.

    Works for any model whose forward takes ``input_ids``/``attention_mask``/``pixel_values`` and returns
    ``image_embeds`` and ``text_embeds`` (``CLIPModel``, trustvl's subclasses, PEFT-wrapped ones).

    Args:
        max_logit_scale (`float`, *optional*, defaults to 100.0):
            The learned scale ``exp(model.logit_scale)`` is clamped to this, as in CLIP.
        fixed_logit_scale (`float`, *optional*):
            Use this constant scale instead of the model's learned one.
        gather_across_devices (`bool`, *optional*, defaults to `False`):
            Use the global batch (all processes) as negatives, with exact gradients
            (:func:`~trustvl.training.losses.gather_with_grad`).
    """

    max_logit_scale: float = 100.0
    fixed_logit_scale: float | None = None
    gather_across_devices: bool = False

    def __call__(
        self, model: nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = model(**model_inputs(batch))
        image_embeds, text_embeds = out.image_embeds, out.text_embeds
        if self.fixed_logit_scale is not None:
            scale = torch.tensor(float(self.fixed_logit_scale), device=image_embeds.device)
        else:
            scale = unwrap_model(model).logit_scale.exp().clamp(max=self.max_logit_scale)
        if self.gather_across_devices:
            image_embeds, text_embeds = gather_with_grad(image_embeds), gather_with_grad(text_embeds)
        loss = clip_contrastive_loss(image_embeds, text_embeds, scale)
        return loss, {"clip_loss": loss.detach(), "logit_scale": scale.detach().float()}
