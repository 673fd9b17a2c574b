"""The DDP forward-call check of the training core: :func:`call_loss_fn` runs a
:data:`~trustvl.training.core.contract.LossFn`, checks what it returns, and (during training) that it called
the model object it was given, so a loss that would not synchronise gradients under DDP/FSDP/DeepSpeed fails
on one CPU exactly as on eight GPUs (the rule: :mod:`trustvl.training.core`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from trustvl.errors import TrustVLInputError
from trustvl.training.core.contract import LossFn

__all__ = ["call_loss_fn"]


def call_loss_fn(
    loss_fn: LossFn, model: nn.Module, inputs: dict[str, Any], *, require_model_forward: bool
) -> tuple[torch.Tensor, Mapping[str, Any]]:
    """``loss_fn(model, inputs)`` as ``(0-d loss, extras dict)``.

    With ``require_model_forward``, in a training step (model in training mode, gradients enabled) a
    gradient-carrying loss computed without a call of ``model``'s forward raises
    :class:`~trustvl.errors.TrustVLInputError`; so does a result that is not ``(scalar tensor, extras)``."""
    check = require_model_forward and model.training and torch.is_grad_enabled()
    calls = [0]
    handle = None
    if check:

        def _count(*_: Any, **__: Any) -> None:
            calls[0] += 1

        handle = model.register_forward_pre_hook(_count)
    try:
        result = loss_fn(model, inputs)
    finally:
        if handle is not None:
            handle.remove()
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TrustVLInputError(
            f"loss_fn must return (loss, extras_dict); got {type(result).__name__} {result!r:.200}"
        )
    loss, extras = result
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TrustVLInputError(f"loss_fn's loss must be a scalar tensor; got {loss!r:.200}")
    if check and calls[0] == 0 and loss.requires_grad:
        raise TrustVLInputError(
            "loss_fn computed a gradient-carrying loss without calling the model it was given (model(...)); "
            "under DDP/FSDP/DeepSpeed such a loss does not synchronise or gather weights. Compute the "
            "embeddings through the model's forward (see trustvl.training.core), or set "
            "require_model_forward=False if you know better."
        )
    return loss.reshape(()), dict(extras or {})
