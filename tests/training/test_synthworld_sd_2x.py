"""The 2×-down SynthWorld SD (issue 23 item 3): a VAE with two levels (32 × 32 latents at 64 px), a UNet whose
outer level has no attention, grown from a 4×-down UNet, and per-element region weights; the shipped SD is one."""

from __future__ import annotations

import json

import pytest
import torch

from trustvl.data_builders.synthworld import (
    SynthWorldConfig,
    SynthWorldRenderer,
    UnsafeConfig,
    unsafe_subtype,
)
from trustvl.errors import TrustVLInputError
from trustvl.modeling.synthworld_sd import (
    SynthWorldSDArchitecture,
    build_unet,
    build_vae,
    default_sd_path,
    grow_unet_weights,
)

TINY_4X = SynthWorldSDArchitecture(vae_channels=(16, 16, 16), unet_channels=(32, 32, 32), unet_plain_levels=0)
TINY_2X = SynthWorldSDArchitecture(vae_channels=(16, 16), unet_channels=(32, 32, 32, 32), unet_plain_levels=1)


def test_default_architecture_is_the_shipped_2x_down_sd():
    shipped = json.loads((default_sd_path() / "unet" / "config.json").read_text())
    shipped_vae = json.loads((default_sd_path() / "vae" / "config.json").read_text())
    unet, vae = build_unet(shipped["cross_attention_dim"]), build_vae()

    def plain(value):
        return list(value) if isinstance(value, (list, tuple)) else value

    for key in ("down_block_types", "up_block_types", "block_out_channels", "sample_size", "mid_block_type"):
        assert plain(unet.config[key]) == plain(shipped[key]), key
    for key in ("block_out_channels", "down_block_types", "latent_channels"):
        assert plain(vae.config[key]) == plain(shipped_vae[key]), key
    assert sum(p.numel() for p in unet.parameters()) == 5_799_972  # the shipped card's count
    assert sum(p.numel() for p in vae.parameters()) == 658_375
    assert SynthWorldSDArchitecture().latent_size == 32 and TINY_4X.latent_size == 16


def test_2x_down_architecture_has_plain_outer_levels_and_checks_them():
    unet = build_unet(64, TINY_2X)
    assert unet.config.sample_size == 32
    assert list(unet.config.down_block_types) == ["DownBlock2D"] + ["CrossAttnDownBlock2D"] * 3
    assert list(unet.config.up_block_types) == ["CrossAttnUpBlock2D"] * 3 + ["UpBlock2D"]
    assert build_vae(TINY_2X).encode(torch.zeros(1, 3, 64, 64)).latent_dist.mean.shape == (1, 4, 32, 32)
    with pytest.raises(TrustVLInputError, match="unet_plain_levels=4"):
        build_unet(
            64, SynthWorldSDArchitecture(vae_channels=(16, 16), unet_channels=(32,) * 4, unet_plain_levels=4)
        )


def test_grow_unet_weights_puts_the_trained_levels_inside_and_leaves_the_new_ones_fresh():
    torch.manual_seed(0)
    source, grown = build_unet(64, TINY_4X), build_unet(64, TINY_2X)
    before = {k: v.clone() for k, v in grown.state_dict().items()}
    fresh = grow_unet_weights(grown, source)
    after, src = grown.state_dict(), source.state_dict()
    assert torch.equal(
        after["down_blocks.1.attentions.0.proj_in.weight"], src["down_blocks.0.attentions.0.proj_in.weight"]
    )
    assert torch.equal(
        after["down_blocks.3.resnets.0.conv1.weight"], src["down_blocks.2.resnets.0.conv1.weight"]
    )
    assert torch.equal(after["up_blocks.2.resnets.1.conv1.weight"], src["up_blocks.2.resnets.1.conv1.weight"])
    assert torch.equal(after["add_embedding.norm1.weight"], src["add_embedding.norm1.weight"])
    assert all(k.startswith(("down_blocks.0.", "up_blocks.3.", "up_blocks.2.upsamplers.")) for k in fresh)
    assert "down_blocks.0.resnets.0.conv1.weight" in fresh and "up_blocks.2.upsamplers.0.conv.weight" in fresh
    assert all(torch.equal(after[k], before[k]) for k in fresh)
    assert len(fresh) + len(src) == len(after)
    # the same architecture: a plain copy, the same function
    twin = build_unet(64, TINY_4X)
    assert grow_unet_weights(twin, source) == []
    x, t, h = torch.randn(1, 4, 16, 16), torch.tensor([500]), torch.randn(1, 5, 64)
    with torch.no_grad():
        assert torch.equal(
            twin(x, t, encoder_hidden_states=h).sample, source(x, t, encoder_hidden_states=h).sample
        )
    with pytest.raises(TrustVLInputError, match="at most as many levels"):
        grow_unet_weights(source, grown)
    with pytest.raises(TrustVLInputError, match="no counterpart"):
        grow_unet_weights(build_unet(64, SynthWorldSDArchitecture(unet_channels=(32, 64, 64))), source)


def test_element_region_weights_override_the_box_weight_of_the_named_element():
    from transformers import HfArgumentParser

    from trustvl.training.synthworld_sd import CaptionedLatents, SynthWorldSDConfig

    renderer = SynthWorldRenderer(SynthWorldConfig(unsafe=UnsafeConfig(p=1.0)), seed=0)
    scenes = [renderer.scene("train", i) for i in range(12)]
    specs, boxes = [s.spec for s in scenes], [s.boxes.get("unsafe") for s in scenes]
    elements = [unsafe_subtype(s.unsafe) for s in specs]
    assert "knife" in elements and set(elements) - {"knife"}
    data = CaptionedLatents(
        torch.zeros(12, 4, 32, 32), specs, [], 1, 0.0, 0, boxes, region_weight=4.0,
        element_region_weights={"knife": 8.0},
    )  # fmt: skip
    for p, element in enumerate(elements):
        assert float(data[p]["loss_weights"].max()) == (8.0 if element == "knife" else 4.0)
    # only an override above 1 still weights the knife's box
    only_knife = CaptionedLatents(
        torch.zeros(12, 4, 32, 32), specs, [], 1, 0.0, 0, boxes, 1.0, 64, {"knife": 8.0}
    )
    assert float(only_knife[elements.index("knife")]["loss_weights"].max()) == 8.0
    assert (
        float(only_knife[elements.index(next(e for e in elements if e != "knife"))]["loss_weights"].max())
        == 1.0
    )

    parser = HfArgumentParser(SynthWorldSDConfig)
    (args,) = parser.parse_args_into_dataclasses(
        ["--output_dir", "x", "--unsafe_region_weights", "knife=8", "gun=2"]
    )
    assert args.element_region_weights() == {"knife": 8.0, "gun": 2.0}
    for bad in (["sword=8"], ["knife=0.5"], ["knife"]):
        with pytest.raises(TrustVLInputError, match="unsafe_region_weights item"):
            parser.parse_args_into_dataclasses(["--output_dir", "x", "--unsafe_region_weights", *bad])
    with pytest.raises(TrustVLInputError, match="expected one of them"):
        parser.parse_args_into_dataclasses(["--output_dir", "x", "--init_from", "a", "--unet_init_from", "b"])


def test_2x_down_run_grows_a_4x_down_unet_and_its_pipeline_draws_64px_through_from_pretrained(tmp_path):
    from diffusers import StableDiffusionPipeline
    from transformers import HfArgumentParser

    from trustvl.pipelines.fair_diffusion import FairDiffusionPipeline
    from trustvl.training.synthworld_sd import SynthWorldSDConfig, train_synthworld_sd

    common = (
        " --n_biased_scenes 8 --n_appearance_scenes 8 --n_test_scenes 8 --classifier_hidden_sizes 8 8 8 8"
        " --vae_max_steps 1 --vae_batch_size 2 --classifier_max_steps 1 --classifier_batch_size 2"
        " --per_device_train_batch_size 2 --max_steps 1 --save_steps 1 --logging_steps 1 --caption_passes 2"
        " --disable_tqdm true --report_to none --unsafe_prob 0.5"
    )
    parser = HfArgumentParser(SynthWorldSDConfig)
    (small,) = parser.parse_args_into_dataclasses(
        args=f"--output_dir {tmp_path / 'x4'} --vae_channels 16 16 16 --unet_channels 32 32 32{common}".split()
    )
    train_synthworld_sd(small)
    (fine,) = parser.parse_args_into_dataclasses(
        args=(
            f"--output_dir {tmp_path / 'x2'} --vae_channels 16 16 --unet_channels 32 32 32 32"
            f" --unet_plain_levels 1 --unet_init_from {tmp_path / 'x4' / 'pipeline'}"
            f" --unsafe_region_weights knife=8{common}"
        ).split()
    )
    summary = train_synthworld_sd(fine)
    assert summary["vae_steps"] == 1 and summary["unet_steps"] == 1  # a new VAE is trained
    assert summary["unet_fresh_tensors"] > 0 and summary["architecture"]["unet_plain_levels"] == 1

    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / "x2" / "pipeline")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.vae_scale_factor == 2 and pipe.unet.config.sample_size == 32
    out = pipe("a photo of a chef, holding a knife", num_inference_steps=2, output_type="np",
               generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert out.images.shape == (1, 64, 64, 3)
    latents = pipe("a photo of a chef", num_inference_steps=2, output_type="latent").images
    assert latents.shape == (1, 4, 32, 32)
    fair = FairDiffusionPipeline.from_pipe(pipe)
    fair.set_progress_bar_config(disable=True)
    edited = fair("a photo of a chef", editing_prompt=["a woman"], num_inference_steps=2, output_type="np")
    assert fair.vae_scale_factor == 2 and edited.images.shape == (1, 64, 64, 3)
