"""The scoring of benchmarks/bench_trust_report_spurious_digits.py: the trust report's spurious axis against
the planted rectangle of a real spurious-digits split (a hand-built report whose answer is known), and one
tiny setting end to end (build, fine-tune, report, run_discovery; resumed from its file)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import load_benchmark

from trustvl.data_builders.ravl.regions import Region, grid_regions
from trustvl.data_builders.ravl.spurious_digits import build_spurious_digits
from trustvl.evaluation.results import Estimate
from trustvl.evaluation.trust_report.schema import ClassGap, ClusterFinding, SpuriousAxis


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_trust_report_spurious_digits")


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from datasets import load_dataset

    folder = build_spurious_digits(
        tmp_path_factory.mktemp("digits") / "d",
        cramers_v=0.9,
        spurious_class=3,
        classes=[1, 3, 7],
        n_train=24,
        n_test=24,
        seed=0,
        progress=False,
    )
    return load_dataset(str(folder), split="test")


def _finding(rank, regions, member, hurt):
    return ClusterFinding(
        rank=rank,
        cluster_id=rank,
        score=Estimate(0.0),
        influence=1.0,
        size=len(regions),
        n_images_in=int(member.sum()),
        classes_hurt=[ClassGap(c, Estimate(-0.1)) for c in hurt],
        member_images=member,
        region_indices=np.asarray(regions),
    )


def test_precision_at_10_and_shares_read_the_real_rectangle(bench, split):
    """Cluster 1: the rectangle's quadrant of 2 rectangle images per class and the digit's quadrant of one
    image without the rectangle (6 of 7 hold it); cluster 2: one more rectangle region, then the digit's
    quadrant of 4 images. The top 10 are cluster 1 and the first 3 of cluster 2: 7 hold the rectangle."""
    labels = np.asarray(split["label"])
    rect_q = np.asarray(split["rectangle_quadrant"])
    digit_q = np.asarray(split["digit_quadrant"])
    n = len(labels)
    regions = [Region(i, box) for i in range(n) for box in grid_regions(64, 2)]
    with_rect = {c: [i for i in range(n) if labels[i] == c and rect_q[i] >= 0] for c in range(3)}
    without = [i for i in range(n) if labels[i] == 0 and rect_q[i] < 0]
    first_images = [i for c in range(3) for i in with_rect[c][:2]]
    first = [4 * i + rect_q[i] for i in first_images] + [4 * without[0] + digit_q[without[0]]]
    others = [with_rect[1][2], with_rect[2][2], without[1], without[2]]  # their digit's quadrant
    second = [4 * with_rect[0][2] + rect_q[with_rect[0][2]]] + [4 * i + digit_q[i] for i in others]
    member = np.zeros(n, dtype=bool)
    member[first_images + [without[0]]] = True
    spurious = 1  # "three": right exactly when its image is in the cluster, the other classes the reverse
    correct = np.where(labels == spurious, member, ~member).astype(np.float64)
    axis = SpuriousAxis(
        dataset="d",
        label_column="label",
        n_images=n,
        n_regions=len(regions),
        n_clusters=4,
        image_accuracy=Estimate(float(correct.mean())),
        message="",
        clusters=[
            _finding(1, first, member, ["one", "seven"]),
            _finding(2, second, np.isin(np.arange(n), others + [with_rect[0][2]]), []),
        ],
        labels=labels,
        correct=correct,
        regions=regions,
    )
    names = split.features["label"].names
    assert names == ["one", "three", "seven"]
    scored = bench.score_spurious_axis(axis, split["rectangle_box"], names, "three", None)
    assert scored["precision_at_10"] == pytest.approx(0.7)
    assert scored["cluster_rectangle_shares"] == [round(6 / 7, 4), 0.2]
    fc = scored["first_cluster"]
    assert fc["rectangle_share"] == pytest.approx(6 / 7)
    assert [g["class"] for g in fc["classes_hurt"]] == ["one", "seven"] and not fc["spurious_class_hurt"]
    # "three": 2 of its 8 images in the cluster, all right, the 6 others all wrong: RaVL's gap is the
    # weight 2 * min(2, 6) / 8 times the accuracy difference 1 - 0
    assert fc["spurious_class_gap"] == {"value": 0.5, "low": None, "high": None}

    # fewer than 10 ranked regions: the missing ones count as misses
    axis.clusters = axis.clusters[:1]
    assert bench.score_spurious_axis(axis, split["rectangle_box"], names, "three", None)[
        "precision_at_10"
    ] == pytest.approx(0.6)
    axis.clusters = []
    empty = bench.score_spurious_axis(axis, split["rectangle_box"], names, "three", None)
    assert empty["precision_at_10"] == 0.0 and empty["first_cluster"] is None


@pytest.mark.slow
def test_one_tiny_setting_end_to_end_and_resumed(bench, tmp_path, one_torch_thread):
    runs, out = tmp_path / "runs", tmp_path / "summary.json"
    argv = ["--quick", "--no-audit-template-too", "--runs-dir", str(runs), "--out", str(out)]
    assert bench.main(argv) == 0
    row = json.loads((runs / "v0.95_s3.json").read_text())
    report = row["trust_report"]["digit_template"]
    assert set(row["trust_report"]) == {"digit_template"}
    assert report["n_images"] == 48 and report["n_regions"] == 4 * 48
    assert 0.0 <= report["precision_at_10"] <= 1.0 and row["spurious_class_name"] == "three"
    # the report's discovery and run_discovery run the same RaVL on the same model, split, regions and seed
    assert row["agreement"]["same_k"] and row["agreement"]["same_precision_at_10"]
    assert report["precision_at_10"] == row["run_discovery"]["precision_at_10"]
    summary = json.loads(out.read_text())["summary"]
    assert summary["n_settings"] == 1 and summary["digit_template"]["of"] == 1
    before = (runs / "v0.95_s3.json").stat().st_mtime_ns
    assert bench.main(argv) == 0  # resumed: the finished setting is not recomputed
    assert (runs / "v0.95_s3.json").stat().st_mtime_ns == before
