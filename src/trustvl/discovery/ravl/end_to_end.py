"""RaVL end to end (:func:`discover`): embed images and candidate regions with a CLIP-style model,
classify them zero-shot against the class prompts, and run :func:`discover_spurious_regions`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from trustvl.discovery.ravl.from_embeddings import discover_spurious_regions
from trustvl.discovery.ravl.inputs import as_int_vector
from trustvl.discovery.ravl.results import DiscoveryResult
from trustvl.discovery.regions import REGION_VIEWS
from trustvl.errors import TrustVLInputError

__all__ = ["discover"]


def _prompt_embeddings(model, processor, class_prompts: Sequence[Any]) -> np.ndarray:
    """One normalised text embedding per class (the mean of its prompts when a class has several)."""
    from trustvl.modeling.embedding import embed_texts

    if len(class_prompts) < 2:
        raise TrustVLInputError(
            f"{len(class_prompts)} class prompts; expected one per class, at least 2 classes"
        )
    groups = [[p] if isinstance(p, str) else list(p) for p in class_prompts]
    if any(len(g) == 0 for g in groups):
        raise TrustVLInputError("a class has an empty prompt list; expected at least one prompt per class")
    flat = [p for g in groups for p in g]
    emb = embed_texts(model, processor, flat).numpy()
    out, start = [], 0
    for g in groups:
        m = emb[start : start + len(g)].mean(axis=0)
        out.append(m / max(float(np.linalg.norm(m)), 1e-12))
        start += len(g)
    return np.stack(out).astype(np.float32)


def discover(
    model,
    processor,
    images: Sequence[Any],
    labels: Any,
    class_prompts: Sequence[Any],
    *,
    regions: Any = "grid",
    grid_n: int = 2,
    batch_size: int = 64,
    progress: bool = True,
    class_names: Sequence[str] | None = None,
    fill: tuple[int, int, int] = (0, 0, 0),
    region_view: str = "crop",
    **kwargs: Any,
) -> DiscoveryResult:
    """End to end: embed images and regions with ``model``, zero-shot classify, run RaVL discovery.

    ``images``: PIL images (or arrays); ``labels``: class ids; ``class_prompts``: one prompt per class (or a
    list of prompts per class, averaged). ``regions``: anything :func:`~trustvl.discovery.regions.make_regions`
    accepts (``"grid"`` = ``grid_n x grid_n`` cells). ``region_view``: what the vision tower sees for a region,
    ``"crop"`` (default: its crop, resized by the processor) or ``"in_place"`` (the region at its own size and
    position on a ``fill`` canvas; :mod:`trustvl.discovery.regions`). Other keyword arguments go to
    :func:`discover_spurious_regions`. The result also carries ``regions`` (for visualisation) and the
    zero-shot ``image_preds``.
    """
    from trustvl.discovery.regions import embed_regions, make_regions, zero_shot_scores
    from trustvl.modeling.embedding import embed_images

    if region_view not in REGION_VIEWS:
        raise TrustVLInputError(
            f"region_view={region_view!r} is not supported; expected one of {list(REGION_VIEWS)}"
        )
    t0 = time.perf_counter()
    images = list(images)
    labels = as_int_vector(labels, "labels")
    if len(labels) != len(images):
        raise TrustVLInputError(
            f"{len(labels)} labels for {len(images)} images; expected one label per image"
        )
    text = _prompt_embeddings(model, processor, class_prompts)
    img_emb = embed_images(
        model, processor, images, batch_size=batch_size, total=len(images), progress=progress
    ).numpy()
    preds = zero_shot_scores(img_emb, text).argmax(axis=1)
    region_list = make_regions(images, regions, n=grid_n)
    if not region_list:
        raise TrustVLInputError("no candidate regions were produced; expected at least one region")
    t_embed = time.perf_counter()
    reg_emb = embed_regions(
        model,
        processor,
        images,
        region_list,
        batch_size=batch_size,
        progress=progress,
        fill=fill,
        view=region_view,
    )
    t_embed = time.perf_counter() - t_embed
    reg_scores = zero_shot_scores(reg_emb, text)
    region_image_index = np.array([r.image_index for r in region_list], dtype=np.int64)
    result = discover_spurious_regions(
        reg_emb, region_image_index, labels, preds, reg_scores, len(text), class_names=class_names, **kwargs
    )
    result.regions = region_list
    if (
        region_view != "crop"
    ):  # recorded only when not the default, so default runs write the same JSON as before
        result.params["region_view"] = region_view
    result.timings["embed_regions"] = t_embed
    result.timings["end_to_end"] = time.perf_counter() - t0
    return result
