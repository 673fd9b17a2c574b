"""The one generation loop (trustvl.pipelines.generation): seeds, batches, Fair Diffusion groups handed to the
pipeline, checks before any pipeline call, and the dataset writer below it."""

from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from trustvl.data_builders.generated_images import write_generated_dataset
from trustvl.errors import TrustVLInputError
from trustvl.pipelines import FairnessInstruction
from trustvl.pipelines.fair_diffusion import FairGenerationPlan
from trustvl.pipelines.generation import generate_images, iter_generated_batches


class _RecordingPipe:
    """Records each call; returns one image per prompt whose pixel is the generator's first random byte."""

    device = torch.device("cpu")

    def __init__(self):
        self.calls = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        shades = [int(torch.randint(0, 256, (1,), generator=g)) for g in kwargs["generator"]]
        return SimpleNamespace(images=[Image.new("RGB", (4, 4), (s, s, s)) for s in shades])


PLAN = FairGenerationPlan(
    (
        FairnessInstruction.from_string("gender=female person:0.6,male person:0.4"),
        FairnessInstruction.preset("skin_tone"),
    ),
    momentum_scale=0.3,
    momentum_beta=0.2,
)
PROMPTS = ["a doctor", "a chef"]


@pytest.mark.parametrize("mix_prompts", [False, True])
@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_image_i_uses_seed_plus_i_and_the_plans_groups_whatever_the_batches(batch_size, mix_prompts):
    pipe = _RecordingPipe()
    images = generate_images(
        pipe, PROMPTS, 5, seed=7, batch_size=batch_size, plan=PLAN, mix_prompts=mix_prompts
    )
    assert [(g.prompt, g.seed, g.index, g.prompt_index) for g in images] == [
        (prompt, 7 + i, i, p) for p, prompt in enumerate(PROMPTS) for i in range(5)
    ]
    for p in range(2):
        mine = [g.groups for g in images if g.prompt_index == p]
        assert mine == PLAN.assign(5, seed=7, prompt_index=p)  # assigned before batching: exact counts
        assert Counter(g["gender"] for g in mine) == {"female person": 3, "male person": 2}
    reference = generate_images(_RecordingPipe(), PROMPTS, 5, seed=7, batch_size=1, plan=PLAN)
    assert [im.image.getpixel((0, 0)) for im in images] == [im.image.getpixel((0, 0)) for im in reference]
    sizes = [len(c["prompt"]) for c in pipe.calls]
    assert max(sizes) <= batch_size and sum(sizes) == 10
    if not mix_prompts:  # a batch holds one prompt's images
        assert all(len(set(c["prompt"])) == 1 for c in pipe.calls)
    else:
        assert len(pipe.calls) == -(-10 // batch_size)
    for call in pipe.calls:  # the groups go to the pipeline, which builds the guidance from them
        assert call["fairness"] == PLAN.instructions
        assert call["edit_momentum_scale"] == 0.3 and call["edit_mom_beta"] == 0.2
        assert len(call["fairness_assignments"]) == len(call["prompt"])


def test_plain_generation_passes_no_fairness_and_repeats_the_negative_prompt():
    pipe = _RecordingPipe()
    batches = list(iter_generated_batches(pipe, "a nurse", 3, seed=2, batch_size=2, negative_prompt="blurry"))
    assert [len(b) for b in batches] == [2, 1] and all(g.groups is None for b in batches for g in b)
    assert [c["negative_prompt"] for c in pipe.calls] == [["blurry"] * 2, ["blurry"]]
    assert all("fairness" not in c for c in pipe.calls)
    assert [g.seed for b in batches for g in b] == [2, 3, 4]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([" "], 2), {}, "prompt=' '"),
        (([], 2), {}, "prompts is empty"),
        ((["a cat"], 0), {}, "n=0"),
        ((["a cat"], 2), {"batch_size": 0}, "batch_size=0"),
    ],
)
def test_bad_input_raises_before_any_pipeline_call(args, kwargs, message):
    pipe = _RecordingPipe()
    with pytest.raises(TrustVLInputError, match=message):
        generate_images(pipe, *args, **kwargs)
    assert pipe.calls == []


def test_writer_writes_each_images_groups_and_refuses_an_empty_list(tmp_path):
    import pyarrow.parquet as pq

    images = generate_images(_RecordingPipe(), PROMPTS, 5, seed=0, plan=PLAN)
    run = write_generated_dataset(
        images, str(tmp_path / "out"), prompts=PROMPTS, n=5, seed=0, num_inference_steps=20,
        guidance_scale=5.0, fairness_description=PLAN.describe(5),
    )  # fmt: skip
    # read the shard itself: load_dataset's shared on-disk cache can answer for an earlier folder of this path
    ds = pq.read_table(run.parquet_path).to_pydict()
    assert ds["fair_gender"] == [g.groups["gender"] for g in images]
    assert ds["fair_skin_tone"] == [g.groups["skin_tone"] for g in images]
    assert "female person 3" in (tmp_path / "out" / "README.md").read_text() and not run.classified
    with pytest.raises(TrustVLInputError, match="no generated images"):
        write_generated_dataset(
            [],
            str(tmp_path / "empty"),
            prompts=PROMPTS,
            n=5,
            seed=0,
            num_inference_steps=20,
            guidance_scale=5.0,
        )
    assert not (tmp_path / "empty").exists()
