"""Generic weight-space α helpers (weight-space ensembling, as used by CF_α, arXiv 2406.11331).

Weight-space ensembling of an original model θ0 and a fine-tuned model θ1 is
``θ_α = (1 - α)·θ0 + α·θ1``. For a LoRA fine-tune ``θ1 = θ0 + ΔW`` with ``ΔW = s·B·A`` (``s = lora_alpha / r``)
this is ``θ_α = θ0 + α·ΔW``. α = 0 is the original model, α = 1 the fine-tuned one.

These helpers work on plain state dicts and on peft LoRA models, so every trustvl method (and user code) can
apply α the same way; :class:`trustvl.modeling.cf_alpha.CFAlphaCLIPModel` is the packaged CF_α model.

Exactness: every helper returns the θ0 tensors themselves (copied) when α = 0, never ``θ0 + 0·Δ``, so α = 0
reproduces the original model bit for bit; :func:`interpolate_state_dicts` also returns θ1 exactly at α = 1.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from trustvl.errors import TrustVLInputError
from trustvl.modeling.cf_alpha.configuration_cf_alpha_clip import validate_alpha as validate_cf_alpha

__all__ = [
    "apply_task_vector",
    "interpolate_state_dicts",
    "lora_delta",
    "merge_lora_delta",
    "set_peft_lora_alpha",
    "task_vector",
    "validate_alpha",
]


def validate_alpha(alpha, allow_extrapolation: bool = False) -> float:
    """Return ``alpha`` as a float; raise :class:`~trustvl.errors.TrustVLInputError` naming it when invalid.

    α must be finite and, unless ``allow_extrapolation``, lie in ``[0, 1]`` (the check of the CF_α model's
    self-contained configuration file, with this function's argument named in the hint).
    """
    return validate_cf_alpha(alpha, allow_extrapolation, extrapolation_hint="pass allow_extrapolation=True")


def _check_same_keys(sd0: Mapping, sd1: Mapping, names: tuple[str, str]) -> None:
    only0 = sorted(set(sd0) - set(sd1))
    only1 = sorted(set(sd1) - set(sd0))
    if only0 or only1:
        raise TrustVLInputError(
            f"state dicts have different keys: only in {names[0]}: {only0[:5]}, only in {names[1]}: {only1[:5]}"
        )


def interpolate_state_dicts(
    sd0: Mapping[str, torch.Tensor],
    sd1: Mapping[str, torch.Tensor],
    alpha: float,
    *,
    allow_extrapolation: bool = False,
) -> dict[str, torch.Tensor]:
    """Weight-space ensemble of two full state dicts: ``θ_α = (1 - α)·θ0 + α·θ1`` (e.g. full fine-tunes).

    Args:
        sd0: the original weights θ0.
        sd1: the fine-tuned weights θ1 (same keys and shapes).
        alpha: the coefficient; in ``[0, 1]`` unless ``allow_extrapolation``.

    Floating-point tensors are interpolated with ``torch.lerp`` (computed in float32 for lower precisions, then
    cast back to θ0's dtype); α = 0 returns copies of θ0 and α = 1 copies of θ1, exactly. Non-floating tensors
    (integer buffers, e.g. position ids) must be equal in both and are copied from θ0. Returns new tensors on
    θ0's devices; the inputs are not modified.
    """
    value = validate_alpha(alpha, allow_extrapolation)
    _check_same_keys(sd0, sd1, ("sd0", "sd1"))
    out: dict[str, torch.Tensor] = {}
    for key, t0 in sd0.items():
        t1 = sd1[key]
        if t0.shape != t1.shape:
            raise TrustVLInputError(
                f"{key!r} has shape {tuple(t0.shape)} in sd0 but {tuple(t1.shape)} in sd1"
            )
        t0 = t0.detach()
        t1 = t1.detach().to(t0.device)
        if not torch.is_floating_point(t0):
            if not torch.equal(t0, t1.to(t0.dtype)):
                raise TrustVLInputError(f"non-floating tensor {key!r} differs between sd0 and sd1")
            out[key] = t0.clone()
        elif value == 0.0:
            out[key] = t0.clone()
        elif value == 1.0:
            out[key] = t1.to(t0.dtype).clone()
        else:
            out[key] = torch.lerp(t0.float(), t1.float(), value).to(t0.dtype)
    return out


def task_vector(sd0: Mapping[str, torch.Tensor], sd1: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``Δ = θ1 - θ0`` for every floating-point tensor (float32); non-floating tensors are skipped."""
    _check_same_keys(sd0, sd1, ("sd0", "sd1"))
    return {
        key: sd1[key].detach().float().to(t0.device) - t0.detach().float()
        for key, t0 in sd0.items()
        if torch.is_floating_point(t0)
    }


def apply_task_vector(
    sd0: Mapping[str, torch.Tensor],
    delta: Mapping[str, torch.Tensor],
    alpha: float,
    *,
    allow_extrapolation: bool = False,
) -> dict[str, torch.Tensor]:
    """``θ0 + α·Δ`` for the keys in ``delta`` (others copied from θ0); exactly θ0 at α = 0."""
    value = validate_alpha(alpha, allow_extrapolation)
    unknown = sorted(set(delta) - set(sd0))
    if unknown:
        raise TrustVLInputError(f"delta has keys that are not in sd0: {unknown[:5]}")
    out: dict[str, torch.Tensor] = {}
    for key, t0 in sd0.items():
        t0 = t0.detach()
        if key in delta and value != 0.0:
            out[key] = (t0.float() + value * delta[key].detach().float().to(t0.device)).to(t0.dtype)
        else:
            out[key] = t0.clone()
    return out


def lora_delta(
    lora_A: torch.Tensor, lora_B: torch.Tensor, scaling: float, alpha: float = 1.0
) -> torch.Tensor:
    """The LoRA weight delta ``α·s·B·A`` in float32 (``A``: r × in, ``B``: out × r, ``s = lora_alpha / r``)."""
    if lora_A.ndim != 2 or lora_B.ndim != 2 or lora_B.shape[1] != lora_A.shape[0]:
        raise TrustVLInputError(
            f"LoRA factors must be B (out × r) and A (r × in), got B {tuple(lora_B.shape)} and A {tuple(lora_A.shape)}"
        )
    return (lora_B.detach().float() @ lora_A.detach().float().to(lora_B.device)) * (
        float(scaling) * float(alpha)
    )


def merge_lora_delta(
    weight: torch.Tensor,
    lora_A: torch.Tensor,
    lora_B: torch.Tensor,
    scaling: float,
    alpha: float,
    *,
    allow_extrapolation: bool = False,
) -> torch.Tensor:
    """``W + α·s·B·A`` in ``W``'s dtype; exactly ``W`` (a copy) at α = 0."""
    value = validate_alpha(alpha, allow_extrapolation)
    weight = weight.detach()
    if value == 0.0:
        return weight.clone()
    delta = lora_delta(lora_A, lora_B, scaling, value).to(weight.device)
    if delta.shape != weight.shape:
        raise TrustVLInputError(
            f"LoRA delta shape {tuple(delta.shape)} does not match weight {tuple(weight.shape)}"
        )
    return (weight.float() + delta).to(weight.dtype)


def set_peft_lora_alpha(
    model: torch.nn.Module,
    alpha: float,
    adapter_name: str | None = None,
    *,
    allow_extrapolation: bool = False,
) -> int:
    """Scale the LoRA delta of a peft model to ``α·ΔW`` (peft's ``set_scale``: scaling = α·lora_alpha/r).

    Works on a ``PeftModel`` or a model with peft LoRA layers injected; ``adapter_name`` defaults to every
    adapter of each layer. α = 1 restores the trained scaling. Note that peft still computes the LoRA branch at
    α = 0 (``y + 0·BAx``), which equals the base output for finite activations; for a bit-exact base model use
    ``model.disable_adapter()`` or :class:`~trustvl.modeling.cf_alpha.CFAlphaCLIPModel`. Returns the number of
    (layer, adapter) scalings set (raises if none).
    """
    value = validate_alpha(alpha, allow_extrapolation)
    updated = 0
    for module in model.modules():
        set_scale = getattr(module, "set_scale", None)
        scaling = getattr(module, "scaling", None)
        if set_scale is None or not isinstance(scaling, dict):
            continue
        for name in [adapter_name] if adapter_name is not None else list(scaling):
            if name in scaling:
                set_scale(name, value)
                updated += 1
    if updated == 0:
        raise TrustVLInputError(
            f"no peft LoRA layer with adapter {adapter_name or '(any)'!r} found in the model"
        )
    return updated
