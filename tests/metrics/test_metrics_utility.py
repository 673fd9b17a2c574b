"""Tests of trustvl.metrics.utility: Recall@K, zero-shot accuracy, per-group and worst-group accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trustvl.errors import TrustVLInputError
from trustvl.metrics import (
    per_group_accuracy,
    recall_at_k,
    retrieval_ranks,
    top1_correct,
    worst_group_accuracy,
    zero_shot_accuracy,
)
from trustvl.metrics import utility as U

# 3 captions x 3 images, caption i <-> image i
SQUARE = [
    [0.9, 0.1, 0.3],  # caption 0: image 0 is first                 -> rank 0
    [0.8, 0.7, 0.2],  # caption 1: image 0 (0.8) beats image 1 (0.7)  -> rank 1
    [0.5, 0.5, 0.5],  # caption 2: all tied, images 0, 1 come first  -> rank 2
]


def test_recall_text_to_image_hand_example():
    assert retrieval_ranks(SQUARE).tolist() == [0, 1, 2]
    assert recall_at_k(SQUARE, 1) == pytest.approx(1 / 3)
    assert recall_at_k(SQUARE, [1, 2, 3]) == pytest.approx({1: 1 / 3, 2: 2 / 3, 3: 1.0})


def test_recall_image_to_text_hand_example():
    # columns: image 0 [0.9, 0.8, 0.5] -> caption 0 first; image 1 [0.1, 0.7, 0.5] -> caption 1 first;
    # image 2 [0.3, 0.2, 0.5] -> caption 2 first
    assert retrieval_ranks(SQUARE, "image_to_text").tolist() == [0, 0, 0]
    assert recall_at_k(SQUARE, 1, direction="image_to_text") == 1.0


def test_recall_several_captions_per_image_hand_example():
    # 4 captions, 2 images; captions 0, 1 describe image 0 and captions 2, 3 image 1
    sim = torch.tensor([[0.2, 0.8], [0.9, 0.1], [0.3, 0.4], [0.6, 0.5]])
    index = [0, 0, 1, 1]
    # text->image ranks: caption 0 -> 1, caption 1 -> 0, caption 2 -> 0, caption 3 -> 1
    assert retrieval_ranks(sim, "text_to_image", index).tolist() == [1, 0, 0, 1]
    assert recall_at_k(sim, 1, "text_to_image", index) == 0.5
    # image->text: image 0's column [0.2, 0.9, 0.3, 0.6]: caption 1 is first -> rank 0 (hit@1)
    # image 1's column [0.8, 0.1, 0.4, 0.5]: caption 3 (0.5) is behind caption 0 -> best rank 1
    assert retrieval_ranks(sim, "image_to_text", index).tolist() == [0, 1]
    assert recall_at_k(sim, [1, 2], "image_to_text", index) == {1: 0.5, 2: 1.0}


def _ref_ranks(sim: np.ndarray, index: np.ndarray, direction: str) -> list[int]:
    n_texts, n_images = sim.shape
    if direction == "text_to_image":
        out = []
        for t in range(n_texts):
            order = sorted(range(n_images), key=lambda j: (-sim[t, j], j))
            out.append(order.index(index[t]))
        return out
    out = []
    for j in range(n_images):
        order = sorted(range(n_texts), key=lambda t: (-sim[t, j], t))
        out.append(min(order.index(t) for t in range(n_texts) if index[t] == j))
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_retrieval_ranks_match_sorting_reference(n_images, captions_per_image, seed):
    rng = np.random.default_rng(seed)
    index = np.repeat(np.arange(n_images), captions_per_image)
    rng.shuffle(index)
    sim = rng.integers(0, 4, size=(index.size, n_images)).astype(np.float32)  # many ties
    for direction in ("text_to_image", "image_to_text"):
        assert retrieval_ranks(sim, direction, index).tolist() == _ref_ranks(sim, index, direction)


def test_retrieval_ranks_chunked(monkeypatch):
    monkeypatch.setattr(U, "_CHUNK_ELEMENTS", 8)
    rng = np.random.default_rng(0)
    index = np.repeat(np.arange(6), 2)
    sim = rng.integers(0, 3, size=(12, 6)).astype(np.float64)
    for direction in ("text_to_image", "image_to_text"):
        assert retrieval_ranks(sim, direction, index).tolist() == _ref_ranks(sim, index, direction)


def test_zero_shot_accuracy_hand_example():
    scores = [[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]]  # predictions 1, 0, 0 (tie -> first class)
    assert top1_correct(scores, [1, 1, 0]).tolist() == [True, False, True]
    assert zero_shot_accuracy(scores, [1, 1, 0]) == pytest.approx(2 / 3)


def test_per_group_and_worst_group_hand_example():
    correct = [True, False, True, True, False]
    labels = [0, 0, 1, 1, 1]
    attr = [0, 1, 0, 0, 0]
    # groups (class, attr): (0,0): [T] -> 1.0; (0,1): [F] -> 0.0; (1,0): [T, T, F] -> 2/3
    groups = per_group_accuracy(correct, labels, attr)
    assert groups == pytest.approx({(0, 0): 1.0, (0, 1): 0.0, (1, 0): 2 / 3})
    assert list(groups) == [(0, 0), (0, 1), (1, 0)]
    assert worst_group_accuracy(correct, labels, attr) == 0.0
    # class only, and two attributes
    assert per_group_accuracy(correct, labels) == pytest.approx({(0,): 0.5, (1,): 2 / 3})
    two = per_group_accuracy(np.array(correct, dtype=np.int64), labels, attr, [1, 1, 1, 2, 2])
    assert two == pytest.approx({(0, 0, 1): 1.0, (0, 1, 1): 0.0, (1, 0, 1): 1.0, (1, 0, 2): 0.5})
    assert worst_group_accuracy(correct, labels) == 0.5


# ---------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------
def test_bad_recall_non_square_without_index():
    with pytest.raises(
        TrustVLInputError, match=r"similarity has shape \(2, 3\) and text_to_image_index is None"
    ):
        recall_at_k(torch.rand(2, 3), 1)


def test_bad_recall_k_too_large():
    with pytest.raises(TrustVLInputError, match=r"k = 4 exceeds the number of images \(3\)"):
        recall_at_k(SQUARE, 4)


def test_bad_recall_k_zero():
    with pytest.raises(TrustVLInputError, match=r"k = 0 must be positive"):
        recall_at_k(SQUARE, [1, 0])


def test_bad_recall_direction():
    with pytest.raises(TrustVLInputError, match=r"direction = 'both'"):
        recall_at_k(SQUARE, 1, direction="both")


def test_bad_recall_image_without_caption():
    with pytest.raises(TrustVLInputError, match=r"image 1 has no caption"):
        recall_at_k(torch.rand(2, 2), 1, "image_to_text", [0, 0])


def test_bad_recall_index_out_of_range():
    with pytest.raises(TrustVLInputError, match=r"text_to_image_index\[1\] = 5 is out of range"):
        recall_at_k(torch.rand(2, 2), 1, "text_to_image", [0, 5])


def test_bad_recall_index_length():
    with pytest.raises(TrustVLInputError, match=r"text_to_image_index has 3 entries; expected 2"):
        recall_at_k(torch.rand(2, 2), 1, "text_to_image", [0, 1, 1])


def test_bad_recall_non_finite_similarity():
    with pytest.raises(TrustVLInputError, match=r"similarity\[0, 1\] = inf is not finite"):
        recall_at_k([[0.1, float("inf")], [0.2, 0.3]], 1)


def test_bad_recall_empty():
    with pytest.raises(TrustVLInputError, match=r"similarity is empty"):
        recall_at_k(torch.zeros(0, 3), 1, text_to_image_index=[])


def test_bad_zero_shot_label_out_of_range():
    with pytest.raises(TrustVLInputError, match=r"labels\[1\] = 2 is out of range.*0..1"):
        zero_shot_accuracy([[0.1, 0.9], [0.8, 0.2]], [1, 2])


def test_bad_zero_shot_length_mismatch():
    with pytest.raises(TrustVLInputError, match=r"labels has 3 entries; expected 2"):
        zero_shot_accuracy([[0.1, 0.9], [0.8, 0.2]], [1, 0, 1])


def test_bad_zero_shot_scores_1d():
    with pytest.raises(TrustVLInputError, match=r"scores has shape \(2,\); expected a 2-D matrix"):
        zero_shot_accuracy([0.1, 0.9], [1, 0])


def test_bad_group_correct_not_boolean():
    with pytest.raises(TrustVLInputError, match=r"correct must hold booleans.*e.g. 2"):
        per_group_accuracy([1, 2], [0, 0])


def test_bad_group_attribute_length():
    with pytest.raises(TrustVLInputError, match=r"attributes\[0\] has 3 entries; expected 2"):
        worst_group_accuracy([True, False], [0, 1], [0, 1, 1])


def test_bad_group_empty():
    with pytest.raises(TrustVLInputError, match=r"correct is empty"):
        worst_group_accuracy([], [])


def test_bad_group_non_integer_attribute():
    with pytest.raises(TrustVLInputError, match=r"attributes\[0\]\[1\] = 0.5 is not a whole number"):
        per_group_accuracy([True, False], [0, 1], [0.0, 0.5])
