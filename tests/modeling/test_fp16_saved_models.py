"""Models trustvl ships with fp16 weights load in float32 with a plain ``from_pretrained(dir)``.

transformers loads a model in the dtype its config names, diffusers loads a UNet and a VAE in float32.
A text encoder saved in fp16 would otherwise come back in fp16 next to a float32 UNet, and
``StableDiffusionPipeline.from_pretrained(dir)(prompt)`` would fail on CPU with "mat1 and mat2 must
have the same dtype".
"""

from __future__ import annotations

import json

import torch
from diffusers import StableDiffusionPipeline
from safetensors import safe_open

from trustvl.modeling.synthworld_sd import mark_loads_in_float32, save_pipeline_fp16
from trustvl.testing import build_tiny_sd_pipeline


def test_save_pipeline_fp16_keeps_fp16_weights_and_loads_in_float32(tmp_path):
    pipe = StableDiffusionPipeline.from_pretrained(build_tiny_sd_pipeline(tmp_path / "tiny"))
    pipe.set_progress_bar_config(disable=True)
    out = save_pipeline_fp16(pipe, tmp_path / "fp16")
    with safe_open(str(out / "text_encoder" / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert json.loads((out / "text_encoder" / "config.json").read_text())["dtype"] == "float32"

    loaded = StableDiffusionPipeline.from_pretrained(out)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.text_encoder.dtype == loaded.unet.dtype == torch.float32
    image = loaded("a photo", num_inference_steps=2, height=32, width=32, output_type="np").images
    assert image.shape == (1, 32, 32, 3)
    # an explicit dtype still wins over the config
    half = StableDiffusionPipeline.from_pretrained(out, dtype=torch.float16)
    assert half.text_encoder.dtype == torch.float16


def test_mark_loads_in_float32_changes_only_the_dtype(tmp_path):
    config = {"architectures": ["X"], "dtype": "float16", "id2label": {"0": "a", "10": "b", "2": "c"}}
    (tmp_path / "config.json").write_text(json.dumps(config, indent=2))
    mark_loads_in_float32(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written == {**config, "dtype": "float32"}
    assert list(written["id2label"]) == ["0", "10", "2"]  # key order as saved
