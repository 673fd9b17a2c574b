"""FairDiffusionPipeline on a tiny offline SD pipeline: equality with diffusers' SEGA, per-image edits, fairness."""

import warnings

import pytest
import torch

from trustvl.errors import TrustVLInputError
from trustvl.pipelines import (
    EditConcept,
    FairDiffusionPipeline,
    FairDiffusionPipelineOutput,
    FairnessInstruction,
)

STEPS = 6


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pipes(tiny_sd_dir):
    from diffusers import SemanticStableDiffusionPipeline, StableDiffusionPipeline

    sd = StableDiffusionPipeline.from_pretrained(tiny_sd_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = SemanticStableDiffusionPipeline.from_pipe(sd)
    ours = FairDiffusionPipeline.from_pipe(sd)
    for pipe in (sd, reference, ours):
        pipe.set_progress_bar_config(disable=True)
    return sd, reference, ours


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


class _UNetCalls:
    """Counts UNet forward calls and records their batch sizes."""

    def __init__(self, unet):
        self.batches = []
        self._handle = unet.register_forward_pre_hook(lambda _m, args: self.batches.append(args[0].shape[0]))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.remove()


EQUALITY_CASES = {
    "one concept, defaults": dict(editing_prompt="smiling", edit_warmup_steps=2),
    "reverse, per-concept knobs, partial warmup, cooldown, weights, momentum": dict(
        editing_prompt=["female person", "male person"],
        reverse_editing_direction=[False, True],
        edit_guidance_scale=[4.0, 3.0],
        edit_warmup_steps=[1, 3],
        edit_cooldown_steps=[6, 4],
        edit_threshold=[0.95, 0.8],
        edit_momentum_scale=0.5,
        edit_mom_beta=0.6,
        edit_weights=[1.0, 0.5],
    ),
    "scalar knobs, three concepts, cooldown, several images per prompt, negative prompts": dict(
        editing_prompt=["glasses", "beard", "curly hair"],
        reverse_editing_direction=True,
        edit_guidance_scale=6.0,
        edit_warmup_steps=0,
        edit_cooldown_steps=3,
        edit_threshold=0.5,
        edit_momentum_scale=0.3,
        edit_mom_beta=0.2,
        num_images_per_prompt=2,
        negative_prompt=["blurry", "dark"],
    ),
    "momentum only during warmup, no momentum scale": dict(
        editing_prompt=["red", "blue"],
        edit_warmup_steps=[4, 4],
        edit_momentum_scale=0.0,
        edit_threshold=0.0,
    ),
}


@pytest.mark.parametrize("case", list(EQUALITY_CASES))
def test_same_latents_as_diffusers_sega(pipes, case):
    _, reference, ours = pipes
    kwargs = dict(
        prompt=["a photo of a doctor", "a nurse"],
        num_inference_steps=STEPS,
        guidance_scale=7.0,
        output_type="latent",
        **EQUALITY_CASES[case],
    )
    expected = reference(**kwargs, generator=_gen(1)).images
    got = ours(**kwargs, generator=_gen(1)).images
    plain = ours(**{k: v for k, v in kwargs.items() if not k.startswith("edit")}, generator=_gen(1)).images
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-4, rtol=0), (got - expected).abs().max()
    assert (got - plain).abs().max() > 1e-3  # the edit did something


def test_same_as_diffusers_with_concept_embeddings_and_sem_guidance(pipes):
    _, reference, ours = pipes
    embeds = ours.encode_concepts(
        [EditConcept("smiling"), EditConcept("hat")], torch.device("cpu"), torch.float32, None
    )
    extra = [torch.full((1, 4, 16, 16), 0.01 * i) for i in range(STEPS)]
    kwargs = dict(
        prompt="a photo of a teacher",
        num_inference_steps=STEPS,
        guidance_scale=5.0,
        output_type="latent",
        editing_prompt_embeddings=embeds,
        edit_warmup_steps=1,
        reverse_editing_direction=[True, False],
        sem_guidance=extra,
    )
    expected = reference(**kwargs, generator=_gen(2)).images
    got = ours(**kwargs, generator=_gen(2)).images
    assert torch.allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("scheduler", ["EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler"])
def test_same_as_diffusers_with_other_schedulers(pipes, scheduler):
    import diffusers

    sd, reference, ours = pipes
    make = getattr(diffusers, scheduler).from_config
    reference = type(reference).from_pipe(reference, scheduler=make(sd.scheduler.config))
    ours = FairDiffusionPipeline.from_pipe(ours, scheduler=make(sd.scheduler.config))
    kwargs = dict(
        prompt="a doctor",
        num_inference_steps=4,
        guidance_scale=7.0,
        editing_prompt=["hat", "smile"],
        edit_warmup_steps=[1, 2],
        output_type="latent",
    )
    expected = reference(**kwargs, generator=_gen(8)).images
    assert torch.allclose(ours(**kwargs, generator=_gen(8)).images, expected, atol=1e-4, rtol=0)


def test_schedulers_with_more_timesteps_than_steps_work(pipes):
    # PNDM (and Heun) run more loop iterations than num_inference_steps: the reference fails with an IndexError
    from diffusers import PNDMScheduler

    sd, _, ours = pipes
    ours = FairDiffusionPipeline.from_pipe(ours, scheduler=PNDMScheduler.from_config(sd.scheduler.config))
    with _UNetCalls(ours.unet) as calls:
        out = ours(
            "a doctor", num_inference_steps=4, editing_prompt="hat", edit_warmup_steps=1, output_type="latent"
        )
    assert len(calls.batches) == ours.num_timesteps > 4 and torch.isfinite(out.images).all()


def test_images_match_diffusers_and_stable_diffusion_without_edits(pipes):
    sd, reference, ours = pipes
    kwargs = dict(prompt="a chef", num_inference_steps=3, guidance_scale=6.0, output_type="np")
    plain = sd(**kwargs, generator=_gen(3)).images
    got = ours(**kwargs, generator=_gen(3)).images
    assert abs(got - plain).max() < 1e-4
    edited = dict(kwargs, editing_prompt="hat", edit_warmup_steps=0)
    assert (
        abs(ours(**edited, generator=_gen(3)).images - reference(**edited, generator=_gen(3)).images).max()
        < 1e-4
    )
    assert got.shape == (1, 32, 32, 3)
    no_cfg = dict(kwargs, guidance_scale=1.0)  # without edits, no classifier-free guidance is fine
    assert abs(ours(**no_cfg, generator=_gen(3)).images - sd(**no_cfg, generator=_gen(3)).images).max() < 1e-4


def test_per_image_edits_in_one_unet_call_match_separate_runs(pipes):
    _, _, ours = pipes
    latents = torch.randn(3, 4, 16, 16, generator=_gen(4))
    per_image = [
        [
            EditConcept("female person", warmup_steps=1, scale=4),
            EditConcept("male person", reverse=True, scale=3),
        ],
        [
            EditConcept("male person", threshold=0.5, warmup_steps=0),
            EditConcept("hat", weight=0.5, warmup_steps=2),
        ],
        [],
    ]
    common = dict(
        num_inference_steps=STEPS, guidance_scale=7.0, output_type="latent", edit_momentum_scale=0.4
    )
    with _UNetCalls(ours.unet) as calls:
        batched = ours(
            "a photo of a pilot", num_images_per_prompt=3, latents=latents, edits=per_image, **common
        )
    assert (
        calls.batches == [3 + 3 + 4] * STEPS
    )  # uncond + prompt + one row per (image, concept), one call a step
    for k, own in enumerate(per_image):
        alone = ours("a photo of a pilot", latents=latents[k : k + 1], edits=own or None, **common).images
        assert torch.allclose(batched.images[k : k + 1], alone, atol=1e-4, rtol=0), k


def test_no_host_copies_inside_the_loop(pipes, monkeypatch):
    _, _, ours = pipes

    def forbid(name):
        def raiser(*_a, **_k):
            raise AssertionError(f"Tensor.{name}() called inside the denoising loop")

        return raiser

    def arm(_pipe, step, _t, tensors):
        if step == 0:  # the loop is running: from here on, any host copy fails
            for name in ("cpu", "item", "tolist", "numpy"):
                monkeypatch.setattr(torch.Tensor, name, forbid(name))
        return tensors

    fairness = FairnessInstruction("gender", {"female person": 0.5, "male person": 0.5}, warmup_steps=1)
    ours(
        "a firefighter",
        num_inference_steps=STEPS,
        num_images_per_prompt=2,
        guidance_scale=7.0,
        fairness=fairness,
        output_type="latent",
        callback_on_step_end=arm,
    )
    monkeypatch.undo()


def test_fairness_assigns_exact_counts_and_guides_each_image(pipes):
    _, _, ours = pipes
    instructions = [
        FairnessInstruction("gender", {"female person": 0.5, "male person": 0.5}, warmup_steps=0),
        FairnessInstruction.preset("skin_tone", warmup_steps=0),
    ]
    kwargs = dict(num_inference_steps=2, guidance_scale=7.0, output_type="latent", num_images_per_prompt=8)
    with _UNetCalls(ours.unet) as calls:
        out = ours(["a doctor", "a nurse"], fairness=instructions, generator=_gen(5), **kwargs)
    assert isinstance(out, FairDiffusionPipelineOutput)
    assert calls.batches == [16 + 16 + 16 * (2 + 4)] * 2
    assignments = out.assignments
    assert [a.image_index for a in assignments] == list(range(16))
    for p in (0, 1):
        mine = [a for a in assignments if a.prompt_index == p]
        cells = {(a["gender"], a["skin_tone"]) for a in mine}
        assert len(cells) == 8  # 8 images: each gender x skin-tone cell exactly once
    again = ours(["a doctor", "a nurse"], fairness=instructions, generator=_gen(5), **kwargs)
    assert again.assignments == assignments and torch.equal(again.images, out.images)
    other = ours(["a doctor", "a nurse"], fairness=instructions, fairness_seed=6, generator=_gen(5), **kwargs)
    assert other.assignments != assignments
    images, nsfw, tuple_assignments = ours(
        ["a doctor", "a nurse"], fairness=instructions, generator=_gen(5), return_dict=False, **kwargs
    )
    assert tuple_assignments == assignments and nsfw is None


def test_fairness_equals_explicit_per_image_edits(pipes):
    _, _, ours = pipes
    instruction = FairnessInstruction("gender", {"woman": 0.25, "man": 0.75}, warmup_steps=1)
    kwargs = dict(
        num_inference_steps=STEPS, guidance_scale=7.0, output_type="latent", num_images_per_prompt=4
    )
    out = ours("a scientist", fairness=instruction, generator=_gen(7), **kwargs)
    assert sorted(a["gender"] for a in out.assignments) == ["man", "man", "man", "woman"]
    edits = [instruction.edit_concepts(a["gender"]) for a in out.assignments]
    explicit = ours(
        "a scientist", edits=edits, edit_momentum_scale=0.5, edit_mom_beta=0.6, generator=_gen(7), **kwargs
    )
    assert torch.allclose(out.images, explicit.images, atol=1e-5, rtol=0)


def test_fairness_assignments_given_beforehand_are_the_ones_guided(pipes):
    _, _, ours = pipes
    instruction = FairnessInstruction("gender", {"woman": 0.5, "man": 0.5}, warmup_steps=0)
    kwargs = dict(
        num_inference_steps=STEPS, guidance_scale=7.0, output_type="latent", num_images_per_prompt=2
    )
    prompts = ["a scientist", "a pilot"]
    own = ours(prompts, fairness=instruction, generator=_gen(4), **kwargs)
    same = ours(
        prompts, fairness=instruction, fairness_assignments=own.assignments, generator=_gen(4), **kwargs
    )
    assert same.assignments == own.assignments and torch.equal(same.images, own.images)
    given = [{"gender": g} for g in ("man", "man", "woman", "man")]  # counts need not be exact
    out = ours(prompts, fairness=instruction, fairness_assignments=given, generator=_gen(4), **kwargs)
    assert [dict(a.groups) for a in out.assignments] == given
    assert [(a.image_index, a.prompt_index) for a in out.assignments] == [(0, 0), (1, 0), (2, 1), (3, 1)]
    edits = [instruction.edit_concepts(g["gender"]) for g in given]
    explicit = ours(
        prompts, edits=edits, edit_momentum_scale=0.5, edit_mom_beta=0.6, generator=_gen(4), **kwargs
    )
    assert torch.equal(out.images, explicit.images)
    assert not torch.allclose(out.images, own.images)  # other groups, other guidance


def test_fairness_in_context_guides_with_each_prompts_subject(pipes):
    _, _, ours = pipes
    tone = FairnessInstruction.synthworld("skin_tone", contextual=True, warmup_steps=0)
    kwargs = dict(
        num_inference_steps=STEPS, guidance_scale=7.0, output_type="latent", num_images_per_prompt=4
    )
    prompts = ["a photo of a nurse", "a photo of a pilot"]
    out = ours(prompts, fairness=tone, generator=_gen(3), **kwargs)
    edits = [
        tone.edit_concepts(a["skin_tone"], "nurse" if a.prompt_index == 0 else "pilot")
        for a in out.assignments
    ]
    assert edits[0][0].prompt.startswith("a photo of a ") and edits[0][0].prompt.endswith("-skinned nurse")
    explicit = ours(
        prompts, edits=edits, edit_momentum_scale=0.5, edit_mom_beta=0.6, generator=_gen(3), **kwargs
    )
    assert torch.allclose(out.images, explicit.images, atol=1e-5, rtol=0)
    named = ours(prompts, fairness=tone, fairness_subjects=["nurse", "pilot"], generator=_gen(3), **kwargs)
    assert torch.equal(named.images, out.images)
    other = ours(prompts, fairness=tone, fairness_subjects="chef", generator=_gen(3), **kwargs)
    assert not torch.allclose(other.images, out.images)  # the subject is part of the guidance
    with pytest.raises(TrustVLInputError, match="names no SynthWorld occupation"):
        ours("a photo of a cat", fairness=tone, **kwargs)
    embeds = ours.encode_prompt("a photo of a nurse", "cpu", 1, True)[0]
    with pytest.raises(TrustVLInputError, match="not prompt_embeds"):
        ours(prompt_embeds=embeds, fairness=tone, **kwargs)


def test_bfloat16_runs(tiny_sd_dir):
    pipe = FairDiffusionPipeline.from_pretrained(tiny_sd_dir, torch_dtype=torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    fairness = FairnessInstruction.preset("gender", warmup_steps=0)
    out = pipe(
        "a teacher", num_inference_steps=2, num_images_per_prompt=2, fairness=fairness, output_type="latent"
    )
    assert out.images.dtype == torch.bfloat16 and torch.isfinite(out.images.float()).all()


def test_loads_with_from_pretrained_from_pipe_and_round_trips(tiny_sd_dir, pipes, tmp_path):
    pipe = FairDiffusionPipeline.from_pretrained(tiny_sd_dir)
    pipe.set_progress_bar_config(disable=True)
    kwargs = dict(num_inference_steps=2, editing_prompt="hat", edit_warmup_steps=0)
    out = pipe("a doctor", output_type="pil", **kwargs)
    assert out.images[0].size == (32, 32) and out.assignments is None
    _, reference, _ = pipes
    switched = FairDiffusionPipeline.from_pipe(reference)  # from the deprecated pipeline: shared components
    assert switched.unet is reference.unet
    pipe.save_pretrained(tmp_path / "fair")
    again = FairDiffusionPipeline.from_pretrained(tmp_path / "fair")
    again.set_progress_bar_config(disable=True)
    first = pipe("a doctor", output_type="latent", generator=_gen(0), **kwargs).images
    assert torch.equal(again("a doctor", output_type="latent", generator=_gen(0), **kwargs).images, first)
    from diffusers import DiffusionPipeline, StableDiffusionPipeline

    assert (
        type(DiffusionPipeline.from_pretrained(tmp_path / "fair")) is StableDiffusionPipeline
    )  # plain diffusers


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(editing_prompt="hat", guidance_scale=1.0), "guidance_scale=1.0"),
        (
            dict(fairness=FairnessInstruction.preset("gender"), guidance_scale=0.5, num_images_per_prompt=2),
            "guidance_scale=0.5",
        ),
        (dict(editing_prompt=["hat", " "]), "' '"),
        (dict(editing_prompt="hat", edit_guidance_scale=-1.0), "-1.0"),
        (dict(editing_prompt=["a", "b"], edit_guidance_scale=[1.0, -2.0]), "-2.0"),
        (dict(editing_prompt="hat", edit_momentum_scale=-0.1), "-0.1"),
        (dict(editing_prompt="hat", edit_weights=[-1.0]), "-1.0"),
        (
            dict(editing_prompt="hat", edit_threshold=1.0),
            "edit_threshold=1.0 of concept 'hat' is outside [0, 1)",
        ),
        (dict(editing_prompt="hat", edit_threshold=-0.2), "-0.2"),
        (dict(editing_prompt="hat", edit_mom_beta=1.5), "1.5"),
        (dict(editing_prompt=["a", "b"], edit_weights=[1.0, 1.0, 1.0]), "edit_weights has 3 values"),
        (dict(guidance_scale=-3.0), "guidance_scale=-3.0"),
        (dict(fairness=FairnessInstruction.preset("skin_tone"), num_images_per_prompt=3), "3 image(s)"),
        (dict(edits=[[EditConcept("hat")]], num_images_per_prompt=2), "1 per-image lists for 2 images"),
        (
            dict(fairness=[FairnessInstruction.preset("gender")] * 2, num_images_per_prompt=2),
            "'gender' twice",
        ),
        (
            dict(
                fairness=FairnessInstruction.preset("gender"),
                fairness_assignments=[{"gender": "male person"}] * 2,
            ),
            "fairness_assignments has 2 entries for 1 images",
        ),
        (
            dict(fairness=FairnessInstruction.preset("gender"), fairness_assignments=[{"gender": "robot"}]),
            "unknown group 'robot'",
        ),
        (
            dict(fairness=FairnessInstruction.preset("gender"), fairness_assignments=[{"age": "old"}]),
            "expected one group for each of ['gender']",
        ),
        (dict(fairness_assignments=[{"gender": "male person"}]), "needs the fairness instructions"),
    ],
)
def test_bad_input_raises_one_clear_error_before_any_work(pipes, kwargs, message):
    _, _, ours = pipes
    with _UNetCalls(ours.unet) as calls, pytest.raises(TrustVLInputError) as error:
        ours("a doctor", num_inference_steps=2, output_type="latent", **kwargs)
    assert message in str(error.value)
    assert calls.batches == []
