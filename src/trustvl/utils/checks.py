"""Checks shared by every config and component: ints, numbers and probabilities in a range, and
embedding matrices.

Each check returns the value converted (``int`` / ``float``) or raises
:class:`~trustvl.errors.TrustVLInputError` naming the argument, the bad value and what was expected, so
every trustvl error about a bad scalar reads the same. ``where`` is appended to the name in the message
(e.g. ``" of concept 'hat'"``). Bools are refused everywhere (``True`` is an int to Python, never a count
or a probability to trustvl). The standalone ``evaluate_metrics`` modules keep their own copies on purpose
(they must not import trustvl).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from trustvl.errors import TrustVLInputError

__all__ = ["check_embeddings", "check_int", "check_number", "check_probability"]


def _bound(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range_text(minimum: Any, maximum: Any, min_open: bool, max_open: bool) -> str:
    if minimum is not None and maximum is not None:
        return f"{'(' if min_open else '['}{_bound(minimum)}, {_bound(maximum)}{')' if max_open else ']'}"
    if minimum is not None:
        return f"{'>' if min_open else '>='} {_bound(minimum)}"
    return f"{'<' if max_open else '<='} {_bound(maximum)}"


def _in_range(v: float, minimum: Any, maximum: Any, min_open: bool, max_open: bool) -> bool:
    above = minimum is None or (v > minimum if min_open else v >= minimum)
    below = maximum is None or (v < maximum if max_open else v <= maximum)
    return above and below


def _out_of_range(
    name: str, value: Any, where: str, kind: str, rng: str, two_sided: bool
) -> TrustVLInputError:
    if two_sided:
        return TrustVLInputError(f"{name}={value!r}{where} is outside {rng}; expected {kind} in {rng}")
    return TrustVLInputError(f"{name}={value!r}{where} is out of range; expected {kind} {rng}")


def check_int(
    name: str,
    value: Any,
    minimum: int | None = None,
    maximum: int | None = None,
    *,
    allow_none: bool = False,
    where: str = "",
) -> int | None:
    """``value`` as an ``int`` (Python or NumPy integer, not a bool) in ``[minimum, maximum]``.

    Either bound may be None (unbounded); ``allow_none`` lets None through (returned as None).
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        rng = "" if minimum is None and maximum is None else " " + _range_text(minimum, maximum, False, False)
        raise TrustVLInputError(
            f"{name}={value!r}{where} is not an int; expected an int{rng}"
            + (" or None" if allow_none else "")
        )
    v = int(value)
    if not _in_range(v, minimum, maximum, False, False):
        rng = _range_text(minimum, maximum, False, False)
        raise _out_of_range(name, v, where, "an int", rng, minimum is not None and maximum is not None)
    return v


def check_number(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    min_open: bool = False,
    max_open: bool = False,
    allow_none: bool = False,
    where: str = "",
) -> float | None:
    """``value`` as a ``float`` (anything ``float()`` takes, not a bool; never NaN) in the range.

    The bounds are inclusive unless ``min_open`` / ``max_open``; either may be None (unbounded).
    ``allow_none`` lets None through (returned as None).
    """
    if value is None and allow_none:
        return None
    rng = None if minimum is None and maximum is None else _range_text(minimum, maximum, min_open, max_open)
    expected = "a number" + (f" in {rng}" if rng and minimum is not None and maximum is not None else "")
    if rng and (minimum is None or maximum is None):
        expected = f"a number {rng}"
    v = math.nan
    if not isinstance(value, bool):
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
    if math.isnan(v):
        raise TrustVLInputError(f"{name}={value!r}{where} is not a number; expected {expected}")
    if rng is not None and not _in_range(v, minimum, maximum, min_open, max_open):
        raise _out_of_range(name, value, where, "a number", rng, minimum is not None and maximum is not None)
    return v


def check_probability(name: str, value: Any, *, where: str = "") -> float:
    """``value`` as a probability: a number in ``[0, 1]``."""
    return float(check_number(name, value, 0.0, 1.0, where=where))  # type: ignore[arg-type]


def check_embeddings(embeds: Any, name: str) -> np.ndarray:
    """``embeds`` (an array or a tensor) as a non-empty, finite float32 ``[n, d]`` NumPy array."""
    if hasattr(embeds, "detach"):  # a torch tensor, without importing torch here
        embeds = embeds.detach().float().cpu().numpy()
    arr = np.asarray(embeds, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise TrustVLInputError(f"{name} has shape {arr.shape}; expected a non-empty 2-D [n, d] array")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise TrustVLInputError(
            f"{name} contains non-finite values (NaN or inf) in {bad} rows; expected finite embeddings"
        )
    return arr
