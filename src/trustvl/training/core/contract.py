"""The loss- and metric-function contract of the training core (:data:`LossFn`, :data:`MetricFn`) and the
two helpers a loss function uses to keep to it: :func:`model_inputs` (the batch entries a CLIP-style
forward takes) and :func:`unwrap_model` (reading attributes of the wrapped model). Why a loss must call the
model it is given: the DDP rule in :mod:`trustvl.training.core`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["LossFn", "MetricFn", "model_inputs", "unwrap_model"]

LossFn = Callable[[nn.Module, dict[str, Any]], "tuple[torch.Tensor, Mapping[str, float | torch.Tensor]]"]
"""``loss_fn(model, batch) -> (loss, extras)``.

``model`` is the (possibly DDP/FSDP/DeepSpeed-wrapped) model: compute gradient-carrying outputs by calling
``model(...)`` (see :mod:`trustvl.training.core`). ``batch`` is the collated batch already moved to the
device.
``loss`` is a scalar tensor (a per-batch mean; the trainer divides it by the gradient-accumulation steps).
``extras`` maps names to scalars (floats or 0-d tensors, detached or not) logged as running means; return
the same names on every call.
"""

MetricFn = Callable[[nn.Module], Mapping[str, float]]
"""``metric_fn(model) -> {name: value}``, run at each evaluation on the unwrapped model in eval mode under
``torch.no_grad()``; values are logged as ``eval_<name>`` and can drive early stopping / best-model
selection (e.g. Safe-CLIP's sum of retrieval R@1)."""

_MODEL_INPUT_KEYS = ("input_ids", "attention_mask", "position_ids", "pixel_values")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DDP / DataParallel / DeepSpeed / ``torch.compile`` wrappers (a PEFT model stays a
    PEFT model). Use it to read attributes (``logit_scale``, ``config``), not to run gradient-carrying
    computations (see :mod:`trustvl.training.core`)."""
    from accelerate.utils import extract_model_from_parallel

    return extract_model_from_parallel(model)


def model_inputs(batch: Mapping[str, Any], keys: Sequence[str] = _MODEL_INPUT_KEYS) -> dict[str, Any]:
    """The entries of ``batch`` that a CLIP-style forward takes (``input_ids``, ``attention_mask``,
    ``position_ids``, ``pixel_values`` by default), leaving out bookkeeping fields such as ``group_id``."""
    return {k: batch[k] for k in keys if k in batch and batch[k] is not None}
