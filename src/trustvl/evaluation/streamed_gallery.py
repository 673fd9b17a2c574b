"""A gallery read as a stream (``trustvl audit --streaming``): any ``datasets`` source, never in host memory.

``datasets.load_dataset(..., streaming=True)`` turns a Hub id, a Parquet / Arrow folder or WebDataset tar
shards into an ``IterableDataset``: rows arrive in order, one Arrow batch at a time, and nothing is copied
into the local Arrow cache (a ``save_to_disk`` folder is read from its own Arrow files). The audit passes
over it twice:

1. :func:`read_columns` reads the attribute and label columns, the image column left out (no image is
   read or decoded): a :class:`GalleryColumns` that the audit's column readers take in place of the dataset.
   It also gives the gallery size, which the embedding cache's shards need.
2. :func:`encoded_images` yields ``(row, encoded image)`` for the rows still to embed, the image column
   cast to ``Image(decode=False)`` so that rows of shards already cached are skipped undecoded; the engine
   decodes the rest in threads with :func:`image_decoder` (``datasets``' own decoding, so a streamed image
   equals the one the map-style dataset hands out and the metrics are the same).

Host memory holds the columns, the batches in flight and one cache shard of embeddings (written to disk as
it fills), whatever the gallery's size (benchmarks/bench_streaming_rss.py measures it).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.hub.loading import load_dataset_any
from trustvl.modeling.image_loading import open_image

__all__ = [
    "GalleryColumns",
    "encoded_images",
    "image_decoder",
    "open_stream",
    "read_columns",
    "stream_fingerprint",
]

#: rows per Arrow batch read from the stream (the columns pass and the image pass)
READ_BATCH_ROWS = 1024


@dataclass
class GalleryColumns:
    """The non-image columns of a streamed gallery: ``features`` (every column's, the image column's too)
    and ``columns`` (name → the values of every row). Indexing by name gives a column, as on a
    ``datasets.Dataset``, so :func:`~trustvl.evaluation.dataset_columns.attribute_columns` and
    :func:`~trustvl.utils.class_labels.class_label_names` read it unchanged."""

    features: Any
    columns: dict[str, list[Any]]
    n_rows: int

    def __getitem__(self, name: str) -> list[Any]:
        return self.columns[name]

    def __len__(self) -> int:
        return self.n_rows


def open_stream(dataset: str, split: str, max_images: int | None = None) -> Any:
    """``dataset``'s ``split`` as a ``datasets.IterableDataset`` (its first ``max_images`` rows when given)."""
    import datasets

    stream = load_dataset_any(dataset, split=split, streaming=True)
    if isinstance(
        stream, datasets.Dataset
    ):  # a save_to_disk folder: read from its (memory-mapped) Arrow files
        stream = stream.to_iterable_dataset()
    if not isinstance(stream, datasets.IterableDataset):
        raise TrustVLInputError(
            f"dataset {dataset!r} split {split!r} loaded as a {type(stream).__name__}; expected one split"
        )
    if stream.features is None:  # a source without typed metadata: the first row tells the columns
        stream = stream._resolve_features()
    return stream.take(max_images) if max_images is not None else stream


def _wanted_columns(
    features: Any, image_column: str, label_column: str | None, attributes: Sequence[str] | None
) -> list[str]:
    from datasets import ClassLabel

    names = (
        list(attributes)
        if attributes is not None
        else [c for c, f in features.items() if isinstance(f, ClassLabel)]
    )
    if label_column is not None:
        names.append(label_column)
    return [c for c in dict.fromkeys(names) if c in features and c != image_column]


def read_columns(
    stream: Any, image_column: str, label_column: str | None, attributes: Sequence[str] | None
) -> GalleryColumns:
    """The attribute columns (``attributes``, or every ``ClassLabel`` column when None) and the label column
    of ``stream``, read without its image column; the row count comes from the same pass."""
    features = stream.features
    if image_column not in features:
        raise TrustVLInputError(
            f"image column {image_column!r} is not in the dataset; available columns: {list(features)}"
        )
    wanted = _wanted_columns(features, image_column, label_column, attributes)
    if not wanted:  # nothing to read but the row count: count undecoded images
        n = sum(1 for _ in encoded_images(stream, image_column, None))
        return GalleryColumns(features, {}, n)
    columns: dict[str, list[Any]] = {c: [] for c in wanted}
    n = 0
    for batch in stream.select_columns(wanted).iter(batch_size=READ_BATCH_ROWS):
        for c in wanted:
            columns[c].extend(batch[c])
        n += len(batch[wanted[0]])
    return GalleryColumns(features, columns, n)


def encoded_images(stream: Any, image_column: str, rows: Sequence[int] | None) -> Iterator[tuple[int, Any]]:
    """``(row, encoded image)`` of ``stream``'s ``rows`` (ascending; None: every row), the image column read
    undecoded: the other rows are passed over without decoding."""
    from datasets import Image

    images = stream.select_columns([image_column])
    if isinstance(images.features[image_column], Image):
        images = images.cast_column(image_column, Image(decode=False))
    wanted = iter(rows) if rows is not None else None
    target = next(wanted, None) if wanted is not None else 0
    row = 0
    for batch in images.iter(batch_size=READ_BATCH_ROWS):
        values = batch[image_column]
        if wanted is None:
            yield from zip(range(row, row + len(values)), values)
        else:
            while target is not None and target < row + len(values):
                yield target, values[target - row]
                target = next(wanted, None)
            if target is None:
                return
        row += len(values)


def image_decoder(stream: Any, image_column: str) -> Callable[[Any], Any]:
    """How to decode an encoded value of ``image_column``: ``datasets``' own ``Image`` decoding (with the
    feature's ``mode``) for an ``Image`` column, else :func:`~trustvl.modeling.image_loading.open_image`."""
    from datasets import Image

    feature = stream.features[image_column]
    if isinstance(feature, Image):
        return Image(mode=feature.mode).decode_example
    return open_image


def stream_fingerprint(dataset: str, split: str, columns: GalleryColumns) -> str:
    """What keys a streamed gallery's embedding cache: the source's files (relative path, size and
    modification time of each) when it is local, else its Hub id (a Hub dataset changed in place needs
    ``--no-cache`` or another cache folder), plus the split, the row count and the columns read."""
    h = hashlib.sha256()
    path = Path(dataset).expanduser()
    if path.exists():
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            st = f.stat()
            h.update(f"{os.path.relpath(f, path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    else:
        h.update(f"hub:{dataset}\n".encode())
    h.update(json.dumps([split, columns.n_rows, columns.columns], default=str).encode())
    return h.hexdigest()
