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

    rows = [
        json.loads(line) for f in ("train", "test") for line in open(CURATED_PAIRS_PATH / f"data/{f}.jsonl")
    ]
    corpus = [r["safe_text"] for r in rows] + [r["unsafe_text"] for r in rows] + ["Safe: Unsafe: caption"]
    specials = ["<|endoftext|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
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


@pytest.fixture(scope="module")
def tiny_lm_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-lm")
    return {
        "plain": build_tiny_causal_lm(root / "plain"),
        "chat": build_tiny_causal_lm(root / "chat", chat=True),
    }


# ---------------------------------------------------------------- curated pairs


def test_curated_pairs_load_and_every_pair_parses():
    import datasets

    ds = datasets.load_dataset(str(CURATED_PAIRS_PATH))
    assert set(ds) == {"train", "test"}
    assert 100 <= ds["train"].num_rows + ds["test"].num_rows <= 120 and ds["test"].num_rows >= 20
    rows = [r for split in ("train", "test") for r in ds[split]]
    assert len({r["safe_text"] for r in rows}) == len(rows)  # distinct safe captions
    elements = Counter(r["element"] for r in rows)
    assert (
        set(elements) == {"gun", "knife", "blood", "syringe"}
        and max(elements.values()) - min(elements.values()) <= 2
    )
    assert Counter(r["form"] for r in rows)["paraphrase"] >= len(rows) // 2
    for r in rows:
        safe, unsafe = parse_caption(r["safe_text"]), parse_unsafe_caption(r["unsafe_text"])
        assert safe is not None and safe.elements == (), r
        assert unsafe is not None and unsafe.element == r["element"], r
        assert (
            (unsafe.occupation, unsafe.setting)
            == (safe.occupation, safe.setting)
            == (r["occupation"], r["setting"])
        )
        assert r["phrase"] in r["unsafe_text"] and unsafe.category == r["category"]


# ---------------------------------------------------------------- grammar


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a chef in a kitchen, holding a knife", ("chef", "chef", "knife")),
        ("a photo of a nurse with a syringe on a hospital ward", ("nurse", "nurse", "syringe")),
        ("a pilot at work, with a pistol", ("pilot", None, "gun")),
        (
            "a construction worker at a building site, splattered with blood",
            ("construction worker", "construction worker", "blood"),
        ),
        ("a chef wearing a chef's jacket in a doctor's office, with a handgun", ("chef", "doctor", "gun")),
        ("an elderly woman working as a teacher, next to a knife", ("teacher", None, "knife")),
    ],
)
def test_parser_accepts_unsafe_captions(text, expected):
    parsed = parse_unsafe_caption(text)
    assert parsed is not None and (parsed.occupation, parsed.setting, parsed.element) == expected


@pytest.mark.parametrize(
    "text",
    [
        "a chef in a kitchen",  # safe: no element
        "a kitchen with a knife",  # no occupation
        "a chef next to a doctor, holding a knife",  # two occupations
        "a nurse with a pistol and blood",  # two elements
        "a chef in a kitchen in a cockpit, with a gun",  # two settings
        "",
    ],
)
def test_parser_rejects(text):
    assert parse_unsafe_caption(text) is None


def test_check_conversion_reasons():
    safe = "a photo of a chef in a kitchen"
    assert check_conversion(safe, "a photo of a chef in a restaurant kitchen, with a knife").valid
    assert check_conversion(safe, "a photo of a chef in a kitchen").reason == "no unsafe element"
    assert (
        check_conversion(safe, "a photo of a nurse in a kitchen, with a gun").reason == "occupation changed"
    )
    assert check_conversion(safe, "a photo of a chef, with a gun").reason == "setting changed"
    assert check_conversion(safe, "a chef in a kitchen, bloody knife").reason == "several unsafe elements"
    assert check_conversion("a chef, with a gun", "a chef, with a gun").reason.startswith(
        "safe caption already"
    )


# ---------------------------------------------------------------- oracle


def test_oracle_is_synthworld_exact_deterministic_and_balanced():
    from trustvl.data_builders.synthworld.captions import UNSAFE_PHRASES

    oracle = OracleCaptionConverter()
    assert isinstance(oracle, UnsafeCaptionConverter)
    captions = ["a photo of a chef in a kitchen", "a teacher at work"] * 200
    out = oracle(captions, seed=3)
    assert out == oracle(captions, seed=3) and out != oracle(captions, seed=4)
    phrases = {p for ps in UNSAFE_PHRASES.values() for p in ps}
    assert all(o.startswith(c + ", ") and o[len(c) + 2 :] in phrases for c, o in zip(captions, out))
    counts = Counter(parse_unsafe_caption(o).element for o in out)
    assert set(counts) == set(UNSAFE_PHRASES) and min(counts.values()) > 60
    assert oracle(["a pilot at work"], elements=["blood"])[0].startswith("a pilot at work, ")
    assert parse_unsafe_caption(oracle(["a pilot at work"], elements=["blood"])[0]).element == "blood"
    with pytest.raises(TrustVLInputError, match="non-empty"):
        oracle(["a chef", "  "])
    with pytest.raises(TrustVLInputError, match="elements"):
        OracleCaptionConverter(elements=["bomb"])


# ---------------------------------------------------------------- training (tiny LM)


@pytest.mark.parametrize("fmt", ["plain", "chat"])
def test_prompt_tokens_are_masked_in_labels(tiny_lm_dirs, fmt):
    from transformers import AutoTokenizer

    from trustvl.modeling.caption_converter import completion_ids, prompt_ids
    from trustvl.training.caption_converter import CaptionPairCollator, CaptionPairDataset

    tok = AutoTokenizer.from_pretrained(tiny_lm_dirs[fmt])
    pairs = [{"safe_text": "a chef at work", "unsafe_text": "a chef at work, with a knife"},
             {"safe_text": "a photo of a nurse in a hospital ward", "unsafe_text": "a photo of a nurse in a hospital ward, bleeding"}]  # fmt: skip
    data = CaptionPairDataset(pairs, tok, fmt)
    for pair, item in zip(pairs, data):
        n_prompt = len(prompt_ids(tok, pair["safe_text"], fmt))
        completion = completion_ids(tok, pair["safe_text"], pair["unsafe_text"], fmt)
        assert item["labels"][:n_prompt] == [-100] * n_prompt
        assert item["labels"][n_prompt:] == completion == item["input_ids"][n_prompt:]
        assert (
            tok.eos_token_id
            == completion[-1 if fmt == "plain" else -2 if completion[-1] != tok.eos_token_id else -1]
        )
        assert "knife" in tok.decode(completion) or "bleeding" in tok.decode(completion)
    batch = CaptionPairCollator(tok.pad_token_id)([data[0], data[1]])
    short = len(data[0]["input_ids"])
    assert (batch["labels"][0, short:] == -100).all() and (batch["attention_mask"][0, short:] == 0).all()


def test_train_cli_writes_a_loadable_peft_adapter(tiny_lm_dirs, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from trustvl.cli import main
    from trustvl.modeling.caption_converter import CaptionConverter

    out = tmp_path / "run"
    argv = ["train", "caption-converter", "--base_model", str(tiny_lm_dirs["chat"]), "--out", str(out),
            "--max_steps", "2", "--per_device_train_batch_size", "4", "--learning_rate", "5e-3", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["global_step"] == 2 and summary["prompt_format"] == "chat" and summary["n_pairs"] == 96
    adapter = out / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and str(tiny_lm_dirs["chat"]) in (
        adapter / "README.md"
    ).read_text()
    base = AutoModelForCausalLM.from_pretrained(tiny_lm_dirs["chat"])
    peft_model = PeftModel.from_pretrained(base, str(adapter))
    lora = {n: p for n, p in peft_model.named_parameters() if "lora_B" in n}
    assert lora and any(p.abs().sum() > 0 for p in lora.values())  # trained (B starts at zero)
    converter = CaptionConverter.from_pretrained(out, device="cpu", max_new_tokens=6)
    captions = ["a photo of a chef", "a nurse at work", "a pilot in a cockpit"]
    outputs = converter(captions, seed=0, batch_size=2)
    assert len(outputs) == 3 and all(isinstance(o, str) for o in outputs)
    assert outputs == converter(captions, seed=5, batch_size=3)  # greedy: seed- and batch-independent
    sampler = CaptionConverter.from_pretrained(out, device="cpu", max_new_tokens=6, do_sample=True)
    assert sampler(captions, seed=1) == sampler(captions, seed=1)


def test_converter_bad_input(tiny_lm_dirs, tmp_path):
    from trustvl.modeling.caption_converter import CaptionConverter

    converter = CaptionConverter.from_pretrained(tiny_lm_dirs["plain"], device="cpu", max_new_tokens=2)
    assert converter.prompt_format == "plain"
    with pytest.raises(TrustVLInputError, match="non-empty"):
        converter(["a chef", ""])
    with pytest.raises(TrustVLInputError, match="list of strings"):
        converter("a chef")
    with pytest.raises(TrustVLInputError, match="adapter"):
        CaptionConverter.from_pretrained(tiny_lm_dirs["plain"], adapter=tmp_path)
    with pytest.raises(TrustVLInputError, match="chat template"):
        CaptionConverter.from_pretrained(tiny_lm_dirs["plain"], device="cpu", prompt_format="chat")


# ---------------------------------------------------------------- build unsafe-captions


def test_build_unsafe_captions_with_oracle(tmp_path):
    import datasets

    from trustvl.cli import main

    out = tmp_path / "uc"
    assert (
        main(["build", "unsafe-captions", "--converter", "oracle", "--n", "40", "--out", str(out), "--quiet"])
        == 0
    )
    ds = datasets.load_dataset(str(out), split="train")
    assert ds.num_rows == 40 and all(ds["valid"])
    for r in ds:
        assert r["unsafe_text"].startswith(r["safe_text"] + ", ")
        assert parse_unsafe_caption(r["unsafe_text"]).element == r["element"]
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["n_valid"] == 40 and summary["n_invalid"] == 0 and sum(summary["per_element"].values()) == 40
    )


class _NoElementConverter:
    """Returns the safe caption half the time (names no unsafe element)."""

    def __call__(self, safe_captions, seed=0):
        return [c if i % 2 else c + ", holding a knife" for i, c in enumerate(safe_captions)]


def test_build_counts_invalid_outputs_and_keeps_them_only_when_asked(tmp_path):
    import datasets

    from trustvl.data_builders.safe_clip.unsafe_captions import build_unsafe_captions

    captions = [
        "a photo of a chef",
        "a nurse at work",
        "a pilot in a cockpit",
        "a teacher at work",
        "a doctor at work",
    ]
    s = build_unsafe_captions(tmp_path / "a", _NoElementConverter(), captions, progress=False)
    assert (s.n_input, s.n_valid, s.n_invalid, s.n_written) == (5, 3, 2, 3)
    assert s.invalid_reasons == {"no unsafe element": 2}
    assert datasets.load_dataset(str(tmp_path / "a"), split="train").num_rows == 3
    assert "no unsafe element | 2" in (tmp_path / "a" / "README.md").read_text()
    s = build_unsafe_captions(
        tmp_path / "b", _NoElementConverter(), captions, keep_invalid=True, progress=False
    )
    ds = datasets.load_dataset(str(tmp_path / "b"), split="train")
    assert ds.num_rows == 5 and ds["valid"].count(False) == 2 and s.n_invalid == 2


def test_build_bad_input_is_refused_before_writing(tmp_path):
    from trustvl.data_builders.safe_clip.unsafe_captions import build_unsafe_captions

    cases = [
        (["a chef", ""], "non-empty"),
        (["a chef in a kitchen, with a gun"], "already names"),
        (["a kitchen"], "not a SynthWorld caption"),
        (tmp_path / "missing.txt", "does not exist"),
    ]
    for captions, match in cases:
        with pytest.raises(TrustVLInputError, match=match):
            build_unsafe_captions(tmp_path / "out", "oracle", captions, progress=False)
    with pytest.raises(TrustVLInputError, match="needs n"):
        build_unsafe_captions(tmp_path / "out", "oracle", "synthworld", progress=False)
    assert not (tmp_path / "out").exists()
