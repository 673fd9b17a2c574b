"""Stage 2 of the CF_α build: person masks from a transformers segmentation model
(:class:`TransformersPersonSegmenter`: CLIPSeg prompted with "person", or the person class of a semantic
or universal segmentation model)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from trustvl.data_builders.cf_alpha.stage_utils import (
    check_batch_lists,
    dilate_mask,
    model_display_name,
    to_rgb,
)
from trustvl.data_builders.interfaces import Metadata
from trustvl.errors import TrustVLInputError
from trustvl.hub.loading import load_pretrained
from trustvl.utils.devices import resolve_device, resolve_dtype

__all__ = ["DEFAULT_SEGMENTATION_MODEL", "TransformersPersonSegmenter"]

#: CLIPSeg, prompted with "person".
DEFAULT_SEGMENTATION_MODEL = "CIDAS/clipseg-rd64-refined"


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
        self.model_name = model_display_name(model_id_or_path)
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
        images = [to_rgb(im, "TransformersPersonSegmenter", i) for i, im in enumerate(images)]
        check_batch_lists("TransformersPersonSegmenter", len(images), metadata=metadata)
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
