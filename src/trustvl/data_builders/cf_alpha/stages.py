"""Real model stages of the CF_α counterfactual build: text-to-image, person masks, inpainting.

Each stage implements the protocol of :mod:`trustvl.data_builders.interfaces` (batched lists in, a list
of the same length out, an optional ``metadata`` list of dicts passed through) and takes any Hub id or
local folder, loaded through :func:`trustvl.hub.loading.load_pretrained` (clear offline errors):

* :class:`DiffusersTextToImage` -- any diffusers text-to-image pipeline (``DiffusionPipeline``), e.g.
  Stable Diffusion 1.5 ``stable-diffusion-v1-5/stable-diffusion-v1-5``.
* :class:`TransformersPersonSegmenter` -- CLIPSeg prompted with "person" (default
  ``CIDAS/clipseg-rd64-refined``) or the "person" class of a semantic / universal segmentation model
  (e.g. ``nvidia/segformer-b0-finetuned-ade-512-512``, a Mask2Former ``...-semantic`` checkpoint).
* :class:`DiffusersInpainter` -- any diffusers inpainting pipeline (``AutoPipelineForInpainting``), e.g.
  ``stable-diffusion-v1-5/stable-diffusion-inpainting``, with paste-back.

Per-image seeds travel in ``metadata[i]["seed"]``: each image gets its own ``torch.Generator`` (on the
CPU, so a seed gives the same initial noise on any device); an image without a seed is unseeded.
:func:`build_stages` makes all three from a :class:`~.config.CounterfactualConfig`'s ``models`` section.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from trustvl.data_builders.interfaces import Metadata, keep_outside_mask
from trustvl.errors import TrustVLInputError
from trustvl.hub.loading import load_pretrained
from trustvl.utils.devices import resolve_device, resolve_dtype

__all__ = [
    "DEFAULT_INPAINT_MODEL",
    "DEFAULT_SEGMENTATION_MODEL",
    "DEFAULT_TEXT_TO_IMAGE_MODEL",
    "DiffusersInpainter",
    "DiffusersTextToImage",
    "TransformersPersonSegmenter",
    "build_stages",
    "dilate_mask",
    "describe_stage",
    "paste_back",
]

#: Stable Diffusion 1.5 (512x512), the class of model used by the CF_α paper.
DEFAULT_TEXT_TO_IMAGE_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
#: Stable Diffusion 1.5 inpainting (9-channel UNet).
DEFAULT_INPAINT_MODEL = "stable-diffusion-v1-5/stable-diffusion-inpainting"
#: CLIPSeg, prompted with "person".
DEFAULT_SEGMENTATION_MODEL = "CIDAS/clipseg-rd64-refined"


# ---------------------------------------------------------------------------------------------- helpers
def _generators(metadata: Sequence[Metadata] | None, n: int) -> list[torch.Generator]:
    """One CPU generator per image, seeded from ``metadata[i]["seed"]`` (unseeded when absent)."""
    gens = []
    for i in range(n):
        seed = None if metadata is None else metadata[i].get("seed")
        g = torch.Generator(device="cpu")
        if seed is None:
            g.seed()
        else:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise TrustVLInputError(f"metadata[{i}]['seed']={seed!r}; expected a non-negative int")
            g.manual_seed(int(seed))
        gens.append(g)
    return gens


def _check_lists(stage: str, n: int, **lists: Sequence[Any] | None) -> None:
    for name, seq in lists.items():
        if seq is not None and len(seq) != n:
            raise TrustVLInputError(f"{stage}: {name} has {len(seq)} items; expected {n}, one per image")


def _name(model: Any) -> str:
    if isinstance(model, (str, os.PathLike)):
        return str(model)
    cfg = getattr(model, "config", None)
    name = getattr(cfg, "_name_or_path", None) if cfg is not None else None
    return str(name or getattr(model, "name_or_path", None) or type(model).__name__)


def _to_rgb(image: Any, stage: str, i: int) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise TrustVLInputError(f"{stage}: image {i} is a {type(image).__name__}; expected a PIL.Image")
    return image if image.mode == "RGB" else image.convert("RGB")


def dilate_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a bool (H, W) mask by ``pixels`` (square max filter of side ``2*pixels+1``)."""
    mask = np.asarray(mask, dtype=bool)
    if pixels <= 0 or not mask.any():
        return mask
    t = torch.from_numpy(mask).to(torch.float32)[None, None]
    k = 2 * int(pixels) + 1
    out = torch.nn.functional.max_pool2d(t, kernel_size=k, stride=1, padding=int(pixels))
    return out[0, 0].numpy() > 0.5


def paste_back(original: Image.Image, edited: Image.Image, mask: np.ndarray) -> Image.Image:
    """``edited`` (resized to ``original`` if needed) inside ``mask``, ``original`` exactly elsewhere."""
    original = original.convert("RGB")
    if edited.size != original.size:
        edited = edited.convert("RGB").resize(original.size, Image.Resampling.BICUBIC)
    return keep_outside_mask(original, edited, np.asarray(mask, dtype=bool))


def describe_stage(stage: Any) -> dict[str, Any]:
    """A JSON-able description of a stage (its ``describe()`` when it has one, else its class name)."""
    describe = getattr(stage, "describe", None)
    if callable(describe):
        try:
            out = describe()
            if isinstance(out, Mapping):
                return dict(out)
        except Exception:  # noqa: BLE001 - a description is informative only
            pass
    cls = stage if isinstance(stage, type) else type(stage)
    return {"class": f"{cls.__module__}.{cls.__qualname__}"}


@functools.lru_cache(maxsize=1)
def _diffusers_dtype_kwarg() -> str:
    """``dtype`` on diffusers versions that take it (``torch_dtype`` is deprecated there), else ``torch_dtype``."""
    import inspect

    from diffusers import DiffusionPipeline

    try:
        src = inspect.getsource(DiffusionPipeline.from_pretrained)
    except (OSError, TypeError):  # pragma: no cover - no source available
        return "torch_dtype"
    return "dtype" if 'kwargs.pop("dtype"' in src else "torch_dtype"


def _load_pipeline(
    cls: Any, model: Any, dtype: torch.dtype, device: torch.device, kwargs: Mapping[str, Any]
) -> Any:
    if not isinstance(model, (str, os.PathLike)):
        pipe = model  # an already built pipeline
    else:
        pipe = load_pretrained(cls, model, kind="model", **{_diffusers_dtype_kwarg(): dtype}, **dict(kwargs))
    pipe = pipe.to(device)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return pipe


class _DiffusersStage:
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
        self.model = _name(model_id_or_path)
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


# ---------------------------------------------------------------------------------------------- stage 1
class DiffusersTextToImage(_DiffusersStage):
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
        self.pipeline = _load_pipeline(
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
        _check_lists("DiffusersTextToImage", len(prompts), metadata=metadata)
        kwargs: dict[str, Any] = dict(
            num_inference_steps=self.num_inference_steps,
            guidance_scale=self.guidance_scale,
            generator=_generators(metadata, len(prompts)),
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
        return [_to_rgb(im, "DiffusersTextToImage", i) for i, im in enumerate(images)]


# ---------------------------------------------------------------------------------------------- stage 2
def _label_ids(id2label: Mapping[Any, str], names: Sequence[str], model: str) -> list[int]:
    """Ids whose label is one of ``names`` (case-insensitive; "person, individual" matches "person")."""
    wanted = {n.strip().lower() for n in names}
    ids = []
    for k, label in id2label.items():
        full = str(label).strip().lower()
        first = full.replace(";", ",").split(",")[0].strip()
        if full in wanted or first in wanted:
            ids.append(int(k))
    if not ids:
        shown = ", ".join(repr(v) for v in list(id2label.values())[:30])
        raise TrustVLInputError(
            f"segmentation model {model!r} has no class named {sorted(wanted)} in config.id2label "
            f"(labels: {shown}{', ...' if len(id2label) > 30 else ''}); expected a model with a person class"
        )
    return sorted(ids)


class TransformersPersonSegmenter:
    """Stage 2: person masks from a transformers segmentation model.

    Modes:
        ``"clipseg"``: ``CLIPSegForImageSegmentation`` + ``CLIPSegProcessor`` prompted with ``prompt``
            (a str or several, e.g. ``["person", "hair"]``: the per-pixel maximum of their probabilities).
            Real default ``CIDAS/clipseg-rd64-refined``.
        ``"semantic"``: a semantic segmentation model (``AutoModelForSemanticSegmentation``: SegFormer,
            UperNet, DPT, ...) or a universal one (``AutoModelForUniversalSegmentation``: Mask2Former,
            MaskFormer, OneFormer) whose ``config.id2label`` has a class named ``prompt`` (default "person";
            "person, individual, ..." also matches; several names are summed). Person probability =
            softmax over classes (semantic) or the query-weighted class/mask probabilities (universal).
            E.g. ``nvidia/segformer-b0-finetuned-ade-512-512``. No such class -> TrustVLInputError.

    Each image's person probability map is resized (bilinear) to the image size, thresholded at
    ``>= threshold`` (None: the float32 probabilities are returned instead, for the builder to threshold),
    dilated by ``dilation`` pixels (:func:`dilate_mask`); a mask with at most ``min_fraction`` of the
    image's pixels (so at least none) is returned as ``None``: no person.
    """

    def __init__(
        self,
        model_id_or_path: Any = DEFAULT_SEGMENTATION_MODEL,
        *,
        mode: str = "clipseg",
        prompt: str | Sequence[str] = "person",
        threshold: float | None = 0.5,
        dilation: int = 0,
        min_fraction: float = 0.0,
        device: str | torch.device | None = "auto",
        dtype: str | torch.dtype | None = "float32",
        processor: Any = None,
        batch_size: int = 8,
    ) -> None:
        if mode not in ("clipseg", "semantic"):
            raise TrustVLInputError(f"mode={mode!r}; expected 'clipseg' or 'semantic'")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
            raise TrustVLInputError(f"prompt={prompt!r}; expected a non-empty str or list of str")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))):
            raise TrustVLInputError(f"threshold={threshold!r}; expected a number or None")
        if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 0:
            raise TrustVLInputError(f"dilation={dilation!r}; expected an int >= 0 (pixels)")
        if not 0.0 <= float(min_fraction) < 1.0:
            raise TrustVLInputError(f"min_fraction={min_fraction!r}; expected 0 <= min_fraction < 1")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise TrustVLInputError(f"batch_size={batch_size!r}; expected an int >= 1")
        self.mode, self.prompts = mode, prompts
        self.threshold = None if threshold is None else float(threshold)
        self.dilation, self.min_fraction, self.batch_size = dilation, float(min_fraction), batch_size
        self.model_name = _name(model_id_or_path)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self._load(model_id_or_path, processor)

    def _load(self, model: Any, processor: Any) -> None:
        from transformers import AutoImageProcessor

        is_path = isinstance(model, (str, os.PathLike))
        if self.mode == "clipseg":
            from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

            self.model = (
                load_pretrained(CLIPSegForImageSegmentation, model, dtype=self.dtype) if is_path else model
            )
            self.processor = processor or load_pretrained(
                CLIPSegProcessor, model if is_path else self.model_name
            )
            self.label_ids: list[int] = []
        else:
            from transformers import AutoModelForSemanticSegmentation, AutoModelForUniversalSegmentation

            if is_path:
                try:
                    self.model = load_pretrained(AutoModelForSemanticSegmentation, model, dtype=self.dtype)
                except (ValueError, KeyError) as err:
                    if isinstance(err, TrustVLInputError):
                        raise
                    self.model = load_pretrained(AutoModelForUniversalSegmentation, model, dtype=self.dtype)
            else:
                self.model = model
            self.processor = processor or load_pretrained(
                AutoImageProcessor, model if is_path else self.model_name
            )
            self.label_ids = _label_ids(self.model.config.id2label or {}, self.prompts, self.model_name)
        self.model = self.model.to(self.device).eval()

    def describe(self) -> dict[str, Any]:
        return {
            "class": "TransformersPersonSegmenter",
            "model": self.model_name,
            "mode": self.mode,
            "prompt": self.prompts,
            "threshold": self.threshold,
            "dilation": self.dilation,
            "min_fraction": self.min_fraction,
        }

    def _probabilities(self, images: list[Image.Image]) -> torch.Tensor:
        """(n, h, w) person probabilities at the model's output resolution."""
        n = len(images)
        if self.mode == "clipseg":
            probs = None
            for p in self.prompts:
                inputs = self.processor(text=[p] * n, images=images, padding=True, return_tensors="pt")
                inputs = {k: v.to(self.device) for k, v in inputs.items()}
                if "pixel_values" in inputs:
                    inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
                logits = self.model(**inputs).logits.float()
                logits = logits.reshape(n, *logits.shape[-2:])  # batch of one is squeezed to (h, w)
                pr = torch.sigmoid(logits)
                probs = pr if probs is None else torch.maximum(probs, pr)
            return probs
        inputs = self.processor(images=images, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items() if hasattr(v, "to")}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        out = self.model(**inputs)
        if getattr(out, "logits", None) is not None and out.logits.ndim == 4:
            cls_probs = torch.softmax(out.logits.float(), dim=1)
        elif getattr(out, "class_queries_logits", None) is not None:
            cls = torch.softmax(out.class_queries_logits.float(), dim=-1)[..., :-1]  # drop "no object"
            masks = torch.sigmoid(out.masks_queries_logits.float())
            cls_probs = torch.einsum("bqc,bqhw->bchw", cls, masks)
        else:
            raise TrustVLInputError(
                f"segmentation model {self.model_name!r} returned neither (n, classes, h, w) logits nor "
                "class/mask query logits; expected a semantic or universal segmentation model"
            )
        return cls_probs[:, self.label_ids].sum(dim=1).clamp(0.0, 1.0)

    @torch.inference_mode()
    def __call__(
        self, images: Sequence[Image.Image], metadata: Sequence[Metadata] | None = None
    ) -> list[np.ndarray | None]:
        images = [_to_rgb(im, "TransformersPersonSegmenter", i) for i, im in enumerate(images)]
        _check_lists("TransformersPersonSegmenter", len(images), metadata=metadata)
        out: list[np.ndarray | None] = [None] * len(images)
        # same-size groups (processors may pad mixed sizes), then batches
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(im.size, []).append(i)
        for (w, h), idx in groups.items():
            for s in range(0, len(idx), self.batch_size):
                chunk = idx[s : s + self.batch_size]
                probs = self._probabilities([images[i] for i in chunk])
                probs = torch.nn.functional.interpolate(
                    probs[:, None], size=(h, w), mode="bilinear", align_corners=False
                )
                for j, i in enumerate(chunk):
                    out[i] = self._finish(probs[j, 0].cpu().numpy())
        return out

    def _finish(self, prob: np.ndarray) -> np.ndarray | None:
        prob = np.clip(prob, 0.0, 1.0).astype(np.float32)
        binary = prob >= (0.5 if self.threshold is None else self.threshold)
        binary = dilate_mask(binary, self.dilation)
        if binary.sum() <= self.min_fraction * binary.size:
            return None
        return prob if self.threshold is None else binary


# ---------------------------------------------------------------------------------------------- stage 3
class DiffusersInpainter(_DiffusersStage):
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
            return _load_pipeline(AutoPipelineForInpainting, model, self.dtype, self.device, kwargs)
        except TrustVLInputError:
            raise
        except ValueError:  # AutoPipeline has no inpainting mapping for this pipeline class
            return _load_pipeline(DiffusionPipeline, model, self.dtype, self.device, kwargs)

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
        images = [_to_rgb(im, "DiffusersInpainter", i) for i, im in enumerate(images)]
        n = len(images)
        _check_lists(
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
            generator=_generators(metadata, n),
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
            res = _to_rgb(res, "DiffusersInpainter", i)
            if res.size != im.size:
                res = res.resize(im.size, Image.Resampling.BICUBIC)
            final.append(paste_back(im, res, m) if self.paste_back else res)
        return final


# ---------------------------------------------------------------------------------------------- factory
def build_stages(
    config: Any = None,
    *,
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype | None = "auto",
) -> tuple[DiffusersTextToImage, TransformersPersonSegmenter, DiffusersInpainter]:
    """The three real stages from a config's ``models`` section (a :class:`~.config.CounterfactualConfig`,
    a YAML path, or None for the packaged default).

    Each ``models.<stage>`` mapping holds the stage's keyword arguments with ``model`` = Hub id or folder.
    The segmenter is built with ``threshold=config.mask_threshold`` and no dilation or minimum area of its
    own: the builder dilates by ``config.mask_dilation`` and skips masks under ``config.min_mask_fraction``.
    """
    from trustvl.data_builders.cf_alpha.config import CounterfactualConfig, load_counterfactual_config

    cfg = config if isinstance(config, CounterfactualConfig) else load_counterfactual_config(config)
    models = cfg.models

    def kwargs(stage: str, default_model: str) -> tuple[str, dict[str, Any]]:
        kw = dict(models.get(stage, {}))
        model = kw.pop("model", default_model)
        kw.setdefault("device", device)
        return model, kw

    model, kw = kwargs("text_to_image", DEFAULT_TEXT_TO_IMAGE_MODEL)
    kw.setdefault("dtype", dtype)
    t2i = DiffusersTextToImage(model, **kw)
    model, kw = kwargs("segmenter", DEFAULT_SEGMENTATION_MODEL)
    kw.setdefault("threshold", cfg.mask_threshold)
    seg = TransformersPersonSegmenter(model, **kw)
    model, kw = kwargs("inpainter", DEFAULT_INPAINT_MODEL)
    kw.setdefault("dtype", dtype)
    inp = DiffusersInpainter(model, **kw)
    return t2i, seg, inp
