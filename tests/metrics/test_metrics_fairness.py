"""Tests of trustvl.metrics.fairness: MaxSkew, MinSkew, NDKL, ranking and the report (SPEC §1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustvl.errors import TrustVLInputError
from trustvl.metrics import fairness as F
from trustvl.metrics import (
    gallery_target,
    max_skew,
    min_skew,
    ndkl,
    rank_indices,
    rank_labels,
    skew,
    uniform_target,
)

LN2 = math.log(2.0)
# 1/log2(i+1) for i = 1..4
W = [1.0, 1.0 / math.log2(3.0), 0.5, 1.0 / math.log2(5.0)]


# ---------------------------------------------------------------------------------------------------
# naive references (plain Python, straight from the definitions)
# ---------------------------------------------------------------------------------------------------
def ref_skew(labels: list[int], q: list[float], k: int) -> list[float]:
    counts = [0] * len(q)
    for a in labels[:k]:
        counts[a] += 1
    return [math.log(max(c, 1) / k / qa) for c, qa in zip(counts, q)]


def ref_ndkl(labels: list[int], q: list[float]) -> float:
    counts = [0] * len(q)
    total = z = 0.0
    for i, a in enumerate(labels, start=1):
        counts[a] += 1
        kl = 0.0
        for c, qa in zip(counts, q):
            if c:
                kl += (c / i) * math.log((c / i) / qa) if qa > 0 else math.inf
        w = 1.0 / math.log2(i + 1)
        total += w * kl
        z += w
    return total / z


def ref_order(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda j: (-scores[j], j))


def _small_blocks(monkeypatch, elements: int) -> None:
    """Make the metrics work in blocks of about ``elements`` positions (several blocks, several threads)."""
    monkeypatch.setattr(F, "_CHUNK_ELEMENTS", elements)
    monkeypatch.setattr(F, "_CPU_BLOCK_ELEMENTS", elements)


# ---------------------------------------------------------------------------------------------------
# hand-computed examples
# ---------------------------------------------------------------------------------------------------
def test_skew_hand_example_four_images_two_groups():
    # ranking of 4 images with groups [0, 0, 1, 0], uniform target q = (1/2, 1/2)
    # k=4: counts (3, 1) -> p = (3/4, 1/4) -> Skew = (ln 1.5, ln 0.5)
    # k=2: counts (2, 0) -> p = (1, 1/2 floored) -> Skew = (ln 2, ln 1 = 0)
    labels = [0, 0, 1, 0]
    q = [0.5, 0.5]
    assert skew(labels, q, 4)[0].tolist() == pytest.approx([math.log(1.5), math.log(0.5)])
    assert max_skew(labels, q, 4).tolist() == pytest.approx([math.log(1.5)])
    assert min_skew(labels, q, 4).tolist() == pytest.approx([-LN2])
    assert skew(labels, q, 2)[0].tolist() == pytest.approx([LN2, 0.0])
    assert max_skew(labels, q, 2).tolist() == pytest.approx([LN2])
    assert min_skew(labels, q, 2).tolist() == pytest.approx([0.0], abs=1e-15)


def test_min_skew_can_be_positive_when_floor_applies():
    # k=1 < m=2: top label 0 -> counts (1, 0) -> p = (1, 1/1) -> Skews (ln 2, ln 2): MinSkew = ln 2 > 0.
    # Documented corner: MinSkew <= 0 is only guaranteed if every value occurs or k * min(q) >= 1.
    assert min_skew([0, 0, 1, 0], [0.5, 0.5], 1).tolist() == pytest.approx([LN2])
    # q = (0.9, 0.05, 0.05), k = 1: Skews (ln(1/0.9), ln 20, ln 20), all positive
    assert min_skew([0, 1, 2], [0.9, 0.05, 0.05], 1).tolist() == pytest.approx([math.log(1 / 0.9)])


def test_skew_hand_example_gallery_target():
    # gallery groups [0, 0, 0, 1] -> q = (3/4, 1/4) ("demographic parity")
    q = gallery_target([0, 0, 0, 1])
    assert q.dtype == torch.float64 and q.tolist() == [0.75, 0.25]
    # ranking [1, 0, ...], k=2: p = (1/2, 1/2) -> Skew = (ln(2/3), ln 2)
    assert skew([1, 0, 0, 0], q, 2)[0].tolist() == pytest.approx([math.log(2 / 3), LN2])


def test_ndkl_hand_example_four_images_two_groups():
    # [0, 0, 1, 0], q = (1/2, 1/2):
    #   i=1: p=(1, 0)      KL = 1*ln(1/0.5)                      = ln 2
    #   i=2: p=(1, 0)      KL = ln 2
    #   i=3: p=(2/3, 1/3)  KL = 2/3 ln(4/3) + 1/3 ln(2/3)          ~ 0.056633
    #   i=4: p=(3/4, 1/4)  KL = 3/4 ln(3/2) + 1/4 ln(1/2)          ~ 0.130812
    # weights 1/log2(i+1) = 1, 0.63093, 0.5, 0.43068; Z ~ 2.561606; NDKL ~ 1.215128 / 2.561606 ~ 0.474362
    kl = [
        LN2,
        LN2,
        2 / 3 * math.log(4 / 3) + 1 / 3 * math.log(2 / 3),
        0.75 * math.log(1.5) + 0.25 * math.log(0.5),
    ]
    expected = sum(w * d for w, d in zip(W, kl)) / sum(W)
    assert expected == pytest.approx(0.474362, abs=1e-6)
    assert ndkl([0, 0, 1, 0], [0.5, 0.5]).tolist() == pytest.approx([expected], rel=1e-12)


def test_ndkl_hand_example_three_groups():
    # [0, 1], q = (1/2, 1/4, 1/4): i=1 KL = ln 2; i=2 p=(1/2, 1/2, 0): KL = 0 + 1/2 ln 2 + 0 (0 ln 0 = 0)
    expected = (LN2 * W[0] + 0.5 * LN2 * W[1]) / (W[0] + W[1])
    assert ndkl([[0, 1]], [0.5, 0.25, 0.25]).tolist() == pytest.approx([expected], rel=1e-12)


def test_ndkl_zero_and_infinite_for_one_hot_target():
    # m = 1: every prefix is (1,) = q exactly
    assert ndkl([[0, 0, 0]], [1.0]).tolist() == [0.0]
    # q = (1, 0): 0 when only value 0 occurs, +inf as soon as value 1 (q_1 = 0) occurs
    assert ndkl([[0, 0, 0], [0, 1, 0]], [1.0, 0.0]).tolist() == [0.0, math.inf]


def test_ndkl_zero_target_entry_for_absent_value():
    # value 2 has q = 0 and never occurs: contributes 0 ln 0 = 0; [0, 0] has KL = ln 2 at every prefix
    assert ndkl([[0, 0]], [0.5, 0.5, 0.0]).tolist() == pytest.approx([LN2])


def test_outputs_are_float64_1d_one_per_query():
    labels = np.array([[0, 1, 1], [1, 0, 0]], dtype=np.int64)
    for out in (max_skew(labels, [0.5, 0.5], 2), min_skew(labels, [0.5, 0.5], 2), ndkl(labels, [0.5, 0.5])):
        assert out.dtype == torch.float64 and out.shape == (2,)
    assert skew(labels, [0.5, 0.5], 2).shape == (2, 2)
    assert ndkl([0, 1, 1], [0.5, 0.5]).shape == (1,)


def test_uniform_target():
    assert uniform_target(4).tolist() == [0.25] * 4
    assert uniform_target(4).dtype == torch.float64


def test_rank_labels_ties_by_gallery_index_hand_example():
    # scores 0.9 at gallery 1 and 4, 0.5 at 0 and 2, 0.1 at 3 -> order 1, 4, 0, 2, 3
    scores = [0.5, 0.9, 0.5, 0.1, 0.9]
    assert rank_indices(scores).tolist() == [1, 4, 0, 2, 3]
    assert rank_labels(scores, [10, 11, 12, 13, 14]).tolist() == [11, 14, 10, 12, 13]
    assert rank_labels(scores, [10, 11, 12, 13, 14], k=3).tolist() == [11, 14, 10]
    # -0.0 and +0.0 are equal scores: ties by index
    assert rank_indices([0.0, -0.0, 0.0]).tolist() == [0, 1, 2]


def test_rank_labels_several_attributes():
    scores = torch.tensor([[0.1, 0.3, 0.2], [0.3, 0.2, 0.1]])
    labels = torch.tensor([[0, 5], [1, 6], [2, 7]], dtype=torch.uint8)
    out = rank_labels(scores, labels)
    assert out.shape == (2, 3, 2) and out.dtype == torch.uint8
    assert out[0].tolist() == [[1, 6], [2, 7], [0, 5]]
    assert out[1].tolist() == [[0, 5], [1, 6], [2, 7]]
    assert rank_labels(scores, labels, k=1).tolist() == [[[1, 6]], [[0, 5]]]


# ---------------------------------------------------------------------------------------------------
# agreement with the naive references
# ---------------------------------------------------------------------------------------------------
@st.composite
def ranking_and_target(draw, strictly_positive=True, max_m=5, max_n=30, max_queries=3):
    m = draw(st.integers(1, max_m))
    n = draw(st.integers(1, max_n))
    n_queries = draw(st.integers(1, max_queries))
    labels = draw(
        st.lists(
            st.lists(st.integers(0, m - 1), min_size=n, max_size=n), min_size=n_queries, max_size=n_queries
        )
    )
    low = 1 if strictly_positive else 0
    weights = draw(st.lists(st.integers(low, 20), min_size=m, max_size=m).filter(lambda w: sum(w) > 0))
    q = [w / sum(weights) for w in weights]
    return labels, q


@settings(max_examples=60, deadline=None)
@given(ranking_and_target(), st.data())
def test_skew_matches_reference(data, draw):
    labels, q = data
    k = draw.draw(st.integers(1, len(labels[0])))
    got = skew(labels, q, k)
    expected = torch.tensor([ref_skew(row, q, k) for row in labels], dtype=torch.float64)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(max_skew(labels, q, k), expected.amax(1))
    torch.testing.assert_close(min_skew(labels, q, k), expected.amin(1))


@settings(max_examples=60, deadline=None)
@given(ranking_and_target(strictly_positive=False, max_m=6))
def test_ndkl_matches_reference(data):
    labels, q = data
    got = ndkl(labels, q)
    expected = torch.tensor([ref_ndkl(row, q) for row in labels], dtype=torch.float64)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)


def test_ndkl_matches_reference_long_ranking_several_chunks(monkeypatch):
    _small_blocks(monkeypatch, 2000)  # force several query chunks
    gen = torch.Generator().manual_seed(1)
    for m in (2, 3):
        labels = torch.randint(0, m, (7, 600), generator=gen)
        q = torch.rand(m, generator=gen, dtype=torch.float64) + 0.1
        q = q / q.sum()
        expected = torch.tensor([ref_ndkl(row, q.tolist()) for row in labels.tolist()], dtype=torch.float64)
        torch.testing.assert_close(ndkl(labels, q), expected, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(ranking_and_target(strictly_positive=False))
def test_ndkl_nonnegative(data):
    labels, q = data
    assert bool((ndkl(labels, q) >= 0).all())


@settings(max_examples=40, deadline=None)
@given(ranking_and_target(max_m=5))
def test_ndkl_positive_unless_target_one_hot(data):
    # p@1 is one-hot, so no prefix sequence can match a q with >= 2 positive entries: NDKL > 0
    labels, q = data
    if sum(qa > 0 for qa in q) >= 2:
        assert bool((ndkl(labels, q) > 0).all())


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 40), st.data())
def test_ndkl_zero_iff_every_prefix_matches_one_hot_target(m, n, draw):
    # a one-hot q = e_s is the only target every prefix can match: all labels equal s -> exactly 0;
    # any other label occurs -> that prefix does not match (KL = +inf since q_a = 0)
    s = draw.draw(st.integers(0, m - 1))
    q = [0.0] * m
    q[s] = 1.0
    assert ndkl([[s] * n], q).tolist() == [0.0]
    if m > 1:
        other = draw.draw(st.integers(0, m - 1).filter(lambda a: a != s))
        pos = draw.draw(st.integers(0, n - 1))
        row = [s] * n
        row[pos] = other
        assert ndkl([row], q).tolist() == [math.inf]


@settings(max_examples=60, deadline=None)
@given(ranking_and_target(), st.data())
def test_max_skew_nonnegative(data, draw):
    # sum_a count_a/k = 1 = sum_a q_a, so some count_a/k >= q_a; the floor only raises p
    labels, q = data
    k = draw.draw(st.integers(1, len(labels[0])))
    assert bool((max_skew(labels, q, k) >= -1e-12).all())


@settings(max_examples=60, deadline=None)
@given(ranking_and_target(), st.data())
def test_min_skew_nonpositive_under_documented_condition(data, draw):
    # MinSkew <= 0 holds when every value occurs in the top k (no floor: the p_a sum to 1) or when
    # k * min(q) >= 1 (a value with zero count then has p_a = 1/k <= q_a)
    labels, q = data
    k = draw.draw(st.integers(1, len(labels[0])))
    values = min_skew(labels, q, k)
    for row, value in zip(labels, values.tolist()):
        if len(set(row[:k])) == len(q) or k * min(q) >= 1:
            assert value <= 1e-12


@settings(max_examples=40, deadline=None)
@given(ranking_and_target(strictly_positive=True, max_m=5), st.data())
def test_invariant_under_relabelling_with_target(data, draw):
    labels, q = data
    m = len(q)
    perm = draw.draw(st.permutations(range(m)))  # value a becomes perm[a]
    relabelled = [[perm[a] for a in row] for row in labels]
    q_perm = [0.0] * m
    for a in range(m):
        q_perm[perm[a]] = q[a]
    k = draw.draw(st.integers(1, len(labels[0])))
    torch.testing.assert_close(max_skew(relabelled, q_perm, k), max_skew(labels, q, k))
    torch.testing.assert_close(min_skew(relabelled, q_perm, k), min_skew(labels, q, k))
    torch.testing.assert_close(skew(relabelled, q_perm, k)[:, list(perm)], skew(labels, q, k))
    torch.testing.assert_close(ndkl(relabelled, q_perm), ndkl(labels, q), rtol=1e-10, atol=1e-13)


_score_values = st.sampled_from([-2.0, -0.5, -0.0, 0.0, 0.25, 0.5, 1.0, 3.0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(_score_values, min_size=6, max_size=6), min_size=1, max_size=3),
    st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64]),
    st.integers(1, 6),
)
def test_ties_broken_by_gallery_index(scores, dtype, k):
    s = (
        torch.tensor(scores, dtype=dtype)
        if dtype.is_floating_point
        else torch.tensor(scores).mul(4).to(dtype)
    )
    expected = [ref_order(row) for row in s.double().tolist()]
    assert rank_indices(s).tolist() == expected
    assert rank_indices(s, k=k).tolist() == [row[:k] for row in expected]
    gallery = torch.arange(6) * 10
    assert rank_labels(s, gallery, k=k).tolist() == [[10 * j for j in row[:k]] for row in expected]


def test_ranking_paths_agree_on_large_gallery_with_ties():
    # n >= 32768 uses the per-query radix path on CPU; small k uses the composite-key topk path
    gen = torch.Generator().manual_seed(0)
    n = 40_000
    for dtype in (torch.float32, torch.float64):
        s = torch.randint(-50, 50, (2, n), generator=gen).to(dtype) / 8
        s[:, ::17] = -0.0
        expected = torch.sort(s, dim=1, descending=True, stable=True).indices
        assert torch.equal(rank_indices(s), expected)
        assert torch.equal(rank_indices(s, k=100), expected[:, :100])
        assert torch.equal(rank_indices(s, k=30_000), expected[:, :30_000])


def test_numpy_and_list_inputs_agree():
    labels = [[0, 1, 1, 0], [1, 1, 0, 0]]
    for form in (
        np.array(labels),
        torch.tensor(labels, dtype=torch.uint8),
        np.array(labels, dtype=np.uint16),
    ):
        torch.testing.assert_close(ndkl(form, [0.5, 0.5]), ndkl(labels, [0.5, 0.5]))
        torch.testing.assert_close(max_skew(form, np.array([0.5, 0.5]), 3), max_skew(labels, [0.5, 0.5], 3))


# ---------------------------------------------------------------------------------------------------
# CPU vs CUDA
# ---------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_and_cuda_agree():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 100, (5, 40_000), generator=gen).float() / 7
    labels = torch.randint(0, 3, (40_000,), generator=gen)
    q = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    cpu_rank = rank_labels(scores, labels)
    cuda_rank = rank_labels(scores.cuda(), labels.cuda())
    assert torch.equal(cpu_rank, cuda_rank.cpu())
    assert torch.equal(
        rank_labels(scores, labels, k=50), rank_labels(scores.cuda(), labels.cuda(), k=50).cpu()
    )
    torch.testing.assert_close(ndkl(cuda_rank, q.cuda()).cpu(), ndkl(cpu_rank, q), rtol=1e-10, atol=1e-13)
    for k in (1, 10, 1000):
        torch.testing.assert_close(max_skew(cuda_rank, q.cuda(), k).cpu(), max_skew(cpu_rank, q, k))
        torch.testing.assert_close(min_skew(cuda_rank, q.cuda(), k).cpu(), min_skew(cpu_rank, q, k))
    assert ndkl(cuda_rank, q.cuda()).device.type == "cuda"


# ---------------------------------------------------------------------------------------------------
# bad input: one test per case, each a TrustVLInputError naming the value
# ---------------------------------------------------------------------------------------------------
def test_error_is_value_error():
    assert issubclass(TrustVLInputError, ValueError)


def test_bad_mismatched_lengths_scores_vs_gallery_labels():
    with pytest.raises(TrustVLInputError, match=r"gallery_labels has 3 entries but scores rank 4"):
        rank_labels(torch.rand(2, 4), [0, 1, 0])


def test_bad_k_zero():
    with pytest.raises(TrustVLInputError, match=r"k = 0 must be positive"):
        max_skew([0, 1, 0], [0.5, 0.5], 0)


def test_bad_k_negative():
    with pytest.raises(TrustVLInputError, match=r"k = -2 must be positive"):
        rank_labels([0.1, 0.2], [0, 1], k=-2)


def test_bad_k_larger_than_ranking():
    with pytest.raises(TrustVLInputError, match=r"k = 4 exceeds the ranking length n \(3\)"):
        min_skew([0, 1, 0], [0.5, 0.5], 4)


def test_bad_k_not_integer():
    with pytest.raises(TrustVLInputError, match=r"k = 2.5 must be an integer"):
        skew([0, 1, 0], [0.5, 0.5], 2.5)


def test_bad_k_bool():
    with pytest.raises(TrustVLInputError, match=r"k = True must be an integer"):
        skew([0, 1, 0], [0.5, 0.5], True)


def test_bad_target_negative_entry():
    with pytest.raises(TrustVLInputError, match=r"target\[1\] = -0.5 is negative"):
        ndkl([0, 1], [1.5, -0.5])


def test_bad_target_not_summing_to_one():
    with pytest.raises(TrustVLInputError, match=r"target sums to 0.9.*summing to 1"):
        max_skew([0, 1], [0.5, 0.4], 1)


def test_bad_target_too_short_for_labels():
    with pytest.raises(TrustVLInputError, match=r"ranked_labels\[0, 2\] = 2 is out of range.*0..1.*m = 2"):
        ndkl([[0, 1, 2]], [0.5, 0.5])


def test_bad_target_zero_entry_for_skew():
    with pytest.raises(TrustVLInputError, match=r"target\[1\] = 0; expected every entry > 0"):
        max_skew([0, 0], [1.0, 0.0], 1)


def test_bad_target_not_1d():
    with pytest.raises(TrustVLInputError, match=r"target has shape \(1, 2\)"):
        ndkl([0, 1], [[0.5, 0.5]])


def test_bad_target_not_finite():
    with pytest.raises(TrustVLInputError, match=r"target\[0\] = nan is not finite"):
        ndkl([0, 1], [float("nan"), 0.5])


def test_bad_target_string():
    with pytest.raises(TrustVLInputError, match=r"target = 'uniform'"):
        ndkl([0, 1], "uniform")


def test_bad_scores_nan():
    with pytest.raises(TrustVLInputError, match=r"scores\[1, 2\] = nan is not finite"):
        rank_labels(torch.tensor([[0.1, 0.2, 0.3], [0.1, 0.2, float("nan")]]), [0, 1, 0])


def test_bad_scores_inf_in_later_chunk(monkeypatch):
    _small_blocks(monkeypatch, 6)  # 2 queries per chunk
    scores = torch.rand(5, 3)
    scores[4, 0] = float("inf")
    with pytest.raises(TrustVLInputError, match=r"scores\[4, 0\] = inf is not finite"):
        rank_indices(scores)


def test_bad_scores_error_names_first_bad_block(monkeypatch):
    _small_blocks(monkeypatch, 3)  # one query per block, blocks run on several threads
    scores = torch.rand(40, 3)
    scores[7, 1] = float("nan")
    scores[30:, 2] = float("-inf")
    for _ in range(3):
        with pytest.raises(TrustVLInputError, match=r"scores\[7, 1\] = nan is not finite"):
            rank_labels(scores, [0, 1, 0])


def test_thread_count_restored_after_blocks(monkeypatch):
    _small_blocks(monkeypatch, 50)
    before = torch.get_num_threads()
    rank_labels(torch.rand(6, 50), torch.randint(0, 2, (50,)))
    ndkl(torch.randint(0, 2, (6, 50)), [0.5, 0.5])
    assert torch.get_num_threads() == before


def test_bad_scores_complex():
    with pytest.raises(TrustVLInputError, match=r"scores has complex dtype"):
        rank_indices(torch.tensor([1 + 1j, 2 + 0j]))


def test_bad_scores_3d():
    with pytest.raises(TrustVLInputError, match=r"scores has shape \(1, 2, 2\)"):
        rank_indices(torch.rand(1, 2, 2))


def test_bad_empty_ranking():
    with pytest.raises(TrustVLInputError, match=r"ranked_labels is empty"):
        ndkl([[]], [1.0])


def test_bad_empty_queries():
    with pytest.raises(TrustVLInputError, match=r"ranked_labels is empty \(shape \(0, 3\)\)"):
        max_skew(torch.zeros(0, 3, dtype=torch.long), [1.0], 1)


def test_bad_empty_scores():
    with pytest.raises(TrustVLInputError, match=r"scores is empty"):
        rank_labels(torch.zeros(2, 0), torch.zeros(0, dtype=torch.long))


def test_bad_empty_target():
    with pytest.raises(TrustVLInputError, match=r"target is empty"):
        ndkl([0], [])


def test_bad_empty_gallery_labels_for_gallery_target():
    with pytest.raises(TrustVLInputError, match=r"gallery_labels is empty"):
        gallery_target([])


def test_bad_non_integer_labels():
    with pytest.raises(TrustVLInputError, match=r"ranked_labels\[0, 1\] = 0.5 is not a whole number"):
        ndkl([[0.0, 0.5]], [0.5, 0.5])


def test_bad_string_labels():
    with pytest.raises(TrustVLInputError, match=r"ranked_labels has dtype <U1"):
        ndkl([["a", "b"]], [0.5, 0.5])


def test_bad_ragged_labels():
    with pytest.raises(TrustVLInputError, match=r"ranked_labels could not be read as a rectangular array"):
        ndkl([[0, 1], [0]], [0.5, 0.5])


def test_bad_negative_label():
    with pytest.raises(TrustVLInputError, match=r"ranked_labels\[0, 1\] = -1 is negative"):
        skew([0, -1], [0.5, 0.5], 1)


def test_bad_gallery_target_m_too_small():
    with pytest.raises(
        TrustVLInputError, match=r"gallery_labels\[2\] = 3 is out of range.*m = 2 from argument m"
    ):
        gallery_target([0, 1, 3], m=2)


def test_bad_uniform_target_m():
    with pytest.raises(TrustVLInputError, match=r"m = 0; expected a positive integer"):
        uniform_target(0)
