"""CF_α (counterfactual fine-tuning with weight-space α, arXiv 2406.11331): CLIP + LoRA delta at θ0 + α·ΔW.

Importing this package registers ``cf_alpha_clip`` with ``AutoConfig``, ``AutoModel`` and
``AutoModelForZeroShotImageClassification``, so ``AutoModel.from_pretrained(dir)`` returns a
:class:`CFAlphaCLIPModel`. Saved checkpoints also carry the (self-contained) modeling files and an
``auto_map``, so ``AutoModel.from_pretrained(dir, trust_remote_code=True)`` works without trustvl.
"""

from transformers import AutoConfig, AutoModel, AutoModelForZeroShotImageClassification

from trustvl.modeling.cf_alpha.configuration_cf_alpha_clip import (
    DEFAULT_LORA_TARGET_MODULES,
    CFAlphaCLIPConfig,
    CFAlphaInputError,
    validate_alpha,
)
from trustvl.modeling.cf_alpha.modeling_cf_alpha_clip import (
    CFAlphaCLIPModel,
    CFAlphaLoRAFactor,
    CFAlphaLoRALinear,
)

AutoConfig.register(CFAlphaCLIPConfig.model_type, CFAlphaCLIPConfig, exist_ok=True)
AutoModel.register(CFAlphaCLIPConfig, CFAlphaCLIPModel, exist_ok=True)
AutoModelForZeroShotImageClassification.register(CFAlphaCLIPConfig, CFAlphaCLIPModel, exist_ok=True)

__all__ = [
    "DEFAULT_LORA_TARGET_MODULES",
    "CFAlphaCLIPConfig",
    "CFAlphaCLIPModel",
    "CFAlphaInputError",
    "CFAlphaLoRAFactor",
    "CFAlphaLoRALinear",
    "validate_alpha",
]
