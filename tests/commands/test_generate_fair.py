"""`trustvl generate --fair`: Fair Diffusion through the generation job, on a tiny offline SD pipeline."""

from collections import Counter

import pytest

from trustvl.cli import main
from trustvl.errors import TrustVLInputError
from trustvl.pipelines import FairnessInstruction
from trustvl.pipelines.fair_diffusion import FairGenerationPlan
from trustvl.pipelines.fairness_instruction import (
    instructions_from_file,
    synthworld_outcome_value,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _generate(sd, out, *extra):
    argv = ["generate", "--model", str(sd), "--prompt", "a doctor", "a chef", "--n", "5", "--steps", "2",
            "--batch-size", "3", "--device", "cpu", "--out", str(out), "--fair-warmup", "0", *extra]  # fmt: skip
    return main(argv)


def test_generate_fair_writes_each_images_groups_with_exact_counts(tiny_sd_dir, tmp_path):
    import datasets

    out = tmp_path / "fair"
    rc = _generate(tiny_sd_dir, out, "--fair", "gender=female person:0.6,male person:0.4",
                   "--fair", "age=young:0.5,old:0.5")  # fmt: skip
    assert rc == 0
    ds = datasets.load_dataset(str(out), split="train")
    assert {"fair_gender", "fair_age"} <= set(ds.column_names)
    for prompt in ("a doctor", "a chef"):
        rows = [r for r in ds if r["prompt"] == prompt]
        assert [r["seed"] for r in rows] == [0, 1, 2, 3, 4]
        # exact largest-remainder counts per prompt, whatever the batch size (3 here, 5 images)
        assert Counter(r["fair_gender"] for r in rows) == {"female person": 3, "male person": 2}
        assert Counter(r["fair_age"] for r in rows) in ({"young": 3, "old": 2}, {"young": 2, "old": 3})
    # the assignment is the plan's, seeded by --seed and the prompt's index
    plan = FairGenerationPlan(
        (FairnessInstruction.from_string("gender=female person:0.6,male person:0.4"),
         FairnessInstruction.from_string("age=young:0.5,old:0.5")),
    )  # fmt: skip
    expected = plan.assign(5, seed=0, prompt_index=1)
    chef = [r for r in ds if r["prompt"] == "a chef"]
    assert [r["fair_gender"] for r in chef] == [a["gender"] for a in expected]
    card = (out / "README.md").read_text()
    assert "Fair Diffusion" in card and "female person 3" in card


def test_generate_fair_images_differ_from_plain_and_follow_the_seed(tiny_sd_dir, tmp_path):
    import datasets
    import numpy as np

    assert _generate(tiny_sd_dir, tmp_path / "plain") == 0
    assert _generate(tiny_sd_dir, tmp_path / "fair", "--fair", "gender", "--fair-scale", "20") == 0
    assert _generate(tiny_sd_dir, tmp_path / "again", "--fair", "gender", "--fair-scale", "20") == 0
    plain, fair, again = (
        datasets.load_dataset(str(tmp_path / d), split="train") for d in ("plain", "fair", "again")
    )
    assert "fair_gender" not in plain.column_names
    a, b, c = (np.stack([np.asarray(im) for im in ds["image"]]).astype(float) for ds in (plain, fair, again))
    assert np.abs(a - b).max() > 0  # guidance changed the images
    assert np.array_equal(b, c)  # deterministic


def test_generate_fair_in_context(tiny_sd_dir, tmp_path):
    import datasets
    import numpy as np

    args = ("--fair", "gender", "--fair-scale", "20", "--fair-context")
    assert _generate(tiny_sd_dir, tmp_path / "bare", *args[:4]) == 0
    assert _generate(tiny_sd_dir, tmp_path / "auto", *args) == 0  # subjects: the occupations in the prompts
    assert _generate(tiny_sd_dir, tmp_path / "named", *args, "--fair-subject", "doctor", "chef") == 0
    assert _generate(tiny_sd_dir, tmp_path / "other", *args, "--fair-subject", "pilot", "chef") == 0
    images = {
        d: np.stack(
            [np.asarray(im) for im in datasets.load_dataset(str(tmp_path / d), split="train")["image"]]
        )
        for d in ("bare", "auto", "named", "other")
    }
    assert np.array_equal(images["auto"], images["named"])
    assert not np.array_equal(images["auto"], images["bare"])
    assert not np.array_equal(images["auto"][:5], images["other"][:5])  # 'a doctor' guided as a pilot
    assert np.array_equal(images["auto"][5:], images["other"][5:])  # 'a chef' unchanged
    assert "a photo of a female {subject}" in (tmp_path / "auto" / "README.md").read_text()


def test_fair_file_yaml(tiny_sd_dir, tmp_path):
    import datasets

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "fairness:\n"
        "  - attribute: gender\n"
        "    groups: {female person: 0.2, male person: 0.8}\n"
        "    outcome_head: gender_presentation\n"
        "    outcome_values: {female person: feminine, male person: masculine}\n"
        "    prompts: {female person: 'a photo of a female {subject}'}\n"
        "  - skin_tone\n"
    )
    instructions = instructions_from_file(str(spec), guidance_scale=3.0)
    assert [i.attribute for i in instructions] == ["gender", "skin_tone"]
    assert instructions[0].outcome_of("female person") == "feminine" and instructions[0].guidance_scale == 3.0
    concepts = instructions[0].edit_concepts("female person", "doctor")
    assert [c.prompt for c in concepts] == ["a photo of a female doctor", "male person"]
    assert _generate(tiny_sd_dir, tmp_path / "out", "--fair-file", str(spec)) == 0
    ds = datasets.load_dataset(str(tmp_path / "out"), split="train")
    rows = [r for r in ds if r["prompt"] == "a doctor"]
    assert Counter(r["fair_gender"] for r in rows) == {"female person": 1, "male person": 4}
    assert len({r["fair_skin_tone"] for r in rows}) == 4  # 5 images over 4 uniform groups: each at least once


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fair", "gender=female person:-0.5,male person:1.5"], "negative"),
        (["--fair", "gender=female person:0.5,male person:0.6"], "sum to 1.1"),
        (["--fair", "gender=female person:0.5, :0.5"], "empty group"),
        (["--fair", "hair_colour"], "unknown fairness attribute 'hair_colour'"),
        (["--fair", "skin_tone=a,b,c,d,e,f"], "5 image(s) cannot cover the 6 groups"),
        (["--fair", "gender", "--fair-scale", "-1"], "-1"),
        (["--fair", "gender", "--fair-threshold", "1"], "outside [0, 1)"),
        (["--fair", "gender", "--fair-momentum", "-0.5"], "-0.5"),
        (["--fair", "gender", "--fair-momentum-beta", "1"], "outside [0, 1)"),
        (["--fair", "gender", "--fair", "gender"], "'gender' twice"),
        (["--fair-file", "missing.yaml"], "does not exist"),
        (["--fair", "gender", "--fair-context", "--fair-subject", "vet"], "1 subject(s) for 2 prompt(s)"),
        (["--fair", "hair=red,blond", "--fair-context"], "not 'hair'"),
        (["--fair-context"], "need a fairness instruction"),
    ],
)
def test_bad_fair_input_exits_2_and_writes_nothing(tiny_sd_dir, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert _generate(tiny_sd_dir, out, *extra) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_bad_fair_file_fields(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("- attribute: gender\n  groups: {a: 0.5, b: 0.5}\n  colour: red\n")
    with pytest.raises(TrustVLInputError, match="unknown field"):
        instructions_from_file(str(spec))
    spec.write_text("fairness: 3\n")
    with pytest.raises(TrustVLInputError, match="non-empty list"):
        instructions_from_file(str(spec))


def test_synthworld_instructions_map_groups_to_classifier_values():
    from trustvl.data_builders.synthworld.captions import GENDER_ADJ, SKIN_PHRASES

    gender = FairnessInstruction.synthworld("gender", {"feminine": 0.3, "masculine": 0.7})
    assert gender.groups == {"female person": 0.3, "male person": 0.7}
    assert gender.head == "gender_presentation" and gender.outcome_of("female person") == "feminine"
    skin = FairnessInstruction.synthworld("skin_tone")
    assert list(skin.outcome_values.values()) == ["very light", "light", "dark", "very dark"]
    assert skin.prompt_of("person with very dark skin") == "person with very dark skin"
    # every caption-grammar word of SynthWorld maps back to its level
    for value, adjective in GENDER_ADJ.items():
        assert synthworld_outcome_value("gender_presentation", f"a {adjective} person") == value
    for value, phrase in SKIN_PHRASES.items():
        assert synthworld_outcome_value("skin_tone", phrase) == value
    assert synthworld_outcome_value("gender_presentation", "robot") is None
    with pytest.raises(TrustVLInputError, match="unknown skin_tone level"):
        FairnessInstruction.synthworld("skin_tone", levels=["green"])
    with pytest.raises(TrustVLInputError, match="unknown SynthWorld fairness attribute"):
        FairnessInstruction.synthworld("hair")
    with pytest.raises(TrustVLInputError, match="share the outcome value"):
        FairnessInstruction("gender", {"a": 0.5, "b": 0.5}, outcome_values={"a": "x", "b": "x"})
