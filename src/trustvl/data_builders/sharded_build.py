"""The resumable, fingerprinted Parquet build that every trustvl dataset writer shares.

A build writes a dataset folder::

    <out>/data/<split>-XXXXX-of-YYYYY.parquet    the shards (:mod:`.parquet_shards` names and writes them)
    <out>/build_config.json                       the build record: builder, status, fingerprint, settings
    <out>/README.md                               the dataset card, written last

and follows four rules, held here once. A builder keeps its record in one of three ways:

* a **status record** (the default; CF_α counterfactuals, Safe-CLIP quadruplets): ``build_config.json``
  says ``"in progress"`` then ``"complete"``, and every shard's schema metadata carries the fingerprint;
* a **manifest** (:class:`Manifest`; SynthWorld's ``synthworld_config.json``): the build's settings as fixed
  text, written first and compared as text; shards carry no metadata, a shard is complete when it holds its
  rows, and the build is complete when its card exists (``hub.loading`` refuses a manifest without a card);
* **no record** (:meth:`ShardedBuild.staged`; spurious digits, unsafe captions, generated images): a build
  small enough to write whole, staged in a hidden folder and renamed into place in one step, so the folder
  is absent or complete and there is nothing to resume.

The rules:

* **Fingerprint.** The build's settings (config and the stages' descriptions) hash to one fingerprint
  (:func:`build_fingerprint`); the record and every shard's schema metadata carry it. A folder holding a
  build with another fingerprint is refused unless ``overwrite`` (then it is replaced).
  (A manifest build's fingerprint is the hash of its manifest text; a staged build needs none.)
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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from trustvl.data_builders.parquet_shards import (
    DATA_DIR,
    parquet_num_rows,
    read_shard_metadata,
    remove_partial_shards,
    shard_file_name,
    write_parquet_shard,
)
from trustvl.errors import TrustVLInputError
from trustvl.hub.dataset_cards import CARD_FILE, DatasetCardMetadata, write_dataset_card
from trustvl.hub.loading import BUILD_RECORD
from trustvl.utils.io import atomic_output_dir, sha256_text, write_json, write_text

__all__ = [
    "BUILD_RECORD",
    "Manifest",
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


@dataclass(frozen=True)
class Manifest:
    """A build record that is the build's settings as fixed text (indented, sorted JSON), written before the
    first shard and compared as text on a rerun (SynthWorld's ``synthworld_config.json``)."""

    name: str
    settings: Mapping[str, Any]

    @property
    def text(self) -> str:
        return json.dumps(dict(self.settings), indent=2, sort_keys=True) + "\n"


#: the three ways a build keeps its record (see the module doc)
_STATUS, _MANIFEST, _STAGED = "status", "manifest", "staged"


class ShardedBuild:
    """One fingerprinted build of a dataset folder (see the module doc for the rules).

    Args:
        out_dir: the dataset folder.
        builder: the builder's dotted name (stored in the record).
        fingerprint: :func:`build_fingerprint` of the build's settings (status record only).
        settings: what the record stores besides builder, status and fingerprint (config, stages, ...).
        kind: how errors name this kind of build (``"quadruplet build"``).
        manifest: keep the record as this :class:`Manifest` instead of a status record (then
            ``fingerprint`` and ``settings`` are not given: the manifest is both).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        *,
        builder: str,
        kind: str,
        fingerprint: str | None = None,
        settings: Mapping[str, Any] | None = None,
        manifest: Manifest | None = None,
    ) -> None:
        self.out = Path(out_dir).expanduser().resolve()
        self.builder, self.kind, self.manifest = builder, kind, manifest
        if manifest is not None:
            if fingerprint is not None or settings is not None:
                raise TrustVLInputError(
                    "a manifest build takes no fingerprint or settings; expected the manifest alone"
                )
            self.mode, fingerprint = _MANIFEST, sha256_text(manifest.text)
        else:
            self.mode = _STATUS if fingerprint is not None else _STAGED
        self.fingerprint = fingerprint
        self.settings = dict(settings or {})
        self.created = False
        self.finished = False

    @classmethod
    @contextlib.contextmanager
    def staged(
        cls, out_dir: str | os.PathLike, *, builder: str, kind: str, overwrite: bool
    ) -> Iterator[ShardedBuild]:
        """A build written whole (no record, no resume): yields a build of a hidden staging folder that
        becomes ``out_dir`` in one rename when the block ends after :meth:`finish`; on any error it is
        removed and ``out_dir`` is left as it was. ``out_dir`` must be absent or empty unless ``overwrite``."""
        with atomic_output_dir(out_dir, overwrite=overwrite) as stage:
            build = cls(stage, builder=builder, kind=kind)
            prepare_shard_folder(stage)
            yield build
            if not build.finished:
                raise RuntimeError(f"{kind}: the staged build ended before finish() wrote its card")
            stage.chmod(0o755)  # mkdtemp makes 0700 folders; a dataset folder is meant to be shared

    # ------------------------------------------------------------------------------------------ folder
    def shard_path(self, split: str, index: int, n_shards: int) -> Path:
        """Path of shard ``index`` of ``n_shards`` of ``split``."""
        return self.out / DATA_DIR / shard_file_name(split, index, n_shards)

    def existing_fingerprint(self) -> str | None:
        """The fingerprint of the build already in the folder: from its record, else from its shards."""
        if self.manifest is not None:
            path = self.out / self.manifest.name
            return sha256_text(path.read_text(encoding="utf-8")) if path.is_file() else None
        if (self.out / BUILD_RECORD).is_file():
            record = read_build_record(self.out) or {}
            return str(record.get("fingerprint") or "") or None
        prints = {(_shard_meta(p) or {}).get("fingerprint") for p in (self.out / DATA_DIR).glob("*.parquet")}
        return prints.pop() if len(prints) == 1 and None not in prints else None

    def prepare(self, overwrite: bool) -> None:
        """Make the folder ready: refuse (or, with ``overwrite``, replace) another build or other files,
        delete a killed run's temporary files; sets :attr:`created` when this call made the folder."""
        out = self.out
        if self.mode == _STAGED:
            raise TrustVLInputError(
                "a staged build is prepared by ShardedBuild.staged(); expected no prepare()"
            )
        if out.exists() and not out.is_dir():
            raise TrustVLInputError(
                f"output path {str(out)!r} exists and is not a folder; expected a folder path"
            )
        self.created = not out.exists()
        if self.manifest is not None:
            self._prepare_manifest_folder(overwrite)
        elif out.exists() and any(out.iterdir()):
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

    def _prepare_manifest_folder(self, overwrite: bool) -> None:
        # a manifest build owns its manifest, card and data folder only: other files in the folder are kept,
        # and overwrite clears just those three
        assert self.manifest is not None
        out, name, data = self.out, self.manifest.name, self.out / DATA_DIR
        existing = self.existing_fingerprint()
        if existing is not None and existing != self.fingerprint:
            if not overwrite:
                raise TrustVLInputError(
                    f"{out} already holds a {self.kind} built with other arguments ({name} differs); "
                    "pass overwrite=True to rebuild it or choose another out_dir"
                )
            shutil.rmtree(data, ignore_errors=True)
            for stale in (name, CARD_FILE):
                (out / stale).unlink(missing_ok=True)
        elif existing is None and data.is_dir() and any(data.glob("*.parquet")):
            if not overwrite:
                raise TrustVLInputError(
                    f"{data} holds Parquet files but no {name}; pass overwrite=True or another out_dir"
                )
            shutil.rmtree(data)

    def write_record(self, status: str, **extra: Any) -> None:
        """Write the build record with ``status`` (``"in progress"`` / ``"complete"``) and ``extra`` entries.

        A manifest build writes its manifest for ``"in progress"`` (its card marks it complete); a staged
        build keeps no record."""
        if self.manifest is not None:
            if status != "complete":
                write_text(self.out / self.manifest.name, self.manifest.text)
            return
        if self.mode == _STAGED:
            return
        record = {"builder": self.builder, "status": status, "fingerprint": self.fingerprint}
        write_json(self.out / BUILD_RECORD, {**record, **self.settings, **extra})

    # ------------------------------------------------------------------------------------------ shards
    def shard_is_done(self, path: Path, n_rows: int | None = None) -> bool:
        """True for a complete shard of this build, False for an absent one; raises for another build's.

        A manifest build's shards carry no fingerprint: one is complete when it holds ``n_rows`` rows (any
        other file at its path is rewritten)."""
        if self.manifest is not None:
            if n_rows is None:
                raise TrustVLInputError(
                    "a manifest build's shard_is_done needs n_rows; expected the shard's rows"
                )
            return parquet_num_rows(path) == n_rows
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
        self,
        path: Path,
        columns: Mapping[str, Sequence[Any]],
        features: Any,
        meta: Mapping[str, Any] | None = None,
        *,
        hub_layout: bool = False,
    ) -> int:
        """Write one shard atomically and return its rows. A status build's shard carries ``meta`` and this
        build's fingerprint in its schema metadata; the shards of the other builds carry none (``meta`` must
        then be empty). ``hub_layout``: ``datasets``' own Parquet layout (see :func:`write_parquet_shard`)."""
        if self.mode != _STATUS:
            if meta:
                raise TrustVLInputError(
                    f"shard metadata {dict(meta)!r} given to a {self.mode} build; expected none (its shards"
                    " carry no metadata)"
                )
            return write_parquet_shard(path, columns, features, hub_layout=hub_layout)
        return write_parquet_shard(
            path,
            columns,
            features,
            metadata={SHARD_META_KEY: {**(meta or {}), "fingerprint": self.fingerprint}},
            hub_layout=hub_layout,
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
        summary: Mapping[str, Any] | None = None,
        *,
        files: Mapping[str, Any] | None = None,
    ) -> None:
        """The last step, after every shard: write ``files`` (name -> JSON-able value, e.g. a summary),
        then the card (``template`` rendered with ``values``), then mark a status record complete with
        ``summary``."""
        for name, value in (files or {}).items():
            write_json(self.out / name, value)
        write_dataset_card(self.out, card, template=template, **values)
        self.write_record("complete", summary=dict(summary or {}))
        self.finished = True

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
