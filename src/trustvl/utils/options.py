"""Options that many commands share, each stated once: its default, its help and its CLI metadata.

A config dataclass declares ``device: str = device_option()`` instead of restating the field, so
``trustvl <command> --help`` says the same thing about ``--device`` everywhere and a default changes in one
place. The metadata keys (``min``, ``max``, ``negative_aliases``, ``choices``) are read by
``trustvl.commands._common.ConfigArgumentParser``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from trustvl.utils.checks import check_int

__all__ = [
    "device_option",
    "dtype_option",
    "num_proc_option",
    "overwrite_option",
    "progress_option",
    "resamples_option",
    "resolve_num_proc",
    "uncertainty_seed_option",
    "usable_cores",
]


def device_option() -> Any:
    """``device``: ``"auto"`` (this process's accelerator, else CPU; :func:`trustvl.utils.devices.resolve_device`)."""
    return dataclasses.field(
        default="auto",
        metadata={"help": "torch device: auto (this process's accelerator), cpu, cuda, cuda:1, ..."},
    )


def dtype_option(choices: list[str] | None = None) -> Any:
    """``dtype``: ``None`` keeps float32; ``choices`` narrows what a command accepts."""
    metadata: dict[str, Any] = {"help": "model dtype: None (float32), float16/fp16, bfloat16/bf16 or auto"}
    if choices is not None:
        metadata["choices"] = choices
    return dataclasses.field(default=None, metadata=metadata)


def overwrite_option(what: str = "output folder") -> Any:
    """``overwrite``: write into ``what`` although it is not empty (its old content is replaced)."""
    return dataclasses.field(default=False, metadata={"help": f"replace a non-empty {what}"})


def progress_option() -> Any:
    """``progress``: progress bars on long work (``--quiet`` turns them off)."""
    return dataclasses.field(
        default=True, metadata={"help": "show progress bars", "negative_aliases": ["--quiet"]}
    )


def resamples_option(default: int = 200, what: str = "gallery") -> Any:
    """``n_resamples``: bootstrap resamples behind every interval and paired verdict (0 turns them off)."""
    return dataclasses.field(
        default=default,
        metadata={
            "help": f"{what}-bootstrap resamples for the intervals and paired verdicts (0: off)",
            "min": 0,
        },
    )


def uncertainty_seed_option() -> Any:
    """``uncertainty_seed``: the seed of the bootstrap resamples."""
    return dataclasses.field(
        default=0, metadata={"help": "seed of the bootstrap resamples", "min": 0, "max": None}
    )


def usable_cores() -> int:
    """The CPU cores this process may run on: its affinity mask where the OS has one (a container or
    ``taskset`` limits it below ``os.cpu_count()``), else ``os.cpu_count()``; at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def num_proc_option(what: str = "shards") -> Any:
    """``num_proc``: processes rendering ``what`` in parallel; None (the default): :func:`usable_cores`;
    1: in this process. The output is byte-identical whatever the value."""
    return dataclasses.field(
        default=None,
        metadata={
            "help": f"processes rendering {what} in parallel (None: every usable core; 1: in this "
            "process); the output is the same bytes whatever the value",
            "min": 1,
        },
    )


def resolve_num_proc(num_proc: int | None, n_jobs: int | None = None) -> int:
    """The processes to start for ``n_jobs`` independent jobs: ``num_proc`` (None: :func:`usable_cores`),
    at most one per job, at least 1 (1: run in this process, no pool to start)."""
    n = usable_cores() if num_proc is None else check_int("num_proc", num_proc, 1)
    if n_jobs is not None:
        n = min(n, max(1, n_jobs))
    return n
