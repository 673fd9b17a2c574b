"""LoRA on CLIP towers with peft, for every method (RaVL mitigation, Safe-CLIP, user code).

A LoRA delta ``ΔW = (lora_alpha / r)·B·A`` is added to the target linear layers of a ``CLIPModel`` with
peft (:func:`add_lora`); only the factors train. What trustvl saves is always a peft adapter
(``adapter_config.json`` + ``adapter_model.safetensors``, :func:`save_adapter`) that
``PeftModel.from_pretrained(CLIPModel.from_pretrained(base), adapter_dir)`` loads, and, where a plain
checkpoint is wanted, the merged ``CLIPModel`` (:func:`merge_lora`).

CF_α keeps its own model class (:class:`~trustvl.modeling.cf_alpha.CFAlphaCLIPModel`, exact at α = 0) and
writes the same peft adapter format (``CFAlphaCLIPModel.save_adapter``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import CLIPModel

from trustvl.errors import TrustVLInputError

__all__ = [
    "CLIP_LORA_TARGETS",
    "add_lora",
    "clip_lora_config",
    "load_adapter",
    "merge_lora",
    "save_adapter",
]

#: LoRA targets of a CLIP when none are given: every linear layer of the attention blocks and MLPs of both
#: towers (peft's suffix match). ``configuration_cf_alpha_clip.DEFAULT_LORA_TARGET_MODULES`` holds the same
#: names (that file must stay self-contained; a test keeps the two equal).
CLIP_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def clip_lora_config(
    *,
    r: int,
    lora_alpha: float,
    lora_dropout: float = 0.0,
    target_modules: Sequence[str] | str | None = None,
    base_model_name_or_path: str | None = None,
) -> LoraConfig:
    """A peft ``LoraConfig`` for a CLIP: ``ΔW = (lora_alpha / r)·B·A`` on ``target_modules``.

    ``target_modules``: module names matched exactly or by suffix (a list, peft semantics) or a regular
    expression matched against the full module name (a string); `None` means :data:`CLIP_LORA_TARGETS`.
    No bias, no rsLoRA/DoRA: the plain LoRA delta, so α-scaling (:func:`~trustvl.modeling.alpha.set_peft_lora_alpha`)
    and CF_α's ``θ0 + α·ΔW`` mean the same thing.
    """
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise TrustVLInputError(f"lora r={r!r}; expected a positive integer")
    if isinstance(lora_alpha, bool) or not isinstance(lora_alpha, (int, float)) or lora_alpha <= 0:
        raise TrustVLInputError(f"lora_alpha={lora_alpha!r}; expected a positive number")
    if not 0.0 <= float(lora_dropout) < 1.0:
        raise TrustVLInputError(f"lora_dropout={lora_dropout!r}; expected a number in [0, 1)")
    if target_modules is None:
        targets: list[str] | str = list(CLIP_LORA_TARGETS)
    elif isinstance(target_modules, str):
        targets = target_modules
    else:
        targets = list(target_modules)
        if not targets or not all(isinstance(t, str) and t for t in targets):
            raise TrustVLInputError(
                f"target_modules={target_modules!r}; expected module names or a regular expression"
            )
    return LoraConfig(
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=float(lora_dropout),
        target_modules=targets,
        bias="none",
        base_model_name_or_path=base_model_name_or_path,
    )


def add_lora(model: CLIPModel, config: LoraConfig) -> PeftModel:
    """Wrap ``model`` with a fresh LoRA adapter (peft's init: ``A`` Kaiming-uniform, ``B`` = 0, so the output
    is unchanged); only the LoRA factors are trainable. ``model`` is modified in place (peft injects its
    layers). Seed torch first for a reproducible ``A``."""
    if not isinstance(model, torch.nn.Module):
        raise TrustVLInputError(f"add_lora expects a CLIPModel; got {type(model).__name__}")
    if isinstance(model, PeftModel):
        raise TrustVLInputError("add_lora expects a plain model; got a PeftModel (merge or unload it first)")
    try:
        return get_peft_model(model, config)
    except ValueError as err:  # e.g. targets that match no layer
        raise TrustVLInputError(f"LoRA target_modules={config.target_modules!r}: {err}") from None


def save_adapter(model: PeftModel, adapter_dir: str | os.PathLike) -> Path:
    """Write the peft adapter (``adapter_config.json`` + ``adapter_model.safetensors``) to ``adapter_dir``."""
    if not isinstance(model, PeftModel):
        raise TrustVLInputError(f"save_adapter expects a PeftModel; got {type(model).__name__}")
    model.save_pretrained(os.fspath(adapter_dir), safe_serialization=True)
    return Path(adapter_dir)


def load_adapter(
    base: CLIPModel | str | os.PathLike, adapter_dir: str | os.PathLike, **from_pretrained_kwargs: Any
) -> PeftModel:
    """``PeftModel.from_pretrained(base, adapter_dir)``; ``base`` may be a ``CLIPModel`` or its folder / Hub id."""
    if not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise TrustVLInputError(
            f"{os.fspath(adapter_dir)!r} holds no adapter_config.json; expected a peft adapter folder"
        )
    if isinstance(base, (str, os.PathLike)):
        base = CLIPModel.from_pretrained(os.fspath(base), **from_pretrained_kwargs)
    return PeftModel.from_pretrained(base, os.fspath(adapter_dir))


def merge_lora(model: PeftModel) -> CLIPModel:
    """The plain model with ``W + ΔW`` merged into every LoRA layer (peft's ``merge_and_unload``; ``model``'s
    base weights are merged in place)."""
    if not isinstance(model, PeftModel):
        raise TrustVLInputError(f"merge_lora expects a PeftModel; got {type(model).__name__}")
    return model.merge_and_unload()
