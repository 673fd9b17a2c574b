"""Staging a ``space`` (a Space folder as it is) or a ``metric`` (an ``evaluate`` module folder, uploaded as
a Space named after the module, since ``evaluate.load("owner/name")`` fetches ``name.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.hub.publish.config import PublishConfig
from trustvl.hub.publish.folders import copy_files, front_matter
from trustvl.hub.publish.safety import check_metric_requirements, refuse_pickles, stageable_files

__all__ = ["check_space_readme", "stage_metric", "stage_space"]


def check_space_readme(path: Path, what: str) -> dict[str, Any]:
    """The front matter of the Space's ``README.md``, which must name its ``sdk`` and an ``app_file`` that is
    in the folder."""
    readme = path / "README.md"
    if not readme.is_file():
        raise TrustVLInputError(
            f"{what} folder {str(path)!r} has no README.md; expected one with sdk/app_file front matter"
        )
    meta = front_matter(readme)
    missing = [key for key in ("sdk", "app_file") if not meta.get(key)]
    if missing:
        raise TrustVLInputError(
            f"{str(readme)!r} front matter lacks {missing}; a Space needs sdk and app_file"
        )
    if not (path / str(meta["app_file"])).is_file():
        raise TrustVLInputError(
            f"{str(readme)!r} names app_file {meta['app_file']!r}, which is not in the folder"
        )
    return meta


def stage_metric(cfg: PublishConfig, path: Path, dest: Path) -> None:
    slug = path.name
    module = path / f"{slug}.py"
    if not module.is_file():
        raise TrustVLInputError(
            f"metric folder {str(path)!r} has no {slug}.py; evaluate.load(folder) reads the module named after"
            " the folder"
        )
    repo_name = cfg.repo_id.split("/")[-1]
    if repo_name != slug:
        raise TrustVLInputError(
            f"--repo-id {cfg.repo_id!r}: evaluate.load('{cfg.repo_id}') fetches {repo_name}.py, but the module is"
            f" {slug}.py; use --repo-id OWNER/{slug}"
        )
    files = stageable_files(path)
    refuse_pickles(path, files)
    check_space_readme(path, "metric")
    check_metric_requirements(path, files)
    copy_files(path, files, dest)


def stage_space(cfg: PublishConfig, path: Path, dest: Path) -> None:
    files = stageable_files(path)
    refuse_pickles(path, files)
    check_space_readme(path, "space")
    copy_files(path, files, dest)
