"""trustvl.modeling."""

# ruff: noqa: F401  (re-exports)
from trustvl.modeling.alpha import interpolate_state_dicts, set_peft_lora_alpha
from trustvl.modeling.cf_alpha import CFAlphaCLIPConfig, CFAlphaCLIPModel
from trustvl.modeling.tiny import (
    build_tiny_clip,
    build_tiny_fixtures,
    build_tiny_inpaint_pipeline,
    build_tiny_sd_pipeline,
)
from trustvl.modeling.tokenization import (
    build_byte_level_bpe,
    bytes_to_unicode,
    clip_special_token_ids,
    train_clip_tokenizer,
)
