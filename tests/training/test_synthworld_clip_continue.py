"""Continuing a SynthWorld CLIP's image side (``init_from`` + ``train_towers="vision"``): the text side stays
bit-identical (so an SD conditioned on the text tower is unaffected), the image side trains, bad settings fail."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from trustvl.errors import TrustVLInputError
from trustvl.modeling.synthworld_clip import default_clip_path
from trustvl.training.synthworld_clip import SynthWorldCLIPPretrainConfig, pretrain_synthworld_clip

TEXT_SIDE = ("text_model.", "text_projection.", "logit_scale")


def _config(tmp_path, **kw):
    base = dict(
        output_dir=str(tmp_path / "run"),
        world_preset="web",
        init_from=str(default_clip_path()),
        train_towers="vision",
        max_steps=2,
        per_device_train_batch_size=8,
        dataloader_num_workers=0,
        warmup_steps=0,
        learning_rate=1e-3,
        save_steps=100,
        disable_tqdm=True,
        report_to="none",
    )
    base.update(kw)
    return SynthWorldCLIPPretrainConfig(**base)


def test_vision_only_continuation_keeps_the_text_side_bit_identical(tmp_path):
    summary = pretrain_synthworld_clip(_config(tmp_path))
    before = load_file(str(default_clip_path() / "model.safetensors"))
    after = load_file(str(tmp_path / "run" / "final" / "model.safetensors"))
    assert set(before) == set(after)
    changed = {k for k in before if not torch.equal(before[k].float(), after[k].float())}
    assert changed, "the image side did not train"
    assert all(k.startswith(("vision_model.", "visual_projection.")) for k in changed)
    assert not any(k.startswith(TEXT_SIDE) for k in changed)
    assert summary["global_step"] == 2
    assert 0 < summary["n_trainable_parameters"] < summary["n_parameters"]
    assert summary["config"]["init_from"] == str(default_clip_path())


def test_both_towers_train_when_continuing_without_freezing(tmp_path):
    pretrain_synthworld_clip(_config(tmp_path, train_towers="both"))
    before = load_file(str(default_clip_path() / "model.safetensors"))
    after = load_file(str(tmp_path / "run" / "final" / "model.safetensors"))
    changed = {k for k in before if not torch.equal(before[k].float(), after[k].float())}
    assert any(k.startswith("text_model.") for k in changed)


def test_bad_continuation_settings_fail_with_the_value(tmp_path):
    with pytest.raises(TrustVLInputError, match="train_towers='vision' freezes a tower of a fresh model"):
        _config(tmp_path, init_from=None)
    with pytest.raises(TrustVLInputError, match="train_towers='text'"):
        _config(tmp_path, train_towers="text")
    with pytest.raises(
        TrustVLInputError,
        match=r"takes 64-px images; expected resolution=96 to match \(pass --resolution 64\)",
    ):
        pretrain_synthworld_clip(_config(tmp_path, resolution=96))
