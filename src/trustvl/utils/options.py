"""Options that many commands share, each stated once: its default, its help and its CLI metadata.

A config dataclass declares ``device: str = device_option()`` instead of restating the field, so
``trustvl <command> --help`` says the same thing about ``--device`` everywhere and a default changes in one
place. The metadata keys (``min``, ``max``, ``negative_aliases``, ``choices``) are read by
``trustvl.commands._common.ConfigArgumentParser``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = [
    "device_option",
    "dtype_option",
    "overwrite_option",
    "progress_option",
    "resamples_option",
    "uncertainty_seed_option",
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
