"""The columns of a labelled, attributed image dataset that the evaluator reads, validated.

:func:`attribute_columns` turns the protected attribute columns into integer codes
(:class:`AttributeColumn`); :func:`trustvl.utils.class_labels.class_label_names` reads a class column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from trustvl.errors import TrustVLInputError

__all__ = ["AttributeColumn", "attribute_columns"]


@dataclass
class AttributeColumn:
    """One protected attribute of a gallery: ``values[i]`` is image ``i``'s value id, ``names[id]`` its name."""

    name: str
    values: np.ndarray  # int64 [n]
    names: list[str]


def attribute_columns(
    ds: Any, image_column: str, label_column: str | None, attributes: list[str] | None
) -> list[AttributeColumn]:
    """The protected attribute columns of ``ds`` as integer codes.

    ``attributes`` names them; by default every ``ClassLabel`` column other than ``label_column`` and
    columns named like ids (``*_id``). ClassLabel, integer, string and bool columns are accepted; each
    needs at least two values.
    """
    from datasets import ClassLabel, Value

    features = ds.features
    columns = list(features)
    if image_column not in features:
        raise TrustVLInputError(
            f"image column {image_column!r} is not in the dataset; available columns: {columns}"
        )
    if label_column is not None and label_column not in features:
        raise TrustVLInputError(
            f"label column {label_column!r} is not in the dataset; available columns: {columns}"
        )
    if attributes is not None:
        if len(attributes) == 0:
            raise TrustVLInputError("attributes is empty; expected at least one attribute column")
        names = list(attributes)
        missing = [a for a in names if a not in features]
        if missing:
            raise TrustVLInputError(
                f"attribute column(s) {missing} not in the dataset; available columns: {columns}"
            )
    else:
        names = [
            c
            for c, f in features.items()
            if isinstance(f, ClassLabel) and c != label_column and not c.endswith("_id")
        ]
        if not names:
            raise TrustVLInputError(
                f"the dataset has no ClassLabel attribute columns; name them with attributes (--attributes);"
                f" available columns: {columns}"
            )
    out = []
    for name in names:
        feat = features[name]
        raw = list(ds[name])  # respects select()/filter() index mappings
        if isinstance(feat, ClassLabel):
            values = np.asarray(raw, dtype=np.int64)
            labels = list(feat.names)
        elif isinstance(feat, Value) and (
            feat.dtype.startswith("int") or feat.dtype in ("string", "large_string", "bool")
        ):
            uniq = sorted(set(raw), key=lambda v: (str(type(v)), v))
            index = {v: i for i, v in enumerate(uniq)}
            values = np.asarray([index[v] for v in raw], dtype=np.int64)
            labels = [str(v) for v in uniq]
        else:
            raise TrustVLInputError(
                f"attribute column {name!r} has type {feat}; expected a ClassLabel, integer or string column"
            )
        if len(labels) < 2:
            raise TrustVLInputError(
                f"attribute column {name!r} has {len(labels)} value(s); expected at least 2"
            )
        out.append(AttributeColumn(name, values, labels))
    return out
