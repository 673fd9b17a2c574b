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

The stages live one per file (:mod:`.text_to_image`, :mod:`.segmentation`, :mod:`.inpainting`, sharing
:mod:`.diffusers_stage` and :mod:`.stage_utils`); this module builds them from a config and keeps every
name importable from ``trustvl.data_builders.cf_alpha.stages``.
"""

from __future__ import annotations

from typing import Any

import torch

from trustvl.data_builders.cf_alpha.config import CounterfactualConfig, load_counterfactual_config
from trustvl.data_builders.cf_alpha.inpainting import DEFAULT_INPAINT_MODEL, DiffusersInpainter
from trustvl.data_builders.cf_alpha.segmentation import (
    DEFAULT_SEGMENTATION_MODEL,
    TransformersPersonSegmenter,
)
from trustvl.data_builders.cf_alpha.stage_utils import describe_stage, dilate_mask, paste_back
from trustvl.data_builders.cf_alpha.text_to_image import DEFAULT_TEXT_TO_IMAGE_MODEL, DiffusersTextToImage

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
