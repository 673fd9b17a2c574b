"""trustvl.modeling."""

# ruff: noqa: F401  (re-exports)
from trustvl.modeling.alpha import interpolate_state_dicts, set_peft_lora_alpha
from trustvl.modeling.cf_alpha import CFAlphaCLIPConfig, CFAlphaCLIPModel
from trustvl.modeling.tokenization import (
    build_byte_level_bpe,
    bytes_to_unicode,
    clip_special_token_ids,
    train_clip_tokenizer,
)
