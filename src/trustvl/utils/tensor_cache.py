"""The on-disk tensor cache shared by trustvl's jobs, keyed by content fingerprints.

Two jobs cache what a frozen model computes once: the audit its gallery's image embeddings
(:mod:`trustvl.evaluation.audit`, folder ``embeddings``) and Safe-CLIP training its reference embeddings
(:mod:`trustvl.training.safe_clip.reference`, folder ``safe_clip_references``). Both use this module:

* :func:`cache_dir` — ``$TRUSTVL_CACHE/<name>``, else ``$HF_HOME/trustvl/<name>``, else
  ``~/.cache/trustvl/<name>``;
* :func:`checkpoint_fingerprint` — a content hash of a checkpoint, so a changed model never reads a stale
  entry;
* :class:`TensorCache` — a folder of ``<key>.safetensors`` files holding named tensors, written atomically
  (a temporary file, then a rename); an entry that is corrupt, lacks a tensor or has the wrong number of rows
  is a miss and is rewritten. Safetensors only: nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from trustvl.utils.io import sha256_files, sha256_text

__all__ = ["TensorCache", "cache_dir", "checkpoint_fingerprint"]


def cache_dir(name: str) -> Path:
    """The folder ``name`` under trustvl's cache root (``$TRUSTVL_CACHE``, ``$HF_HOME/trustvl`` or
    ``~/.cache/trustvl``)."""
    root = os.environ.get("TRUSTVL_CACHE")
    if root:
        return Path(root).expanduser() / name
    hf_home = os.environ.get("HF_HOME")
    base = Path(hf_home).expanduser() / "trustvl" if hf_home else Path.home() / ".cache" / "trustvl"
    return base / name


def checkpoint_fingerprint(name_or_path: str | os.PathLike, model: torch.nn.Module | None = None) -> str:
    """Content hash of a checkpoint's ``*.json`` and ``*.safetensors`` files: a local folder, or a Hub id's
    locally cached snapshot (never downloaded); otherwise of ``model``'s weights when given, else of the name."""
    path: Path | None = Path(os.fspath(name_or_path)).expanduser()
    if not path.is_dir():
        try:
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(os.fspath(name_or_path), local_files_only=True))
        except Exception:  # noqa: BLE001 - not a cached Hub id: hash the weights in memory, or the name
            path = None
    if path is not None and path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in {".json", ".safetensors"})
        if files:
            return sha256_files(files)
    if model is None:
        return sha256_text(os.fspath(name_or_path))
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


class TensorCache:
    """A folder of ``<key>.safetensors`` entries, each holding named tensors with the same number of rows."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.dir = Path(folder).expanduser()

    @staticmethod
    def key(**parts: Any) -> str:
        """A 40-hex-digit key of everything the entry depends on (JSON of ``parts``, keys sorted)."""
        return sha256_text(json.dumps(parts, sort_keys=True, default=str))[:40]

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.safetensors"

    def get(
        self, key: str, names: Sequence[str], expected_rows: int | None = None
    ) -> dict[str, torch.Tensor] | None:
        """The tensors ``names`` of entry ``key``, or None on a miss (absent, corrupt, a tensor missing or of
        another row count)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            stored = load_file(str(path))
        except Exception:  # noqa: BLE001 - a corrupt entry is a miss, rewritten by the next put
            return None
        if any(n not in stored for n in names):
            return None
        if expected_rows is not None and any(stored[n].shape[0] != expected_rows for n in names):
            return None
        return {n: stored[n] for n in names}

    def put(
        self, key: str, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
    ) -> Path:
        """Write entry ``key`` atomically (a reader never sees half a file)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file({n: t.contiguous() for n, t in tensors.items()}, str(tmp), metadata=dict(metadata or {}))
        os.replace(tmp, path)
        return path
