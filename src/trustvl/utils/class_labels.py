"""The class names of a dataset's ``ClassLabel`` column, checked (one reader for every caller)."""

from __future__ import annotations

from typing import Any

from trustvl.errors import TrustVLInputError

__all__ = ["class_label_names"]


def class_label_names(dataset: Any, column: str) -> list[str]:
    """The names of the ``ClassLabel`` column ``column`` of ``dataset`` (anything with ``features``).

    Raises:
        TrustVLInputError: the column is absent, is not a ``ClassLabel``, or has no names.
    """
    from datasets import ClassLabel

    features = getattr(dataset, "features", None) or {}
    feature = features.get(column) if hasattr(features, "get") else None
    if not isinstance(feature, ClassLabel) or not feature.names:
        raise TrustVLInputError(
            f"column {column!r} has type {feature}; expected a ClassLabel column with names (or pass the"
            " class names explicitly)"
        )
    return list(feature.names)
