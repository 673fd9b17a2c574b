"""CF_α CLIP: a CLIP model holding its original weights θ0 plus a LoRA delta ΔW, evaluated at θ0 + α·ΔW.

CF_α (counterfactual fine-tuning, arXiv 2406.11331) fine-tunes CLIP so that concepts (e.g. occupations)
are tied to context rather than to a person's appearance, then interpolates in weight space between the
original weights θ0 and the fine-tuned weights θ1: ``θ_α = (1 - α)·θ0 + α·θ1``. trustvl fine-tunes with
LoRA, so ``θ1 = θ0 + ΔW`` and ``θ_α = θ0 + α·ΔW`` with ``ΔW = (lora_alpha / lora_r)·B·A`` per target layer.
α = 0 is *exactly* the original CLIP (the LoRA branch is skipped, not multiplied by zero), so the embedding
space stays compatible with everything built on the original model; α trades accuracy for fairness.

Design (see also the docstrings below):

* The LoRA layers are built directly (:class:`CFAlphaLoRALinear`, a subclass of ``nn.Linear`` that keeps
  ``weight``/``bias`` and adds ``lora_A.weight`` (r × in) and ``lora_B.weight`` (out × r)) instead of
  injecting peft layers: the state-dict keys of the base weights are then identical to ``CLIPModel``'s,
  the LoRA keys are peft's adapter keys (``...q_proj.lora_A.weight``), the forward pass is exactly
  ``nn.Linear``'s at α = 0, and nothing depends on peft's internals across versions.
* The forward pass is ``(W + α·s·B·A) x + b`` (``s = lora_alpha / lora_r``), the merged weight formed per call
  (one GEMM; in float32/64 without autocast or LoRA dropout), else the branch form ``W x + b + α·s·B(A x)``;
  both are trainable and let α change at run time without touching θ0; :meth:`CFAlphaCLIPModel.merged_state_dict`
  and :meth:`CFAlphaCLIPModel.export_merged` give the merged weights ``W + α·s·B·A`` for a plain CLIPModel.
* The LoRA delta is also exchanged as a **peft adapter** (``adapter_config.json`` +
  ``adapter_model.safetensors``, keys ``base_model.model.<module>.lora_A.weight``):
  :meth:`CFAlphaCLIPModel.save_adapter` writes one through peft's own ``save_pretrained``, so
  ``PeftModel.from_pretrained(CLIPModel.from_pretrained(base), adapter_dir)`` is this model at α = 1, and
  :meth:`CFAlphaCLIPModel.from_peft` builds a CF_α model from a base CLIP and such an adapter.
* This file only imports torch, transformers and its sibling configuration file (peft only inside the
  adapter methods), so ``save_pretrained`` can copy both next to the weights (``register_for_auto_class``)
  and ``AutoModel.from_pretrained(dir, trust_remote_code=True)`` works where trustvl is not installed.
"""

import contextlib
import math
import os
import re
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPConfig, CLIPModel
from transformers import initialization as hf_init
from transformers.models.clip.modeling_clip import CLIPOutput

from .configuration_cf_alpha_clip import CFAlphaCLIPConfig, CFAlphaInputError, validate_alpha

_CF_CONFIG_KEYS = (
    "alpha",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "base_model_name_or_path",
    "allow_alpha_extrapolation",
)
_NON_ARCH_CONFIG_KEYS = ("model_type", "architectures", "auto_map", "transformers_version", "_name_or_path")


def _no_init_weights():
    """transformers' ``no_init_weights`` context (skips random init of weights about to be overwritten)."""
    ctx = getattr(hf_init, "no_init_weights", None)
    return ctx() if ctx is not None else contextlib.nullcontext()


def _first_floating(state: dict) -> torch.Tensor:
    return next(t for t in state.values() if torch.is_floating_point(t))


class CFAlphaLoRAFactor(nn.Module):
    """One LoRA factor: a bias-free weight matrix of shape ``(out_features, in_features)``.

    A module (rather than a bare parameter) so that the state-dict keys read ``...lora_A.weight`` like peft's,
    and deliberately not an ``nn.Linear`` so that transformers' generic weight init never re-draws it.
    """

    def __init__(self, out_features: int, in_features: int, device=None, dtype=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class CFAlphaLoRALinear(nn.Linear):
    """``nn.Linear`` with a LoRA delta applied at a weight-space coefficient α.

    ``y = x Wᵀ + b + α·s·(x Aᵀ) Bᵀ`` with ``s = lora_alpha / r``; ``weight``/``bias`` hold θ0 unchanged.
    When ``α·s == 0`` the LoRA branch is skipped, so the output is bit-identical to ``nn.Linear``'s.
    ``A`` is initialised like peft (Kaiming-uniform, a = √5) and ``B`` to zero, so ΔW = 0 initially.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        r: int = 8,
        lora_alpha: float = 8,
        lora_dropout: float = 0.0,
        alpha: float = 1.0,
        device=None,
        dtype=None,
    ):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.r = int(r)
        self.lora_alpha = float(lora_alpha)
        self.cf_alpha = float(alpha)
        self.lora_A = CFAlphaLoRAFactor(self.r, in_features, device=device, dtype=dtype)
        self.lora_B = CFAlphaLoRAFactor(out_features, self.r, device=device, dtype=dtype)
        self.lora_dropout = nn.Dropout(lora_dropout) if lora_dropout > 0 else nn.Identity()
        self.reset_lora_parameters()

    @classmethod
    def from_linear(
        cls, linear: nn.Linear, *, r: int, lora_alpha: float, lora_dropout: float = 0.0, alpha: float = 1.0
    ) -> "CFAlphaLoRALinear":
        """Wrap an existing ``nn.Linear``, sharing (not copying) its weight and bias parameters."""
        weight = linear.weight
        new = cls(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            r=r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            alpha=alpha,
            device="meta",
        )
        new.weight = weight
        new.bias = linear.bias
        new.lora_A = CFAlphaLoRAFactor(new.r, linear.in_features, device=weight.device, dtype=weight.dtype)
        new.lora_B = CFAlphaLoRAFactor(linear.out_features, new.r, device=weight.device, dtype=weight.dtype)
        new.reset_lora_parameters()
        new.train(linear.training)
        return new

    @property
    def scaling(self) -> float:
        """LoRA scaling ``lora_alpha / r``."""
        return self.lora_alpha / self.r

    def reset_lora_parameters(self, init_module=None) -> None:
        """A ← Kaiming-uniform(a=√5), B ← 0 (peft's default). ``init_module`` defaults to ``torch.nn.init``."""
        init = init_module if init_module is not None else nn.init
        if self.lora_A.weight.device.type == "meta":
            return
        with torch.no_grad():
            init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
            init.zeros_(self.lora_B.weight)

    def delta_weight(self) -> torch.Tensor:
        """ΔW = s·B·A (at α = 1), computed in float32."""
        return (self.lora_B.weight.float() @ self.lora_A.weight.float()) * self.scaling

    def merged_weight(self, alpha: float | None = None) -> torch.Tensor:
        """``W + α·ΔW`` in the dtype of ``W`` (detached); exactly ``W`` (a copy) when α = 0."""
        alpha = self.cf_alpha if alpha is None else float(alpha)
        weight = self.weight.detach()
        if alpha == 0.0:
            return weight.clone()
        return (weight.float() + alpha * self.delta_weight().detach()).to(weight.dtype)

    def _merge_in_forward(self, x: torch.Tensor) -> bool:
        """Whether the forward pass may use one GEMM with ``W + α·s·B·A`` instead of the LoRA branch: with no
        LoRA dropout, one float dtype for input, weight and factors, and no autocast (merging a small delta
        into a low-precision weight would round it away)."""
        if not isinstance(self.lora_dropout, nn.Identity):
            return False
        if not x.dtype == self.weight.dtype == self.lora_A.weight.dtype == self.lora_B.weight.dtype:
            return False
        return x.dtype in (torch.float32, torch.float64) and not torch.is_autocast_enabled(x.device.type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.cf_alpha * self.scaling
        if scale == 0.0:
            return F.linear(x, self.weight, self.bias)
        if self._merge_in_forward(x):
            # (W + α·s·B·A) x: one full-size GEMM instead of W x plus the skinny LoRA GEMMs and two
            # elementwise passes over the output (about 2x faster on CPU in inference, 1.6x with backward);
            # gradients reach A and B through the merged weight. Equal to the branch form up to rounding.
            merged = torch.addmm(self.weight, self.lora_B.weight, self.lora_A.weight, alpha=scale)
            return F.linear(x, merged, self.bias)
        result = F.linear(x, self.weight, self.bias)
        lora_a = self.lora_A.weight
        lora_x = self.lora_dropout(x.to(lora_a.dtype))
        update = F.linear(F.linear(lora_x, lora_a), self.lora_B.weight) * scale
        return result + update.to(result.dtype)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, r={self.r}, lora_alpha={self.lora_alpha:g}, cf_alpha={self.cf_alpha:g}"
        )


def _matches_target(name: str, targets) -> bool:
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


class CFAlphaCLIPModel(CLIPModel):
    r"""A [`CLIPModel`] whose target linear layers carry a LoRA delta ΔW, evaluated at ``θ0 + α·ΔW``.

    Build one from a plain CLIP with :meth:`from_clip` (LoRA ``B = 0``, so it equals the base model), train only
    the LoRA factors (:meth:`mark_only_lora_trainable`, train at α = 1), then pick α with :meth:`set_alpha`.
    ``get_text_features`` / ``get_image_features`` / ``forward`` are CLIPModel's, unchanged.

    ``save_pretrained`` writes ``config.json`` (with α and the LoRA settings) and ``model.safetensors`` holding
    the base weights under CLIPModel's keys plus the LoRA factors (``...lora_A.weight``, ``...lora_B.weight``),
    together with this file and the configuration file and an ``auto_map``, so the checkpoint loads with
    ``AutoModel.from_pretrained(dir)`` (trustvl imported) or ``AutoModel.from_pretrained(dir,
    trust_remote_code=True)`` (no trustvl). :meth:`export_merged` writes a plain CLIP checkpoint at a chosen α;
    :meth:`save_adapter` / :meth:`from_peft` exchange the delta as a peft LoRA adapter.
    """

    config_class = CFAlphaCLIPConfig
    config: CFAlphaCLIPConfig

    def __init__(self, config: CFAlphaCLIPConfig):
        # CLIPModel.__init__ builds the towers, then calls self.post_init(), where the LoRA layers are injected.
        super().__init__(config)

    # ------------------------------------------------------------------ construction
    def post_init(self):
        self._inject_lora()
        super().post_init()

    def _inject_lora(self) -> None:
        config = self.config
        # config attributes may have been overridden after validation (e.g. from_pretrained(..., alpha=...))
        config.alpha = validate_alpha(config.alpha, bool(config.allow_alpha_extrapolation))
        targets = config.lora_target_modules
        matched = 0
        for name, module in list(self.named_modules()):
            if not name or isinstance(module, CFAlphaLoRALinear) or ".lora_" in name:
                continue
            if not _matches_target(name, targets):
                continue
            if not isinstance(module, nn.Linear):
                raise CFAlphaInputError(
                    f"lora_target_modules matches {name!r}, a {type(module).__name__}; "
                    "CF_α LoRA supports nn.Linear layers only"
                )
            parent_name, _, child_name = name.rpartition(".")
            parent = self.get_submodule(parent_name) if parent_name else self
            lora = CFAlphaLoRALinear.from_linear(
                module,
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=float(config.lora_dropout),
                alpha=config.alpha,
            )
            setattr(parent, child_name, lora)
            matched += 1
        if matched == 0 and not any(isinstance(m, CFAlphaLoRALinear) for m in self.modules()):
            raise CFAlphaInputError(
                f"lora_target_modules={targets!r} matches no nn.Linear layer of the CLIP model"
            )

    def initialize_weights(self):
        """transformers' weight init, then LoRA init (A Kaiming-uniform, B zero) for factors not loaded."""
        super().initialize_weights()
        with torch.no_grad():
            for layer in self.lora_layers().values():
                layer.reset_lora_parameters(init_module=hf_init)

    @classmethod
    def from_clip(
        cls,
        clip_model_or_path: "CLIPModel | str | os.PathLike",
        *,
        lora_r: int = 8,
        lora_alpha: float = 8,
        lora_dropout: float = 0.0,
        lora_target_modules=None,
        alpha: float = 1.0,
        allow_alpha_extrapolation: bool = False,
        base_model_name_or_path: str | None = None,
        **from_pretrained_kwargs,
    ) -> "CFAlphaCLIPModel":
        """Build a CF_α model from a plain CLIP (a ``CLIPModel`` or a path / Hub id for ``CLIPModel.from_pretrained``).

        The base weights are copied (the source model is left untouched), LoRA ``A`` is Kaiming-uniform and
        ``B`` zero, so the new model computes exactly what the source does at every α until ``B`` is trained.
        ``from_pretrained_kwargs`` go to ``CLIPModel.from_pretrained`` when a path is given.
        """
        if isinstance(clip_model_or_path, (str, os.PathLike)):
            source = os.fspath(clip_model_or_path)
            clip = CLIPModel.from_pretrained(source, **from_pretrained_kwargs)
        else:
            clip = clip_model_or_path
            if isinstance(clip, CFAlphaCLIPModel):
                raise CFAlphaInputError(
                    "from_clip expects a plain CLIPModel, got a CFAlphaCLIPModel; "
                    "use .to_clip_model(alpha) to get a plain CLIPModel from it"
                )
            if not isinstance(clip, CLIPModel):
                raise CFAlphaInputError(
                    f"from_clip expects a CLIPModel or a path, got {type(clip_model_or_path).__name__}"
                )
            source = getattr(clip.config, "_name_or_path", "") or getattr(clip, "name_or_path", "") or None
        if base_model_name_or_path is None:
            base_model_name_or_path = source or None

        config_dict = clip.config.to_dict()
        for key in _NON_ARCH_CONFIG_KEYS + _CF_CONFIG_KEYS:
            config_dict.pop(key, None)
        config = CFAlphaCLIPConfig(
            **config_dict,
            alpha=alpha,
            lora_r=lora_r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            lora_target_modules=lora_target_modules,
            base_model_name_or_path=base_model_name_or_path,
            allow_alpha_extrapolation=allow_alpha_extrapolation,
        )
        attn_impl = getattr(clip.config, "_attn_implementation", None)
        if attn_impl is not None:
            with contextlib.suppress(AttributeError, ValueError, TypeError):
                config._attn_implementation = attn_impl

        with _no_init_weights():
            model = cls(config)
        base_state = clip.state_dict()
        missing, unexpected = model.load_state_dict(base_state, strict=False)
        bad_missing = [k for k in missing if ".lora_A." not in k and ".lora_B." not in k]
        if bad_missing or unexpected:
            raise CFAlphaInputError(
                f"base CLIP weights do not fit the CF_α model: missing {bad_missing[:5]}, unexpected {unexpected[:5]}"
            )
        reference = _first_floating(base_state)
        model.to(device=reference.device, dtype=reference.dtype)
        for layer in model.lora_layers().values():
            layer.reset_lora_parameters()
        model.train(clip.training)
        return model

    # ------------------------------------------------------------------ α
    @property
    def alpha(self) -> float:
        """The current weight-space coefficient α (also ``config.alpha``)."""
        return float(self.config.alpha)

    def set_alpha(self, alpha: float) -> "CFAlphaCLIPModel":
        """Evaluate the model at ``θ0 + alpha·ΔW`` from now on; also stored in ``config.alpha`` (saved/loaded).

        Always change α through this method: assigning ``config.alpha`` directly does not reach the layers.

        Raises :class:`CFAlphaInputError` (a ``ValueError``, and a ``trustvl.errors.TrustVLInputError`` when
        trustvl is installed) naming the value if α is not finite, or outside [0, 1] without
        ``config.allow_alpha_extrapolation``. Returns the model.
        """
        value = validate_alpha(alpha, bool(self.config.allow_alpha_extrapolation))
        self.config.alpha = value
        for layer in self.lora_layers().values():
            layer.cf_alpha = value
        return self

    @contextlib.contextmanager
    def temporary_alpha(self, alpha: float):
        """Context manager: evaluate at ``alpha`` inside the block, restore the previous α afterwards.

        ``with model.temporary_alpha(0.0): ...`` gives the original CLIP (e.g. as a frozen reference).
        """
        previous = self.alpha
        self.set_alpha(alpha)
        try:
            yield self
        finally:
            self.set_alpha(previous)

    # ------------------------------------------------------------------ LoRA helpers
    def lora_layers(self) -> dict[str, CFAlphaLoRALinear]:
        """Module name → LoRA layer, in module order."""
        return {name: m for name, m in self.named_modules() if isinstance(m, CFAlphaLoRALinear)}

    def lora_named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` for every LoRA factor (``...lora_A.weight`` / ``...lora_B.weight``)."""
        for name, param in self.named_parameters():
            if ".lora_A." in name or ".lora_B." in name:
                yield name, param

    def lora_parameters(self) -> Iterator[nn.Parameter]:
        """The LoRA factors (what to give the optimiser)."""
        for _, param in self.lora_named_parameters():
            yield param

    def mark_only_lora_trainable(self) -> "CFAlphaCLIPModel":
        """Freeze θ0 (every non-LoRA parameter, ``logit_scale`` included); make the LoRA factors trainable.

        Train at α = 1 (at α = 0 the LoRA branch is skipped and gets no gradient). Returns the model.
        """
        lora_ids = {id(p) for p in self.lora_parameters()}
        for param in self.parameters():
            param.requires_grad_(id(param) in lora_ids)
        return self

    def num_lora_parameters(self) -> int:
        """Number of scalar LoRA parameters."""
        return sum(p.numel() for p in self.lora_parameters())

    def lora_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the LoRA factors (detached), keyed like the full state dict."""
        return {name: param.detach() for name, param in self.lora_named_parameters()}

    def lora_delta_weights(self) -> dict[str, torch.Tensor]:
        """``{"<layer>.weight": ΔW}`` at α = 1 (float32), keyed like CLIPModel's state dict."""
        return {f"{name}.weight": layer.delta_weight().detach() for name, layer in self.lora_layers().items()}

    # ------------------------------------------------------------------ frozen prefix of the vision tower
    def first_adapted_vision_layer(self) -> int:
        """Index ``L0`` of the lowest vision encoder layer holding a LoRA delta.

        What the vision tower computes before layer ``L0`` (patch embedding, pre-LayerNorm, layers ``0 .. L0-1``)
        is the same at every α and is not trained, so it can be computed once per image
        (:meth:`vision_hidden_states`) and reused (:meth:`image_features_from_hidden_states`): trustvl does so
        in CF_α training and in the α sweep. ``num_hidden_layers`` when the vision tower has no LoRA layer;
        0 when one sits before the encoder layers.
        """
        prefix = "vision_model.encoder.layers."
        first = len(self.vision_model.encoder.layers)
        for name in self.lora_layers():
            if name.startswith(prefix):
                first = min(first, int(name[len(prefix) :].split(".")[0]))
            elif name.startswith("vision_model.") and not name.startswith("vision_model.post_layernorm"):
                return 0
        return first

    def text_tower_adapted(self) -> bool:
        """Whether any LoRA layer changes text features (the text tower or the text projection)."""
        return any(name.startswith(("text_model.", "text_projection")) for name in self.lora_layers())

    def vision_hidden_states(self, pixel_values: torch.Tensor, n_layers: int) -> torch.Tensor:
        """The hidden states entering vision encoder layer ``n_layers`` (``[batch, tokens, width]``)."""
        vision = self.vision_model
        hidden = vision.pre_layrnorm(vision.embeddings(pixel_values))
        for layer in vision.encoder.layers[:n_layers]:
            hidden = layer(hidden, None)
        return hidden

    def vision_hidden_states_nbytes(self, n_images: int) -> int:
        """Memory of :meth:`vision_hidden_states` for ``n_images`` images (``tokens × width`` each)."""
        vision = self.config.vision_config
        tokens = (vision.image_size // vision.patch_size) ** 2 + 1
        return n_images * tokens * vision.hidden_size * next(self.parameters()).element_size()

    def image_features_from_hidden_states(
        self, hidden_states: torch.Tensor, start_layer: int
    ) -> torch.Tensor:
        """Projected image features (as ``get_image_features``) from the states entering ``start_layer``."""
        vision = self.vision_model
        hidden = hidden_states
        for layer in vision.encoder.layers[int(start_layer) :]:
            hidden = layer(hidden, None)
        return self.visual_projection(vision.post_layernorm(hidden[:, 0, :]))

    def forward(
        self,
        *args,
        vision_hidden_states: torch.Tensor | None = None,
        vision_start_layer: int | torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
        **kwargs,
    ):
        """``CLIPModel.forward``; or, given ``vision_hidden_states`` (the states entering vision layer
        ``vision_start_layer``, see :meth:`first_adapted_vision_layer`) and precomputed ``text_embeds`` (or
        ``input_ids``), a :class:`~transformers.models.clip.modeling_clip.CLIPOutput` with only ``image_embeds``
        and ``text_embeds`` (unnormalised) set, running just the vision layers from ``vision_start_layer`` on."""
        if vision_hidden_states is None:
            return super().forward(*args, **kwargs)
        if vision_start_layer is None:
            raise CFAlphaInputError("vision_hidden_states needs vision_start_layer (the layer they enter)")
        start = int(vision_start_layer)
        if start > self.first_adapted_vision_layer():
            raise CFAlphaInputError(
                f"vision_start_layer={start} skips LoRA layers (the first adapted vision layer is"
                f" {self.first_adapted_vision_layer()}); expected at most that"
            )
        image_embeds = self.image_features_from_hidden_states(vision_hidden_states, start)
        if text_embeds is None:
            text = self.get_text_features(
                input_ids=kwargs.get("input_ids", args[0] if args else None),
                attention_mask=kwargs.get("attention_mask"),
            )
            text_embeds = getattr(text, "pooler_output", text)
        return CLIPOutput(image_embeds=image_embeds, text_embeds=text_embeds)

    # ------------------------------------------------------------------ merged export
    def merged_state_dict(self, alpha: float | None = None) -> dict[str, torch.Tensor]:
        """A plain ``CLIPModel`` state dict with ``W + alpha·ΔW`` merged into every LoRA layer (no LoRA keys).

        ``alpha`` defaults to the current α and is validated like :meth:`set_alpha`. At α = 0 every tensor is
        exactly the original weight. Tensors are detached copies.
        """
        alpha = (
            self.alpha
            if alpha is None
            else validate_alpha(alpha, bool(self.config.allow_alpha_extrapolation))
        )
        layers = self.lora_layers()
        merged = {}
        for key, value in self.state_dict().items():
            if ".lora_A." in key or ".lora_B." in key:
                continue
            module_name, _, param_name = key.rpartition(".")
            if param_name == "weight" and module_name in layers:
                merged[key] = layers[module_name].merged_weight(alpha)
            else:
                merged[key] = value.detach().clone()
        return merged

    def to_clip_config(self, alpha: float | None = None) -> CLIPConfig:
        """The equivalent plain ``CLIPConfig`` (``model_type: clip``), with CF_α provenance as ``cf_alpha_merged``."""
        config_dict = self.config.to_dict()
        for key in _NON_ARCH_CONFIG_KEYS + _CF_CONFIG_KEYS:
            config_dict.pop(key, None)
        config = CLIPConfig(**config_dict)
        config.architectures = ["CLIPModel"]
        config.cf_alpha_merged = {
            "alpha": self.alpha if alpha is None else float(alpha),
            "base_model_name_or_path": self.config.base_model_name_or_path,
            "lora_r": self.config.lora_r,
            "lora_alpha": self.config.lora_alpha,
        }
        return config

    def to_clip_model(self, alpha: float | None = None) -> CLIPModel:
        """A new plain ``CLIPModel`` with the merged weights ``θ0 + alpha·ΔW`` (default: current α)."""
        alpha = (
            self.alpha
            if alpha is None
            else validate_alpha(alpha, bool(self.config.allow_alpha_extrapolation))
        )
        state = self.merged_state_dict(alpha)
        with _no_init_weights():
            clip = CLIPModel(self.to_clip_config(alpha))
        clip.load_state_dict(state, strict=True)
        reference = _first_floating(state)
        clip.to(device=reference.device, dtype=reference.dtype)
        clip.train(self.training)
        return clip

    def export_merged(
        self, alpha: float, path: "str | os.PathLike", processor=None, **save_kwargs
    ) -> CLIPModel:
        """Write a vanilla CLIP checkpoint (``model_type: clip``, safetensors, no LoRA keys) with ``θ0 + alpha·ΔW``.

        ``CLIPModel.from_pretrained(path)`` loads it without trustvl. ``processor`` (optional) is saved along.
        Returns the merged in-memory ``CLIPModel``.
        """
        clip = self.to_clip_model(alpha)
        clip.save_pretrained(path, **save_kwargs)
        if processor is not None:
            processor.save_pretrained(path)
        return clip

    # ------------------------------------------------------------------ peft adapters
    def peft_lora_config(self):
        """The peft ``LoraConfig`` of this model's LoRA delta (r, lora_alpha, dropout, targets; no bias).

        peft is imported here, not at the top of the file, so that the model itself works without peft."""
        from peft import LoraConfig

        targets = self.config.lora_target_modules
        return LoraConfig(
            r=int(self.config.lora_r),
            lora_alpha=self.config.lora_alpha,
            lora_dropout=float(self.config.lora_dropout),
            target_modules=targets if isinstance(targets, str) else list(targets),
            bias="none",
            base_model_name_or_path=self.config.base_model_name_or_path,
        )

    def to_peft_model(self):
        """A peft ``PeftModel``: a plain ``CLIPModel`` holding θ0 plus this model's LoRA factors as adapter
        ``"default"``; at peft's scaling it computes what this model computes at α = 1."""
        from peft import get_peft_model, set_peft_model_state_dict

        base = self.to_clip_model(alpha=0.0)
        base.config.architectures = ["CLIPModel"]
        with contextlib.suppress(AttributeError):
            del base.config.cf_alpha_merged
        if self.config.base_model_name_or_path:  # peft records it as the adapter's base model
            base.config._name_or_path = self.config.base_model_name_or_path
            base.name_or_path = self.config.base_model_name_or_path
        with warnings.catch_warnings():  # peft reads transformers' deprecated is_gradient_checkpointing
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            peft_model = get_peft_model(base, self.peft_lora_config())
        factors = {f"base_model.model.{name}": value for name, value in self.lora_state_dict().items()}
        result = set_peft_model_state_dict(peft_model, factors)
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        missing = [k for k in getattr(result, "missing_keys", []) or [] if ".lora_" in k]
        if unexpected or missing:
            raise CFAlphaInputError(
                f"the LoRA factors do not fit peft's layers: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        peft_model.train(self.training)
        return peft_model

    def save_adapter(self, adapter_dir: "str | os.PathLike") -> None:
        """Write the LoRA delta as a peft adapter (``adapter_config.json`` + ``adapter_model.safetensors``,
        peft's keys ``base_model.model.<module>.lora_A.weight``), loadable with
        ``PeftModel.from_pretrained(CLIPModel.from_pretrained(base), adapter_dir)`` (the model at α = 1)."""
        self.to_peft_model().save_pretrained(os.fspath(adapter_dir), safe_serialization=True)

    @classmethod
    def from_peft(
        cls,
        clip_model_or_path: "CLIPModel | str | os.PathLike",
        adapter_dir: "str | os.PathLike",
        *,
        alpha: float = 1.0,
        allow_alpha_extrapolation: bool = False,
        **from_pretrained_kwargs,
    ) -> "CFAlphaCLIPModel":
        """A CF_α model from a plain CLIP (θ0) and a peft LoRA adapter (ΔW), evaluated at ``θ0 + alpha·ΔW``.

        The adapter must be a plain LoRA (no bias, rsLoRA, DoRA, per-layer rank or alpha patterns, extra saved
        modules) on linear layers. ``from_pretrained_kwargs`` go to ``CLIPModel.from_pretrained`` when a path is
        given.
        """
        from peft import PeftConfig
        from peft.utils import load_peft_weights

        adapter_dir = os.fspath(adapter_dir)
        try:
            peft_config = PeftConfig.from_pretrained(adapter_dir)
        except (OSError, ValueError) as err:
            raise CFAlphaInputError(f"{adapter_dir!r} is not a peft adapter folder: {err}") from None
        unsupported = {
            "peft_type": str(getattr(peft_config.peft_type, "value", peft_config.peft_type)) != "LORA",
            "bias": getattr(peft_config, "bias", "none") != "none",
            "use_rslora": bool(getattr(peft_config, "use_rslora", False)),
            "use_dora": bool(getattr(peft_config, "use_dora", False)),
            "rank_pattern": bool(getattr(peft_config, "rank_pattern", None)),
            "alpha_pattern": bool(getattr(peft_config, "alpha_pattern", None)),
            "modules_to_save": bool(getattr(peft_config, "modules_to_save", None)),
        }
        bad = [name for name, is_bad in unsupported.items() if is_bad]
        if bad:
            raise CFAlphaInputError(
                f"the adapter in {adapter_dir!r} is not a plain LoRA ({', '.join(bad)}); CF_α needs"
                " ΔW = (lora_alpha / r)·B·A on linear layers"
            )
        targets = peft_config.target_modules
        targets = targets if isinstance(targets, str) else sorted(targets)
        base_name = peft_config.base_model_name_or_path
        if base_name is None and isinstance(clip_model_or_path, (str, os.PathLike)):
            base_name = os.fspath(clip_model_or_path)
        model = cls.from_clip(
            clip_model_or_path,
            lora_r=int(peft_config.r),
            lora_alpha=peft_config.lora_alpha,
            lora_dropout=float(peft_config.lora_dropout),
            lora_target_modules=targets,
            alpha=alpha,
            allow_alpha_extrapolation=allow_alpha_extrapolation,
            base_model_name_or_path=base_name,
            **from_pretrained_kwargs,
        )
        prefix = "base_model.model."
        weights = load_peft_weights(adapter_dir, device="cpu")
        factors = {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in weights.items()}
        expected = dict(model.lora_named_parameters())
        unexpected = sorted(set(factors) - set(expected))
        missing = sorted(set(expected) - set(factors))
        if unexpected or missing:
            raise CFAlphaInputError(
                f"the adapter in {adapter_dir!r} does not fit the CLIP: missing {missing[:5]},"
                f" unexpected {unexpected[:5]}"
            )
        with torch.no_grad():
            for name, param in expected.items():
                param.copy_(factors[name].to(device=param.device, dtype=param.dtype))
        return model

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, save_directory, *args, **kwargs):
        """``PreTrainedModel.save_pretrained``; also maps ``AutoModelForZeroShotImageClassification`` in ``auto_map``."""
        if getattr(type(self), "_auto_class", None) is not None:
            module = type(self).__module__.rsplit(".", 1)[-1]
            auto_map = dict(getattr(self.config, "auto_map", None) or {})
            auto_map.setdefault("AutoModelForZeroShotImageClassification", f"{module}.{type(self).__name__}")
            self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)


CFAlphaCLIPModel.register_for_auto_class("AutoModel")

__all__ = ["CFAlphaCLIPModel", "CFAlphaLoRAFactor", "CFAlphaLoRALinear"]
