"""Give the C heap's free pages back to the operating system between the batches of a long loop.

Why: glibc's ``malloc`` serves blocks below its mmap threshold (which rises on its own up to 32 MB once such
a block has been freed) from the heap, and keeps freed heap memory mapped. A loop that allocates a few
mid-sized temporaries per batch (the bootstrap's ranked labels and NDKL work buffers: 2 to 30 MB each)
while a few small objects outlive every batch (the per-batch results, tensor and Python bookkeeping)
leaves each batch's freed blocks split by those survivors; the next batch's blocks no longer fit the
holes, are placed further on, and the resident memory grows with the number of batches although what is
alive does not. Measured on the audit's scoring (docs/scale.md): about 24 bytes per (resample, image), 2.4
GB at 1,000,000 images and 100 resamples. ``malloc_trim(0)`` hands every whole free page back (also those
inside the heap, glibc >= 2.8), so what stays resident is what is alive; it changes no data and no later
allocation's result, only where the pages come from (a fresh page is zero-filled by the kernel on its first
touch, a cost of about a millisecond per MB).

Elsewhere (macOS, musl, Windows) there is no ``malloc_trim`` and :func:`release_free_heap` does nothing.
"""

from __future__ import annotations

import ctypes
import functools

__all__ = ["release_free_heap"]


@functools.cache
def _malloc_trim():
    try:  # the symbols the process already has (the C library among them), no library search
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):  # no such symbol (not glibc), or no CDLL(None) (Windows)
        return None


def release_free_heap() -> bool:
    """Return the C heap's free pages to the OS (glibc); ``False`` where that is not available."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
