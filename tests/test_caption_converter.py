"""Safe-CLIP's caption converter: curated pairs, caption grammar, oracle, LoRA training, unsafe-caption builds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from trustvl.data_builders.safe_clip import (
    OracleCaptionConverter,
    UnsafeCaptionConverter,
    check_conversion,
    parse_caption,
    parse_unsafe_caption,
)
from trustvl.errors import TrustVLInputError
from trustvl.training.caption_converter import CURATED_PAIRS_PATH

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tiny_causal_lm(save_dir, chat: bool = False, seed: int = 0) -> Path:
    """A random 2-layer Llama with a byte-level BPE trained on the curated captions, saved to ``save_dir``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    rows = [json.loads(line) for f in ("train", "test") for line in open(CURATED_PAIRS_PATH / f"data/{f}.jsonl")]
    corpus = [r["safe_text"] for r in rows] + [r["unsafe_text"] for r in rows] + ["Safe: Unsafe: caption"]
    specials = ["<|endoftext|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    eos = "<|end|>" if chat else "<|endoftext|>"
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token="<|endoftext|>")
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.save_pretrained(save_dir)
    tokenizer.save_pretrained(save_dir)
    return Path(save_dir)
