"""Finding the checkpoint a resumed run continues from: :func:`last_complete_checkpoint` skips (and can
remove) the ``checkpoint-<step>`` folders that a kill during the save left half-written."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

__all__ = ["last_complete_checkpoint"]

logger = logging.getLogger(__name__)


def _complete(checkpoint: Path) -> bool:
    """Whether ``checkpoint`` was saved to the end: the Trainer writes ``trainer_state.json`` last (after the
    weights, optimiser, scheduler and RNG state), so a readable one with a ``global_step`` marks a complete
    checkpoint; a kill during the save leaves it missing or cut short."""
    state_file = checkpoint / "trainer_state.json"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and "global_step" in state


def last_complete_checkpoint(output_dir: str | os.PathLike, remove_incomplete: bool = False) -> str | None:
    """The newest complete ``checkpoint-<step>`` folder of ``output_dir`` (see :func:`_complete`), or None.

    With ``remove_incomplete``, newer checkpoints that a kill left half-written are deleted (they hold no
    state a resume could use, and the Trainer would later save into the same names).
    """
    folder = Path(output_dir)
    found = sorted(
        (int(p.name.split("-", 1)[1]), p)
        for p in folder.glob("checkpoint-*")
        if p.is_dir() and p.name.split("-", 1)[1].isdigit()
    )
    for _, checkpoint in reversed(found):
        if _complete(checkpoint):
            return str(checkpoint)
        if remove_incomplete:
            logger.warning("trustvl.train: %s is incomplete (killed while saving?); removing it", checkpoint)
            shutil.rmtree(checkpoint, ignore_errors=True)
    return None
