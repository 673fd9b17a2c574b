"""Tiny random CLIP / Stable Diffusion / inpainting folders: real loaders, shapes, determinism."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModel, AutoProcessor, CLIPModel, CLIPProcessor

from trustvl.errors import TrustVLInputError
from trustvl.modeling import train_clip_tokenizer
from trustvl.testing import (
    build_tiny_clip,
    build_tiny_fixtures,
    build_tiny_inpaint_pipeline,
    build_tiny_sd_pipeline,
)
from trustvl.testing.tiny import MARKER, TINY_FIXTURE_NAMES


def _digests(folder: Path) -> dict[str, str]:
    """sha256 of every weights file under ``folder``, keyed by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.safetensors"))
    }


def _image(color=(200, 120, 40), size=32) -> Image.Image:
    return Image.new("RGB", (size, size), color)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict[str, Path]:
    return build_tiny_fixtures(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def clip(fixtures):
    return CLIPModel.from_pretrained(fixtures["clip"]).eval(), CLIPProcessor.from_pretrained(fixtures["clip"])


def test_fixtures_layout(fixtures):
    assert set(fixtures) == {"clip", "sd", "inpaint"}
    for key, path in fixtures.items():
        assert path.name == TINY_FIXTURE_NAMES[key] and (path / MARKER).is_file()
        assert _digests(path), key
        assert not list(path.rglob("*.bin")) and not list(path.rglob("*.pt")), "safetensors only"
    assert not [p for p in fixtures["clip"].parent.iterdir() if p.name.startswith(".")], "temp folders left"


def test_fixtures_are_reused_and_stale_folders_rebuilt(fixtures):
    before = {k: _digests(p) for k, p in fixtures.items()}
    mtimes = {k: (p / MARKER).stat().st_mtime_ns for k, p in fixtures.items()}
    again = build_tiny_fixtures(fixtures["clip"].parent)
    assert again == fixtures
    assert {k: (p / MARKER).stat().st_mtime_ns for k, p in again.items()} == mtimes  # not rebuilt

    root = fixtures["clip"].parent / "stale"
    partial = root / TINY_FIXTURE_NAMES["clip"]
    partial.mkdir(parents=True)
    (partial / "config.json").write_text("{}")  # half-written, no marker
    rebuilt = build_tiny_fixtures(root)
    assert {k: _digests(p) for k, p in rebuilt.items()} == before  # same seed -> same bytes
    assert json.loads((rebuilt["clip"] / MARKER).read_text())["seed"] == 0


def test_clip_loads_with_all_real_loaders(fixtures):
    path = fixtures["clip"]
    assert type(AutoModel.from_pretrained(path)) is CLIPModel
    processor = AutoProcessor.from_pretrained(path)
    assert isinstance(processor, CLIPProcessor)
    assert processor.tokenizer.model_max_length == 32
    pixel = processor(images=[_image()], return_tensors="pt")["pixel_values"]
    assert pixel.shape == (1, 3, 32, 32)
    # a larger, non-square photo is resized and centre-cropped to the model's size
    big = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    assert processor(images=big, return_tensors="pt")["pixel_values"].shape == (1, 3, 32, 32)


def test_clip_forward_and_feature_shapes(clip):
    model, processor = clip
    captions = ["a photo of a doctor", "a photo of a nurse in a hospital", "a chef"]
    images = [_image((255, 0, 0)), _image((0, 0, 255))]
    inputs = processor(text=captions, images=images, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
        text = model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        image = model.get_image_features(pixel_values=inputs["pixel_values"])
    assert out.logits_per_image.shape == (2, 3) and out.logits_per_text.shape == (3, 2)
    proj = model.config.projection_dim
    assert out.text_embeds.shape == (3, proj) and out.image_embeds.shape == (2, proj)
    # transformers 5: the projected embedding is .pooler_output
    assert text.pooler_output.shape == (3, proj) and image.pooler_output.shape == (2, proj)
    normed = text.pooler_output / text.pooler_output.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(normed, out.text_embeds)


def test_clip_text_pooling_is_at_eos_and_padding_invariant(clip):
    model, processor = clip
    tok = processor.tokenizer
    cfg = model.config.text_config
    assert (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (
        tok.bos_token_id,
        tok.eos_token_id,
        tok.pad_token_id,
    )
    assert cfg.eos_token_id != 2 and cfg.eos_token_id == cfg.vocab_size - 1 == len(tok) - 1
    captions = ["a photo of a doctor", "a photo of a nurse"]
    batch = tok(captions, padding="max_length", return_tensors="pt")
    with torch.no_grad():
        hidden = model.text_model(**batch)
        eos = batch["attention_mask"].sum(-1) - 1
        torch.testing.assert_close(hidden.pooler_output, hidden.last_hidden_state[torch.arange(2), eos])
        padded = model.get_text_features(**batch).pooler_output
        for i, caption in enumerate(captions):
            alone = model.get_text_features(**tok(caption, return_tensors="pt")).pooler_output[0]
            torch.testing.assert_close(alone, padded[i], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(padded[0], padded[1], atol=1e-4)  # depends on the content


def test_clip_is_deterministic_from_seed(tmp_path, fixtures):
    state = torch.get_rng_state()
    a = build_tiny_clip(tmp_path / "a", seed=0)
    assert torch.equal(torch.get_rng_state(), state), "the global RNG must be left untouched"
    b = build_tiny_clip(tmp_path / "b", seed=1)
    assert _digests(a) == _digests(fixtures["clip"])
    assert _digests(a) != _digests(b)


def test_clip_with_trained_tokenizer(tmp_path):
    corpus = [f"a photo of a {j} {p}" for j in ("doctor", "nurse", "pilot") for p in ("at work", "at home")]
    tok = train_clip_tokenizer(corpus * 4, vocab_size=560, model_max_length=16)
    tok.save_pretrained(tmp_path / "tok")
    path = build_tiny_clip(tmp_path / "clip", tokenizer=tmp_path / "tok", hidden_size=16, num_layers=1)
    model = CLIPModel.from_pretrained(path)
    processor = CLIPProcessor.from_pretrained(path)
    assert model.config.text_config.max_position_embeddings == 16
    assert model.config.text_config.vocab_size == len(tok)
    assert processor.tokenizer("a photo of a pilot")["input_ids"] == tok("a photo of a pilot")["input_ids"]
    with torch.no_grad():
        feats = model.get_text_features(**processor(text=corpus, padding=True, return_tensors="pt"))
    assert feats.pooler_output.shape == (len(corpus), 32)


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(TrustVLInputError, match="patch_size"):
        build_tiny_clip(tmp_path / "x", image_size=30, patch_size=8)
    with pytest.raises(TrustVLInputError, match="scheduler"):
        build_tiny_sd_pipeline(tmp_path / "y", scheduler="nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrustVLInputError, match="not a folder"):
        build_tiny_clip(tmp_path / "file")


def test_sd_pipeline_runs_and_is_deterministic(fixtures, tmp_path):
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(fixtures["sd"])
    pipe.set_progress_bar_config(disable=True)
    assert pipe.safety_checker is None and isinstance(pipe.scheduler, DDIMScheduler)
    assert pipe.text_encoder.config.eos_token_id == pipe.tokenizer.eos_token_id
    images = []
    for _ in range(2):
        out = pipe(
            "a photo of a doctor",
            num_inference_steps=2,
            height=32,
            width=32,
            output_type="pil",
            generator=torch.Generator().manual_seed(0),
        )
        assert len(out.images) == 1 and out.images[0].size == (32, 32)
        images.append(np.asarray(out.images[0]))
    np.testing.assert_array_equal(images[0], images[1])
    # default size is 32x32 too, and a batch of prompts works
    out = pipe(["a nurse", "a chef"], num_inference_steps=2, output_type="np")
    assert out.images.shape == (2, 32, 32, 3)

    same = build_tiny_sd_pipeline(tmp_path / "sd", seed=0)
    assert _digests(same) == _digests(fixtures["sd"])
    assert _digests(build_tiny_sd_pipeline(tmp_path / "sd1", seed=1, scheduler="pndm")) != _digests(same)


def test_inpaint_pipeline_runs(fixtures, tmp_path):
    from diffusers import StableDiffusionInpaintPipeline

    pipe = StableDiffusionInpaintPipeline.from_pretrained(fixtures["inpaint"])
    pipe.set_progress_bar_config(disable=True)
    assert pipe.unet.config.in_channels == 9
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (8, 8, 24, 24))
    out = pipe(
        "a photo of a doctor",
        image=_image(),
        mask_image=mask,
        num_inference_steps=2,
        height=32,
        width=32,
        output_type="pil",
        generator=torch.Generator().manual_seed(0),
    )
    assert out.images[0].size == (32, 32)
    assert _digests(build_tiny_inpaint_pipeline(tmp_path / "inp", seed=0)) == _digests(fixtures["inpaint"])


def test_longer_tokenizer_is_shortened_without_touching_callers_object(tmp_path):
    tok = train_clip_tokenizer(["a photo of a doctor", "a photo of a nurse"] * 4, vocab_size=530)
    assert tok.model_max_length == 77
    path = build_tiny_clip(tmp_path / "clip", tokenizer=tok, max_length=16, hidden_size=16, num_layers=1)
    assert tok.model_max_length == 77
    processor = CLIPProcessor.from_pretrained(path)
    assert processor.tokenizer.model_max_length == 16
    assert CLIPModel.from_pretrained(path).config.text_config.max_position_embeddings == 16
    ids = processor.tokenizer("a photo of a doctor")["input_ids"]
    assert processor.tokenizer.decode(ids, skip_special_tokens=True) == "a photo of a doctor"
