"""Fault injection for the kill-and-resume tests.

``TRUSTVL_FAULT=<point>:<n>`` ends the process the ``n``-th time the code passes :func:`fault_point` with
that name, with ``os._exit(137)``: like ``kill -9``, nothing is cleaned up (no ``finally``, no ``atexit``), so
the tests see exactly what a killed run leaves behind. Unset (always, outside those tests), a fault point
costs one environment lookup.

Points: ``atomic-write:before-rename`` (a temporary file is complete, not yet renamed into place) and
``atomic-write:after-rename`` (:func:`trustvl.utils.io.atomic_write`, which every shard, record and card
goes through).
"""

from __future__ import annotations

import os

__all__ = ["fault_point"]

_passes: dict[str, int] = {}


def fault_point(name: str) -> None:
    """End the process here if ``TRUSTVL_FAULT`` names this point and this is its ``n``-th pass."""
    spec = os.environ.get("TRUSTVL_FAULT")
    if not spec:
        return
    point, _, count = spec.rpartition(":")
    if point != name:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if str(_passes[name]) == count:
        os._exit(137)
