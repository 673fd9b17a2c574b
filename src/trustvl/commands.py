"""Subcommands of the methods (build, train, eval, demo), kept apart from the core CLI plumbing.

Each ``_add_*`` function takes argparse's subparsers, adds one subcommand and sets its ``handler``;
``METHOD_COMMANDS`` lists them for :func:`trustvl.cli.build_parser`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

METHOD_COMMANDS: list[Callable[[Any], None]] = []
