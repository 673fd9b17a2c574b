"""benchmarks/bench_synthworld_web_clip.py: ``--world`` knobs reach every probe, and the ``planted`` probe draws
the train split's scenes with the mark made independent of the occupation."""

from __future__ import annotations

import argparse

import numpy as np
from conftest import load_benchmark

from trustvl.data_builders.synthworld import SynthWorldConfig, SynthWorldRenderer
from trustvl.modeling.synthworld_clip import load_default_clip


def _args(**kw):
    base = dict(
        resolution=64, world={}, world_seed=1, n_spurious=96, grid_n=2, region_view="crop", device="cpu",
        simulate_flip_rates="",
    )  # fmt: skip
    base.update(kw)
    return argparse.Namespace(**base)


def test_world_knobs_sit_between_the_preset_and_the_probe():
    bench = load_benchmark("bench_synthworld_web_clip")
    args = _args(world={"weak_cue_attire_swap_prob": 0.5, "cue_poor_prob": 0.2})
    world = bench.web_world(args, cue_poor_prob=0.0)
    assert world.weak_cue_attire_swap_prob == 0.5  # from --world
    assert world.cue_poor_prob == 0.0  # the probe's knob wins
    assert world.spurious.size == SynthWorldConfig.web().spurious.size  # the preset's, untouched
    assert bench.probe_knobs("planted") == {} and "planted" in bench.TRAIN_DISTRIBUTION_PROBES


def test_planted_probe_marks_scenes_independently_of_the_occupation():
    bench = load_benchmark("bench_synthworld_web_clip")
    model, processor = load_default_clip(device="cpu")
    args = _args()
    out = bench.spurious_watermark(model, processor, args, {}, split="train")
    assert out["split"] == "train" and out["n_images"] == 96
    # the same scenes, rendered here: the train split's appearance, the mark at p_test for every occupation
    world = SynthWorldConfig.web(unsafe=None)
    assert world.spurious.p_target == 0.85  # train-split association in the preset...
    p = world.spurious.p_test
    world.spurious.p_target = world.spurious.p_other = p
    specs = SynthWorldRenderer(world, seed=1).render_batch("train", 0, 96).specs
    marked = np.asarray([s.spurious is not None for s in specs])
    doctor = np.asarray([s.occupation == "doctor" for s in specs])
    assert 0.3 < marked[~doctor].mean() < 0.7  # ...broken in the probe (train split: 2 % of non-doctors)
    n_other = int((~doctor).sum())
    assert out["non_target_classified_as_target_with_mark"]["n"] == int((marked & ~doctor).sum())
    assert (
        out["non_target_classified_as_target_with_mark"]["n"]
        + out["non_target_classified_as_target_without_mark"]["n"]
        == n_other
    )
