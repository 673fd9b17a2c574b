"""Pieces the method subcommands share: subcommand groups, the common run options, JSON summaries."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from typing import Any


def add_group(sub: Any, name: str, help: str) -> Any:
    """Add the subcommand ``name`` whose own subcommands (one per method) go into the returned subparsers."""
    p = sub.add_parser(name, help=help)
    inner = p.add_subparsers(dest=f"{name}_what", metavar="WHAT")
    inner.required = True
    return inner


def add_run_options(
    p: argparse.ArgumentParser,
    *,
    seed: int | None = None,
    overwrite: bool = False,
    resume: bool = False,
    quiet: bool = False,
) -> None:
    """Add the options many subcommands share, in this order: ``--seed`` (only when ``seed`` is given,
    as its default), then the switches ``--overwrite``, ``--resume`` and ``--quiet`` that are asked for."""
    if seed is not None:
        p.add_argument("--seed", type=int, default=seed)
    for name, wanted in (("overwrite", overwrite), ("resume", resume), ("quiet", quiet)):
        if wanted:
            p.add_argument(f"--{name}", action="store_true")


def print_json_summary(summary: Mapping[str, Any], keys: Iterable[str] | None = None) -> None:
    """Print one JSON line of ``summary``: the entries ``keys`` in that order, or else every entry whose
    value is a number or a string."""
    if keys is None:
        picked = {k: v for k, v in summary.items() if isinstance(v, (int, float, str))}
    else:
        picked = {k: summary[k] for k in keys}
    print(json.dumps(picked))
