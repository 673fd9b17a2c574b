"""The part of the CF_α build's diffusers stages (text-to-image, inpainting) that they share: loading a
diffusers pipeline (:func:`load_diffusers_pipeline`) and the common settings (:class:`DiffusersStage`)."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Mapping
from typing import Any

import torch

from trustvl.data_builders.cf_alpha.stage_utils import model_display_name
from trustvl.errors import TrustVLInputError
from trustvl.hub.loading import load_pretrained
from trustvl.utils.devices import resolve_device, resolve_dtype

__all__ = ["DiffusersStage", "diffusers_dtype_kwarg", "load_diffusers_pipeline"]


@functools.lru_cache(maxsize=1)
def diffusers_dtype_kwarg() -> str:
    """``dtype`` on diffusers versions that take it (``torch_dtype`` is deprecated there), else ``torch_dtype``."""
    from diffusers import DiffusionPipeline

    try:
        src = inspect.getsource(DiffusionPipeline.from_pretrained)
    except (OSError, TypeError):  # pragma: no cover - no source available
        return "torch_dtype"
    return "dtype" if 'kwargs.pop("dtype"' in src else "torch_dtype"


def load_diffusers_pipeline(
    cls: Any, model: Any, dtype: torch.dtype, device: torch.device, kwargs: Mapping[str, Any]
) -> Any:
    """``cls.from_pretrained(model)`` in ``dtype`` (or ``model`` itself when it is a built pipeline), moved to
    ``device`` with its progress bar off."""
    if not isinstance(model, (str, os.PathLike)):
        pipe = model  # an already built pipeline
    else:
        pipe = load_pretrained(cls, model, kind="model", **{diffusers_dtype_kwarg(): dtype}, **dict(kwargs))
    pipe = pipe.to(device)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return pipe


class DiffusersStage:
    """The settings that the diffusers stages share: model name, device, dtype, steps and guidance.

    Subclasses call :meth:`_check_steps` with their other argument checks, then :meth:`_init_common`, and
    set ``self.pipeline``; :meth:`_describe` is the start and end of their ``describe()``.
    """

    pipeline: Any

    @staticmethod
    def _check_steps(num_inference_steps: Any) -> None:
        if (
            isinstance(num_inference_steps, bool)
            or not isinstance(num_inference_steps, int)
            or num_inference_steps < 1
        ):
            raise TrustVLInputError(f"num_inference_steps={num_inference_steps!r}; expected an int >= 1")

    def _init_common(
        self,
        model_id_or_path: Any,
        device: str | torch.device | None,
        dtype: str | torch.dtype | None,
        num_inference_steps: int,
        guidance_scale: float,
    ) -> None:
        self.model = model_display_name(model_id_or_path)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.num_inference_steps = num_inference_steps
        self.guidance_scale = float(guidance_scale)

    def _describe(self, class_name: str, **settings: Any) -> dict[str, Any]:
        """``describe()``: class, model, pipeline, steps and guidance, then ``settings``, then the dtype."""
        return {
            "class": class_name,
            "model": self.model,
            "pipeline": type(self.pipeline).__name__,
            "num_inference_steps": self.num_inference_steps,
            "guidance_scale": self.guidance_scale,
            **settings,
            "dtype": str(self.dtype).removeprefix("torch."),
        }
