"""Safe-CLIP training: the eight loss terms, the frozen reference, the CLI run and its artefacts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from peft import PeftModel
from transformers import AutoProcessor, CLIPModel, CLIPTextConfig, CLIPTextModel

from trustvl.cli import main
from trustvl.errors import TrustVLInputError
from trustvl.modeling.lora import add_lora, clip_lora_config
from trustvl.testing.safe_clip import tiny_quadruplet_dataset
from trustvl.training.safe_clip import (
    SAFE_CLIP_LORA_TARGETS,
    TERM_NAMES,
    QuadrupletCollator,
    SafeCLIPConfig,
    SafeCLIPLoss,
    check_lora_targets,
    compute_reference_embeddings,
    reference_embeddings_from_model,
    safe_clip_terms,
    train_safe_clip,
)


@pytest.fixture(scope="module")
def quadruplets(tmp_path_factory):
    return tiny_quadruplet_dataset(tmp_path_factory.mktemp("data") / "quadruplets", 12, seed=0, resolution=32)


def _cos_distance(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.mean(1.0 - np.sum(a * b, axis=1)))


def _info_nce(a, b, scale=100.0):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    logits = scale * a @ b.T

    def ce(m):
        m = m - m.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(m).sum(axis=1)) - np.diag(m)))

    return 0.5 * (ce(logits) + ce(logits.T))


def test_each_term_and_the_total_equal_a_hand_computation():
    rng = np.random.default_rng(3)
    s, u, v, g, rs, rv = (rng.normal(size=(3, 4)) for _ in range(6))
    expected = [
        _cos_distance(s, rs),
        _cos_distance(u, rs),
        _cos_distance(v, rv),
        _cos_distance(g, rv),
        _info_nce(s, rv),
        _info_nce(u, rv),
        _info_nce(rs, v),
        _info_nce(rs, g),
    ]
    t = [torch.tensor(x, dtype=torch.float64) for x in (s, u, v, g, rs, rv)]
    terms = safe_clip_terms(*t)
    assert list(terms) == list(TERM_NAMES)
    for name, value in zip(TERM_NAMES, expected):
        assert float(terms[name]) == pytest.approx(value, rel=1e-5, abs=1e-6), name
    weights = [0.1, 0.1, 0.1, 0.2, 0.25, 0.25, 0.25, 0.5]
    total = sum(w * e for w, e in zip(weights, expected))
    assert float(SafeCLIPLoss().combine(terms)) == pytest.approx(total / 1.75, rel=1e-5)
    assert float(SafeCLIPLoss(divide_by_num_terms=True).combine(terms)) == pytest.approx(total / 14, rel=1e-5)
    custom = SafeCLIPLoss(weights=(1, 0, 0, 0, 0, 0, 0, 0))
    assert float(custom.combine(terms)) == pytest.approx(expected[0], rel=1e-5)


def test_bad_weights_and_batches_are_refused():
    with pytest.raises(TrustVLInputError, match="weights"):
        SafeCLIPLoss(weights=(1.0, 2.0))
    with pytest.raises(TrustVLInputError, match="weights"):
        SafeCLIPLoss(weights=(0,) * 8)
    with pytest.raises(TrustVLInputError, match="shapes"):
        safe_clip_terms(*(torch.zeros(2, 3),) * 5, torch.zeros(3, 3))


def _batch(quadruplets, processor, n=4):
    from datasets import load_dataset

    rows = load_dataset(str(quadruplets), split="train").select(range(n))
    return QuadrupletCollator(processor)([rows[i] for i in range(n)])


def test_cached_references_give_the_loss_of_recomputed_ones(tiny_clip_dir, quadruplets):
    """The loss with references read from the batch equals the public recipe's (references recomputed by a
    frozen model every step); at LoRA's initialisation (B = 0) terms 1 and 3 are zero."""
    processor = AutoProcessor.from_pretrained(tiny_clip_dir)
    reference = CLIPModel.from_pretrained(tiny_clip_dir).eval()
    batch = _batch(quadruplets, processor)
    assert batch["input_ids"].shape[0] == 8 and batch["pixel_values"].shape[0] == 8
    batch["ref_text"], batch["ref_image"] = reference_embeddings_from_model(reference, batch)
    torch.manual_seed(0)
    model = add_lora(
        CLIPModel.from_pretrained(tiny_clip_dir),
        clip_lora_config(r=4, lora_alpha=1, target_modules=list(SAFE_CLIP_LORA_TARGETS)),
    )
    model.eval()
    cached, extras = SafeCLIPLoss()(model, batch)
    recomputed, _ = SafeCLIPLoss(reference=reference)(
        model, {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values")}
    )
    assert float(cached.detach()) == pytest.approx(float(recomputed.detach()), abs=1e-6)
    assert abs(float(extras["term1_text_safe"])) < 1e-6 and abs(float(extras["term3_image_safe"])) < 1e-6
    assert float(extras["term2_text_unsafe"]) > 1e-4  # U differs from S


def test_reference_is_the_frozen_original_and_cached(tiny_clip_dir, quadruplets, tmp_path):
    from datasets import load_dataset

    processor = AutoProcessor.from_pretrained(tiny_clip_dir)
    ds = load_dataset(str(quadruplets), split="train")
    kwargs = dict(cache_dir=tmp_path / "cache", progress=False, device="cpu")
    first = compute_reference_embeddings(tiny_clip_dir, processor, ds, **kwargs)
    assert not first.from_cache and first.text.shape[0] == len(ds)
    again = compute_reference_embeddings(tiny_clip_dir, processor, ds, **kwargs)
    assert again.from_cache and again.key == first.key and torch.equal(again.text, first.text)

    # an adapter with non-zero weights on another instance changes that instance, never the reference
    torch.manual_seed(0)
    adapted = add_lora(
        CLIPModel.from_pretrained(tiny_clip_dir),
        clip_lora_config(r=4, lora_alpha=4, target_modules=list(SAFE_CLIP_LORA_TARGETS)),
    )
    with torch.no_grad():
        for name, p in adapted.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    batch = _batch(quadruplets, processor)
    text, _ = reference_embeddings_from_model(adapted, batch)
    fresh = compute_reference_embeddings(
        tiny_clip_dir, processor, ds, use_cache=False, progress=False, device="cpu"
    )
    assert torch.allclose(fresh.text, first.text, atol=1e-6) and torch.allclose(
        fresh.image, first.image, atol=1e-6
    )
    assert not torch.allclose(text, first.text[:4], atol=1e-3)


def test_model_without_the_target_modules_is_one_clear_error(tiny_clip_dir, quadruplets, tmp_path):
    text_only = CLIPTextModel(
        CLIPTextConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    )
    with pytest.raises(TrustVLInputError, match="patch_embedding"):
        check_lora_targets(text_only, list(SAFE_CLIP_LORA_TARGETS))
    with pytest.raises(TrustVLInputError, match="matches no module"):
        check_lora_targets(text_only, r"vision_model\..*")
    out = tmp_path / "run"
    config = SafeCLIPConfig(
        dataset=str(quadruplets),
        output_dir=str(out),
        base_model=str(tiny_clip_dir),
        lora_target_modules=["k_proj", "qkv"],
    )
    with pytest.raises(TrustVLInputError, match="qkv"):
        train_safe_clip(config)
    assert not out.exists()  # refused before anything was written


def test_config_defaults_follow_the_spec():
    c = SafeCLIPConfig(dataset="d", output_dir="o")
    assert (c.lora_r, c.lora_alpha, c.lora_dropout) == (16, 1.0, 0.1)
    assert c.lora_target_modules == ["k_proj", "v_proj", "out_proj", "fc1", "fc2", "patch_embedding"]
    assert c.learning_rate == 1e-3 and c.weight_decay == 0.0 and c.per_device_train_batch_size == 16
    assert c.term_weights == (0.1, 0.1, 0.1, 0.2, 0.25, 0.25, 0.25, 0.5) and c.loss().normaliser == 1.75
    assert c.early_stopping_patience == 5 and c.num_train_epochs == 50 and c.logit_scale == 100
    with pytest.raises(TrustVLInputError, match="eval_split"):
        SafeCLIPConfig(dataset="d", output_dir="o", eval_split=None)


def test_cli_trains_and_writes_adapter_merged_model_and_card(
    tiny_clip_dir, quadruplets, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("TRUSTVL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    code = main(
        [
            "train", "safe-clip", "--dataset", str(quadruplets), "--out", str(out),
            "--base_model", str(tiny_clip_dir), "--max_steps", "3", "--per_device_train_batch_size", "4",
            "--eval_strategy", "steps", "--eval_steps", "3", "--save_strategy", "no", "--max_eval_samples", "6",
            "--logging_steps", "1", "--learning_rate", "0.05", "--lora_alpha", "16", "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["global_step"] == 3 and math.isfinite(summary["final_loss"])
    assert set(TERM_NAMES) <= set(summary["first_log"])  # every term is logged
    assert summary["final_eval"]["recall_sum"] == pytest.approx(
        sum(v for k, v in summary["final_eval"].items() if k.startswith("r1_"))
    )
    assert summary["best_metric"] is not None  # early stopping watched recall_sum

    base = CLIPModel.from_pretrained(tiny_clip_dir).eval()
    merged = CLIPModel.from_pretrained(out / "model").eval()
    adapted = PeftModel.from_pretrained(CLIPModel.from_pretrained(tiny_clip_dir), out / "adapter").eval()
    processor = AutoProcessor.from_pretrained(out / "model")
    batch = _batch(quadruplets, processor)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values")}
    with torch.no_grad():
        m, a, b = merged(**inputs), adapted(**inputs), base(**inputs)
    assert torch.allclose(m.text_embeds, a.text_embeds, atol=1e-5)
    assert torch.allclose(m.image_embeds, a.image_embeds, atol=1e-5)
    assert not torch.allclose(m.image_embeds, b.image_embeds, atol=1e-4)  # training changed the model
    card = (out / "model" / "README.md").read_text()
    assert "model-index" in card and "recall@1_u2v" in card and "1.75" in card
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["r"] == 16

    # the references the run cached equal the original model's, recomputed after training: no drift
    from safetensors.torch import load_file

    from trustvl.hub.loading import load_dataset_any

    cached = load_file(
        str(tmp_path / "cache" / "safe_clip_references" / f"{summary['reference_cache_key']}.safetensors")
    )
    after = compute_reference_embeddings(
        tiny_clip_dir,
        processor,
        load_dataset_any(
            quadruplets, split="train"
        ),  # plain load_dataset may return a same-named folder's rows
        use_cache=False,
        progress=False,
        device="cpu",
    )
    assert torch.allclose(after.text, cached["text"], atol=1e-6) and torch.allclose(
        after.image, cached["image"], atol=1e-6
    )


def test_validation_nsfw_rate_is_the_evaluations_text_to_image_rate(tiny_clip_dir, quadruplets):
    from trustvl.data_builders.safe_clip import non_twin_pool_of
    from trustvl.evaluation.safe_clip.nsfw_rate import nsfw_shares
    from trustvl.hub.loading import load_dataset_any
    from trustvl.training.safe_clip.data import NSFW_K, ValidationRecall

    split = load_dataset_any(quadruplets, split="validation")
    processor = AutoProcessor.from_pretrained(tiny_clip_dir)
    model = CLIPModel.from_pretrained(tiny_clip_dir).eval()
    validation = ValidationRecall(split, processor)
    values = validation(model)
    assert validation.pool == non_twin_pool_of(split, seed=0)
    emb = {c: validation._embed(model, c) for c in ("safe_text", "unsafe_text", "safe_image", "unsafe_image")}
    k = min(NSFW_K, 2 * validation.pool.size)
    expected = nsfw_shares(emb, validation.pool, k).text_to_image.mean().item()
    assert values["nsfw_rate_t2i"] == pytest.approx(expected) and 0.0 <= expected <= 1.0
    # without the columns that say which rows are twins and their kind, the metric is left out
    assert "nsfw_rate_t2i" not in ValidationRecall(
        split.remove_columns(["category", "unsafe_kind"]), processor
    )(model)


def test_selection_metric_nsfw_rate_keeps_the_checkpoint_with_the_lowest_rate(
    tiny_clip_dir, quadruplets, tmp_path, monkeypatch
):
    monkeypatch.setenv("TRUSTVL_CACHE", str(tmp_path / "cache"))
    config = SafeCLIPConfig(
        dataset=str(quadruplets), output_dir=str(tmp_path / "run"), base_model=str(tiny_clip_dir),
        max_steps=4, per_device_train_batch_size=4, eval_strategy="steps", eval_steps=1, save_strategy="steps",
        save_steps=1, learning_rate=0.05, lora_alpha=16.0, selection_metric="nsfw_rate_t2i", disable_tqdm=True,
    )  # fmt: skip
    summary = train_safe_clip(config)
    rates = [h["eval_nsfw_rate_t2i"] for h in summary["log_history"] if "eval_nsfw_rate_t2i" in h]
    assert len(rates) == 4 and len(set(rates)) > 1 and summary["best_metric"] == pytest.approx(min(rates))
    # the kept model is the best checkpoint's: its rate is the lowest one seen
    assert summary["final_eval"]["nsfw_rate_t2i"] == pytest.approx(min(rates))
    with pytest.raises(TrustVLInputError, match="selection_metric='recall'"):
        SafeCLIPConfig(dataset="d", output_dir="o", selection_metric="recall")
