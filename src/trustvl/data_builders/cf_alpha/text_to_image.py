"""Stage 1 of the CF_α build: base images from any diffusers text-to-image pipeline
(:class:`DiffusersTextToImage`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from PIL import Image

from trustvl.data_builders.cf_alpha.diffusers_stage import DiffusersStage, load_diffusers_pipeline
from trustvl.data_builders.cf_alpha.stage_utils import check_batch_lists, stage_generators, to_rgb
from trustvl.data_builders.interfaces import Metadata
from trustvl.errors import TrustVLInputError

__all__ = ["DEFAULT_TEXT_TO_IMAGE_MODEL", "DiffusersTextToImage"]

#: Stable Diffusion 1.5 (512x512), the class of model used by the CF_α paper.
DEFAULT_TEXT_TO_IMAGE_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"


class DiffusersTextToImage(DiffusersStage):
    """Stage 1: base images from any diffusers text-to-image pipeline.

    Args:
        model_id_or_path: Hub id or folder of a diffusers pipeline (loaded with ``DiffusionPipeline``),
            or a pipeline object. Real default: Stable Diffusion 1.5
            (``stable-diffusion-v1-5/stable-diffusion-v1-5``, 512x512, 30 steps, guidance 7.5); a 2.x
            ``...-base`` model works the same.
        device: ``"auto"`` (this process's accelerator, see :mod:`trustvl.utils.devices`) or a torch device.
        dtype: ``"auto"`` (default) = half precision on CUDA (bfloat16 where supported, else float16),
            float32 elsewhere; None = float32; or a dtype / its name.
        num_inference_steps, guidance_scale, height, width, negative_prompt: passed to the pipeline
            (``height``/``width`` None: the pipeline's default size).
        pipeline_kwargs: extra ``from_pretrained`` keyword arguments (e.g. ``variant="fp16"``).
        call_kwargs: extra keyword arguments of every pipeline call.

    ``__call__(prompts, metadata)`` returns one RGB ``PIL.Image`` per prompt; ``metadata[i]["seed"]``
    seeds image ``i`` (its own CPU ``torch.Generator``), so an image depends only on its prompt and seed.
    """

    def __init__(
        self,
        model_id_or_path: Any = DEFAULT_TEXT_TO_IMAGE_MODEL,
        *,
        device: str | torch.device | None = "auto",
        dtype: str | torch.dtype | None = "auto",
        num_inference_steps: int = 30,
        guidance_scale: float = 7.5,
        height: int | None = None,
        width: int | None = None,
        negative_prompt: str | None = None,
        pipeline_kwargs: Mapping[str, Any] | None = None,
        call_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        from diffusers import DiffusionPipeline

        self._check_steps(num_inference_steps)
        for name, v in (("height", height), ("width", width)):
            if v is not None and (not isinstance(v, int) or v < 8):
                raise TrustVLInputError(f"{name}={v!r}; expected None or an int >= 8")
        self._init_common(model_id_or_path, device, dtype, num_inference_steps, guidance_scale)
        self.height, self.width = height, width
        self.negative_prompt = negative_prompt
        self.call_kwargs = dict(call_kwargs or {})
        self.pipeline = load_diffusers_pipeline(
            DiffusionPipeline, model_id_or_path, self.dtype, self.device, pipeline_kwargs or {}
        )

    def describe(self) -> dict[str, Any]:
        return self._describe(
            "DiffusersTextToImage", height=self.height, width=self.width, negative_prompt=self.negative_prompt
        )

    @torch.inference_mode()
    def __call__(
        self, prompts: Sequence[str], metadata: Sequence[Metadata] | None = None
    ) -> list[Image.Image]:
        prompts = list(prompts)
        if not prompts:
            return []
        for i, p in enumerate(prompts):
            if not isinstance(p, str):
                raise TrustVLInputError(f"DiffusersTextToImage: prompt {i} is {p!r}; expected a str")
        check_batch_lists("DiffusersTextToImage", len(prompts), metadata=metadata)
        kwargs: dict[str, Any] = dict(
            num_inference_steps=self.num_inference_steps,
            guidance_scale=self.guidance_scale,
            generator=stage_generators(metadata, len(prompts)),
            output_type="pil",
        )
        if self.height is not None:
            kwargs["height"] = self.height
        if self.width is not None:
            kwargs["width"] = self.width
        if self.negative_prompt is not None:
            kwargs["negative_prompt"] = [self.negative_prompt] * len(prompts)
        kwargs.update(self.call_kwargs)
        out = self.pipeline(prompt=prompts, **kwargs)
        images = out.images if hasattr(out, "images") else out[0]
        return [to_rgb(im, "DiffusersTextToImage", i) for i, im in enumerate(images)]
