"""The package stores the SynthWorld SD's text encoder once, in the SynthWorld CLIP (issue 23 item 7).

The shipped SD folder has no ``text_encoder/`` but a record of the CLIP whose text tower completes it;
``default_sd_path()`` returns a complete folder (written once into trustvl's cache) that plain diffusers loads.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from diffusers import StableDiffusionPipeline
from transformers import CLIPTextModel

from trustvl.errors import TrustVLInputError
from trustvl.modeling.synthworld_clip import default_clip_path
from trustvl.modeling.synthworld_sd import (
    TEXT_TOWER_RECORD,
    complete_sd_folder,
    default_sd_path,
    detach_text_encoder,
    load_clip_text_tower,
    text_tower_fingerprint,
)
from trustvl.testing import build_tiny_sd_pipeline
from trustvl.utils.assets import asset_path


def _tiny_pipeline_and_clip(tmp_path):
    """A tiny pipeline and a "CLIP" folder holding its text tower (a CLIPTextModel checkpoint + tokenizer)."""
    sd = build_tiny_sd_pipeline(tmp_path / "models" / "sd")
    clip = tmp_path / "models" / "clip"
    shutil.copytree(sd / "text_encoder", clip)
    for f in (sd / "tokenizer").iterdir():
        shutil.copy(f, clip / f.name)
    return sd, clip


def test_the_shipped_sd_holds_no_text_encoder_and_names_the_clip():
    shipped = asset_path("models", "synthworld-sd")
    assert not (shipped / "text_encoder").exists()
    record = json.loads((shipped / TEXT_TOWER_RECORD).read_text())
    assert (shipped / record["clip"]).resolve() == asset_path("models", "synthworld-clip").resolve()


def test_default_sd_path_is_complete_and_its_text_encoder_is_the_clip_text_tower(monkeypatch, tmp_path):
    monkeypatch.setenv("TRUSTVL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TRUSTVL_DEFAULT_SD", raising=False)
    monkeypatch.delenv("TRUSTVL_DEFAULT_CLIP", raising=False)
    path = default_sd_path()
    assert path.is_relative_to(tmp_path / "cache")
    pipe = StableDiffusionPipeline.from_pretrained(path)  # plain diffusers, no trustvl argument
    clip_text, _ = load_clip_text_tower(default_clip_path())
    ours, theirs = pipe.text_encoder.state_dict(), clip_text.half().float().state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert pipe.text_encoder.dtype == torch.float32
    # the second call reuses the completed folder
    stamp = (path / "text_encoder" / "model.safetensors").stat().st_mtime_ns
    assert default_sd_path() == path
    assert (path / "text_encoder" / "model.safetensors").stat().st_mtime_ns == stamp


def test_detach_then_complete_gives_back_the_same_pipeline(monkeypatch, tmp_path):
    monkeypatch.setenv("TRUSTVL_CACHE", str(tmp_path / "cache"))
    sd, clip = _tiny_pipeline_and_clip(tmp_path)
    before = StableDiffusionPipeline.from_pretrained(sd)
    before.set_progress_bar_config(disable=True)
    expected = before(
        "a photo",
        num_inference_steps=2,
        height=32,
        width=32,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
    ).images

    detach_text_encoder(sd, clip)
    assert not (sd / "text_encoder").exists()
    assert json.loads((sd / TEXT_TOWER_RECORD).read_text())["clip"] == "../clip"
    with pytest.raises(OSError):
        StableDiffusionPipeline.from_pretrained(sd)  # incomplete on its own: that is why it is completed
    complete = complete_sd_folder(sd)
    assert complete != sd and not (complete / TEXT_TOWER_RECORD).exists()
    after = StableDiffusionPipeline.from_pretrained(complete)
    after.set_progress_bar_config(disable=True)
    got = after(
        "a photo",
        num_inference_steps=2,
        height=32,
        width=32,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
    ).images
    # the text tower is stored in fp16: the tiny random tower's outputs move by fp16 rounding only
    assert abs(got - expected).max() < 2e-2
    assert text_tower_fingerprint(after.text_encoder) == text_tower_fingerprint(before.text_encoder)
    # a folder that has its text encoder is returned as it is
    assert complete_sd_folder(complete) == complete


def test_a_clip_whose_text_tower_changed_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("TRUSTVL_CACHE", str(tmp_path / "cache"))
    sd, clip = _tiny_pipeline_and_clip(tmp_path)
    detach_text_encoder(sd, clip)
    other = CLIPTextModel.from_pretrained(clip)
    with torch.no_grad():
        next(other.parameters()).add_(0.5)
    other.save_pretrained(clip)
    with pytest.raises(TrustVLInputError, match="is not the one"):
        complete_sd_folder(sd)
    pipelines = tmp_path / "cache" / "sd-pipelines"
    assert not pipelines.exists() or not any(pipelines.iterdir())  # nothing half-written


def test_detach_refuses_a_clip_that_is_not_the_pipelines(tmp_path):
    sd, clip = _tiny_pipeline_and_clip(tmp_path)
    other = build_tiny_sd_pipeline(tmp_path / "other", seed=1)
    with pytest.raises(TrustVLInputError, match="clip_dir="):
        detach_text_encoder(sd, other / "text_encoder")
    assert (sd / "text_encoder").is_dir()


def test_a_retrained_unet_beside_the_same_clip_gets_its_own_completed_folder(monkeypatch, tmp_path):
    """A new release may ship a retrained UNet or VAE with an unchanged text tower: the cached copy of the
    old pipeline must not be returned for it."""
    from diffusers import UNet2DConditionModel

    monkeypatch.setenv("TRUSTVL_CACHE", str(tmp_path / "cache"))
    sd, clip = _tiny_pipeline_and_clip(tmp_path)
    detach_text_encoder(sd, clip)
    old = complete_sd_folder(sd)
    assert complete_sd_folder(sd) == old  # unchanged folder: the same cached copy
    unet = UNet2DConditionModel.from_pretrained(sd / "unet")
    with torch.no_grad():
        next(unet.parameters()).add_(0.5)
    unet.save_pretrained(sd / "unet")
    new = complete_sd_folder(sd)
    assert new != old
    got = UNet2DConditionModel.from_pretrained(new / "unet").state_dict()
    assert all(torch.equal(got[k], v) for k, v in unet.state_dict().items())
    stale = UNet2DConditionModel.from_pretrained(old / "unet").state_dict()
    assert not all(torch.equal(stale[k], v) for k, v in unet.state_dict().items())
