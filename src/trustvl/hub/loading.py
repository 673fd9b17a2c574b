"""Loading models and datasets from Hub ids or local paths, with clear offline errors.

Every trustvl API takes a Hub id or a local folder and goes through the real loading code
(``from_pretrained`` / ``load_dataset``). When the Hub is unreachable, a missing model or dataset
must fail at once with a message that says so, never hang and never show a raw traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.utils.tensor_cache import cache_dir

_OFFLINE_HINT = (
    "trustvl could not find it on disk and the Hugging Face Hub is not reachable"
    " (HF_HUB_OFFLINE={offline}). Pass a local folder written with save_pretrained, or run where the"
    " Hub is reachable and unset HF_HUB_OFFLINE."
)


def hub_offline() -> bool:
    """True when the Hub must not be contacted (``HF_HUB_OFFLINE`` set to a true value)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def is_local(name_or_path: str | os.PathLike) -> bool:
    return Path(name_or_path).expanduser().exists()


def _not_found(kind: str, name: str, err: BaseException | None = None) -> TrustVLInputError:
    offline = os.environ.get("HF_HUB_OFFLINE", "unset")
    msg = f"{kind} {name!r} could not be loaded: " + _OFFLINE_HINT.format(offline=offline)
    if err is not None:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        msg += f" (cause: {first[:200]})"
    return TrustVLInputError(msg)


def _check_reachable(kind: str, name: str) -> None:
    """Fail fast for a non-local name when offline, before any library would try the network."""
    if not is_local(name) and hub_offline():
        # Let the library look in its own cache first; we only pre-empt when nothing is cached.
        try:
            from huggingface_hub import snapshot_download

            snapshot_download(
                name, local_files_only=True, repo_type="model" if kind == "model" else "dataset"
            )
        except Exception as err:  # noqa: BLE001 - any failure here means "not available offline"
            raise _not_found(kind, name, err) from None


def load_pretrained(cls: Any, name_or_path: str | os.PathLike, kind: str = "model", **kwargs: Any) -> Any:
    """``cls.from_pretrained(name_or_path, **kwargs)`` with a clear error when it cannot be found.

    ``cls`` is any class with ``from_pretrained`` (a transformers model/processor, a diffusers
    pipeline). Local folders and cached Hub ids load offline; anything else raises
    :class:`~trustvl.errors.TrustVLInputError` naming the id and mentioning ``HF_HUB_OFFLINE``.
    """
    name = str(name_or_path)
    _check_reachable(kind, name)
    try:
        return cls.from_pretrained(name, **kwargs)
    except (OSError, FileNotFoundError) as err:
        raise _not_found(kind, name, err) from None


#: the record trustvl's resumable builders keep next to their shards (``status``: in progress / complete)
BUILD_RECORD = "build_config.json"


#: SynthWorld's record, written first; its card (README.md) is written last
SYNTHWORLD_RECORD = "synthworld_config.json"


def _refuse_unfinished_build(path: Path) -> None:
    """A local dataset folder whose build was interrupted holds only some of its shards: refuse it."""
    if (path / SYNTHWORLD_RECORD).is_file() and not (path / "README.md").is_file():
        raise TrustVLInputError(
            f"dataset {str(path)!r} is an unfinished build ({SYNTHWORLD_RECORD} but no README.md card yet):"
            " rerun the same `trustvl build synthworld` command with --resume to finish it"
        )
    record = path / BUILD_RECORD
    if not record.is_file():
        return
    try:
        status = json.loads(record.read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        status = None
    if status != "complete":
        raise TrustVLInputError(
            f"dataset {str(path)!r} is an unfinished build ({BUILD_RECORD} says status={status!r}, expected"
            " 'complete'): rerun the same `trustvl build …` command with --resume to finish it"
        )


def _folder_fingerprint(path: Path) -> str:
    """Hash of a local dataset folder: its absolute path and every file's relative path, size and mtime.

    ``datasets`` caches the Arrow copy of a local folder whose card lists its data files under a key of the
    folder's *name* and card, not its place or content: a second folder of the same name (another build, or
    the same folder rebuilt) would get the first one's rows. A cache folder per fingerprint keeps them apart.
    """
    digest = hashlib.sha256(str(path.resolve()).encode())
    for file in sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def load_dataset_any(name_or_path: str | os.PathLike, split: str | None = None, **kwargs: Any) -> Any:
    """``datasets.load_dataset`` for a Hub id, a local dataset folder, Parquet file(s) or an imagefolder.

    A folder saved with ``save_to_disk`` is loaded with ``load_from_disk``. Errors become
    :class:`~trustvl.errors.TrustVLInputError` naming the dataset.
    """
    import datasets

    name = str(name_or_path)
    path = Path(name).expanduser()
    _refuse_unfinished_build(path)
    try:
        saved_dict = (path / "dataset_dict.json").exists()  # DatasetDict.save_to_disk
        # Dataset.save_to_disk
        saved_split = (path / "dataset_info.json").exists() and (path / "state.json").exists()
        if path.is_dir() and (saved_dict or saved_split):
            ds = datasets.load_from_disk(str(path))
            return ds[split] if split is not None and isinstance(ds, datasets.DatasetDict) else ds
        if path.is_file() and path.suffix == ".parquet":  # one file is one split: whichever name is asked
            name_of_split = split or "train"
            return datasets.load_dataset(
                "parquet", data_files={name_of_split: str(path)}, split=name_of_split, **kwargs
            )
        if not path.exists() and hub_offline():
            raise _not_found("dataset", name)
        if path.is_dir() and "cache_dir" not in kwargs and not kwargs.get("streaming"):
            kwargs["cache_dir"] = str(cache_dir("datasets") / _folder_fingerprint(path))
        return datasets.load_dataset(str(path) if path.exists() else name, split=split, **kwargs)
    except TrustVLInputError:
        raise
    except ValueError as err:
        # e.g. an unknown split: keep the library's explanation, name the dataset.
        raise TrustVLInputError(f"dataset {name!r}: {err}") from None
    except (OSError, FileNotFoundError) as err:
        raise _not_found("dataset", name, err) from None
    except Exception as err:  # datasets raises its own DatasetNotFoundError etc.
        if type(err).__name__ in {"DatasetNotFoundError", "DataFilesNotFoundError", "EmptyDatasetError"}:
            raise _not_found("dataset", name, err) from None
        raise
