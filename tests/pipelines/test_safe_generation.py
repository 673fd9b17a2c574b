"""make_safe_pipeline: the text encoder of an SD pipeline replaced by a (Safe-)CLIP text tower, every other
component shared; incompatible towers refused; peft adapters merged; `trustvl generate --text-encoder`."""

from __future__ import annotations

import pytest
import torch

from trustvl.errors import TrustVLInputError


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny diffusion calls slow down badly when torch's threads compete on a small shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from trustvl.testing import build_tiny_clip, build_tiny_sd_pipeline

    root = tmp_path_factory.mktemp("safe-gen")
    return {
        "sd": build_tiny_sd_pipeline(root / "sd", seed=0),  # text encoder width 32
        "clip": build_tiny_clip(root / "clip", seed=1),  # same tokenizer, hidden size 32
        "narrow": build_tiny_clip(root / "narrow", seed=1, hidden_size=16, projection_dim=16),
        "root": root,
    }


@pytest.fixture()
def pipe(models):
    from diffusers import StableDiffusionPipeline

    p = StableDiffusionPipeline.from_pretrained(models["sd"])
    p.set_progress_bar_config(disable=True)
    return p


def _embeds(pipe, prompt="a photo of a chef, next to a knife"):
    with torch.no_grad():
        return pipe.encode_prompt(prompt, "cpu", 1, False)[0]


def test_swaps_the_text_encoder_and_shares_everything_else(pipe, models):
    from transformers import CLIPModel

    from trustvl.pipelines import make_safe_pipeline

    before = _embeds(pipe)
    safe = make_safe_pipeline(pipe, models["clip"])
    assert type(safe) is type(pipe)
    for name in ("unet", "vae", "tokenizer", "scheduler"):
        assert getattr(safe, name) is getattr(pipe, name)
    assert safe.text_encoder is not pipe.text_encoder
    assert not torch.allclose(_embeds(safe), before)
    assert torch.equal(_embeds(pipe), before)  # the original pipeline is untouched
    # the new encoder is exactly the CLIP's text tower: same hidden states as CLIPModel.text_model
    clip = CLIPModel.from_pretrained(models["clip"]).eval()
    ids = pipe.tokenizer(["a photo of a chef"], padding="max_length", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(safe.text_encoder(ids)[0], clip.text_model(ids)[0], atol=1e-6)
    # a CLIPModel object works too and gives the same encoder
    same = make_safe_pipeline(pipe, clip)
    assert torch.allclose(_embeds(same), _embeds(safe), atol=1e-6)
    images = safe("a photo of a chef", num_inference_steps=1, height=32, width=32, output_type="np").images
    assert images.shape == (1, 32, 32, 3)


def test_rejects_incompatible_towers(pipe, models, tmp_path):
    from transformers import CLIPModel

    from trustvl.pipelines import make_safe_pipeline
    from trustvl.testing import build_tiny_clip

    with pytest.raises(TrustVLInputError, match="hidden size 16"):
        make_safe_pipeline(pipe, models["narrow"])
    # other vocabulary: a tower with one more token than the pipeline's tokenizer
    clip = CLIPModel.from_pretrained(models["clip"])
    clip.config.text_config.vocab_size += 1
    bigger = CLIPModel(clip.config)
    with pytest.raises(TrustVLInputError, match="vocabulary"):
        make_safe_pipeline(pipe, bigger)
    # too few positions for the pipeline tokenizer's padding length
    short = build_tiny_clip(tmp_path / "short", max_length=8)
    with pytest.raises(TrustVLInputError, match="positions"):
        make_safe_pipeline(pipe, short)
    with pytest.raises(TrustVLInputError, match="expected a CLIPModel"):
        make_safe_pipeline(pipe, torch.nn.Linear(2, 2))


def test_peft_adapter_folder_is_merged_over_its_base(pipe, models, tmp_path):
    from transformers import CLIPModel

    from trustvl.modeling.lora import add_lora, clip_lora_config, merge_lora, save_adapter
    from trustvl.pipelines import make_safe_pipeline

    base = CLIPModel.from_pretrained(models["clip"])
    peft_model = add_lora(
        base, clip_lora_config(r=2, lora_alpha=2, base_model_name_or_path=str(models["clip"]))
    )
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    save_adapter(peft_model, tmp_path / "adapter")
    merged = merge_lora(peft_model)
    from_adapter = make_safe_pipeline(pipe, tmp_path / "adapter")
    from_merged = make_safe_pipeline(pipe, merged)
    plain = make_safe_pipeline(pipe, models["clip"])
    assert torch.allclose(_embeds(from_adapter), _embeds(from_merged), atol=1e-5)
    assert not torch.allclose(_embeds(from_adapter), _embeds(plain), atol=1e-4)


def test_generate_cli_with_text_encoder(models, tmp_path):
    from datasets import load_dataset

    from trustvl.cli import main

    common = [
        "generate",
        "--model",
        str(models["sd"]),
        "--prompt",
        "a photo of a chef",
        "--n",
        "1",
        "--steps",
        "1",
        "--device",
        "cpu",
    ]
    assert main([*common, "--out", str(tmp_path / "plain")]) == 0
    assert main([*common, "--out", str(tmp_path / "safe"), "--text-encoder", str(models["clip"])]) == 0
    plain = load_dataset(str(tmp_path / "plain"), split="train")[0]["image"]
    safe = load_dataset(str(tmp_path / "safe"), split="train")[0]["image"]
    assert plain.size == safe.size and plain.tobytes() != safe.tobytes()  # same seed, other conditioning
    assert str(models["clip"]) in (tmp_path / "safe" / "README.md").read_text()
    assert main([*common, "--out", str(tmp_path / "bad"), "--text-encoder", str(models["narrow"])]) == 2
    assert not (tmp_path / "bad").exists()
