"""benchmarks/cf_alpha_ideal_knob.py: the ideal knob removes each occupation's mean appearance effects exactly,
in proportion to α, and is judged with the benchmark's own step verdicts."""

from __future__ import annotations

import itertools
import json

import numpy as np
import torch
from conftest import load_benchmark


def _balanced(n_per_cell: int = 3):
    """Two occupations × a 3-level and a 2-level attribute, fully crossed (like SynthWorld's test split)."""
    cells = list(itertools.product(range(2), range(3), range(2))) * n_per_cell
    occupation = np.array([c[0] for c in cells])
    attributes = {"a": np.array([c[1] for c in cells]), "b": np.array([c[2] for c in cells])}
    return occupation, attributes


def test_offsets_remove_every_level_mean_and_keep_the_rest():
    bench = load_benchmark("cf_alpha_ideal_knob")
    occupation, attributes = _balanced()
    g = torch.Generator().manual_seed(0)
    n = len(occupation)
    own = 0.1 * torch.randn(n, 4, generator=g)  # each image's own variation
    effect_a = torch.randn(2, 3, 4, generator=g)  # per occupation and level
    effect_b = torch.randn(2, 2, 4, generator=g)
    occ, a, b = (torch.as_tensor(x) for x in (occupation, attributes["a"], attributes["b"]))
    embeds = 5.0 * torch.nn.functional.one_hot(occ, 4).float() + effect_a[occ, a] + effect_b[occ, b] + own
    cleaned = embeds - sum(bench.appearance_offsets(embeds, occupation, attributes).values())
    for o in range(2):
        rows = occ == o
        mean = cleaned[rows].mean(0)
        for levels in (a, b):
            for level in levels.unique():
                assert torch.allclose(cleaned[rows & (levels == level)].mean(0), mean, atol=1e-5)
    # without any own variation, every image of an occupation collapses onto the occupation's mean: the offsets
    # are exactly the additive appearance effects
    flat = embeds - own
    cleaned = flat - sum(bench.appearance_offsets(flat, occupation, attributes).values())
    for o in range(2):
        rows = occ == o
        assert torch.allclose(cleaned[rows], cleaned[rows].mean(0).expand_as(cleaned[rows]), atol=1e-5)


def test_paths_remove_the_stated_share_of_each_attribute():
    bench = load_benchmark("cf_alpha_ideal_knob")
    alphas, attrs = [0.0, 0.25, 0.5, 1.0], ["skin_tone", "age"]
    linear = bench.path_shares("linear:2", alphas, attrs, "skin_tone")
    assert [s["age"] for s in linear] == [0.0, 1 - 0.75**2, 0.75, 1.0]
    assert linear[1]["skin_tone"] == linear[1]["age"]
    first = bench.path_shares("others_first", alphas, attrs, "skin_tone")
    assert [s["age"] for s in first] == [0.0, 1.0, 1.0, 1.0]  # whole at the first α > 0
    assert [s["skin_tone"] for s in first] == alphas


def test_ideal_knob_writes_a_verdict_per_triple(tmp_path):
    bench = load_benchmark("cf_alpha_ideal_knob")
    out = tmp_path / "ideal.json"
    bench.main(
        ["--triples", "1", "--n-test", "400", "--k", "100", "--alphas", "0", "1", "--others-first"]
        + ["--out", str(out)]
    )
    result = json.loads(out.read_text())
    assert set(result["paths"]) == {"linear:1", "others_first"}
    assert all(r >= 1.0 for r in result["spread_ratio_by_chance"].values())
    row = result["paths"]["linear:1"]
    assert row["triples"] == 1 and row["verdicts"] == 8  # 1 step × 4 attributes × 2 metrics
    triple = row["per_triple"][0]
    assert triple["world_seeds"] == [0, 1, 2]
    assert triple["monotone"] == (not triple["worse_steps"])
    # the base (α = 0) is the default CLIP; at α = 1 the skin-tone skew of the planted world falls
    assert triple["max_skew"][1]["skin_tone"] < triple["max_skew"][0]["skin_tone"]


def test_joint_offsets_remove_the_interactions_too():
    bench = load_benchmark("cf_alpha_ideal_knob")
    occupation, attributes = _balanced()
    occ, a, b = (torch.as_tensor(x) for x in (occupation, attributes["a"], attributes["b"]))
    # a pure interaction: a's effect flips sign with b; no main effect of either
    embeds = torch.nn.functional.one_hot(occ, 4).float() + ((a - 1) * (2 * b - 1)).float()[:, None]
    main = embeds - sum(bench.appearance_offsets(embeds, occupation, attributes).values())
    parts = bench.joint_offsets(embeds, occupation, attributes, "a")
    assert set(parts) == {"a", "rest"} and torch.allclose(parts["a"], torch.zeros_like(embeds), atol=1e-6)
    joint = embeds - sum(parts.values())
    assert torch.allclose(main, embeds, atol=1e-6)  # main effects are zero: nothing removed
    for o in range(2):
        rows = occ == o
        assert torch.allclose(joint[rows], joint[rows].mean(0).expand_as(joint[rows]), atol=1e-6)


def test_spread_ratio_is_one_for_equal_spreads_and_sees_a_wider_level():
    bench = load_benchmark("cf_alpha_ideal_knob")
    occupation, attributes = _balanced(n_per_cell=40)
    g = torch.Generator().manual_seed(0)
    base = torch.randn(len(occupation), generator=g)
    scale = torch.where(torch.as_tensor(attributes["b"]) == 1, 2.0, 1.0)
    scores = torch.stack([base, base], 1)  # each occupation's own prompt is its column
    equal = bench.spread_ratios(scores, occupation, {"b": attributes["b"]})["b"]
    wide = bench.spread_ratios(scores * scale[:, None], occupation, {"b": attributes["b"]})["b"]
    assert equal < 1.25 and wide > 1.6
    chance = bench.chance_spread_ratios(occupation, {"b": attributes["b"]}, n_occupations=2, draws=20)["b"]
    assert 1.0 < chance < 1.25
