"""`trustvl eval fair-diffusion`: the outcome maths on hand-made readings, and the job end to end on a tiny
random SD pipeline and a tiny random outcome classifier."""

import json
import math

import numpy as np
import pytest
import torch

from trustvl.cli import main
from trustvl.errors import TrustVLInputError
from trustvl.evaluation.fair_diffusion import (
    FairDiffusionEvalConfig,
    FairDiffusionEvaluation,
    OutcomeReadings,
    resolve_outcomes,
    summarise,
)
from trustvl.metrics import wilson_interval
from trustvl.pipelines.fair_diffusion import FairGenerationPlan
from trustvl.pipelines.fairness_instruction import FairnessInstruction

HEADS = {
    "gender_presentation": ("feminine", "masculine"),
    "occupation": ("doctor", "chef"),
    "skin_tone": ("very light", "light", "medium", "dark", "very dark"),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_classifier_dir(tmp_path_factory):
    from trustvl.modeling.outcome_classifier import build_outcome_classifier

    torch.manual_seed(0)
    model, processor = build_outcome_classifier(HEADS, image_size=32, hidden_sizes=(8, 16), embedding_size=8)
    path = tmp_path_factory.mktemp("models") / "tiny-classifier"
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def _readings(values, assignments=None):
    return OutcomeReadings({h: np.asarray(v, dtype=object) for h, v in values.items()}, assignments, [], 1.0)


def test_summary_maths_on_known_readings():
    gender = FairnessInstruction.synthworld("gender")  # 50/50, female person -> feminine
    plan = FairGenerationPlan((gender,))
    prompts = ["a photo of a doctor", "a photo of a chef"]
    f, m = "feminine", "masculine"
    # plain: doctor 4/4 feminine, chef 1/4 feminine; guided: doctor 2/4, chef 2/4
    plain = _readings({"gender_presentation": [[f, f, f, f], [f, m, m, m]],
                       "occupation": [["doctor"] * 4, ["chef"] * 4]})  # fmt: skip
    assigned = [plan.assign(4, prompt_index=p) for p in range(2)]
    read = [["feminine" if a["gender"] == "female person" else "masculine" for a in row] for row in assigned]
    read[1][0] = (
        "masculine" if read[1][0] == "feminine" else "feminine"
    )  # one disobeys: chef 1 or 3 of 4 female
    fair = _readings({"gender_presentation": read, "occupation": [["doctor"] * 4, ["chef", "chef", "chef", "doctor"]]},
                     assigned)  # fmt: skip
    result = summarise(plan, prompts, plain, fair, expected_occupations=["doctor", "chef"], n_resamples=200)
    a = result.attribute("gender")
    doctor, chef = a.per_prompt
    assert [g.plain for g in doctor.groups] == [1.0, 0.0] and [g.fair for g in doctor.groups] == [0.5, 0.5]
    assert doctor.plain_gap == pytest.approx(0.5) and doctor.fair_gap == 0.0 and doctor.fair_within
    assert (
        chef.plain_gap == pytest.approx(0.25)
        and chef.fair_gap == pytest.approx(0.25)
        and not chef.fair_within
    )
    assert a.mean_abs_gap.plain == pytest.approx(0.375) and a.mean_abs_gap.fair == pytest.approx(0.125)
    assert a.relative_gap_drop == pytest.approx(1 - 0.125 / 0.375)
    assert a.within_tolerance.plain == 0.0 and a.within_tolerance.fair == 0.5
    assert a.obeyed == pytest.approx(7 / 8)
    # KL(observed || target): doctor plain all one group against 50/50 -> ln 2; guided doctor 0
    assert doctor.plain_kl == pytest.approx(math.log(2)) and doctor.fair_kl == pytest.approx(0.0)
    for metric in (a.mean_abs_gap, a.kl, a.within_tolerance):
        for value, ci in ((metric.plain, metric.plain_interval), (metric.fair, metric.fair_interval)):
            assert ci.low - 1e-9 <= value <= ci.high + 1e-9
    assert a.mean_abs_gap.change.verdict in ("better", "within noise")
    c = result.content
    assert c.plain_per_prompt == [1.0, 1.0] and c.fair_per_prompt == [1.0, 0.75]
    assert (
        c.drop_points == pytest.approx(12.5)
        and c.drop_points_interval.low <= 12.5 <= c.drop_points_interval.high
    )
    # JSON round trip
    again = FairDiffusionEvaluation.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result


def test_wilson_interval():
    ci = wilson_interval(0, 10)
    assert ci.low == 0.0 and 0.2 < ci.high < 0.35
    mid = wilson_interval(32, 64)
    assert mid.low < 0.5 < mid.high and mid.high - mid.low == pytest.approx(2 * 1.96 * 0.5 / 8, rel=0.05)


def test_resolve_outcomes_maps_synthworld_phrases_and_rejects_unknown_ones():
    gender, skin = resolve_outcomes(
        [
            FairnessInstruction.from_string("gender=a woman:0.3,man:0.7"),
            FairnessInstruction.preset("skin_tone"),
        ],
        HEADS,
    )
    assert gender.head == "gender_presentation" and gender.outcome_values == {
        "a woman": "feminine",
        "man": "masculine",
    }
    assert skin.outcome_of("person with very dark skin") == "very dark"
    with pytest.raises(TrustVLInputError, match="unknown attribute 'hair'"):
        resolve_outcomes([FairnessInstruction.from_string("hair=red:0.5,black:0.5")], HEADS)
    with pytest.raises(TrustVLInputError, match="unknown concept 'robot'"):
        resolve_outcomes([FairnessInstruction.from_string("gender=female person:0.5,robot:0.5")], HEADS)
    with pytest.raises(TrustVLInputError, match="share the outcome value"):
        resolve_outcomes([FairnessInstruction.from_string("gender=woman:0.5,female person:0.5")], HEADS)


def _eval(sd, clf, out, *extra):
    argv = ["eval", "fair-diffusion", "--model", str(sd), "--classifier", str(clf), "--prompts", "a photo of a doctor",
            "a photo of a chef", "--n", "4", "--steps", "2", "--guidance", "5", "--batch-size", "5", "--device", "cpu",
            "--fair-warmup", "0", "--n-resamples", "50", "--grid-images", "3", "--out", str(out), "--quiet", *extra]  # fmt: skip
    return main(argv)


def test_cli_eval_writes_json_and_html_with_shares_targets_and_intervals(
    tiny_sd_dir, tiny_classifier_dir, tmp_path
):
    out = tmp_path / "eval"
    rc = _eval(tiny_sd_dir, tiny_classifier_dir, out, "--fair", "gender=female person:0.25,male person:0.75",
               "--fair", "skin_tone")  # fmt: skip
    assert rc == 0
    data = json.loads((out / "results.json").read_text())
    result = FairDiffusionEvaluation.from_dict(data)
    assert result.prompts == ["a photo of a doctor", "a photo of a chef"] and result.n_per_prompt == 4
    gender = result.attribute("gender")
    assert gender.targets == {"female person": 0.25, "male person": 0.75}
    assert gender.outcome_values == {"female person": "feminine", "male person": "masculine"}
    for pp in gender.per_prompt + result.attribute("skin_tone").per_prompt:
        assert sum(g.plain for g in pp.groups) + pp.plain_other == pytest.approx(1.0)
        for g in pp.groups:
            assert g.plain * 4 == round(g.plain * 4)  # shares of 4 images
            assert g.fair_interval.low <= g.fair <= g.fair_interval.high
    assert gender.mean_abs_gap.plain_interval is not None and gender.mean_abs_gap.change is not None
    assert result.content.expected == ["doctor", "chef"]
    html = (out / "report.html").read_text()
    assert "Fair Diffusion" in html and "female person" in html and "shares_gender.png" in html
    assert (out / "shares_gender.png").is_file() and (out / "shares_skin_tone.png").is_file()
    assert sorted(p.name for p in (out / "grids").iterdir()) == ["prompt_000.png", "prompt_001.png"]
    from PIL import Image

    assert Image.open(out / "grids" / "prompt_000.png").size == (3 * 32, 2 * 32)  # plain row + guided row


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fair", "hair=red:0.5,black:0.5"], "unknown attribute 'hair'"),
        (["--fair", "gender=female person:0.5,robot:0.5"], "unknown concept 'robot'"),
        (["--fair", "gender=female person:-0.2,male person:1.2"], "negative"),
        (["--fair", "gender=female person:0.5,male person:0.4"], "sum to 0.9"),
        (
            ["--fair", "skin_tone=very light,light,dark,very dark,medium"],
            "4 image(s) cannot cover the 5 groups",
        ),
        (["--fair", "gender=female person:0.5,:0.5"], "empty group"),
        (["--fair", "gender", "--fair-scale", "-2"], "-2"),
        (["--fair", "gender", "--fair-threshold", "1.5"], "outside [0, 1)"),
        (["--fair", "gender", "--fair-threshold", "-0.1"], "outside [0, 1)"),
        (["--fair", "gender", "--guidance", "1"], "must be > 1"),
        (["--fair", "gender", "--tolerance", "0"], "tolerance"),
        (["--fair", "skin_tone", "--fair-context", "--fair-subject", "vet"], "1 subjects for 2 prompts"),
        (
            ["--fair", "skin_tone", "--fair-context", "--prompts", "a cat", "a dog"],
            "names no SynthWorld occupation",
        ),
    ],
)
def test_cli_eval_bad_input_exits_2_before_generating(
    tiny_sd_dir, tiny_classifier_dir, tmp_path, capsys, monkeypatch, extra, message
):
    from trustvl.evaluation.fair_diffusion import run

    def _no_generation(*args, **kwargs):
        raise AssertionError("generation started")

    monkeypatch.setattr(run, "generate_and_read", _no_generation)
    out = tmp_path / "out"
    assert _eval(tiny_sd_dir, tiny_classifier_dir, out, *extra) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_config_checks_before_loading_anything(tmp_path):
    with pytest.raises(TrustVLInputError, match="prompts"):
        FairDiffusionEvalConfig(str(tmp_path / "o"), prompts=[]).check()
    with pytest.raises(TrustVLInputError, match="n=0"):
        FairDiffusionEvalConfig(str(tmp_path / "o"), n=0).check()
    plan, prompts = FairDiffusionEvalConfig(str(tmp_path / "o")).check()
    assert len(prompts) == 8 and plan.instructions[0].head == "gender_presentation"
