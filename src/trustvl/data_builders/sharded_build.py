"""The resumable, fingerprinted Parquet build that every trustvl dataset writer shares.

A build writes a dataset folder::

    <out>/data/<split>-XXXXX-of-YYYYY.parquet    the shards (:mod:`.parquet_shards` names and writes them)
    <out>/build_config.json                       the build record: builder, status, fingerprint, settings
    <out>/README.md                               the dataset card, written last

and follows four rules, held here once:

* **Fingerprint.** The build's settings (config and the stages' descriptions) hash to one fingerprint
  (:func:`build_fingerprint`); the record and every shard's schema metadata carry it. A folder holding a
  build with another fingerprint is refused unless ``overwrite`` (then it is replaced).
* **Atomic shards.** A shard is written to a hidden temporary file and renamed into place, so it is either
  absent or complete; :meth:`ShardedBuild.prepare` deletes the temporary files a killed run left.
* **Resume.** A complete shard of this fingerprint is skipped (:meth:`ShardedBuild.shard_is_done`); one of
  another fingerprint raises. A killed build resumes with no duplicate and no gap.
* **Card written last.** The card and the ``"complete"`` record are written only after every shard
  (:meth:`ShardedBuild.finish`), so a folder with a card is a finished build and readers such as
  ``load_quadruplets`` refuse a folder without one.

Image cells are PNG-encoded with :func:`png_bytes` (one encoder, so every builder's bytes agree).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from trustvl.data_builders.parquet_shards import (
    DATA_DIR,
    read_shard_metadata,
    remove_partial_shards,
    shard_file_name,
    write_parquet_shard,
)
from trustvl.errors import TrustVLInputError
from trustvl.hub.dataset_cards import CARD_FILE, DatasetCardMetadata, write_dataset_card
from trustvl.hub.loading import BUILD_RECORD
from trustvl.utils.io import sha256_text, write_json

__all__ = [
    "BUILD_RECORD",
    "SHARD_META_KEY",
    "ShardedBuild",
    "build_fingerprint",
    "png_bytes",
    "png_cell",
    "prepare_shard_folder",
    "read_build_record",
]

#: the Parquet schema-metadata key under which each shard records its build (fingerprint, counts)
SHARD_META_KEY = "trustvl"


def png_bytes(image: Image.Image | np.ndarray, *, compress_level: int | None = None) -> bytes:
    """``image`` (a PIL image or a uint8/bool array) encoded as PNG; ``compress_level`` None: Pillow's."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    buf = io.BytesIO()
    options = {} if compress_level is None else {"compress_level": compress_level}
    pil.save(buf, format="PNG", **options)
    return buf.getvalue()


def png_cell(image: Image.Image | np.ndarray, *, compress_level: int | None = None) -> dict[str, Any]:
    """An ``Image()`` feature's encoded value: ``{"bytes": PNG, "path": None}``."""
    return {"bytes": png_bytes(image, compress_level=compress_level), "path": None}


def build_fingerprint(settings: Mapping[str, Any]) -> str:
    """sha256 of ``settings`` as sorted JSON (anything not JSON-able by its ``str``)."""
    return sha256_text(json.dumps(dict(settings), sort_keys=True, default=str))


def read_build_record(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The build record of the folder ``out_dir``; None when absent or unreadable."""
    path = Path(out_dir) / BUILD_RECORD
    if not path.is_file():
        return None
    with contextlib.suppress(ValueError, OSError):
        record = json.loads(path.read_text(encoding="utf-8"))
        return record if isinstance(record, dict) else None
    return None


def prepare_shard_folder(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir/data`` and delete the temporary files a killed build left there and in ``out_dir``
    (a shard, record or card whose atomic write it interrupted); return the data folder."""
    out = Path(out_dir)
    data = out / DATA_DIR
    data.mkdir(parents=True, exist_ok=True)
    remove_partial_shards(data)
    remove_partial_shards(out)
    return data


def _shard_meta(path: str | os.PathLike) -> dict[str, Any] | None:
    meta = read_shard_metadata(path, SHARD_META_KEY)
    return meta if isinstance(meta, dict) else None


class ShardedBuild:
    """One fingerprinted build of a dataset folder (see the module doc for the rules).

    Args:
        out_dir: the dataset folder.
        builder: the builder's dotted name (stored in the record).
        fingerprint: :func:`build_fingerprint` of the build's settings.
        settings: what the record stores besides builder, status and fingerprint (config, stages, ...).
        kind: how errors name this kind of build (``"quadruplet build"``).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        *,
        builder: str,
        fingerprint: str,
        settings: Mapping[str, Any],
        kind: str,
    ) -> None:
        self.out = Path(out_dir).expanduser().resolve()
        self.builder, self.fingerprint, self.kind = builder, fingerprint, kind
        self.settings = dict(settings)
        self.created = False

    # ------------------------------------------------------------------------------------------ folder
    def shard_path(self, split: str, index: int, n_shards: int) -> Path:
        """Path of shard ``index`` of ``n_shards`` of ``split``."""
        return self.out / DATA_DIR / shard_file_name(split, index, n_shards)

    def existing_fingerprint(self) -> str | None:
        """The fingerprint of the build already in the folder: from its record, else from its shards."""
        if (self.out / BUILD_RECORD).is_file():
            record = read_build_record(self.out) or {}
            return str(record.get("fingerprint") or "") or None
        prints = {(_shard_meta(p) or {}).get("fingerprint") for p in (self.out / DATA_DIR).glob("*.parquet")}
        return prints.pop() if len(prints) == 1 and None not in prints else None

    def prepare(self, overwrite: bool) -> None:
        """Make the folder ready: refuse (or, with ``overwrite``, replace) another build or other files,
        delete a killed run's temporary files; sets :attr:`created` when this call made the folder."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise TrustVLInputError(
                f"output path {str(out)!r} exists and is not a folder; expected a folder path"
            )
        self.created = not out.exists()
        if out.exists() and any(out.iterdir()):
            existing = self.existing_fingerprint()
            if overwrite:
                shutil.rmtree(out)
                self.created = True
            elif existing is None:
                raise TrustVLInputError(
                    f"output folder {str(out)!r} is not empty and holds no {self.kind} ({BUILD_RECORD} missing);"
                    " choose another folder or pass overwrite=True (--overwrite)"
                )
            elif existing != self.fingerprint:
                raise TrustVLInputError(
                    f"output folder {str(out)!r} holds a build with another config or other stages (fingerprint"
                    f" {existing[:12]}..., this build {self.fingerprint[:12]}...); choose another folder or pass"
                    " overwrite=True (--overwrite)"
                )
        prepare_shard_folder(out)

    def write_record(self, status: str, **extra: Any) -> None:
        """Write the build record with ``status`` (``"in progress"`` / ``"complete"``) and ``extra`` entries."""
        record = {"builder": self.builder, "status": status, "fingerprint": self.fingerprint}
        write_json(self.out / BUILD_RECORD, {**record, **self.settings, **extra})

    # ------------------------------------------------------------------------------------------ shards
    def shard_is_done(self, path: Path) -> bool:
        """True for a complete shard of this build, False for an absent one; raises for another build's."""
        if not path.is_file():
            return False
        meta = _shard_meta(path)
        if meta is None or meta.get("fingerprint") != self.fingerprint:
            raise TrustVLInputError(
                f"shard {str(path)!r} was not written by this build (fingerprint differs); remove it or pass"
                " overwrite=True"
            )
        return True

    def write_shard(
        self, path: Path, columns: Mapping[str, Sequence[Any]], features: Any, meta: Mapping[str, Any]
    ) -> None:
        """Write one shard atomically; its schema metadata holds ``meta`` and this build's fingerprint."""
        write_parquet_shard(
            path, columns, features, metadata={SHARD_META_KEY: {**meta, "fingerprint": self.fingerprint}}
        )

    @staticmethod
    def shard_meta(path: Path) -> dict[str, Any] | None:
        """What the shard at ``path`` says about its build; None when absent or not one of ours."""
        return _shard_meta(path)

    # ------------------------------------------------------------------------------------------ end
    def finish(
        self,
        card: DatasetCardMetadata,
        template: str,
        values: Mapping[str, Any],
        summary: Mapping[str, Any],
    ) -> None:
        """Write the card (``template`` rendered with ``values``), then mark the record complete with
        ``summary``: the last step, after every shard."""
        write_dataset_card(self.out, card, template=template, **values)
        self.write_record("complete", summary=dict(summary))

    def remove(self, shard_paths: Sequence[Path]) -> None:
        """Delete ``shard_paths``, the record and the card, and the folder when this build made it (or it is
        then empty): what a build that produced nothing leaves behind."""
        for path in shard_paths:
            path.unlink(missing_ok=True)
        for name in (BUILD_RECORD, CARD_FILE):
            (self.out / name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (self.out / DATA_DIR).rmdir()
        if self.created or not any(self.out.iterdir()):
            with contextlib.suppress(OSError):
                self.out.rmdir()
