"""CLIP-compatible tokenizers built offline: byte mapping, merges, save/reload, eos pooling."""

from __future__ import annotations

import pytest
import torch
from tokenizers import pre_tokenizers
from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from trustvl.errors import TrustVLInputError
from trustvl.modeling import (
    build_byte_level_bpe,
    bytes_to_unicode,
    clip_special_token_ids,
    train_clip_tokenizer,
)
from trustvl.modeling.tokenization import (
    BOS_TOKEN,
    END_OF_WORD,
    EOS_TOKEN,
    N_BASE_TOKENS,
    default_caption_corpus,
)

TEXTS = [
    "a photo of a doctor",
    "A PHOTO of the Nurse, smiling!!",
    "it's a firefighter's helmet -- 2024 edition",
    "   multiple   spaces\tand\nnewlines ",
    "ünïcødé café naïve 東京 😀",
    "",
]

CAPTIONS = [
    f"a photo of a {adj} {job} {place}"
    for adj in ("young", "old", "smiling", "tall")
    for job in ("doctor", "nurse", "pilot", "chef", "farmer", "teacher")
    for place in ("in a hospital", "on a farm", "in a kitchen", "at the airport")
]


@pytest.fixture(scope="module")
def bpe() -> CLIPTokenizer:
    return build_byte_level_bpe(model_max_length=32)


@pytest.fixture(scope="module")
def trained() -> CLIPTokenizer:
    return train_clip_tokenizer(CAPTIONS * 3, vocab_size=600, model_max_length=32)


def test_bytes_to_unicode_matches_clip_layout():
    mapping = bytes_to_unicode()
    assert sorted(mapping) == list(range(256))
    assert len(set(mapping.values())) == 256
    assert set(mapping.values()) == set(pre_tokenizers.ByteLevel.alphabet())
    assert list(mapping)[:94] == list(range(ord("!"), ord("~") + 1))  # CLIP's vocabulary order
    assert mapping[ord("a")] == "a" and mapping[ord(" ")] == "\u0120" and mapping[0] == "\u0100"
    assert all(ch.isprintable() and not ch.isspace() for ch in mapping.values())


def test_byte_level_bpe_layout_and_round_trip(bpe):
    vocab = bpe.get_vocab()
    symbols = list(bytes_to_unicode().values())
    assert [vocab[s] for s in symbols] == list(range(256))
    assert [vocab[s + END_OF_WORD] for s in symbols] == list(range(256, 512))
    assert N_BASE_TOKENS < len(bpe) <= 1000
    assert vocab[BOS_TOKEN] == len(bpe) - 2 and vocab[EOS_TOKEN] == len(bpe) - 1
    ids = bpe("a photo of a doctor")["input_ids"]
    assert ids[0] == bpe.bos_token_id and ids[-1] == bpe.eos_token_id
    assert len(set(ids)) > 2
    assert bpe.convert_ids_to_tokens(ids)[1:-1] == ["a</w>", "photo</w>", "of</w>", "a</w>", "doctor</w>"]
    assert bpe.decode(ids, skip_special_tokens=True) == "a photo of a doctor"


def test_byte_level_bpe_no_unknown_and_deterministic(bpe):
    for text in TEXTS:
        ids = bpe(text)["input_ids"]
        assert bpe.eos_token_id not in ids[:-1], text  # unk is eos: nothing may map to it
    again = build_byte_level_bpe(model_max_length=32)
    assert again.get_vocab() == bpe.get_vocab()
    assert [again(t)["input_ids"] for t in TEXTS] == [bpe(t)["input_ids"] for t in TEXTS]


def test_byte_level_bpe_learns_from_given_texts():
    tok = build_byte_level_bpe(["zyzzyva quokka"] * 20, vocab_size=560)
    assert tok.convert_ids_to_tokens(tok("zyzzyva quokka")["input_ids"])[1:-1] == [
        "zyzzyva</w>",
        "quokka</w>",
    ]
    assert len(tok) <= 560


def test_same_splitting_as_transformers_clip_tokenizer(bpe):
    reference = CLIPTokenizer().backend_tokenizer  # transformers' own CLIP pipeline (tiny vocab)
    ours = bpe.backend_tokenizer
    for text in TEXTS:
        norm = reference.normalizer.normalize_str(text)
        assert ours.normalizer.normalize_str(text) == norm
        assert ours.pre_tokenizer.pre_tokenize_str(norm) == reference.pre_tokenizer.pre_tokenize_str(norm)


@pytest.mark.parametrize("loader", [CLIPTokenizer, AutoTokenizer])
def test_trained_tokenizer_save_reload_identical(trained, tmp_path, loader):
    trained.save_pretrained(tmp_path)
    reloaded = loader.from_pretrained(tmp_path)
    assert type(reloaded).__name__ == "CLIPTokenizer"
    assert reloaded.model_max_length == 32 and len(reloaded) == len(trained)
    assert reloaded.get_vocab() == trained.get_vocab()
    for kwargs in ({}, {"padding": "max_length"}, {"padding": True, "truncation": True}):
        assert reloaded(TEXTS, **kwargs)["input_ids"] == trained(TEXTS, **kwargs)["input_ids"]


def test_trained_tokenizer_clip_conventions(trained):
    assert N_BASE_TOKENS < len(trained) <= 600
    ids = trained("A photo of a Doctor in a hospital")["input_ids"]
    assert trained.convert_ids_to_tokens(ids)[1:-1] == [
        "a</w>",
        "photo</w>",
        "of</w>",
        "a</w>",
        "doctor</w>",
        "in</w>",
        "a</w>",
        "hospital</w>",
    ]
    assert trained.decode(ids, skip_special_tokens=True) == "a photo of a doctor in a hospital"
    padded = trained("a nurse", padding="max_length")
    assert len(padded["input_ids"]) == 32
    n = sum(padded["attention_mask"])
    assert padded["input_ids"][n - 1 :] == [trained.eos_token_id] * (33 - n)  # eos, then eos padding
    long = trained(" ".join(["doctor"] * 100), truncation=True)["input_ids"]
    assert len(long) == 32 and long[0] == trained.bos_token_id and long[-1] == trained.eos_token_id
    assert clip_special_token_ids(trained) == {
        "bos_token_id": len(trained) - 2,
        "eos_token_id": len(trained) - 1,
        "pad_token_id": len(trained) - 1,
    }


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TrustVLInputError, match="vocab_size"):
        build_byte_level_bpe(vocab_size=100)
    with pytest.raises(TrustVLInputError, match="vocab_size"):
        train_clip_tokenizer(["a b"], vocab_size=10)
    with pytest.raises(TrustVLInputError, match="str"):
        train_clip_tokenizer(["a caption", 3])
    with pytest.raises(TrustVLInputError, match="iterable"):
        train_clip_tokenizer("a single caption")
    with pytest.raises(TrustVLInputError, match="eos_token_id is 2"):
        clip_special_token_ids(CLIPTokenizer(vocab={"a": 0, BOS_TOKEN: 1, EOS_TOKEN: 2, "b": 3}, merges=[]))


def test_default_corpus_is_deterministic():
    corpus = default_caption_corpus()
    assert (
        corpus == default_caption_corpus() and len(corpus) > 100 and all(isinstance(c, str) for c in corpus)
    )


@pytest.mark.parametrize("which", ["bpe", "trained"])
def test_text_model_pools_at_first_eos(which, request):
    tok = request.getfixturevalue(which)
    config = CLIPTextConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=tok.model_max_length,
        **clip_special_token_ids(tok),
    )
    torch.manual_seed(0)
    model = CLIPTextModel(config).eval()
    captions = ["a photo of a doctor", "a photo of a nurse in a hospital"]
    with torch.no_grad():
        batch = tok(captions, padding="max_length", return_tensors="pt")
        out = model(**batch)
        eos_pos = (batch["attention_mask"].sum(-1) - 1).tolist()
        for i, pos in enumerate(eos_pos):
            assert batch["input_ids"][i, pos] == tok.eos_token_id
            torch.testing.assert_close(out.pooler_output[i], out.last_hidden_state[i, pos])
        # padding (and the attention mask) do not change the pooled output
        for i, caption in enumerate(captions):
            single = model(**tok(caption, return_tensors="pt")).pooler_output[0]
            torch.testing.assert_close(single, out.pooler_output[i], atol=1e-5, rtol=1e-5)
    # the pooled output depends on the caption's content
    assert not torch.allclose(out.pooler_output[0], out.pooler_output[1], atol=1e-4)
