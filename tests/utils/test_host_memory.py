"""release_free_heap hands freed heap pages back: the pattern of the bootstrap's batch loop (mid-sized
temporaries freed while small objects allocated after them survive) otherwise leaves them resident."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from trustvl.utils.host_memory import release_free_heap

STATUS = Path("/proc/self/status")


def _rss_mb() -> float:
    line = next(line for line in STATUS.read_text().splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux") or not STATUS.exists(), reason="glibc and /proc")
def test_freed_heap_blocks_between_survivors_are_returned():
    assert release_free_heap()  # glibc
    torch.empty(24 << 20, dtype=torch.uint8).fill_(1)  # freed at once: raises glibc's mmap threshold to 24 MB
    blocks, survivors = [], []
    for _ in range(40):  # 40 x 4 MB on the heap, each followed by a small block that stays alive
        blocks.append(torch.ones(4 << 20, dtype=torch.uint8))
        survivors.append(torch.ones(64, dtype=torch.uint8))
    del blocks
    before = _rss_mb()
    assert release_free_heap()
    assert before - _rss_mb() > 100  # of the 160 MB freed
