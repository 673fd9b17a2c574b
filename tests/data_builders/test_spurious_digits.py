"""Spurious-digits builder (RaVL evaluation world, SPEC §3)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from trustvl.data_builders.ravl.spurious_digits import (
    _split_plan,
    build_spurious_digits,
    cramers_v_2x2,
    rectangle_region_truth,
    target_cell_proportions,
)
from trustvl.errors import TrustVLInputError


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    return build_spurious_digits(
        tmp_path_factory.mktemp("sd") / "spurious-digits",
        cramers_v=0.9,
        n_train=500,
        n_test=200,
        seed=1,
        progress=False,
    )


@pytest.fixture(scope="module")
def digits(digits_dir):
    from datasets import load_dataset

    return load_dataset(str(digits_dir))


@pytest.mark.parametrize("v", [0.7, 0.8, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("n", [300, 1000])
def test_train_cramers_v_hits_target(v, n):
    rng = np.random.default_rng(0)
    cls, rect = _split_plan(rng, "train", n, list(range(10)), 7, v, None)
    assert abs(cramers_v_2x2(rect, cls == 7) - v) <= 0.02
    assert np.bincount(cls).tolist() == [n // 10] * 10  # classes stay balanced


@pytest.mark.parametrize("v", [0.0, 0.3, 0.7, 0.99, 1.0])
@pytest.mark.parametrize("ps", [0.1, 0.5, 0.25])
def test_cell_proportions_are_analytic(v, ps):
    p = target_cell_proportions(v, ps)
    assert min(p["p11"], p["p10"], p["p01"], p["p00"]) >= -1e-12
    assert p["p11"] + p["p10"] + p["p01"] + p["p00"] == pytest.approx(1.0)
    pr = p["p_rect"]
    phi = (p["p11"] - pr * ps) / math.sqrt(pr * (1 - pr) * ps * (1 - ps))
    assert phi == pytest.approx(v, abs=1e-9)
    assert pr <= 0.5 + 1e-12
    if ps == 0.5:
        assert pr == 0.5  # two balanced classes: the SPEC's rate 0.5 is always feasible


def test_infeasible_and_bad_arguments(tmp_path):
    with pytest.raises(TrustVLInputError, match="p_rect=0.5"):
        target_cell_proportions(0.9, 0.1, p_rect=0.5)  # V=0.9 is impossible with 10 classes at rate 0.5
    with pytest.raises(TrustVLInputError, match="cramers_v=1.5"):
        build_spurious_digits(tmp_path / "a", cramers_v=1.5)
    with pytest.raises(TrustVLInputError, match="spurious_class=3"):
        build_spurious_digits(tmp_path / "b", spurious_class=3, classes=[0, 1])
    with pytest.raises(TrustVLInputError, match="image_size"):
        build_spurious_digits(tmp_path / "c", image_size=33)
    with pytest.raises(TrustVLInputError, match="n_train"):
        build_spurious_digits(tmp_path / "d", n_train=5)


def test_round_trip_and_train_association(digits, digits_dir):
    train, test = digits["train"], digits["test"]
    assert len(train) == 500 and len(test) == 200
    assert train.features["label"].names[7] == "seven"
    row = train[0]
    assert row["image"].size == (64, 64) and row["image"].mode == "RGB"
    assert row["caption"] == f"a photo of the digit {train.features['label'].names[row['label']]}"
    assert row["digit"] == row["label"]
    v = cramers_v_2x2(train["has_rectangle"], np.asarray(train["label"]) == 7)
    assert abs(v - 0.9) <= 0.02
    info = json.loads((digits_dir / "build_info.json").read_text())
    assert info["splits"]["train"]["cramers_v"] == pytest.approx(v)
    assert "configs:" in (digits_dir / "README.md").read_text()


def test_test_split_is_balanced(digits):
    test = digits["test"]
    labels = np.asarray(test["label"])
    rect = np.asarray(test["has_rectangle"])
    assert np.bincount(labels).tolist() == [20] * 10
    assert rect.mean() == 0.5
    for c in range(10):
        assert rect[labels == c].sum() == 10
    assert cramers_v_2x2(rect, labels == 7) == pytest.approx(0.0, abs=1e-9)


def test_rectangle_pixels_and_ground_truth(digits):
    ds = digits["train"].select(range(200))
    n_checked = 0
    for row in ds:
        img = np.asarray(row["image"])
        red = (img[..., 0] == 255) & (img[..., 1] == 0) & (img[..., 2] == 0)
        if row["has_rectangle"]:
            left, top, right, bottom = row["rectangle_box"]
            assert red[top:bottom, left:right].all() and red.sum() == (right - left) * (bottom - top)
            q = row["rectangle_quadrant"]
            assert q != row["digit_quadrant"]
            r, c = divmod(q, 2)
            assert 32 * c <= left < right <= 32 * (c + 1) and 32 * r <= top < bottom <= 32 * (r + 1)
            n_checked += 1
        else:
            assert (
                not red.any() and row["rectangle_quadrant"] == -1 and list(row["rectangle_box"]) == [-1] * 4
            )
        # the digit is in its quadrant, nothing bright elsewhere except the rectangle
        r, c = divmod(row["digit_quadrant"], 2)
        assert img[32 * r : 32 * (r + 1), 32 * c : 32 * (c + 1)].max() > 100
        grey = img.max(axis=2) * ~red
        grey[32 * r : 32 * (r + 1), 32 * c : 32 * (c + 1)] = 0
        assert grey.max() == 0
    assert n_checked > 10
    truth = rectangle_region_truth(ds).reshape(-1, 4)
    q = np.asarray(ds["rectangle_quadrant"])
    expected = np.zeros_like(truth)
    expected[np.flatnonzero(q >= 0), q[q >= 0]] = True
    np.testing.assert_array_equal(truth, expected)


def test_two_class_subset_keeps_rate_one_half(tmp_path):
    from datasets import load_dataset

    path = build_spurious_digits(
        tmp_path / "two", cramers_v=0.8, classes=[1, 7], n_train=200, n_test=40, image_size=32, progress=False
    )
    train = load_dataset(str(path))["train"]
    assert train.features["label"].names == ["one", "seven"]
    rect = np.asarray(train["has_rectangle"])
    assert rect.mean() == 0.5
    assert abs(cramers_v_2x2(rect, np.asarray(train["digit"]) == 7) - 0.8) <= 0.02
    assert train[0]["image"].size == (32, 32)
    with pytest.raises(TrustVLInputError, match="not empty"):
        build_spurious_digits(tmp_path / "two", classes=[1, 7], n_train=200, n_test=40, progress=False)
