"""SynthWorld generation: the shipped SD pipeline and outcome classifier, captions, training, `trustvl generate`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trustvl.data_builders.synthworld import SynthWorldConfig, SynthWorldRenderer, UnsafeConfig
from trustvl.data_builders.synthworld.generation_captions import (
    appearance_generation_caption,
    gender_prompt,
    generation_prompts,
    unsafe_prompt,
)
from trustvl.errors import TrustVLInputError
from trustvl.modeling.outcome_classifier import (
    OutcomeClassifier,
    default_outcome_classifier_path,
    heads_to_labels,
    labels_to_heads,
)
from trustvl.modeling.synthworld_sd import default_sd_path
from trustvl.training.outcome_classifier import scene_targets, synthworld_heads


def test_shipped_pipeline_loads_with_plain_diffusers_and_generates():
    from diffusers import DiffusionPipeline, StableDiffusionPipeline

    path = default_sd_path()
    pipe = StableDiffusionPipeline.from_pretrained(path, dtype=torch.float32)
    assert pipe.safety_checker is None
    assert type(DiffusionPipeline.from_pretrained(path)).__name__ == "StableDiffusionPipeline"
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        "a photo of a nurse",
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    )
    image = out.images[0]
    assert image.shape == (64, 64, 3)
    assert np.isfinite(image).all() and image.std() > 0.01


def test_shipped_classifier_loads_with_transformers_and_reads_fresh_renders():
    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(default_outcome_classifier_path())
    assert model.config.id2label[0] == "occupation=doctor"
    judge = OutcomeClassifier(device="cpu")
    assert set(judge.heads) == {
        "occupation",
        "skin_tone",
        "gender_presentation",
        "age",
        "body_type",
        "unsafe",
    }
    # a world and seed the classifier never saw (balanced test split, half the scenes unsafe)
    renderer = SynthWorldRenderer(SynthWorldConfig(unsafe=UnsafeConfig(p=0.5)), seed=4242)
    batch = renderer.render_batch("test", 0, 64)
    readings = judge.read(batch.images)
    truth = scene_targets(batch.specs, judge.heads)
    for k, (head, values) in enumerate(judge.heads.items()):
        acc = np.mean(
            [values.index(r.values[head]) == int(t) for r, t in zip(readings, truth[:, k], strict=True)]
        )
        assert acc >= (0.9 if head == "unsafe" else 0.95), (head, acc)


def test_outcome_classifier_rejects_a_non_model():
    with pytest.raises(TrustVLInputError):
        OutcomeClassifier("/nonexistent/model", device="cpu")


def test_label_heads_round_trip_and_plain_labels_form_one_head():
    heads = synthworld_heads()
    labels = heads_to_labels(heads)
    grouped = labels_to_heads(dict(enumerate(labels)))
    assert list(grouped) == list(heads)
    assert [len(v) for v in grouped.values()] == [len(v) for v in heads.values()]
    assert labels_to_heads({0: "Male", 1: "Female"}, head_name="gender") == {"gender": [0, 1]}


def test_generation_captions_name_what_is_drawn():
    renderer = SynthWorldRenderer(SynthWorldConfig(unsafe=UnsafeConfig(p=1.0)), seed=0)
    spec = renderer.sample_scene("train", 3)
    caption = appearance_generation_caption(spec, "gender")
    assert ("female" in caption) == (spec.attributes["gender_presentation"] == "feminine")
    assert caption.count(",") == 1  # the unsafe element's phrase
    assert appearance_generation_caption(spec, "gender") == caption  # deterministic
    assert gender_prompt("nurse", "feminine") == "a photo of a female nurse"
    assert unsafe_prompt("chef", "knife") == "a photo of a chef, next to a knife"
    with pytest.raises(TrustVLInputError):
        appearance_generation_caption(spec, "hat")
    prompts = generation_prompts(["nurse"], {"gender_presentation": {"nurse": "feminine"}}, ["light", "dark"])
    kinds = [p.kind for p in prompts]
    assert kinds == ["context", "gender", "gender", "skin", "skin"] + ["unsafe"] * 4
    assert [p.counter_stereotypical for p in prompts if p.kind == "gender"] == [True, False]


def test_training_runs_a_few_steps_and_resumes(tmp_path):
    from transformers import HfArgumentParser

    from trustvl.cli import main
    from trustvl.training.synthworld_sd import SynthWorldSDConfig, train_synthworld_sd

    argv = (
        f"--output_dir {tmp_path} --n_biased_scenes 8 --n_appearance_scenes 8 --n_test_scenes 8"
        " --vae_channels 16 16 16 --unet_channels 32 32 32 --classifier_hidden_sizes 8 8 8 8"
        " --vae_max_steps 1 --vae_batch_size 2 --classifier_max_steps 1 --classifier_batch_size 2"
        " --per_device_train_batch_size 2 --save_steps 1 --logging_steps 1 --caption_passes 2"
        " --disable_tqdm true --report_to none"
    )
    parser = HfArgumentParser(SynthWorldSDConfig)
    (args,) = parser.parse_args_into_dataclasses(args=[*argv.split(), "--max_steps", "1"])
    first = train_synthworld_sd(args)
    assert first["unet_steps"] == 1 and first["vae_steps"] == 1
    from safetensors import safe_open

    with safe_open(tmp_path / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors", "pt") as f:
        assert f.get_tensor(next(iter(f.keys()))).dtype == torch.float16  # shipped in fp16
    (args,) = parser.parse_args_into_dataclasses(args=[*argv.split(), "--max_steps", "2"])
    second = train_synthworld_sd(args)  # VAE and classifier are done; the UNet resumes from checkpoint-1
    assert second["unet_steps"] == 2 and "vae_steps" not in second and "classifier_steps" not in second
    # the CLI subcommand parses the same configuration class (flags = fields)
    assert main(["train", "synthworld-sd", *argv.split(), "--max_steps", "3", "--resume", "--quiet"]) == 0


def test_cli_generate_writes_a_loadable_dataset(tmp_path):
    import datasets

    from trustvl.cli import main

    out = tmp_path / "gen"
    rc = main(["generate", "--prompt", "a photo of a chef", "--n", "2", "--steps", "2", "--out", str(out),
               "--classify", "--device", "cpu"])  # fmt: skip
    assert rc == 0
    assert (out / "grid.png").is_file()
    ds = datasets.load_dataset(str(out), split="train")
    assert ds.num_rows == 2 and ds["seed"] == [0, 1] and set(ds["prompt"]) == {"a photo of a chef"}
    assert "pred_occupation" in ds.column_names


def test_drugs_kind_draws_a_syringe_and_keeps_default_worlds_unchanged():
    from trustvl.data_builders.synthworld import DEFAULT_UNSAFE_KINDS, UNSAFE_KINDS, unsafe_subtype
    from trustvl.data_builders.synthworld.captions import UNSAFE_CATEGORIES, UNSAFE_PHRASES

    assert set(UNSAFE_CATEGORIES) == set(UNSAFE_PHRASES)
    assert len(set(UNSAFE_CATEGORIES.values())) >= 3
    all_kinds = SynthWorldRenderer(SynthWorldConfig(unsafe=UnsafeConfig(p=1.0, kinds=UNSAFE_KINDS)), seed=0)
    drugs = [i for i in range(40) if all_kinds.sample_scene("train", i).unsafe.kind == "drugs"]
    assert drugs, "no syringe among 40 scenes drawn from three kinds"
    spec = all_kinds.sample_scene("train", drugs[0])
    assert unsafe_subtype(spec.unsafe) == "syringe"
    with_element = all_kinds.render(spec).image
    without = all_kinds.render(all_kinds.set_unsafe(spec, None)).image
    assert (with_element != without).any(axis=-1).sum() >= 12  # a visible element, not a stray pixel
    assert "syringe" in appearance_generation_caption(spec, "gender")
    # the default kinds are unchanged, so earlier worlds keep their scenes
    assert UnsafeConfig().kinds == DEFAULT_UNSAFE_KINDS == ("weapon", "blood")


def test_unet_loss_weights_the_unsafe_element_region():
    from trustvl.training.synthworld_sd import CaptionedLatents, DiffusionLoss

    renderer = SynthWorldRenderer(SynthWorldConfig(unsafe=UnsafeConfig(p=0.5)), seed=0)
    scenes = [renderer.scene("train", i) for i in range(6)]
    specs, boxes = [s.spec for s in scenes], [s.boxes.get("unsafe") for s in scenes]
    assert any(b is None for b in boxes) and any(b is not None for b in boxes)
    data = CaptionedLatents(torch.zeros(6, 4, 16, 16), specs, [], 1, 0.0, 0, boxes, region_weight=4.0)
    for p, box in enumerate(boxes):
        w = data[p]["loss_weights"]
        if box is None:
            assert torch.equal(w, torch.ones(16, 16))
            continue
        x0, y0, x1, y1 = box
        assert w[int(y0 / 4), int(x0 / 4)] == 4.0 and w[(y1 - 1) // 4, (x1 - 1) // 4] == 4.0
        assert 1 < int((w == 4.0).sum()) < 40  # the element's cells, not the image
    assert "loss_weights" not in CaptionedLatents(torch.zeros(6, 4, 16, 16), specs, [], 1, 0.0, 0)[0]

    class _Fixed(torch.nn.Module):  # predicts zero noise: the error is the target squared
        def forward(self, latents, input_ids):
            n = latents.shape[0]
            return {"pred": torch.zeros(n, 1, 2, 2), "target": torch.ones(n, 1, 2, 2), "snr": torch.ones(n)}

    batch = {"latents": torch.zeros(1), "input_ids": torch.zeros(1)}
    plain, logs = DiffusionLoss(0.0)(_Fixed(), batch)
    weighted, logs_w = DiffusionLoss(0.0)(
        _Fixed(), {**batch, "loss_weights": torch.tensor([[[4.0, 1.0], [1.0, 1.0]]])}
    )
    assert float(plain) == 1.0 and float(weighted) == 7.0 / 4 and float(logs_w["mse"]) == 1.0
