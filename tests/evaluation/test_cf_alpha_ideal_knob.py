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
    cleaned = embeds - bench.appearance_offsets(embeds, occupation, attributes)
    for o in range(2):
        rows = occ == o
        mean = cleaned[rows].mean(0)
        for levels in (a, b):
            for level in levels.unique():
                assert torch.allclose(cleaned[rows & (levels == level)].mean(0), mean, atol=1e-5)
    # without any own variation, every image of an occupation collapses onto the occupation's mean: the offsets
    # are exactly the additive appearance effects
    flat = embeds - own
    cleaned = flat - bench.appearance_offsets(flat, occupation, attributes)
    for o in range(2):
        rows = occ == o
        assert torch.allclose(cleaned[rows], cleaned[rows].mean(0).expand_as(cleaned[rows]), atol=1e-5)


def test_ideal_knob_writes_a_verdict_per_triple(tmp_path):
    bench = load_benchmark("cf_alpha_ideal_knob")
    out = tmp_path / "ideal.json"
    bench.main(["--triples", "1", "--n-test", "400", "--k", "100", "--alphas", "0", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    row = result["keep_power"]["1.0"]
    assert row["triples"] == 1 and row["verdicts"] == 8  # 1 step × 4 attributes × 2 metrics
    triple = row["per_triple"][0]
    assert triple["world_seeds"] == [0, 1, 2]
    assert triple["monotone"] == (not triple["worse_steps"])
    # the base (α = 0) is the default CLIP; at α = 1 the skin-tone skew of the planted world falls
    assert triple["max_skew"][1]["skin_tone"] < triple["max_skew"][0]["skin_tone"]
