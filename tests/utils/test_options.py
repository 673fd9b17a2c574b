"""The shared ``num_proc`` option: usable cores by default, one process per job at most, bad values named."""

from __future__ import annotations

import os

import pytest

from trustvl.errors import TrustVLInputError
from trustvl.utils.options import resolve_num_proc, usable_cores


def test_usable_cores_follows_the_affinity_mask():
    n = usable_cores()
    assert n >= 1
    if hasattr(os, "sched_getaffinity"):
        assert n == len(os.sched_getaffinity(0))
    assert resolve_num_proc(None) == n


def test_resolve_num_proc_caps_at_the_jobs_left():
    assert resolve_num_proc(8, 3) == 3
    assert resolve_num_proc(2, 10) == 2
    assert resolve_num_proc(4, 0) == 1  # nothing left to do: no pool
    assert resolve_num_proc(None, 1) == 1


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_resolve_num_proc_rejects_bad_values(bad):
    with pytest.raises(TrustVLInputError, match="num_proc"):
        resolve_num_proc(bad)
