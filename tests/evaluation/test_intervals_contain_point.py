"""Every interval trustvl reports contains its point value (SPEC §1, issue 24).

The check walks the JSON that the jobs write (the audit's and the demo's ``metrics.json`` schema, the α sweep,
the SynthWorld over-galleries summary, Fair Diffusion's and Safe-CLIP's results) and pairs each interval with
its point by the schema's naming: ``X_interval`` belongs to ``X`` (a number, or a per-attribute mapping), an
``interval`` to its sibling ``value`` (a rate) or ``difference`` (a paired change). An interval whose point
cannot be found fails the test too, so a new field cannot slip past it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trustvl.cli import main
from trustvl.evaluation.audit import audit
from trustvl.evaluation.fair_diffusion import OutcomeReadings, summarise
from trustvl.evaluation.results import AlphaPoint, AlphaSweepResult, AttributeEffect, ZeroShotChange
from trustvl.evaluation.synthworld import effect_vs_base, evaluate_synthworld, fairness_over_galleries
from trustvl.jobs.demo import DemoResult
from trustvl.pipelines.fair_diffusion import FairGenerationPlan
from trustvl.pipelines.fairness_instruction import FairnessInstruction
from trustvl.testing.safe_clip import tiny_quadruplet_dataset

ROOT = Path(__file__).resolve().parents[2]


def _interval_point_pairs(node, path="$"):
    """``(path, interval dict, point)`` for every interval in a JSON tree (see the module docstring)."""
    pairs = []
    if isinstance(node, list):
        for i, item in enumerate(node):
            pairs += _interval_point_pairs(item, f"{path}[{i}]")
    elif isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}"
            if key == "interval" or key.endswith("_interval"):
                if value is None:
                    continue
                if key == "interval":
                    assert "difference" in node or "value" in node, f"{where}: interval without its point"
                    point = node["difference"] if "difference" in node else node["value"]
                else:
                    name = key[: -len("_interval")]
                    assert name in node, f"{where}: interval without its point {name!r}"
                    point = node[name]
                if "low" in value:
                    pairs.append((where, value, point))
                else:  # per-attribute intervals beside per-attribute points
                    pairs += [(f"{where}.{a}", ci, point[a]) for a, ci in value.items()]
            else:
                pairs += _interval_point_pairs(value, where)
    return pairs


def _assert_every_interval_contains_its_point(data, at_least: int):
    pairs = _interval_point_pairs(json.loads(json.dumps(data)))
    assert len(pairs) >= at_least, f"only {len(pairs)} intervals found"
    outside = [(where, ci, point) for where, ci, point in pairs if not ci["low"] <= point <= ci["high"]]
    assert not outside, outside[:5]
    return pairs


def test_the_walker_fails_on_an_interval_that_excludes_its_point_or_has_none():
    bad = {"max_skew": 0.126, "max_skew_interval": {"low": 0.151, "high": 0.275, "level": 0.95}}
    with pytest.raises(AssertionError, match="max_skew_interval"):
        _assert_every_interval_contains_its_point(bad, 1)
    with pytest.raises(AssertionError, match="without its point"):
        _interval_point_pairs({"ndkl_interval": {"low": 0.0, "high": 1.0}})


def test_audit_metrics_json(tiny_clip_dir, tiny_parquet_dir, tmp_path):
    out = tmp_path / "audit"
    audit(
        str(tiny_clip_dir), str(tiny_parquet_dir), str(out), cache_dir=str(tmp_path / "cache"),
        ks=[5, 10], attributes=["skin_tone", "gender"], label_column="occupation", progress=False,
    )  # fmt: skip
    data = json.loads((out / "metrics.json").read_text())
    # 2 attributes x (NDKL + 2 cut-offs x (MaxSkew, MinSkew))
    _assert_every_interval_contains_its_point(data, 10)


@pytest.fixture(scope="module")
def synthworld_models():
    from transformers import CLIPProcessor

    from trustvl.modeling.cf_alpha import CFAlphaCLIPModel
    from trustvl.modeling.synthworld_clip import default_clip_path, load_default_clip

    base, processor = load_default_clip(device="cpu")
    cf = CFAlphaCLIPModel.from_peft(default_clip_path(), ROOT / "spaces/cf-alpha/adapter", alpha=1.0).eval()
    return base, cf, CLIPProcessor.from_pretrained(default_clip_path())


def test_demo_and_sweep_schema_on_a_small_synthworld_gallery(synthworld_models):
    base, cf, processor = synthworld_models
    evs = [evaluate_synthworld(m, processor, n_test=128, ks=(10, 50), n_recall=0) for m in (base, cf)]
    effect = {a: AttributeEffect.between(evs[0].fairness[a], evs[1].fairness[a], 50) for a in evs[0].fairness}
    demo = DemoResult("default", {}, ZeroShotChange.between(*evs), effect, {}, {}, evs[0])
    pairs = _assert_every_interval_contains_its_point(demo.to_dict(), 4 * (1 + 2 * 2) + 4 * 6)
    # the situation issue 24 is about occurs here (replicates far from the estimate): it is flagged, not hidden
    assert any(ci["bootstrap_biased"] for _, ci, _ in pairs)
    sweep = AlphaSweepResult(
        "m", "d", "test", 256, [10, 50], "skin_tone", [AlphaPoint(0.0, evs[0]), AlphaPoint(1.0, evs[1])]
    )
    _assert_every_interval_contains_its_point(sweep.to_dict(), 2 * 4 * 5)


def test_synthworld_over_galleries(synthworld_models):
    base, cf, processor = synthworld_models
    over = [fairness_over_galleries(m, processor, (0, 1), n_test=128, k=50) for m in (base, cf)]
    for result in over:
        _assert_every_interval_contains_its_point(result.to_dict(), 8)
    _assert_every_interval_contains_its_point(effect_vs_base(*over).to_dict(), 8)


def test_fair_diffusion_result():
    gender = FairnessInstruction.synthworld("gender")
    plan = FairGenerationPlan((gender,))
    prompts = ["a photo of a doctor", "a photo of a chef", "a photo of a nurse"]
    rng = np.random.default_rng(0)
    n = 16
    feminine = np.where(rng.random((3, n)) < [[0.9], [0.5], [0.2]], "feminine", "masculine")
    plain = OutcomeReadings({"gender_presentation": feminine.astype(object),
                             "occupation": np.asarray([["doctor"] * n, ["chef"] * n, ["nurse"] * n], dtype=object)},
                            None, [], 1.0)  # fmt: skip
    assigned = [plan.assign(n, prompt_index=p) for p in range(3)]
    read = np.asarray(
        [["feminine" if a["gender"] == "female person" else "masculine" for a in row] for row in assigned],
        dtype=object,
    )
    read[rng.random(read.shape) < 0.2] = "masculine"  # some disobey
    occupations = np.asarray([["doctor"] * n, ["chef"] * n, ["doctor"] * n], dtype=object)
    fair = OutcomeReadings({"gender_presentation": read, "occupation": occupations}, assigned, [], 1.0)
    result = summarise(
        plan, prompts, plain, fair, expected_occupations=["doctor", "chef", "nurse"], n_resamples=200
    )
    # per prompt 2 groups x 2 Wilson intervals; means: 3 paired metrics x (2 + change) + drop, obeyed, content 4
    _assert_every_interval_contains_its_point(result.to_dict(), 3 * 4 + 9 + 2 + 4)


def test_safe_clip_result(tiny_clip_dir, tmp_path):
    data = tiny_quadruplet_dataset(tmp_path / "quadruplets", 12, seed=1, resolution=32)
    out = tmp_path / "eval"
    code = main(
        [
            "eval", "safe-clip", "--model", str(tiny_clip_dir), "--base-model", str(tiny_clip_dir),
            "--dataset", str(data), "--out", str(out), "--n-resamples", "50", "--quiet", "--device", "cpu",
        ]
    )  # fmt: skip
    assert code == 0
    # two models x (5 directions x 3 cut-offs + NSFW + zero-shot), and the paired changes
    _assert_every_interval_contains_its_point(json.loads((out / "metrics.json").read_text()), 2 * 17 + 17)


def test_plots_draw_old_intervals_that_miss_their_point():
    # results written before intervals were centred (issue 24) may hold an interval that misses its point;
    # the plots draw that arm as 0 instead of failing on a negative error bar
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from trustvl.evaluation.plots import _yerr
    from trustvl.metrics.intervals import ConfidenceInterval

    values = [0.3, 0.5]
    intervals = [ConfidenceInterval(0.35, 0.6, 0.95), ConfidenceInterval(0.4, 0.45, 0.95)]
    arms = _yerr(values, intervals)
    assert arms == [[0.0, pytest.approx(0.1)], [pytest.approx(0.3), 0.0]]
    fig, ax = plt.subplots()
    ax.errorbar(values, [1, 2], xerr=arms)  # raises on a negative arm
    plt.close(fig)
