"""Images handed to a web UI as files that are written once and never rewritten.

Gradio saves every PIL image a callback returns into its cache by rewriting the file named after the
image's bytes, even when that file exists (gradio 6: ``save_pil_to_cache``). When two calls return the same
image (a re-ranked gallery at a new α, the same seed twice), the browser can fetch the file while the second
call is truncating and rewriting it: the server then sends more bytes than the Content-Length it declared
and the image never loads. Files returned as paths are copied into the cache only when missing, under a
temporary name renamed into place, so handing Gradio a path to a file written once avoids the race.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["image_file"]

_DEFAULT_FOLDER: Path | None = None


def _default_folder() -> Path:
    global _DEFAULT_FOLDER
    if _DEFAULT_FOLDER is None:
        _DEFAULT_FOLDER = Path(tempfile.mkdtemp(prefix="trustvl-images-"))
    return _DEFAULT_FOLDER


def image_file(image: Image.Image | np.ndarray, folder: str | os.PathLike | None = None) -> str:
    """Path of a PNG holding ``image`` (a PIL image or a ``uint8`` array ``[H, W]`` / ``[H, W, C]``), named by
    its content; written (atomically) only if missing. ``folder`` defaults to one temporary folder per process.
    """
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image))
    folder = Path(folder) if folder is not None else _default_folder()
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(f"{image.mode}{image.size}".encode() + image.tobytes()).hexdigest()
    path = folder / f"{digest}.png"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".png.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                image.save(f, format="PNG")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return str(path)
