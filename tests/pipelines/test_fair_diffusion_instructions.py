"""Fairness instructions (counts, assignment, parsing, errors) and the SEGA maths, without a pipeline."""

from collections import Counter

import pytest
import torch

from trustvl.errors import TrustVLInputError
from trustvl.pipelines import (
    EditConcept,
    FairnessInstruction,
    SemanticGuidance,
    assign_groups,
    largest_remainder_counts,
    spatial_quantile_mask,
)
from trustvl.pipelines.fairness_instruction import resolve_subjects, subject_in_prompt

GENDER = {"female person": 0.5, "male person": 0.5}


@pytest.mark.parametrize(
    ("shares", "total", "expected"),
    [
        ([0.5, 0.5], 7, [4, 3]),  # tie on the remainder: the first group
        ([0.3, 0.7], 10, [3, 7]),
        ([0.25] * 4, 6, [2, 2, 1, 1]),
        ([1 / 3, 1 / 3, 1 / 3], 10, [4, 3, 3]),
        ([0.1, 0.0, 0.9], 3, [0, 0, 3]),
        ([0.5, 0.5], 0, [0, 0]),
    ],
)
def test_largest_remainder_counts(shares, total, expected):
    assert largest_remainder_counts(shares, total) == expected
    assert sum(expected) == total


def test_counts_are_exact_and_assignment_deterministic():
    instruction = FairnessInstruction("gender", {"woman": 0.3, "man": 0.7})
    assert instruction.counts(10) == {"woman": 3, "man": 7}
    first = assign_groups(instruction, 10, seed=3)
    assert Counter(a["gender"] for a in first) == {"woman": 3, "man": 7}
    assert assign_groups(instruction, 10, seed=3) == first
    assert [a["gender"] for a in assign_groups(instruction, 10, seed=4)] != [a["gender"] for a in first]
    assert [a.image_index for a in assign_groups(instruction, 10, seed=3, first_image_index=20)] == list(
        range(20, 30)
    )


def test_odd_counts_do_not_loop():  # the public code's rejection sampling never ends on an odd count
    assert Counter(a["gender"] for a in assign_groups(FairnessInstruction("gender", GENDER), 5)) == {
        "female person": 3,
        "male person": 2,
    }


@pytest.mark.parametrize("num_images", [4, 8, 10, 13])
def test_product_assignment_keeps_every_marginal_exact(num_images):
    gender = FairnessInstruction("gender", {"f": 0.3, "m": 0.7})
    tone = FairnessInstruction.preset("skin_tone")
    assignments = assign_groups([gender, tone], num_images, seed=1)
    assert Counter(a["gender"] for a in assignments) == {
        k: v for k, v in gender.counts(num_images).items() if v
    }
    assert Counter(a["skin_tone"] for a in assignments) == {
        k: v for k, v in tone.counts(num_images).items() if v
    }
    joint = Counter((a["gender"], a["skin_tone"]) for a in assignments)
    for (g, t), count in joint.items():  # close to the product target
        assert abs(count - num_images * gender.groups[g] * tone.groups[t]) < 1.5


def test_edit_concepts_guide_toward_own_group_and_away_from_the_others():
    tone = FairnessInstruction.preset("skin_tone", guidance_scale=3.0, warmup_steps=2, threshold=0.9)
    concepts = tone.edit_concepts("person with dark skin")
    assert [(c.prompt, c.reverse) for c in concepts] == [
        ("person with dark skin", False),
        ("person with very light skin", True),
        ("person with light skin", True),
        ("person with very dark skin", True),
    ]
    assert [c.weight for c in concepts] == pytest.approx([1.0, 1 / 3, 1 / 3, 1 / 3])
    assert {(c.scale, c.warmup_steps, c.threshold) for c in concepts} == {(3.0, 2, 0.9)}
    paper = FairnessInstruction("gender", GENDER).edit_concepts("male person")
    assert [(c.prompt, c.reverse, c.weight, c.scale, c.warmup_steps, c.threshold) for c in paper] == [
        ("male person", False, 1.0, 4.0, 5, 0.95),
        ("female person", True, 1.0, 4.0, 5, 0.95),
    ]
    labelled = FairnessInstruction("gender", {"female": 0.5, "male": 0.5}, prompts={"female": "a woman"})
    assert [c.prompt for c in labelled.edit_concepts("female")] == ["a woman", "male"]


def test_guidance_in_context_names_the_group_in_the_prompts_subject():
    tone = FairnessInstruction.synthworld("skin_tone", contextual=True)
    assert tone.needs_subject and not FairnessInstruction.synthworld("skin_tone").needs_subject
    concepts = tone.edit_concepts("person with dark skin", "construction worker")
    assert [(c.prompt, c.reverse) for c in concepts] == [
        ("a photo of a dark-skinned construction worker", False),  # SynthWorld's appearance caption
        ("a photo of a very light-skinned construction worker", True),
        ("a photo of a light-skinned construction worker", True),
        ("a photo of a very dark-skinned construction worker", True),
    ]
    assert [c.weight for c in concepts] == pytest.approx([1.0, 1 / 3, 1 / 3, 1 / 3])
    gender = FairnessInstruction.from_string("gender", contextual=True)
    assert gender.prompts == {
        "female person": "a photo of a female {subject}",
        "male person": "a photo of a male {subject}",
    }
    assert gender.outcome_of("female person") == "female person"  # groups unchanged, only the guidance text
    custom = FairnessInstruction("hat", {"hat": 0.5, "no hat": 0.5}, prompts={"hat": "{subject} in a hat"})
    assert [c.prompt for c in custom.edit_concepts("no hat", "a dog")] == ["no hat", "a dog in a hat"]
    with pytest.raises(TrustVLInputError, match="needs a subject"):
        tone.edit_concepts("person with dark skin")


def test_resolve_subjects():
    tone = FairnessInstruction.synthworld("skin_tone", contextual=True)
    prompts = ["a photo of a construction worker at work", "a chef"]
    assert resolve_subjects([tone], prompts) == ["construction worker", "chef"]  # longest whole-word match
    assert resolve_subjects([tone], prompts, "cook") == ["cook", "cook"]
    assert resolve_subjects([tone], prompts, ["builder", "cook"]) == ["builder", "cook"]
    assert resolve_subjects([tone], prompts, {"a chef": "cook"}) == ["construction worker", "cook"]
    assert resolve_subjects([FairnessInstruction.preset("gender")], ["a cat"]) == [None]  # none needed
    with pytest.raises(TrustVLInputError, match="names no SynthWorld occupation"):
        resolve_subjects([tone], ["a photo of a cat"])
    with pytest.raises(TrustVLInputError, match="1 fairness subjects for 2 prompts"):
        resolve_subjects([tone], prompts, ["cook"])
    with pytest.raises(TrustVLInputError, match="is empty"):
        resolve_subjects([tone], prompts, ["", "cook"])
    assert subject_in_prompt("a firefighters' day", ["firefighter"]) is None  # whole words only


def test_from_string():
    parsed = FairnessInstruction.from_string("gender=female person:0.3, male person:0.7")
    assert parsed.attribute == "gender" and parsed.groups == {"female person": 0.3, "male person": 0.7}
    rest = FairnessInstruction.from_string("tone=light:0.5,medium,dark")
    assert rest.groups == pytest.approx({"light": 0.5, "medium": 0.25, "dark": 0.25})
    assert FairnessInstruction.from_string("gender").groups == {"female person": 0.5, "male person": 0.5}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FairnessInstruction.preset("hair_colour"), "unknown fairness attribute 'hair_colour'"),
        (lambda: FairnessInstruction.from_string("eyes"), "'eyes'"),
        (lambda: FairnessInstruction("gender", GENDER).edit_concepts("robot"), "unknown group 'robot'"),
        (
            lambda: assign_groups(FairnessInstruction("gender", GENDER), 2)[0]["age"],
            "unknown attribute 'age'",
        ),
        (
            lambda: FairnessInstruction("gender", GENDER, prompts={"woman": "a woman"}),
            "unknown group 'woman'",
        ),
        (lambda: FairnessInstruction("gender", {"f": -0.5, "m": 1.5}), "-0.5"),
        (lambda: FairnessInstruction("gender", {"f": 0.5, "m": 0.6}), "sum to 1.1"),
        (lambda: FairnessInstruction("gender", {"f": 1.0}), "at least 2 groups"),
        (lambda: FairnessInstruction("gender", {"f": 0.5, " ": 0.5}), "empty group name"),
        (lambda: FairnessInstruction("", GENDER), "empty"),
        (lambda: FairnessInstruction.from_string("gender=f:x,m"), "'x'"),
        (lambda: FairnessInstruction.from_string("gender=f:0.5,f:0.5"), "twice"),
        (lambda: FairnessInstruction("gender", GENDER, guidance_scale=-1), "-1"),
        (lambda: FairnessInstruction("gender", GENDER, threshold=1.0), "outside [0, 1)"),
        (lambda: FairnessInstruction("gender", GENDER, away_weight=-2.0), "-2.0"),
        (lambda: FairnessInstruction.preset("skin_tone").counts(3), "3 image(s) cannot cover the 4 groups"),
        (lambda: EditConcept(""), "empty"),
        (lambda: EditConcept("hat", threshold=-0.1), "outside [0, 1)"),
        (lambda: EditConcept("hat", warmup_steps=-1), "-1"),
        (lambda: EditConcept("hat", scale=float("nan")), "nan"),
        (lambda: largest_remainder_counts([0.5, 0.5], -2), "-2"),
        (lambda: FairnessInstruction("gender", GENDER, prompts={"male person": "a {man}"}), "['man']"),
        (
            lambda: FairnessInstruction("gender", GENDER, prompts={"male person": "a {subject"}),
            "not a valid template",
        ),
        (lambda: FairnessInstruction.from_string("hair=red,blond", contextual=True), "not 'hair'"),
    ],
)
def test_bad_input_raises_trustvl_input_error(make, message):
    with pytest.raises(TrustVLInputError) as error:
        make()
    assert message in str(error.value)


def test_zero_share_group_gets_no_image_and_allows_fewer_images():
    instruction = FairnessInstruction("gender", {"f": 1.0, "m": 0.0, "x": 0.0})
    assert instruction.counts(1) == {"f": 1, "m": 0, "x": 0}
    assert [c.reverse for c in instruction.edit_concepts("f")] == [False, True, True]


def test_spatial_quantile_mask_matches_torch_quantile():
    values = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    for threshold in (0.0, 0.5, 0.9, 0.95):
        cutoff = torch.quantile(values.abs().flatten(2), threshold, dim=2)
        expected = torch.where(values.abs() >= cutoff[..., None, None], values, torch.zeros_like(values))
        assert torch.equal(spatial_quantile_mask(values, threshold), expected)
    per_row = spatial_quantile_mask(values, torch.tensor([0.0, 0.5, 0.95]))
    assert torch.equal(per_row[0], values[0])
    assert (per_row[2] != 0).flatten(1).sum(1).tolist() == [4, 4, 4, 4]  # top 5 % of 64, per channel


def test_spatial_quantile_mask_half_precision_compares_in_float32():
    values = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    got = spatial_quantile_mask(values, 0.9)
    assert got.dtype == torch.bfloat16
    assert torch.equal(got.float(), spatial_quantile_mask(values.float(), 0.9))


def _estimates(rows, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, 1, 2, 2, generator=g)


def test_guidance_warmup_phase_normalises_weights_without_momentum():
    concepts = [
        [EditConcept("a", warmup_steps=0, weight=3.0, threshold=0.0), EditConcept("b", warmup_steps=5)]
    ]
    guidance = SemanticGuidance(concepts, num_steps=6, momentum_scale=0.5, momentum_beta=0.6, device="cpu")
    uncond, text, edits = _estimates(1, 0), _estimates(1, 1), _estimates(2, 2)
    step0 = guidance.combine(0, uncond, text, edits, 7.0)
    # only "a" is active: its weight normalised to 1, no momentum yet applied
    assert torch.allclose(step0, uncond + 7.0 * (text - uncond) + 5.0 * (edits[0] - uncond))


def test_guidance_zero_over_zero_is_zero_not_nan():
    concepts = [[EditConcept("a", warmup_steps=0, cooldown_steps=0), EditConcept("b", warmup_steps=9)]]
    guidance = SemanticGuidance(concepts, num_steps=3, momentum_scale=0.1, momentum_beta=0.4, device="cpu")
    uncond, text, edits = _estimates(1, 0), _estimates(1, 1), _estimates(2, 2)
    out = guidance.combine(1, uncond, text, edits, 7.0)
    assert torch.allclose(out, uncond + 7.0 * (text - uncond))


def test_guidance_images_without_concepts_get_plain_cfg():
    concepts = [[EditConcept("a", warmup_steps=0)], []]
    guidance = SemanticGuidance(concepts, num_steps=2, momentum_scale=0.5, momentum_beta=0.6, device="cpu")
    assert guidance.num_rows == 1 and guidance.row_image.tolist() == [0]
    uncond, text = _estimates(2, 0), _estimates(2, 1)
    out = guidance.combine(0, uncond, text, _estimates(1, 2), 7.0)
    assert torch.allclose(out[1], (uncond + 7.0 * (text - uncond))[1])
    assert not torch.allclose(out[0], (uncond + 7.0 * (text - uncond))[0])


@pytest.mark.parametrize(("scale", "beta"), [(-0.1, 0.5), (0.1, 1.0), (0.1, -0.5)])
def test_guidance_rejects_bad_momentum(scale, beta):
    with pytest.raises(TrustVLInputError):
        SemanticGuidance(
            [[EditConcept("a")]], num_steps=2, momentum_scale=scale, momentum_beta=beta, device="cpu"
        )
