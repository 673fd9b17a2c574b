"""The files shipped inside the package (``trustvl/assets``) and the embedded default models.

One lookup for every embedded default: :func:`embedded_model_dir` resolves a shipped model folder (or
the folder an environment variable names instead) and checks that it holds the model, so every default
fails the same way, naming the folder and the variable, when a model is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

from trustvl.errors import TrustVLInputError

__all__ = ["ASSETS_DIR", "asset_path", "embedded_model_dir"]

#: the package's shipped files
ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"


def asset_path(*parts: str) -> Path:
    """The path of a shipped file or folder, ``trustvl/assets/<parts...>`` (not checked)."""
    return ASSETS_DIR.joinpath(*parts)


def embedded_model_dir(name: str, *, env: str, marker: str, what: str, made_by: str) -> Path:
    """Folder of the embedded model ``assets/models/<name>``, or of the folder ``$env`` names instead.

    Args:
        name: the model's folder under ``assets/models``.
        env: the environment variable that overrides the folder.
        marker: a file the folder must hold (``config.json``, ``model_index.json``).
        what: how errors name the model (``"SynthWorld CLIP"``).
        made_by: the command that writes such a folder (``"trustvl train synthworld-clip"``).

    Raises:
        TrustVLInputError: the folder lacks ``marker``.
    """
    override = os.environ.get(env)
    path = Path(override).expanduser() if override else asset_path("models", name)
    if not (path / marker).is_file():
        raise TrustVLInputError(
            f"the default {what} is not at {str(path)!r}; expected a folder written by `{made_by}`"
            f" (reinstall trustvl, or set {env})"
        )
    return path
