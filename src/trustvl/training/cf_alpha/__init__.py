"""CF_α counterfactual fine-tuning (arXiv 2406.11331; SPEC §2) through trustvl's shared training core.

CF_α fine-tunes a LoRA delta on a CLIP (by default on the vision tower only) with counterfactual sets:
``v`` variants of one base image that differ only in the person's appearance, sharing one context-only
caption. The loss ``L = β1·L_CLIP + β0·L_cf + β_s·L_score`` (:mod:`.loss`, whose docstring defines each
term and the optional α path) ties concepts to context rather than to appearance. Only the LoRA factors
of a :class:`~trustvl.modeling.cf_alpha.CFAlphaCLIPModel` are trained (at α = 1), so the base weights stay
intact and α interpolates between the original and the fine-tuned model. The data are the sets and their
collators (:mod:`.data`, with an exact cache of the frozen layers); the settings are
:class:`CFAlphaConfig` (:mod:`.config`); the run is :func:`train_cf_alpha` (:mod:`.train`).

Command line: ``trustvl train cf-alpha --dataset COUNTERFACTUALS --out RUN``; evaluation (the α sweep):
``trustvl eval cf-alpha`` (:mod:`trustvl.evaluation.cf_alpha`).
"""

from trustvl.training.cf_alpha.config import VISION_LORA_TARGETS, CFAlphaConfig, vision_lora_targets
from trustvl.training.cf_alpha.data import (
    PREFIX_CACHE_MAX_BYTES,
    CounterfactualSetCollator,
    CounterfactualSets,
    PrefixCachedSets,
    caption_groups,
    caption_keys,
    collate_prefix_cached_sets,
)
from trustvl.training.cf_alpha.loss import CFAlphaLoss
from trustvl.training.cf_alpha.train import train_cf_alpha

__all__ = [
    "PREFIX_CACHE_MAX_BYTES",
    "VISION_LORA_TARGETS",
    "CFAlphaConfig",
    "CFAlphaLoss",
    "CounterfactualSetCollator",
    "CounterfactualSets",
    "PrefixCachedSets",
    "caption_groups",
    "caption_keys",
    "collate_prefix_cached_sets",
    "train_cf_alpha",
    "vision_lora_targets",
]
