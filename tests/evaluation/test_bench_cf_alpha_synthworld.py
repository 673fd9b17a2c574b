"""benchmarks/bench_cf_alpha_synthworld.py builds a valid demo configuration for both recipes (issue 26's
benchmark; it once passed fields the demo no longer had and nothing noticed until a GPU call)."""

from __future__ import annotations

import pytest
from conftest import load_benchmark

from trustvl.jobs.demo import DemoConfig, demo_cf_alpha_recipe
from trustvl.training.cf_alpha import VISION_LORA_TARGETS


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_cf_alpha_synthworld")


def test_default_is_the_demo_recipe_at_benchmark_size(bench, tmp_path):
    cfg = bench.demo_config(bench.parse_args(["--out", str(tmp_path), "--seed", "2"]))
    assert isinstance(cfg, DemoConfig)
    assert cfg.n_test == 4000 and cfg.seed == 2 and cfg.alphas == [0.0, 0.25, 0.5, 0.75, 1.0]
    demo = demo_cf_alpha_recipe()
    assert cfg.cf_alpha.max_steps == demo.max_steps and cfg.cf_alpha.learning_rate == demo.learning_rate
    assert cfg.cf_alpha.lora_target_modules == demo.lora_target_modules
    assert cfg.n_base_per_occupation == DemoConfig().n_base_per_occupation  # the demo's set sizes


def test_benchmark_recipe_and_sizes(bench, tmp_path):
    args = bench.parse_args(
        [
            "--out",
            str(tmp_path),
            "--recipe",
            "benchmark",
            "--n-base-per-occupation",
            "100",
            "--variants-per-base",
            "8",
        ]
    )
    cfg = bench.demo_config(args)
    assert cfg.cf_alpha.max_steps == 800 and cfg.cf_alpha.per_device_train_batch_size == 32
    assert cfg.cf_alpha.lora_target_modules == VISION_LORA_TARGETS
    assert cfg.cf_alpha.variants_per_set == 8 and cfg.cf_alpha.beta_score == 20.0
    assert cfg.n_base_per_occupation == 100 and cfg.variants_per_base == 8
    quick = bench.demo_config(bench.parse_args(["--out", str(tmp_path), "--quick"]))
    assert quick.n_test == 256 and quick.cf_alpha.max_steps == 3 and quick.n_base_per_occupation == 2


def test_demo_recipe_takes_cf_alpha_overrides(bench, tmp_path):
    d6 = '{"alpha_range": [0.0, 1.0], "alpha_endpoint_prob": 0.75, "beta_score": 60.0, "max_steps": 240}'
    cfg = bench.demo_config(bench.parse_args(["--out", str(tmp_path), "--cf-alpha", d6]))
    demo = demo_cf_alpha_recipe()
    assert cfg.cf_alpha.max_steps == 240 and cfg.cf_alpha.beta_score == 60.0
    assert list(cfg.cf_alpha.alpha_range) == [0.0, 1.0] and cfg.cf_alpha.alpha_endpoint_prob == 0.75
    assert cfg.cf_alpha.learning_rate == demo.learning_rate  # everything else is the demo's
    assert demo.max_steps != 240  # the demo's own recipe is untouched
    with pytest.raises(TypeError, match="no_such_field"):
        bench.demo_config(bench.parse_args(["--out", str(tmp_path), "--cf-alpha", '{"no_such_field": 1}']))


def test_attribute_effect_recipe_reaches_the_cf_alpha_config(bench, tmp_path):
    """The --cf-alpha JSON of issue 26's L_effect candidates (cfknob_gpu.md) sets the new loss fields."""
    recipe = (
        '{"beta_effect": 10.0, "effect_attributes": ["skin_tone", "gender_presentation", "age", "body_type"],'
        ' "alpha_range": [0.0, 1.0], "alpha_endpoint_prob": 0.75, "beta_score": 60.0, "beta_clip": 2.0,'
        ' "max_steps": 240}'
    )
    cfg = bench.demo_config(bench.parse_args(["--out", str(tmp_path), "--cf-alpha", recipe]))
    assert cfg.cf_alpha.beta_effect == 10.0 and cfg.cf_alpha.alpha_range == [0.0, 1.0]
    assert cfg.cf_alpha.effect_attributes == ["skin_tone", "gender_presentation", "age", "body_type"]
    assert cfg.summary()["cf_alpha"]["beta_effect"] == 10.0
