"""release_free_heap hands freed heap pages back: the pattern of the bootstrap's batch loop (mid-sized
temporaries freed while small objects allocated after them survive) otherwise leaves them resident. Run in a
fresh interpreter with glibc's thresholds fixed (mallopt), through libc's own malloc: where a torch allocation
lands, and so how much stays resident, depends on the heap's history and differed between machines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import ctypes
import json
from trustvl.utils.host_memory import release_free_heap

libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.restype, libc.free.argtypes = None, [ctypes.c_void_p]
libc.mallopt.restype, libc.mallopt.argtypes = ctypes.c_int, [ctypes.c_int, ctypes.c_int]
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
# fixed thresholds, whatever the heap's history: 4 MB blocks come from the heap, and free() trims nothing
assert libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

start = rss_mb()
blocks, survivors = [], []
for _ in range(40):  # 40 x 4 MB, each followed by a small block that stays alive (the bootstrap's pattern)
    blocks.append(libc.malloc(4 << 20))
    ctypes.memset(blocks[-1], 1, 4 << 20)  # touched: resident
    survivors.append(libc.malloc(64))
    ctypes.memset(survivors[-1], 1, 64)
for block in blocks:
    libc.free(block)
freed = rss_mb()
assert release_free_heap()  # glibc
print(json.dumps({"held_after_free": freed - start, "returned": freed - rss_mb()}))
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not Path("/proc/self/status").exists(), reason="glibc"
)
def test_freed_heap_blocks_between_survivors_are_returned():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120
    )
    mb = json.loads(out.stdout)
    assert mb["held_after_free"] > 100  # of the 160 MB freed, without the release: still resident
    assert mb["returned"] > 100  # and handed back by it
