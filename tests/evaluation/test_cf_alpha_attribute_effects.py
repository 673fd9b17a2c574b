"""benchmarks/cf_alpha_attribute_effects.py recovers planted attribute effects from scores (issue 26's
diagnosis of the α = 0.25 overshoot rests on these numbers)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def effects():
    return load_benchmark("cf_alpha_attribute_effects")


def test_gallery_fit_recovers_additive_effects_and_residual(effects):
    rng = np.random.default_rng(0)
    n = 4000
    attrs = {"skin": rng.integers(0, 4, n), "gender": rng.integers(0, 2, n)}
    skin_levels = np.array([0.0, 0.05, 0.02, -0.01])
    scores = 0.3 + skin_levels[attrs["skin"]] + 0.004 * attrs["gender"] + 0.01 * rng.standard_normal(n)
    spread, resid = effects.effect_spreads(scores, attrs)
    assert spread["skin"] == pytest.approx(0.06, abs=0.002)
    assert spread["gender"] == pytest.approx(0.004, abs=0.001)
    assert resid == pytest.approx(0.01, rel=0.05)


def test_paired_effects_cancel_the_scene(effects):
    # 50 sets of 4 variants; each scene has its own large offset, the variants differ by age only
    sets = np.repeat(np.arange(50), 4)
    age = np.tile([0, 1, 0, 1], 50)
    scene = np.repeat(np.random.default_rng(1).normal(0, 1.0, 50), 4)
    spread = effects.paired_spreads(
        scene + 0.003 * age, sets, {"age": age, "other": np.tile([0, 0, 1, 1], 50)}
    )
    assert spread["age"] == pytest.approx(0.003, abs=1e-9)
    assert spread["other"] == pytest.approx(0.0, abs=1e-9)


def test_max_skew_ignores_empty_levels(effects):
    assert effects.max_skew(np.array([0] * 75 + [1] * 25), 2) == pytest.approx(np.log(1.5))
    assert effects.max_skew(np.array([1] * 10), 4) == pytest.approx(np.log(4))


def test_proxy_recipe_is_the_demo_recipe_with_the_benchmarks_overrides(effects, tmp_path):
    from trustvl.jobs.demo import demo_cf_alpha_recipe

    cfg = effects.proxy_recipe({"alpha_path_power": 2.0, "max_steps": 240}, "cf", str(tmp_path), seed=1)
    demo = demo_cf_alpha_recipe()
    assert cfg.alpha_path_power == 2.0 and cfg.max_steps == 240 and cfg.seed == 1
    assert cfg.learning_rate == demo.learning_rate and cfg.lora_target_modules == demo.lora_target_modules
    assert cfg.dataset == "cf" and cfg.output_dir == str(tmp_path)


def test_paired_level_effects_are_signed_and_centred(effects):
    sets = np.repeat(np.arange(40), 4)
    body = np.tile([0, 1, 0, 1], 40)
    scene = np.repeat(np.random.default_rng(2).normal(0, 1.0, 40), 4)
    eff = effects.paired_level_effects(scene + 0.002 * body, sets, {"body": body})
    np.testing.assert_allclose(eff["body"], [-0.001, 0.001], atol=1e-12)


def test_top_k_without_the_paired_effects_loses_their_skew(effects):
    """An occupation whose scores favour one body type by a mean shift: its top k is skewed; minus that
    shift (what the build's paired effects measure) the skew falls to what a shift-free ranking gives."""
    from types import SimpleNamespace

    import torch

    rng = np.random.default_rng(3)
    n = 2000
    occupation = np.repeat([0, 1], n // 2)
    body = np.tile([0, 1], n // 2)
    skin = rng.integers(0, 4, n)
    noise = rng.standard_normal(n)
    scores = np.stack([(occupation == 0) * 1.0, (occupation == 1) * 1.0], 1) + 0.01 * noise[:, None]
    scores += 0.006 * body[:, None]  # broad scores higher for every occupation: 0.6 within-occupation sd
    ts = SimpleNamespace(
        occupation=occupation,
        occupations=("a", "b"),
        attributes={"body": body, "skin": skin},
        attribute_levels={"body": ("slim", "broad"), "skin": ("1", "2", "3", "4")},
    )
    img, text = torch.tensor(scores), torch.eye(2, dtype=torch.float64)
    shift = {q: {"body": np.array([-0.003, 0.003]), "skin": np.zeros(4)} for q in (0, 1)}
    out = effects.gallery_effects(img, text, ts, "skin", 100, shift)
    assert out["max_skew_body"] > 0.4  # the shifted level fills most of the top 100
    assert out["max_skew_minus_paired_body"] < 0.2
    assert "max_skew_minus_paired_skin" not in out  # the planted attribute keeps its effect
    assert "max_skew_minus_paired_body" not in effects.gallery_effects(img, text, ts, "skin", 100)
