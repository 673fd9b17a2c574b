"""trustvl's one way to turn ``device=`` and ``dtype=`` arguments into torch objects.

Conventions, the same in every API and command:

* ``device="auto"`` (or ``None``): this process's accelerator — under ``accelerate launch`` / ``torchrun``
  the local GPU of the process, else the first CUDA GPU, else Apple's MPS, else the CPU. Any other value
  is read by ``torch.device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
* ``dtype=None`` (or ``"float32"``/``"fp32"``): float32. ``"auto"``: half precision where it is fast and
  safe — bfloat16 on a CUDA GPU that supports it, else float16 on CUDA — and float32 on CPU and MPS.
  ``"bf16"``/``"bfloat16"``, ``"fp16"``/``"float16"`` or a ``torch.dtype`` are taken as they are.

Only torch is imported at module level (accelerate lazily), so every layer may use this module.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from trustvl.errors import TrustVLInputError

__all__ = ["DTYPE_NAMES", "resolve_device", "resolve_dtype"]

#: accepted dtype names (lower case, an optional ``torch.`` prefix is stripped) -> dtype
DTYPE_NAMES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "float": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
}


def _launched_distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or "LOCAL_RANK" in os.environ


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The ``torch.device`` that ``device`` names (see the module docstring for ``"auto"``).

    Raises:
        TrustVLInputError: ``device`` is not a device torch knows.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        if _launched_distributed():
            from accelerate import PartialState

            return torch.device(PartialState().device)
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if isinstance(device, torch.device):
        return device
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise TrustVLInputError(
            f"device={device!r} is not a torch device; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from None


def resolve_dtype(dtype: Any = None, device: str | torch.device | None = None) -> torch.dtype:
    """The ``torch.dtype`` that ``dtype`` names; ``"auto"`` depends on ``device`` (module docstring).

    Raises:
        TrustVLInputError: an unknown dtype name, or half precision asked on a device without it.
    """
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).lower().removeprefix("torch.")
    if name == "auto":
        dev = resolve_device(device)
        if dev.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    try:
        return DTYPE_NAMES[name]
    except KeyError:
        raise TrustVLInputError(
            f"dtype={dtype!r} is not supported; expected None, 'auto', 'float32', 'bfloat16' or 'float16'"
        ) from None
