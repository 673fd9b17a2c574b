"""Shared input checks for :mod:`trustvl.metrics`.

Every check raises :class:`trustvl.errors.TrustVLInputError` (a :class:`ValueError`) whose message names
the offending argument, the bad value (and where it sits) and what was expected. Checks are vectorised
and cheap: a reduction over the tensor; the location of the first bad element is only computed on the
error path.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch

from trustvl.errors import TrustVLInputError
from trustvl.metrics._fairness_core import PROBABILITY_ATOL as _CORE_PROBABILITY_ATOL

__all__ = [
    "as_tensor",
    "check_finite",
    "check_k",
    "check_label_range",
    "check_nonempty",
    "integer_labels",
    "probability_vector",
    "real_scores",
    "PROBABILITY_ATOL",
]

#: Tolerance on ``sum(target) == 1``.
PROBABILITY_ATOL = _CORE_PROBABILITY_ATOL  # defined once, in the numpy core

_TORCH_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _first_index(mask: torch.Tensor) -> tuple[int, ...]:
    """Index (as a tuple) of the first True element of ``mask`` (row-major)."""
    flat = int(torch.nonzero(mask.reshape(-1))[0, 0].item())
    return tuple(int(i) for i in np.unravel_index(flat, tuple(mask.shape))) if mask.dim() else ()


def _where(name: str, idx: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(str(i) for i in idx)}]" if idx else name


def as_tensor(x, name: str) -> torch.Tensor:
    """Convert ``x`` (tensor, numpy array, nested sequence or scalar) to a tensor without copying when possible."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, str | bytes) or x is None:
        raise TrustVLInputError(f"{name} must be an array or tensor of numbers, got {type(x).__name__} {x!r}")
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as exc:  # ragged nested lists, unconvertible objects
            raise TrustVLInputError(
                f"{name} could not be read as a rectangular array of numbers ({exc}); "
                "expected a tensor, a numpy array or equal-length nested lists"
            ) from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TrustVLInputError(
            f"{name} has dtype {arr.dtype}; expected numbers (a rectangular array of ints or floats)"
        )
    if arr.dtype.kind == "u" and arr.dtype.itemsize > 1:
        if arr.size and arr.max() > np.iinfo(np.int64).max:
            raise TrustVLInputError(f"{name} holds values above the int64 range; expected small integers")
        arr = arr.astype(np.int64)
    if arr.dtype == np.float16 or arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        arr = arr.astype(np.float64)
    if not arr.flags.writeable or any(s < 0 for s in arr.strides):
        arr = np.array(arr, copy=True)
    return torch.from_numpy(arr)


def check_nonempty(t: torch.Tensor, name: str) -> None:
    if t.numel() == 0:
        raise TrustVLInputError(f"{name} is empty (shape {tuple(t.shape)}); expected at least one element")


def integer_labels(x, name: str) -> torch.Tensor:
    """Return ``x`` as an integer tensor.

    Integer dtypes are kept as they are (so a small dtype such as ``torch.uint8`` saves memory); ``bool``
    becomes ``uint8``; floating tensors are accepted only when every value is a whole number (converted to
    ``int64``); anything else is a :class:`TrustVLInputError`.
    """
    t = as_tensor(x, name)
    if t.dtype == torch.bool:
        return t.to(torch.uint8)
    if t.dtype in _TORCH_INTEGER_DTYPES:
        return t
    if t.is_complex():
        raise TrustVLInputError(f"{name} has complex dtype {t.dtype}; expected integer labels")
    if t.is_floating_point():
        bad = ~torch.isfinite(t) | (t != torch.round(t))
        if bool(bad.any()):
            idx = _first_index(bad)
            raise TrustVLInputError(
                f"{name} must hold integer labels, but {_where(name, idx)} = {t[idx].item()!r} is not a "
                "whole number"
            )
        return t.to(torch.int64)
    return t.to(torch.int64)  # other integer dtypes (e.g. uint16/uint32 tensors)


def check_label_range(labels: torch.Tensor, m: int, name: str, m_source: str) -> None:
    """Check that every label is an attribute id in ``0..m-1``."""
    if labels.numel() == 0:
        return
    lo, hi = torch.aminmax(labels)
    lo, hi = int(lo.item()), int(hi.item())
    if lo < 0:
        idx = _first_index(labels < 0)
        raise TrustVLInputError(
            f"{_where(name, idx)} = {int(labels[idx].item())} is negative; expected attribute ids in "
            f"0..{m - 1}"
        )
    if hi >= m:
        idx = _first_index(labels >= m)
        raise TrustVLInputError(
            f"{_where(name, idx)} = {int(labels[idx].item())} is out of range; expected attribute ids in "
            f"0..{m - 1} (m = {m} from {m_source})"
        )


def check_finite(t: torch.Tensor, name: str) -> None:
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        idx = _first_index(~torch.isfinite(t))
        raise TrustVLInputError(
            f"{_where(name, idx)} = {t[idx].item()} is not finite; expected finite scores"
        )


def real_scores(x, name: str) -> torch.Tensor:
    """Return ``x`` as a real (floating or integer) tensor; complex is rejected, bool becomes uint8."""
    t = as_tensor(x, name)
    if t.is_complex():
        raise TrustVLInputError(f"{name} has complex dtype {t.dtype}; expected real scores")
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t


def check_k(k, n: int, name: str = "k", what: str = "the ranking length") -> int:
    """Check that ``k`` is an integer with ``1 <= k <= n`` and return it as ``int``."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        if isinstance(k, torch.Tensor) and k.dim() == 0 and k.dtype in _TORCH_INTEGER_DTYPES:
            k = int(k.item())
        else:
            raise TrustVLInputError(f"{name} = {k!r} must be an integer; expected 1 <= {name} <= {n}")
    k = int(k)
    if k <= 0:
        raise TrustVLInputError(f"{name} = {k} must be positive; expected 1 <= {name} <= {n}")
    if k > n:
        raise TrustVLInputError(f"{name} = {k} exceeds {what} ({n}); expected 1 <= {name} <= {n}")
    return k


def probability_vector(
    target,
    name: str = "target",
    *,
    strictly_positive: bool = False,
    device: torch.device | str | None = None,
    why_positive: str = "",
) -> torch.Tensor:
    """Validate a probability vector (1-D, finite, entries >= 0, sum 1 within ``PROBABILITY_ATOL``).

    Returns it as ``float64`` on ``device``. With ``strictly_positive`` a zero entry is rejected too.
    """
    if isinstance(target, str):
        raise TrustVLInputError(
            f"{name} = {target!r}: expected a probability vector (use uniform_target(m) or gallery_target(...))"
        )
    t = as_tensor(target, name)
    if t.is_complex() or t.dtype == torch.bool:
        raise TrustVLInputError(f"{name} has dtype {t.dtype}; expected a real probability vector")
    t = t.to(dtype=torch.float64, device=device)
    if t.dim() != 1:
        raise TrustVLInputError(f"{name} has shape {tuple(t.shape)}; expected a 1-D probability vector")
    check_nonempty(t, name)
    if not bool(torch.isfinite(t).all()):
        idx = _first_index(~torch.isfinite(t))
        raise TrustVLInputError(
            f"{_where(name, idx)} = {t[idx].item()} is not finite; expected probabilities"
        )
    if bool((t < 0).any()):
        idx = _first_index(t < 0)
        raise TrustVLInputError(
            f"{_where(name, idx)} = {t[idx].item()} is negative; expected a probability vector "
            "(entries >= 0 summing to 1)"
        )
    total = float(t.sum().item())
    if abs(total - 1.0) > PROBABILITY_ATOL:
        raise TrustVLInputError(
            f"{name} sums to {total!r}; expected a probability vector summing to 1 (within {PROBABILITY_ATOL})"
        )
    if strictly_positive and bool((t == 0).any()):
        idx = _first_index(t == 0)
        raise TrustVLInputError(
            f"{_where(name, idx)} = 0; expected every entry > 0{why_positive}. Leave attribute values that "
            "cannot occur out of the label set (renumber to 0..m-1)"
        )
    return t


def as_int_list(ks, name: str) -> list:
    """``ks`` as a list: an int becomes ``[ks]``; a sequence is listed (checked later by :func:`check_k`)."""
    if isinstance(ks, numbers.Integral) and not isinstance(ks, bool):
        return [int(ks)]
    if isinstance(ks, Sequence | np.ndarray | torch.Tensor) and not isinstance(ks, str):
        ks = list(ks.tolist() if isinstance(ks, np.ndarray | torch.Tensor) else ks)
        if not ks:
            raise TrustVLInputError(f"{name} is empty; expected one or more cut-offs k")
        return ks
    raise TrustVLInputError(f"{name} = {ks!r}; expected an integer or a sequence of integers")
