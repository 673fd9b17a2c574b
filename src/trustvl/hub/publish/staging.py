""":func:`stage`: fill a fresh folder that is exactly the Hub repo's content, or leave nothing behind.

The folder is ``cfg.stage_dir`` (which must not exist or be empty, unless ``cfg.overwrite``), or
``<new temp dir>/<repo name>`` (named after the repo, as ``evaluate.load(folder)`` of a metric needs). It is
filled in a hidden sibling ``.<name>.staging-*`` and renamed into place, so it is never half-written; when
staging fails, the hidden folder, the new temp dir and any parent folders made for the stage dir are removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from trustvl.errors import TrustVLInputError
from trustvl.hub.publish.config import (
    KINDS,
    PublishConfig,
    PublishResult,
    StagedFile,
    check_kind,
    check_model_options,
    check_repo_id,
)
from trustvl.hub.publish.folders import existing_dir
from trustvl.hub.publish.model_index import MetricsReader
from trustvl.hub.publish.safety import stageable_files
from trustvl.hub.publish.stage_dataset import stage_dataset
from trustvl.hub.publish.stage_model import stage_adapter, stage_model
from trustvl.hub.publish.stage_space import stage_metric, stage_space

__all__ = ["check_stage_dir", "stage"]


def check_stage_dir(cfg: PublishConfig, source: Path) -> Path | None:
    """The resolved ``cfg.stage_dir`` (None when not given), checked like every command's output folder: a
    folder path, empty unless ``cfg.overwrite``, and neither inside the folder being published nor holding
    it."""
    if cfg.stage_dir is None:
        return None
    out = Path(cfg.stage_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise TrustVLInputError(f"--stage-dir {cfg.stage_dir!r} is an existing file; expected a folder path")
    if out == source or source in out.parents:
        raise TrustVLInputError(f"--stage-dir {cfg.stage_dir!r} is inside the folder being published")
    if out in source.parents:
        raise TrustVLInputError(f"--stage-dir {cfg.stage_dir!r} holds the folder being published")
    if out.is_dir() and any(out.iterdir()) and not cfg.overwrite:
        raise TrustVLInputError(
            f"--stage-dir {cfg.stage_dir!r} exists and is not empty; choose another folder or pass --overwrite"
            " to replace it"
        )
    return out


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns those created, deepest first."""
    created = []
    missing = folder
    while not missing.exists():
        created.append(missing)
        missing = missing.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; a folder someone else has filled meanwhile stays
        try:
            folder.rmdir()
        except OSError:
            return


def _fill(cfg: PublishConfig, source: Path, dest: Path, read_metrics: MetricsReader | None) -> None:
    if cfg.kind == "model":
        stage_model(cfg, source, dest, read_metrics)
    elif cfg.kind == "adapter":
        stage_adapter(cfg, source, dest, read_metrics)
    elif cfg.kind == "dataset":
        stage_dataset(cfg, source, dest)
    elif cfg.kind == "metric":
        stage_metric(cfg, source, dest)
    else:
        stage_space(cfg, source, dest)


def stage(cfg: PublishConfig, read_metrics: MetricsReader | None = None) -> PublishResult:
    """Stage ``cfg.path`` as a Hub-ready folder (see :mod:`trustvl.hub.publish`) and return what it holds.

    ``read_metrics`` gives a model's or adapter's card its model-index from the run's metrics file (see
    :mod:`~trustvl.hub.publish.model_index`); without it such a card has no results unless the folder's own
    card holds them.
    """
    check_kind(cfg.kind)
    check_repo_id(cfg.repo_id)
    check_model_options(cfg)
    source = existing_dir(cfg.path, cfg.kind)
    out = check_stage_dir(cfg, source)
    if out is None:
        made = [Path(tempfile.mkdtemp(prefix="trustvl-publish-"))]
        out = made[0] / cfg.repo_id.split("/")[-1]
    else:
        made = _make_parents(out.parent)
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging-"))
        _fill(cfg, source, tmp, read_metrics)
        if out.is_dir():
            shutil.rmtree(out)  # empty, or replaced with --overwrite
        os.replace(tmp, out)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(made)
        raise
    files = [StagedFile(str(f.relative_to(out)), f.stat().st_size) for f in stageable_files(out)]
    return PublishResult(
        kind=cfg.kind,
        repo_id=cfg.repo_id,
        repo_type=KINDS[cfg.kind],
        stage_dir=str(out),
        files=files,
        revision=cfg.revision,
        private=cfg.private,
    )
