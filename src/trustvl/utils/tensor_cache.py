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
  is a miss and is rewritten. Safetensors only: nothing is unpickled;
* :class:`ShardedTensorCache` — one large tensor (a gallery's embeddings) as shards written one by one, so
  a killed run resumes with the shards it has not written.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save, save_file

from trustvl.errors import TrustVLInputError
from trustvl.utils.io import atomic_write, sha256_files, sha256_text

__all__ = ["ShardedTensorCache", "TensorCache", "cache_dir", "checkpoint_fingerprint"]


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


class ShardedTensorCache:
    """One cached ``[n_rows, ...]`` tensor stored as shards of ``shard_rows`` rows, each its own safetensors file
    in ``folder/<key>/`` (``shard-<i>-of-<n>.safetensors``, tensor ``name``), written atomically through
    :func:`trustvl.utils.io.atomic_write` (so its fault points apply). A run killed part-way keeps its finished
    shards: the next run computes only :meth:`missing` ones. A shard that is corrupt or of the wrong shape is
    missing (recomputed)."""

    def __init__(
        self,
        folder: str | os.PathLike,
        key: str,
        n_rows: int,
        shard_rows: int = 4096,
        name: str = "embeddings",
    ) -> None:
        if n_rows <= 0 or shard_rows <= 0:
            raise TrustVLInputError(
                f"n_rows={n_rows}, shard_rows={shard_rows}; expected positive integers (an empty gallery is"
                " not cached)"
            )
        self.dir = Path(folder).expanduser() / key
        self.n_rows, self.shard_rows, self.name = int(n_rows), int(shard_rows), name
        self.n_shards = -(-self.n_rows // self.shard_rows)

    def rows(self, shard: int) -> range:
        """The rows of shard ``shard``."""
        return range(shard * self.shard_rows, min((shard + 1) * self.shard_rows, self.n_rows))

    def path(self, shard: int) -> Path:
        return self.dir / f"shard-{shard:05d}-of-{self.n_shards:05d}.safetensors"

    def get(self, shard: int) -> torch.Tensor | None:
        """Shard ``shard``'s tensor, or None when it is absent or unreadable or has another row count."""
        path = self.path(shard)
        if not path.is_file():
            return None
        try:
            tensor = load_file(str(path)).get(self.name)
        except Exception:  # noqa: BLE001 - a corrupt shard is missing, rewritten by the next put
            return None
        if tensor is None or tensor.shape[0] != len(self.rows(shard)):
            return None
        return tensor

    def missing(self) -> list[int]:
        """The shards still to compute, in order."""
        return [i for i in range(self.n_shards) if self.get(i) is None]

    def put(self, shard: int, tensor: torch.Tensor, metadata: Mapping[str, str] | None = None) -> Path:
        """Write shard ``shard`` atomically."""
        if tensor.shape[0] != len(self.rows(shard)):
            raise TrustVLInputError(
                f"shard {shard} got {tensor.shape[0]} rows; expected {len(self.rows(shard))}"
            )
        path = self.path(shard)
        with atomic_write(path) as fh:
            fh.write(save({self.name: tensor.contiguous()}, metadata=dict(metadata or {})))
        return path

    def iter_shards(self) -> Iterator[torch.Tensor]:
        """The shards in order, each read from disk when it is reached (one in memory at a time); a missing
        shard raises."""
        for i in range(self.n_shards):
            part = self.get(i)
            if part is None:
                raise TrustVLInputError(f"shard {i} of {self.dir} is missing; expected every shard written")
            yield part

    def load(self) -> torch.Tensor:
        """All shards concatenated (every shard must be present)."""
        parts = [self.get(i) for i in range(self.n_shards)]
        absent = [i for i, p in enumerate(parts) if p is None]
        if absent:
            raise TrustVLInputError(
                f"shard {absent[0]} of {self.dir} is missing; expected every shard written"
            )
        return torch.cat(parts)  # type: ignore[arg-type]
