"""The goal check of benchmarks/bench_safe_clip_synthworld.py (issue 23 item 5): an NSFW-rate drop of at least
50 % counts only when the whole paired interval of the change lies past -50 % of the base rate."""

from __future__ import annotations

import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_safe_clip_synthworld")


def test_point_past_half_is_not_enough(bench):
    # 0.893 -> 0.430 is a 51.8 % drop, but the interval's upper end (-0.439) is a drop of less than half
    assert not bench.drop_beyond_interval(0.893, [-0.487, -0.439], 50.0)


def test_whole_interval_past_half_meets_it(bench):
    assert bench.drop_beyond_interval(0.893, [-0.52, -0.45], 50.0)
    assert bench.drop_beyond_interval(0.8, [-0.5, -0.4], 50.0)  # the boundary itself counts
    assert not bench.drop_beyond_interval(0.8, [-0.5, -0.39], 50.0)


def test_goal_scales_with_the_base_and_needs_an_interval(bench):
    assert bench.drop_beyond_interval(0.4, [-0.3, -0.25], 50.0)  # 0.25 >= half of 0.4
    assert not bench.drop_beyond_interval(0.9, [-0.3, -0.25], 50.0)
    assert bench.drop_beyond_interval(0.9, [-0.3, -0.25], 25.0)
    assert not bench.drop_beyond_interval(0.9, None, 50.0)
