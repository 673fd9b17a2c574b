"""Settings of CF_α fine-tuning (``trustvl train cf-alpha``): :class:`CFAlphaConfig`, with the CF_α recipe's
defaults, and the default LoRA targets (the vision tower's projections, :func:`vision_lora_targets`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from trustvl.errors import TrustVLInputError
from trustvl.training.arguments import TrustVLTrainingArguments
from trustvl.training.cf_alpha.loss import ALPHA_PATH_TARGETS, CFAlphaLoss

__all__ = ["VISION_LORA_TARGETS", "CFAlphaConfig", "vision_lora_targets"]


#: Default LoRA targets of CF_α: the attention and MLP projections of the **vision** tower only. The text
#: tower stays the original one, so class prompts keep their embeddings (zero-shot accuracy is preserved
#: even though counterfactual captions are few and templated) and the delta only changes how images are
#: seen; pass ``lora_target_modules`` to adapt both towers.
def vision_lora_targets(layers: str = r"\d+") -> str:
    r"""Regular expression for the attention and MLP projections of the vision encoder layers whose index
    matches ``layers`` (a regex: ``r"\d+"`` every layer, ``"[2-5]"`` layers 2 to 5)."""
    return rf"vision_model\.encoder\.layers\.{layers}\.(self_attn\.(q_proj|k_proj|v_proj|out_proj)|mlp\.(fc1|fc2))"


VISION_LORA_TARGETS = vision_lora_targets()


@dataclass
class CFAlphaConfig(TrustVLTrainingArguments):
    """Settings of CF_α fine-tuning (``trustvl train cf-alpha``): the run's :class:`TrustVLTrainingArguments`
    plus the model, data, LoRA and loss fields below, with the CF_α recipe's defaults.

    ``output_dir`` is the run folder: ``model/`` (the :class:`~trustvl.modeling.cf_alpha.CFAlphaCLIPModel`),
    ``adapter/`` (the LoRA delta as a peft adapter), ``train_summary.json`` and the resumable
    ``checkpoint-<step>`` folders. ``per_device_train_batch_size`` counts counterfactual **sets** (each of
    ``variants_per_set`` images) per device. Optimisation is the Trainer's: AdamW, cosine schedule.
    """

    base_model: str | None = field(
        default=None,
        metadata={"help": "Hub id or folder of the CLIP to make fairer; None: the embedded SynthWorld CLIP."},
    )
    dataset: str | None = field(
        default=None,
        metadata={
            "help": "Counterfactual dataset: `trustvl build counterfactuals` output or any dataset with image,"
            " caption and base_id columns (required).",
        },
    )
    split: str = field(default="train", metadata={"help": "Split of the dataset to train on."})
    variants_per_set: int = field(
        default=4, metadata={"help": "Variants (images) of one base image per counterfactual set."}
    )
    lora_r: int = field(default=8, metadata={"help": "Rank r of the LoRA delta ΔW = (lora_alpha / r)·B·A."})
    lora_alpha: float = field(
        default=8.0,
        metadata={"help": "LoRA scaling numerator (peft's lora_alpha; not the CF_α coefficient)."},
    )
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA branch's input."})
    lora_target_modules: list[str] | str | None = field(
        default=VISION_LORA_TARGETS,
        metadata={
            "help": "Linear layers with a LoRA delta: a regular expression matched against full module names"
            " (the default: the vision tower's attention and MLP projections), or (config file / Python) a list"
            " of module-name suffixes; None: both towers' q/k/v/out_proj, fc1, fc2."
        },
    )
    beta_clip: float = field(
        default=CFAlphaLoss.beta_clip, metadata={"help": "β1, weight of the CLIP loss L_CLIP."}
    )
    beta_cf: float = field(
        default=CFAlphaLoss.beta_cf, metadata={"help": "β0, weight of the counterfactual loss L_cf."}
    )
    cf_loss: str = field(
        default=CFAlphaLoss.cf_loss,
        metadata={
            "help": "L_cf: 'cohesion' (squared distance to the set mean) or 'info_nce' (same-set positives).",
            "choices": ["cohesion", "info_nce"],
        },
    )
    cf_temperature: float = field(
        default=CFAlphaLoss.cf_temperature, metadata={"help": "Temperature of cf_loss='info_nce'."}
    )
    beta_score: float = field(
        default=CFAlphaLoss.beta_score,
        metadata={
            "help": "β_s, weight of the score-cohesion term (within-set variance of retrieval logits); 0: off."
        },
    )
    beta_effect: float = field(
        default=CFAlphaLoss.beta_effect,
        metadata={
            "help": "β_e, weight of the attribute-effect term L_effect (each attribute's mean score shift,"
            " every attribute pushed alike; needs effect_attributes); 0: off."
        },
    )
    effect_attributes: list[str] | None = field(
        default=None,
        metadata={
            "help": "Attribute columns of the counterfactual dataset whose levels L_effect reads (e.g."
            " skin_tone gender_presentation age body_type); needed when beta_effect > 0."
        },
    )
    effect_own_caption: bool = field(
        default=CFAlphaLoss.effect_own_caption,
        metadata={
            "help": "L_effect on each image's own caption's logit only (default: every caption of the batch)."
        },
    )
    effect_path_target: bool = field(
        default=CFAlphaLoss.effect_path_target,
        metadata={
            "help": "With alpha_path_target='linear': L_effect asks each attribute effect for (1 − α)^q of the"
            " frozen base's (the linear path's share) instead of zero at every α (issue 26)."
        },
    )
    effect_momentum: float = field(
        default=CFAlphaLoss.effect_momentum,
        metadata={
            "help": "m in [0, 1): with m > 0 (needs effect_own_caption), L_effect's gradient follows a running mean"
            " of each level's effect over the steps instead of each batch's noisy estimate (issue 26); 0: off."
        },
    )
    clip_positives: str = field(
        default=CFAlphaLoss.clip_positives,
        metadata={
            "help": "L_CLIP's multi-positive InfoNCE: 'in' (the variants' likelihoods summed inside the log) or"
            " 'out' (each variant's averaged: every variant pulled equally; issue 26).",
            "choices": ["in", "out"],
        },
    )
    max_logit_scale: float = field(
        default=CFAlphaLoss.max_logit_scale,
        metadata={"help": "Clamp of the learned CLIP logit scale in L_CLIP."},
    )
    alpha_range: list[float] | None = field(
        default=None,
        metadata={
            "help": "LO HI: train each step at α ~ U(LO, HI) (the α path) instead of α = 1: a smoother α sweep"
            " for some accuracy at α = 1 (measured in docs/results.md, CF_α)."
        },
    )
    cf_weight_by_alpha: bool = field(
        default=False,
        metadata={
            "help": "With alpha_range: weight L_cf by the drawn α (the α-weighted path, see"
            " trustvl.training.cf_alpha.loss)."
        },
    )
    alpha_endpoint_prob: float = field(
        default=0.0, metadata={"help": "With alpha_range: share of steps trained at its upper end exactly."}
    )
    alpha_path_power: float = field(
        default=CFAlphaLoss.alpha_path_power,
        metadata={
            "help": "With alpha_range: draw α = LO + (HI − LO)·u^k, u ~ U(0, 1); 1: uniform, 2: half the path"
            " steps in the lowest quarter (where the knob overshoots, issue 26)."
        },
    )
    alpha_path_target: str = field(
        default=CFAlphaLoss.alpha_path_target,
        metadata={
            "help": "With alpha_range: what L_cf and L_score ask of the model at a drawn α: 'invariance' (the end"
            " point's, at every α) or 'linear' (1 − α of the base's own within-set offsets, so every attribute's"
            " effect shrinks by the same factor along α; issue 26).",
            "choices": list(ALPHA_PATH_TARGETS),
        },
    )
    alpha_path_keep_power: float = field(
        default=CFAlphaLoss.alpha_path_keep_power,
        metadata={
            "help": "With alpha_path_target='linear': keep (1 − α)^q of the base's within-set offsets at a drawn α"
            " (1: linear; q > 1: the planted attribute stops masking the others over several α steps, not at"
            " the last one; issue 26)."
        },
    )
    gather_across_devices: bool = field(
        default=CFAlphaLoss.gather_across_devices,
        metadata={
            "help": "Under torchrun / accelerate launch: the loss of every process's batch together (the global"
            " batch, exact gradients), so N processes train the 1-process objective; false: each process's own."
        },
    )
    cache_frozen_layers: bool = field(
        default=True,
        metadata={
            "help": "Compute the frozen part once (vision layers below the first LoRA layer, the text tower) instead"
            " of every step; exact, applied when the text tower has no LoRA, the towers have no dropout and the"
            " states fit in 4 GiB (else the run trains from pixels)."
        },
    )
    alpha: float = field(
        default=1.0,
        metadata={"help": "α stored in the saved model's config (the sweep changes it at run time)."},
    )
    # the CF_α recipe's optimisation defaults
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate (AdamW)."})
    max_steps: int = field(default=300, metadata={"help": "Optimiser steps (-1: train num_train_epochs)."})
    warmup_steps: float = field(default=20, metadata={"help": "Linear warm-up steps (a float < 1: a ratio)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "transformers scheduler name."})
    logging_steps: float = field(default=20, metadata={"help": "Log every N steps."})
    save_steps: float = field(default=100, metadata={"help": "Write a resumable checkpoint every N steps."})
    save_total_limit: int | None = field(default=1, metadata={"help": "Keep at most this many checkpoints."})
    save_final_model: bool = field(
        default=False, metadata={"help": "Also save the Trainer's final/ folder (CF_α writes model/ itself)."}
    )

    def __post_init__(self) -> None:
        if not self.dataset:
            raise TrustVLInputError("CFAlphaConfig.dataset is required (a counterfactual dataset); got None")
        if not self.output_dir:
            raise TrustVLInputError("CFAlphaConfig.output_dir is required (the run folder); got None")
        if self.variants_per_set < 2:
            raise TrustVLInputError(f"variants_per_set={self.variants_per_set}; expected at least 2")
        if self.alpha_range is not None:
            if len(self.alpha_range) != 2:
                raise TrustVLInputError(f"alpha_range={self.alpha_range!r}; expected two numbers LO HI")
            self.alpha_range = [float(x) for x in self.alpha_range]
        if self.beta_effect and not self.effect_attributes:
            raise TrustVLInputError(
                f"beta_effect={self.beta_effect} needs effect_attributes (the dataset's attribute columns,"
                " e.g. ['skin_tone', 'gender_presentation', 'age', 'body_type']); got none"
            )
        super().__post_init__()
        # the loss settings are checked here, before any data or model is loaded
        CFAlphaLoss.from_config(self)
