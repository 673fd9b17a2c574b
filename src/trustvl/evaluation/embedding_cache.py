"""On-disk cache of image embeddings, keyed by model and dataset fingerprints.

A second audit of the same (model, dataset, split, image column, preprocessing, dtype, subset) skips
embedding. Entries are safetensors files written atomically; a corrupt or mismatching entry is
ignored and rewritten.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from trustvl.utils.io import sha256_files, sha256_text


def default_cache_dir() -> Path:
    """``$TRUSTVL_CACHE`` or ``$HF_HOME/trustvl`` or ``~/.cache/trustvl``, plus ``/embeddings``."""
    root = os.environ.get("TRUSTVL_CACHE")
    if root:
        return Path(root).expanduser() / "embeddings"
    hf_home = os.environ.get("HF_HOME")
    base = Path(hf_home).expanduser() / "trustvl" if hf_home else Path.home() / ".cache" / "trustvl"
    return base / "embeddings"


def model_fingerprint(name_or_path: str, model: Any = None) -> str:
    """Content hash of a local checkpoint's config and weights; for a Hub id, the cached snapshot's."""
    path = Path(str(name_or_path)).expanduser()
    if not path.is_dir():
        try:
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(str(name_or_path), local_files_only=True))
        except Exception:  # noqa: BLE001 - fall back to hashing the weights in memory
            path = None  # type: ignore[assignment]
    if path is not None and path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in {".safetensors", ".json"} and p.is_file())
        if files:
            return sha256_files(files)
    if model is None:
        return sha256_text(str(name_or_path))
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


class EmbeddingCache:
    """A folder of ``<key>.safetensors`` files holding one ``embeddings`` tensor each."""

    def __init__(self, cache_dir: str | os.PathLike | None = None) -> None:
        self.dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()

    @staticmethod
    def key(**parts: Any) -> str:
        return sha256_text(json.dumps(parts, sort_keys=True, default=str))[:40]

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.safetensors"

    def get(self, key: str, expected_rows: int | None = None) -> torch.Tensor | None:
        p = self.path(key)
        if not p.exists():
            return None
        try:
            emb = load_file(str(p))["embeddings"]
        except Exception:  # noqa: BLE001 - corrupt entry: treat as a miss
            return None
        if expected_rows is not None and emb.shape[0] != expected_rows:
            return None
        return emb

    def put(self, key: str, embeddings: torch.Tensor, metadata: dict[str, str] | None = None) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        p = self.path(key)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        save_file({"embeddings": embeddings.contiguous()}, str(tmp), metadata=metadata or {})
        os.replace(tmp, p)
        return p
