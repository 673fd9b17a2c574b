"""Stage 3 of the CF_α build: re-paint the person with any diffusers inpainting pipeline, pasting the
result back so every pixel outside the mask is the base image's (:class:`DiffusersInpainter`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from trustvl.data_builders.cf_alpha.diffusers_stage import DiffusersStage, load_diffusers_pipeline
from trustvl.data_builders.cf_alpha.stage_utils import check_batch_lists, paste_back, stage_generators, to_rgb
from trustvl.data_builders.interfaces import Metadata
from trustvl.errors import TrustVLInputError

__all__ = ["DEFAULT_INPAINT_MODEL", "DiffusersInpainter"]

#: Stable Diffusion 1.5 inpainting (9-channel UNet).
DEFAULT_INPAINT_MODEL = "stable-diffusion-v1-5/stable-diffusion-inpainting"


class DiffusersInpainter(DiffusersStage):
    """Stage 3: re-paint the person with any diffusers inpainting pipeline.

    Args:
        model_id_or_path: Hub id or folder, loaded with ``AutoPipelineForInpainting`` (falling back to
            ``DiffusionPipeline`` for pipelines it does not map), or a pipeline object. Real default:
            ``stable-diffusion-v1-5/stable-diffusion-inpainting`` (30 steps, guidance 7.5, strength 1).
        device, dtype: as for :class:`DiffusersTextToImage`.
        num_inference_steps, guidance_scale, strength, negative_prompt: passed to the pipeline.
        height, width: generation size; None = the image's size rounded down to a multiple of 8. The
            output is resized back to the input image's size.
        paste_back: (default True) composite the output with the input so every pixel outside the mask
            is exactly the input's -- diffusion inpainting also changes unmasked pixels slightly (VAE
            round trip), and CF_α's variants must share every context pixel.
        pipeline_kwargs, call_kwargs: extra ``from_pretrained`` / call keyword arguments (e.g.
            ``padding_mask_crop=32`` to inpaint a crop around the mask at full resolution).

    ``__call__(images, masks, prompts, metadata, attributes)``: ``masks`` are bool (H, W) arrays (True =
    re-paint); ``metadata[i]["seed"]`` seeds variant ``i``; ``attributes`` is ignored (the prompt says it).
    """

    def __init__(
        self,
        model_id_or_path: Any = DEFAULT_INPAINT_MODEL,
        *,
        device: str | torch.device | None = "auto",
        dtype: str | torch.dtype | None = "auto",
        num_inference_steps: int = 30,
        guidance_scale: float = 7.5,
        strength: float = 1.0,
        negative_prompt: str | None = None,
        height: int | None = None,
        width: int | None = None,
        paste_back: bool = True,
        pipeline_kwargs: Mapping[str, Any] | None = None,
        call_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self._check_steps(num_inference_steps)
        if not 0.0 < float(strength) <= 1.0:
            raise TrustVLInputError(f"strength={strength!r}; expected 0 < strength <= 1")
        self._init_common(model_id_or_path, device, dtype, num_inference_steps, guidance_scale)
        self.strength = float(strength)
        self.negative_prompt = negative_prompt
        self.height, self.width = height, width
        self.paste_back = bool(paste_back)
        self.call_kwargs = dict(call_kwargs or {})
        self.pipeline = self._load(model_id_or_path, pipeline_kwargs or {})
        self._multiple = int(getattr(self.pipeline, "vae_scale_factor", 8) or 8)

    def _load(self, model: Any, kwargs: Mapping[str, Any]) -> Any:
        from diffusers import AutoPipelineForInpainting, DiffusionPipeline

        try:
            return load_diffusers_pipeline(AutoPipelineForInpainting, model, self.dtype, self.device, kwargs)
        except TrustVLInputError:
            raise
        except ValueError:  # AutoPipeline has no inpainting mapping for this pipeline class
            return load_diffusers_pipeline(DiffusionPipeline, model, self.dtype, self.device, kwargs)

    def describe(self) -> dict[str, Any]:
        return self._describe(
            "DiffusersInpainter",
            strength=self.strength,
            negative_prompt=self.negative_prompt,
            height=self.height,
            width=self.width,
            paste_back=self.paste_back,
        )

    def _size(self, image: Image.Image) -> tuple[int, int]:
        m = self._multiple
        w = self.width if self.width is not None else max(m, image.width // m * m)
        h = self.height if self.height is not None else max(m, image.height // m * m)
        return w, h

    @torch.inference_mode()
    def __call__(
        self,
        images: Sequence[Image.Image],
        masks: Sequence[np.ndarray],
        prompts: Sequence[str],
        metadata: Sequence[Metadata] | None = None,
        attributes: Sequence[Mapping[str, str]] | None = None,
    ) -> list[Image.Image]:
        images = [to_rgb(im, "DiffusersInpainter", i) for i, im in enumerate(images)]
        n = len(images)
        check_batch_lists(
            "DiffusersInpainter", n, masks=masks, prompts=prompts, metadata=metadata, attributes=attributes
        )
        if n == 0:
            return []
        mask_arrays = []
        for i, (im, m) in enumerate(zip(images, masks)):
            m = np.asarray(m)
            if m.shape != (im.height, im.width):
                raise TrustVLInputError(
                    f"DiffusersInpainter: mask {i} has shape {m.shape}; expected {(im.height, im.width)} (image size)"
                )
            mask_arrays.append(m.astype(bool))
        sizes = {self._size(im) for im in images}
        if len(sizes) != 1:
            raise TrustVLInputError(
                f"DiffusersInpainter: images of several sizes {sorted(sizes)} in one call"
            )
        w, h = sizes.pop()
        kwargs: dict[str, Any] = dict(
            num_inference_steps=self.num_inference_steps,
            guidance_scale=self.guidance_scale,
            strength=self.strength,
            height=h,
            width=w,
            generator=stage_generators(metadata, n),
            output_type="pil",
        )
        if self.negative_prompt is not None:
            kwargs["negative_prompt"] = [self.negative_prompt] * n
        kwargs.update(self.call_kwargs)
        mask_images = [Image.fromarray(m.astype(np.uint8) * 255, mode="L") for m in mask_arrays]
        out = self.pipeline(prompt=list(prompts), image=images, mask_image=mask_images, **kwargs)
        results = out.images if hasattr(out, "images") else out[0]
        final = []
        for i, (im, res, m) in enumerate(zip(images, results, mask_arrays)):
            res = to_rgb(res, "DiffusersInpainter", i)
            if res.size != im.size:
                res = res.resize(im.size, Image.Resampling.BICUBIC)
            final.append(paste_back(im, res, m) if self.paste_back else res)
        return final
