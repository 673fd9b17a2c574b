"""Configuration of :class:`CFAlphaCLIPModel`: a CLIP model plus a LoRA delta and a weight-space α.

CF_α (counterfactual fine-tuning, arXiv 2406.11331) fine-tunes CLIP on counterfactual images and then
ensembles the original weights θ0 and the fine-tuned weights θ1 in weight space,
``θ_α = (1 - α)·θ0 + α·θ1``. With a LoRA fine-tune ``θ1 = θ0 + ΔW`` this is ``θ_α = θ0 + α·ΔW`` with
``ΔW = (lora_alpha / lora_r)·B·A`` (the usual LoRA scaling, as in peft).

This file is self-contained on purpose: it only imports the standard library and ``transformers``, so that
``save_pretrained`` can copy it next to the weights and ``AutoConfig.from_pretrained(dir,
trust_remote_code=True)`` works where trustvl is not installed.
"""

import importlib
import math
from dataclasses import field

from transformers import CLIPConfig

#: LoRA targets used when none are given: every linear layer of the attention blocks and MLPs of both towers.
DEFAULT_LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def _input_error_base() -> type:
    """``trustvl.errors.TrustVLInputError`` when trustvl is importable, else ``ValueError``.

    The import is done dynamically (no import statement) so that the copy of this file saved with a
    checkpoint never requires trustvl.
    """
    try:
        return importlib.import_module("trustvl.errors").TrustVLInputError
    except Exception:  # trustvl not installed, or blocked: fall back to the plain ValueError
        return ValueError


class CFAlphaInputError(_input_error_base()):
    """Bad CF_α input (e.g. α outside [0, 1]). A ``ValueError``; also a ``trustvl.errors.TrustVLInputError``
    whenever trustvl is importable."""


def validate_alpha(
    alpha,
    allow_extrapolation: bool = False,
    *,
    extrapolation_hint: str = "set allow_alpha_extrapolation=True in the config",
) -> float:
    """Return ``alpha`` as a float, or raise :class:`CFAlphaInputError` naming the value.

    α must be a finite real number in ``[0, 1]`` (0 = the original model, 1 = the fine-tuned model); values
    outside the interval are only accepted with ``allow_extrapolation=True``. ``extrapolation_hint`` tells
    the caller's way to allow them. The one α check of trustvl (:mod:`trustvl.modeling.alpha` uses it too);
    it lives here because this file must stay self-contained.
    """
    if isinstance(alpha, bool):
        raise CFAlphaInputError(f"alpha must be a real number in [0, 1], got the bool {alpha!r}")
    try:
        value = float(alpha)
    except (TypeError, ValueError, RuntimeError):
        raise CFAlphaInputError(f"alpha must be a real number in [0, 1], got {alpha!r}") from None
    if not math.isfinite(value):
        raise CFAlphaInputError(f"alpha must be a finite real number, got {alpha!r}")
    if not allow_extrapolation and not 0.0 <= value <= 1.0:
        raise CFAlphaInputError(
            f"alpha={value!r} is outside [0, 1] (0 = original model, 1 = fine-tuned model); "
            f"{extrapolation_hint} to extrapolate in weight space"
        )
    return value


class CFAlphaCLIPConfig(CLIPConfig):
    r"""Configuration of a CF_α CLIP model: every field of [`CLIPConfig`] plus the LoRA delta and α.

    The LoRA fields follow peft's ``LoraConfig`` naming and meaning.

    Args:
        alpha (`float`, *optional*, defaults to 1.0):
            Weight-space interpolation coefficient: the model computes with ``θ0 + alpha·ΔW``. 0 is exactly the
            original CLIP model, 1 the fine-tuned one. Must lie in ``[0, 1]`` unless
            ``allow_alpha_extrapolation`` is True. Change it at run time with ``CFAlphaCLIPModel.set_alpha``.
        lora_r (`int`, *optional*, defaults to 8):
            Rank of the LoRA delta ``ΔW = (lora_alpha / lora_r)·B·A`` (``A``: r × in, ``B``: out × r).
        lora_alpha (`float`, *optional*, defaults to 8):
            LoRA scaling numerator (peft's ``lora_alpha``; unrelated to the CF_α coefficient ``alpha``).
        lora_dropout (`float`, *optional*, defaults to 0.0):
            Dropout on the input of the LoRA branch during training (peft's ``lora_dropout``).
        lora_target_modules (`list[str]` or `str`, *optional*):
            Linear layers that get a LoRA delta. A list matches module names exactly or by suffix after a dot
            (peft semantics, e.g. ``"q_proj"`` or ``"self_attn.q_proj"``); a single string is a regular
            expression matched against the full module name. Defaults to
            ``["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]`` (attention and MLP of both towers).
            Only ``nn.Linear`` modules are supported.
        base_model_name_or_path (`str`, *optional*):
            Provenance: the CLIP checkpoint the base weights θ0 come from.
        allow_alpha_extrapolation (`bool`, *optional*, defaults to False):
            Accept α outside ``[0, 1]`` (weight-space extrapolation).
        kwargs:
            Everything [`CLIPConfig`] accepts (``text_config``, ``vision_config``, ``projection_dim``, ...).
    """

    model_type = "cf_alpha_clip"

    alpha: float = 1.0
    lora_r: int = 8
    lora_alpha: float = 8
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | str | None = field(
        default_factory=lambda: list(DEFAULT_LORA_TARGET_MODULES)
    )
    base_model_name_or_path: str | None = None
    allow_alpha_extrapolation: bool = False

    def __post_init__(self, **kwargs):
        self.allow_alpha_extrapolation = bool(self.allow_alpha_extrapolation)
        self.alpha = validate_alpha(self.alpha, self.allow_alpha_extrapolation)
        if isinstance(self.lora_r, bool) or not isinstance(self.lora_r, int) or self.lora_r < 1:
            raise CFAlphaInputError(f"lora_r must be a positive integer, got {self.lora_r!r}")
        if (
            isinstance(self.lora_alpha, bool)
            or not isinstance(self.lora_alpha, (int, float))
            or self.lora_alpha <= 0
        ):
            raise CFAlphaInputError(f"lora_alpha must be a positive number, got {self.lora_alpha!r}")
        if not isinstance(self.lora_dropout, (int, float)) or not 0.0 <= float(self.lora_dropout) < 1.0:
            raise CFAlphaInputError(f"lora_dropout must be a number in [0, 1), got {self.lora_dropout!r}")
        targets = self.lora_target_modules
        if targets is None:
            targets = list(DEFAULT_LORA_TARGET_MODULES)
        elif isinstance(targets, (list, tuple, set)):
            targets = list(targets)
            if not targets or not all(isinstance(t, str) and t for t in targets):
                raise CFAlphaInputError(
                    f"lora_target_modules must be a non-empty list of module names, got {self.lora_target_modules!r}"
                )
        elif not (isinstance(targets, str) and targets):
            raise CFAlphaInputError(
                f"lora_target_modules must be a list of module names or a regex string, got {targets!r}"
            )
        self.lora_target_modules = targets
        super().__post_init__(**kwargs)

    @property
    def lora_scaling(self) -> float:
        """LoRA scaling ``lora_alpha / lora_r`` (ΔW = lora_scaling·B·A)."""
        return float(self.lora_alpha) / float(self.lora_r)


CFAlphaCLIPConfig.register_for_auto_class()

__all__ = ["CFAlphaCLIPConfig", "CFAlphaInputError", "DEFAULT_LORA_TARGET_MODULES", "validate_alpha"]
