"""Subcommands of the methods, kept apart from the core CLI plumbing in :mod:`trustvl.cli`.

One module per verb: :mod:`.build`, :mod:`.train`, :mod:`.evaluate` (``eval``), :mod:`.discover`,
:mod:`.demo`. Each ``add_*`` function takes argparse's subparsers, adds its subcommand (for ``build``,
``train`` and ``eval``: a group with one sub-subcommand per method) and sets each one's ``handler``;
``METHOD_COMMANDS`` lists them for :func:`trustvl.cli.build_parser`. Handlers import the heavy libraries
they need themselves, so that building the parser stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trustvl.commands.build import add_build
from trustvl.commands.demo import add_demo
from trustvl.commands.discover import add_discover
from trustvl.commands.evaluate import add_eval
from trustvl.commands.generate import add_generate
from trustvl.commands.publish import add_publish
from trustvl.commands.train import add_train

METHOD_COMMANDS: list[Callable[[Any], None]] = [
    add_build,
    add_train,
    add_eval,
    add_discover,
    add_demo,
    add_generate,
    add_publish,
]

__all__ = ["METHOD_COMMANDS"]
