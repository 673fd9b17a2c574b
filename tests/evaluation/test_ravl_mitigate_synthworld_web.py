"""benchmarks/ravl_mitigate_synthworld_web.py: its watermark truth and paired interval by hand, and the whole
recipe at toy size (render, discovery, RaVL and its standard fine-tuning control, grading) in seconds."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import load_benchmark
from safetensors.numpy import load_file


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("ravl_mitigate_synthworld_web")


def test_mark_cells_name_the_cell_holding_the_watermark_centre(bench):
    # a 19-px mark in the bottom-right corner of a 64-px image (the web preset), one straddling the middle
    # whose centre lies in the top-left cell, and an image without a mark
    boxes = [(45, 45, 64, 64), (20, 20, 40, 40), None]
    cells = bench._mark_cells(boxes, 64, 2)
    assert cells.tolist() == [
        [False, False, False, True],
        [True, False, False, False],  # centre (30, 30): the top-left cell, although the mark spans all four
        [False, False, False, False],
    ]


def test_paired_difference_is_the_mean_change_with_a_bootstrap_interval(bench):
    a = np.array([1, 1, 1, 1, 0, 0, 0, 0] * 10, dtype=bool)
    b = np.array([0, 1, 1, 1, 0, 0, 0, 0] * 10, dtype=bool)  # one in eight flips 1 -> 0
    d = bench._paired_difference(a, b)
    assert d["difference"] == pytest.approx(-0.125)
    low, high = d["interval"]
    assert low < -0.125 < high < 0  # the change is negative beyond noise on 80 paired items
    same = bench._paired_difference(a, a)
    assert same == {"difference": 0.0, "interval": [0.0, 0.0]}


def test_recipe_end_to_end_at_toy_size(bench, tmp_path, monkeypatch):
    out = tmp_path / "run"
    argv = ["x", "--out-dir", str(out), "--n-train", "48", "--n-discovery", "96", "--n-eval", "32"]
    argv += ["--steps", "2", "--batch-size", "8", "--results", str(tmp_path / "r.json")]
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    r = json.loads((tmp_path / "r.json").read_text())
    # top1 acts on discovery's first cluster, and the grading recomputes the flags train_ravl used
    assert r["flags"]["acted_on_clusters"] == [r["discovery"]["first_cluster"]["id"]]
    assert r["flags"]["flagged_regions"] == pytest.approx(
        r["ravl_train"]["spurious_region_fraction"] * 48 * 4
    )
    # the control is L_CLIP alone; the mitigated model ran the region terms unless nothing was flagged
    summary = json.loads((out / "standard_ft" / "train_summary.json").read_text())
    assert summary["method"] == "standard_finetuning" and summary["global_step"] == 2
    ravl_w = load_file(str(out / "ravl" / "model" / "model.safetensors"))
    ctrl_w = load_file(str(out / "standard_ft" / "model" / "model.safetensors"))
    same = all(np.array_equal(ravl_w[k], ctrl_w[k]) for k in ravl_w)
    assert same == (r["flags"]["flagged_regions"] == 0)
    use = r["mark_use"]
    assert set(use) >= {"default", "standard_ft", "ravl"} and use["n_images"] == 32
    for name in ("default", "standard_ft", "ravl"):
        row = use[name]["non_target_called_target_with_mark"]
        assert row["n"] + use[name]["non_target_called_target_without_mark"]["n"] <= 32
        assert row["interval"][0] <= row["rate"] <= row["interval"][1]
