"""Uncertainty in trustvl.metrics (SPEC §1): the gallery bootstrap, the sampling floor and the paired verdict."""

from __future__ import annotations

import pytest
import torch

from trustvl.errors import TrustVLInputError
from trustvl.metrics import (
    ConfidenceInterval,
    bootstrap_fairness,
    centred_interval,
    class_shuffled_rankings,
    gallery_resample_counts,
    max_skew,
    ndkl,
    paired_comparison,
    percentile_interval,
    rank_indices,
    resampled_rankings,
    sampling_floor,
    uniform_target,
    verdict,
    wilson_interval,
)


def _scores(n_queries=3, n=40, seed=0):
    return torch.randn(n_queries, n, generator=torch.Generator().manual_seed(seed))


def test_resample_counts_are_seeded_draws_with_replacement():
    counts = gallery_resample_counts(50, 7, seed=3)
    assert counts.shape == (7, 50) and bool((counts.sum(1) == 50).all())
    assert torch.equal(counts, gallery_resample_counts(50, 7, seed=3))
    assert not torch.equal(counts, gallery_resample_counts(50, 7, seed=4))


def test_resampled_ranking_equals_ranking_the_resampled_gallery():
    scores = _scores()
    counts = gallery_resample_counts(40, 5, seed=1)
    rankings = resampled_rankings(rank_indices(scores), counts)
    for r in range(5):
        gallery = torch.repeat_interleave(torch.arange(40), counts[r])  # sorted gallery indices
        assert torch.equal(rankings[r], gallery[rank_indices(scores[:, gallery])])


def test_bootstrap_replicates_equal_the_metric_on_each_resample():
    scores, labels, q = _scores(), torch.arange(40) % 4, uniform_target(4)
    reps = bootstrap_fairness(scores, labels, q, [5], n_resamples=4, seed=2)
    counts = gallery_resample_counts(40, 4, seed=2)
    for r in range(4):
        gallery = torch.repeat_interleave(torch.arange(40), counts[r])
        ranked = labels[gallery][rank_indices(scores[:, gallery])]
        assert float(reps.max_skew[5][r]) == pytest.approx(float(max_skew(ranked, q, 5).mean()), abs=1e-12)
        assert float(reps.ndkl[r]) == pytest.approx(float(ndkl(ranked, q).mean()), abs=1e-12)


def test_constant_ranking_has_a_zero_width_interval_containing_its_value():
    scores, labels = _scores(), torch.zeros(40, dtype=torch.long)  # one value: every resample is identical
    reps = bootstrap_fairness(scores, labels, uniform_target(1), [10])
    ci = centred_interval(0.0, reps.max_skew[10], lower=0.0)
    assert (ci.low, ci.high, ci.bootstrap_biased) == (0.0, 0.0, False) and reps.ndkl.shape == (200,)
    assert percentile_interval(reps.max_skew[10]) == (0.0, 0.0)


def test_centred_interval_is_the_estimate_plus_minus_z_se_truncated_to_the_range():
    reps = torch.tensor([0.20, 0.24, 0.28, 0.22, 0.26], dtype=torch.float64)
    se = float(reps.std())
    ci = centred_interval(0.25, reps)
    assert (ci.low, ci.high) == pytest.approx((0.25 - 1.959964 * se, 0.25 + 1.959964 * se), abs=1e-6)
    assert ci.contains(0.25) and not ci.bootstrap_biased  # mean 0.24: bias 0.01 < se / 2
    near_zero = centred_interval(0.01, reps - 0.2, lower=0.0)
    assert near_zero.low == 0.0 and near_zero.high == pytest.approx(0.01 + 1.959964 * se, abs=1e-6)
    capped = centred_interval(0.99, reps + 0.75, lower=0.0, upper=1.0)
    assert capped.high == 1.0 and capped.contains(0.99)
    assert centred_interval(0.25, reps, level=0.5).high < ci.high  # a lower level is narrower
    with pytest.raises(TrustVLInputError, match="range"):
        centred_interval(-0.1, reps, lower=0.0)
    with pytest.raises(TrustVLInputError, match="at least 2"):
        centred_interval(0.1, [0.1])


def test_bias_beyond_half_a_standard_error_is_flagged_not_shifted():
    reps = torch.linspace(0.15, 0.27, 50, dtype=torch.float64)  # the replicates sit above the estimate
    ci = centred_interval(0.126, reps, lower=0.0)
    assert ci.bootstrap_biased and ci.contains(0.126)
    assert (ci.low + ci.high) / 2 == pytest.approx(0.126)  # centred on the estimate, not on the replicates
    low, _ = percentile_interval(reps)
    assert low > 0.126  # what the percentile interval did: exclude its own point


def test_wilson_interval_contains_the_share():
    for successes, trials in ((0, 10), (3, 10), (10, 10), (32, 64), (1, 1000)):
        ci = wilson_interval(successes, trials)
        assert ci.contains(successes / trials) and 0.0 <= ci.low <= ci.high <= 1.0
    assert wilson_interval(0, 0) == ConfidenceInterval(0.0, 1.0, 0.95)
    with pytest.raises(TrustVLInputError, match="successes"):
        wilson_interval(11, 10)


def test_percentile_interval_is_the_2_5_and_97_5_percentiles():
    low, high = percentile_interval(torch.arange(201, dtype=torch.float64))
    assert (low, high) == pytest.approx((5.0, 195.0))
    with pytest.raises(TrustVLInputError, match="level"):
        percentile_interval([1.0, 2.0], level=1.5)


def test_bootstrap_is_seeded_and_validates():
    scores, labels, q = _scores(), torch.arange(40) % 2, uniform_target(2)
    a = bootstrap_fairness(scores, labels, q, [5, 10], n_resamples=20, seed=0)
    b = bootstrap_fairness(scores, labels, q, [5, 10], n_resamples=20, seed=0)
    assert torch.equal(a.max_skew[10], b.max_skew[10]) and torch.equal(a.ndkl, b.ndkl)
    with pytest.raises(TrustVLInputError, match="n_resamples = 1"):
        bootstrap_fairness(scores, labels, q, [5], n_resamples=1)
    with pytest.raises(TrustVLInputError, match="k"):
        bootstrap_fairness(scores, labels, q, [41])


def test_floor_without_classes_at_full_depth_is_the_gallery_share():
    scores, labels = _scores(), torch.tensor([0] * 30 + [1] * 10)
    floor = sampling_floor(scores, labels, uniform_target(2), [40], n_rankings=10)
    mx, mn, _ = floor.mean()
    # the top 40 of any ranking is the whole gallery: shares (3/4, 1/4) against (1/2, 1/2)
    assert mx[40] == pytest.approx(torch.log(torch.tensor(1.5)).item())
    assert mn[40] == pytest.approx(torch.log(torch.tensor(0.5)).item())


def test_floor_keeps_each_querys_class_sequence():
    order, classes = rank_indices(_scores(2, 12)), torch.arange(12) % 3
    shuffled = class_shuffled_rankings(order, classes, 5, torch.Generator().manual_seed(0))
    for r in range(5):
        assert torch.equal(classes[shuffled[r]], classes[order])
        assert bool((shuffled[r].sort(dim=1).values == torch.arange(12)).all())  # permutations


def test_floor_equals_the_value_when_the_attribute_is_the_class():
    scores, classes = _scores(), torch.arange(40) % 4
    floor = sampling_floor(scores, classes, uniform_target(4), [8], classes=classes, n_rankings=7)
    ranked = classes[rank_indices(scores)]
    assert floor.mean()[0][8] == pytest.approx(float(max_skew(ranked, uniform_target(4), 8).mean()))


def test_identical_models_are_within_noise():
    reps = bootstrap_fairness(_scores(), torch.arange(40) % 4, uniform_target(4), [10])
    same = paired_comparison(0.3, 0.3, reps.max_skew[10], reps.max_skew[10])
    interval = same.interval
    assert (same.difference, interval.low, interval.high, same.verdict) == (0.0, 0.0, 0.0, "within noise")


def test_paired_interval_is_centred_on_the_point_difference():
    gen = torch.Generator().manual_seed(1)
    base = 0.3 + 0.02 * torch.randn(200, generator=gen, dtype=torch.float64)
    other = base - 0.05 + 0.01 * torch.randn(200, generator=gen, dtype=torch.float64)
    change = paired_comparison(0.25, 0.22, base, other)  # the replicates' mean difference is -0.05
    assert change.difference == pytest.approx(-0.03)
    assert (change.interval.low + change.interval.high) / 2 == pytest.approx(-0.03)
    half = 1.959964 * float((other - base).std())
    assert change.interval.high - change.interval.low == pytest.approx(2 * half, rel=1e-6)
    assert change.interval.bootstrap_biased  # |-0.05 - (-0.03)| = 0.02 > se / 2


def test_planted_skew_against_balanced_is_better():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(400) % 2
    skewed = labels.double() + 0.1 * torch.randn(4, 400, generator=gen)  # every query ranks value 1 first
    balanced = torch.randn(4, 400, generator=gen)
    q = uniform_target(2)
    base = bootstrap_fairness(skewed, labels, q, [50])
    other = bootstrap_fairness(balanced, labels, q, [50])
    base_value = float(max_skew(labels[rank_indices(skewed)], q, 50).mean())
    other_value = float(max_skew(labels[rank_indices(balanced)], q, 50).mean())
    change = paired_comparison(base_value, other_value, base.max_skew[50], other.max_skew[50])
    assert change.verdict == "better" and change.interval.high < 0 and change.difference < 0
    back = paired_comparison(other_value, base_value, other.max_skew[50], base.max_skew[50])
    assert back.verdict == "worse"
    assert verdict(-2.0, -1.0, lower_is_better=False) == "worse"  # MinSkew: higher is fairer
    with pytest.raises(TrustVLInputError, match="same resamples"):
        paired_comparison(0.0, 0.0, base.max_skew[50], other.max_skew[50][:10])
