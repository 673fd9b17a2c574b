"""Small I/O helpers: atomic files and folders, JSON, hashing.

Every trustvl job writes its outputs so that an interrupted run leaves either the previous state or
the complete new one, never something half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from trustvl.errors import TrustVLInputError
from trustvl.utils.faults import fault_point


def _read_umask() -> int:
    # os.umask can only be read by setting it: do it once, at import, before any thread writes files
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success it replaces ``path`` in one ``os.replace``.

    trustvl's one atomic file writer: a reader (or a resumed run) sees either the previous file or the
    complete new one. The temporary file is hidden and ends in ``.tmp`` (``.<name>.<random>.tmp``), so a
    killed run's leftovers are recognisable; on any error it is removed and ``path`` is left as it was.
    ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8).
    """
    if mode not in ("wb", "w"):
        raise TrustVLInputError(f"mode={mode!r}; expected 'wb' or 'w'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            yield fh
        # mkstemp makes 0600 files; give the result the permissions an ordinary new file would get
        os.chmod(tmp, 0o666 & ~_UMASK)
        fault_point("atomic-write:before-rename")
        os.replace(tmp, path)
        fault_point("atomic-write:after-rename")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False, default=_json_default)
        fh.write("\n")
    return Path(path)


def print_json(obj: Any, path: str | os.PathLike | None = None, indent: int = 1) -> str:
    """Print ``obj`` as indented JSON and, with ``path``, write the same text there atomically (folders
    created): how the benchmarks report a result. Numpy scalars and arrays become numbers and lists."""
    text = json.dumps(obj, indent=indent, default=_json_default)
    print(text)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text + "\n")
    return text


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


#: text files whose contents may name their own folder (reports, cards, JSON records)
_TEXT_SUFFIXES = {".json", ".md", ".html", ".txt", ".yaml", ".yml", ".csv"}


def _relocate_text_files(stage: Path, out: Path, max_bytes: int = 64 << 20) -> None:
    """Replace the staging folder's path by the final one inside the staged text files, so that no written
    report, card or record names a hidden ``.staging-*`` folder that is gone after the rename."""
    old, new = str(stage), str(out)
    for path in stage.rglob("*"):
        if path.suffix.lower() not in _TEXT_SUFFIXES or not path.is_file() or path.stat().st_size > max_bytes:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if old in text:
            with atomic_write(path, "w") as fh:
                fh.write(text.replace(old, new))


@contextlib.contextmanager
def atomic_output_dir(out_dir: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging folder; on success it becomes ``out_dir`` in one rename.

    ``out_dir`` must not exist or be empty unless ``overwrite`` is True, in which case the old
    folder is replaced only once the new one is complete. On any error the staging folder is removed
    and ``out_dir`` is left as it was.
    """
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise TrustVLInputError(
            f"output path {str(out)!r} exists and is not a folder; expected a folder path"
        )
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise TrustVLInputError(
            f"output folder {str(out)!r} exists and is not empty; choose another folder or pass overwrite"
            " (--overwrite on the command line)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging-"))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    try:
        _relocate_text_files(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(stage, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def sha256_files(paths: list[Path], chunk: int = 1 << 22) -> str:
    """Content hash of several files (names and bytes), in the order given."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


def sha256_text(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()
