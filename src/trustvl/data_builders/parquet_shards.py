"""Parquet shards of a Hugging Face dataset folder: names, ranges, atomic writes and resume checks.

Every trustvl dataset builder writes its rows through this module, so all of them share one layout
(``data/<split>-<index:05d>-of-<n:05d>.parquet``) and one failure behaviour: a shard is written to a hidden
temporary file next to its final path and renamed into place (:func:`trustvl.utils.io.atomic_write`), so a
shard is either absent or complete. A killed build leaves only complete shards (plus ``.*.tmp`` leftovers,
which :func:`remove_partial_shards` deletes), and a resumed build skips the complete ones.

Shard ranges are produced lazily (:func:`shard_ranges`), so a builder never holds a list of every shard.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.utils.io import atomic_write

__all__ = [
    "DATA_DIR",
    "count_shards",
    "parquet_num_rows",
    "parquet_uncompressed_bytes",
    "read_shard_metadata",
    "remove_partial_shards",
    "shard_file_name",
    "shard_ranges",
    "write_parquet_shard",
]

#: the folder (inside a dataset folder) that holds the shards
DATA_DIR = "data"


def shard_file_name(split: str, index: int, n_shards: int) -> str:
    """``<split>-<index:05d>-of-<n_shards:05d>.parquet``, the Hub's shard naming."""
    if not 0 <= index < n_shards:
        raise TrustVLInputError(
            f"shard index={index!r} with n_shards={n_shards!r}; expected 0 <= index < n_shards"
        )
    return f"{split}-{index:05d}-of-{n_shards:05d}.parquet"


def count_shards(n_rows: int, shard_size: int) -> int:
    """How many shards of at most ``shard_size`` rows hold ``n_rows`` rows (0 for no rows)."""
    if shard_size < 1:
        raise TrustVLInputError(f"shard_size={shard_size!r}; expected an int >= 1")
    return -(-n_rows // shard_size) if n_rows > 0 else 0


def shard_ranges(n_rows: int, shard_size: int) -> Iterator[tuple[int, int, int]]:
    """``(shard index, first row, end row)`` of each shard, in order, lazily (end exclusive)."""
    for index in range(count_shards(n_rows, shard_size)):
        start = index * shard_size
        yield index, start, min(n_rows, start + shard_size)


def write_parquet_shard(
    path: str | os.PathLike,
    columns: Mapping[str, Sequence[Any]],
    features: Any,
    *,
    metadata: Mapping[str, Any] | None = None,
    hub_layout: bool = False,
) -> int:
    """Write ``columns`` (feature name -> values, one per row) as one Parquet file, atomically.

    Values are encoded with ``features`` (a ``datasets.Features``: PIL images or ``{"bytes", "path"}``
    dicts for ``Image()``, label indices for ``ClassLabel``), and the file's schema carries the features,
    so ``datasets`` reads them back exactly.

    Args:
        path: the shard's final path (its folder is created).
        columns: every feature's column, in any order (stored in the order of ``features``).
        features: the ``datasets.Features`` of the dataset.
        metadata: extra entries of the Parquet schema metadata (key -> JSON-able value, stored as JSON),
            e.g. what a resumed build needs to recognise its own shards (:func:`read_shard_metadata`).
        hub_layout: write the file as ``datasets.Dataset.to_parquet`` does (row groups sized for the
            features, a page index and content-defined chunking, which lets the Hub deduplicate
            re-uploads); default: one row group, plain pyarrow settings (snappy).

    Returns:
        The number of rows written.
    """
    names = list(features)
    missing = [name for name in names if name not in columns]
    if missing:
        raise TrustVLInputError(f"columns lack {missing}; expected one column per feature {names}")
    lengths = {len(columns[name]) for name in names}
    if len(lengths) > 1:
        raise TrustVLInputError(f"columns have lengths {sorted(lengths)}; expected one length for all")
    n_rows = lengths.pop() if lengths else 0
    ordered = {name: list(columns[name]) for name in names}
    with atomic_write(path, "wb") as fh:
        if hub_layout:
            if metadata:
                raise TrustVLInputError(
                    "metadata is not supported with hub_layout=True; expected one of them"
                )
            from datasets import Dataset

            Dataset.from_dict(ordered, features=features).to_parquet(fh)
        else:
            _write_plain(fh, ordered, features, metadata)
    return n_rows


def _write_plain(
    fh: Any, columns: dict[str, list[Any]], features: Any, metadata: Mapping[str, Any] | None
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = features.arrow_schema
    table = pa.Table.from_pydict(features.encode_batch(columns), schema=schema)
    if metadata:
        merged = dict(schema.metadata or {})
        for key, value in metadata.items():
            merged[key.encode()] = json.dumps(value, sort_keys=True).encode()
        table = table.replace_schema_metadata(merged)
    pq.write_table(table, fh, compression="snappy")


def parquet_num_rows(path: str | os.PathLike) -> int | None:
    """Rows of the Parquet file at ``path``; None when it is absent or unreadable (an incomplete shard)."""
    import pyarrow.parquet as pq

    if not Path(path).is_file():
        return None
    try:
        return pq.read_metadata(path).num_rows
    except Exception:  # noqa: BLE001 - an unreadable file is an incomplete shard
        return None


def parquet_uncompressed_bytes(path: str | os.PathLike) -> int:
    """Uncompressed size of the data of the Parquet file at ``path`` (``dataset_info``'s ``num_bytes``)."""
    import pyarrow.parquet as pq

    md = pq.read_metadata(path)
    return sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))


def read_shard_metadata(path: str | os.PathLike, key: str) -> Any:
    """The value that :func:`write_parquet_shard` stored under ``key``; None when absent or unreadable."""
    import pyarrow.parquet as pq

    try:
        stored = pq.read_schema(path).metadata or {}
    except Exception:  # noqa: BLE001 - an unreadable file holds no metadata of ours
        return None
    raw = stored.get(key.encode())
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def remove_partial_shards(data_dir: str | os.PathLike) -> None:
    """Delete the temporary files that a killed build left in ``data_dir`` (hidden ``.*.tmp`` files)."""
    folder = Path(data_dir)
    if folder.is_dir():
        for leftover in folder.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
