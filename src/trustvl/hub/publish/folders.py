"""Small file-system pieces every kind's staging uses: the source folder, a README's front matter, copying."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trustvl.errors import TrustVLInputError

__all__ = ["copy_files", "existing_dir", "front_matter"]


def existing_dir(path: str | os.PathLike, kind: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise TrustVLInputError(f"{kind} path {str(path)!r} does not exist; expected a local folder")
    if not p.is_dir():
        raise TrustVLInputError(f"{kind} path {str(path)!r} is not a folder; expected a local folder")
    return p.resolve()


def front_matter(readme: Path) -> dict[str, Any]:
    """The YAML front matter of ``readme`` (``{}`` when the file is missing or has none)."""
    from huggingface_hub import metadata_load

    if not readme.is_file():
        return {}
    try:
        return metadata_load(readme) or {}
    except Exception as err:  # a YAML error: name the file
        raise TrustVLInputError(f"{str(readme)!r} has unreadable YAML front matter: {err}") from None


def copy_files(root: Path, files: Iterable[Path], dest: Path) -> None:
    """Copy ``files`` (under ``root``) to the same relative paths under ``dest``."""
    for src in files:
        target = dest / src.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
