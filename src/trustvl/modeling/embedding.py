"""Loading a CLIP-style model with its processor, and batched image/text embedding.

Works for any checkpoint that ``transformers.AutoModel`` / ``AutoProcessor`` load and that exposes
``get_image_features`` / ``get_text_features`` (``CLIPModel`` and trustvl's subclasses). In
transformers 5 these return an output object whose ``pooler_output`` is the projected embedding;
older versions returned the tensor itself — both are handled.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from trustvl.errors import TrustVLInputError
from trustvl.utils.devices import resolve_device, resolve_dtype


def load_clip(name_or_path: str | os.PathLike, device: str | torch.device = "auto", dtype: Any = None):
    """Load ``(model, processor)`` from a Hub id or local folder, in eval mode on ``device``.

    ``device`` and ``dtype`` follow :mod:`trustvl.utils.devices` (``"auto"``: this process's accelerator;
    ``dtype=None``: float32).

    trustvl's own model classes (e.g. ``CFAlphaCLIPModel``) load through ``AutoModel`` once
    :mod:`trustvl.modeling` is imported, which this function does.
    """
    from transformers import AutoModel, AutoProcessor

    import trustvl.modeling  # noqa: F401  (registers trustvl model classes with the Auto classes)
    from trustvl.hub.loading import load_pretrained

    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    model = load_pretrained(AutoModel, name_or_path, kind="model")
    processor = load_pretrained(AutoProcessor, name_or_path, kind="model")
    if not hasattr(model, "get_image_features") or not hasattr(model, "get_text_features"):
        raise TrustVLInputError(
            f"model {str(name_or_path)!r} is a {type(model).__name__}; expected a CLIP-style model with"
            " get_image_features and get_text_features"
        )
    model.to(device=dev, dtype=torch_dtype).eval()
    return model, processor


def _features(out: Any) -> torch.Tensor:
    return out.pooler_output if hasattr(out, "pooler_output") else out


def _check_finite(emb: torch.Tensor, what: str) -> torch.Tensor:
    if not torch.isfinite(emb).all():
        raise TrustVLInputError(
            f"the model produced non-finite {what} embeddings; expected finite values"
            " (try fp32 instead of fp16)"
        )
    return emb


@torch.no_grad()
def embed_images(
    model,
    processor,
    images: Iterable[Any],
    *,
    batch_size: int = 64,
    total: int | None = None,
    normalize: bool = True,
    progress: bool = True,
    desc: str = "embedding images",
) -> torch.Tensor:
    """Embed an iterable of images (PIL or arrays) in batches; returns float32 ``[n, d]`` on CPU."""
    if batch_size <= 0:
        raise TrustVLInputError(f"batch_size={batch_size} must be a positive integer")
    param = next(model.parameters())
    outs: list[torch.Tensor] = []
    bar = tqdm(total=total, desc=desc, unit="img", disable=not progress)
    batch: list[Any] = []

    def flush() -> None:
        pixel_values = processor(images=batch, return_tensors="pt")["pixel_values"]
        pixel_values = pixel_values.to(device=param.device, dtype=param.dtype)
        emb = _features(model.get_image_features(pixel_values=pixel_values)).float()
        if normalize:
            emb = torch.nn.functional.normalize(emb, dim=-1)
        outs.append(emb.cpu())
        bar.update(len(batch))
        batch.clear()

    try:
        for img in images:
            batch.append(img.convert("RGB") if hasattr(img, "convert") else img)
            if len(batch) == batch_size:
                flush()
        if batch:
            flush()
    finally:  # an error (an unreadable image) must not leave the bar to redraw over its message
        bar.close()
    if not outs:
        raise TrustVLInputError("no images to embed; expected at least one image")
    return _check_finite(torch.cat(outs), "image")


@torch.no_grad()
def embed_texts(
    model, processor, texts: Sequence[str], *, batch_size: int = 256, normalize: bool = True
) -> torch.Tensor:
    """Embed prompts; returns float32 ``[n, d]`` on CPU."""
    if len(texts) == 0:
        raise TrustVLInputError("no prompts given; expected at least one text prompt")
    param = next(model.parameters())
    tokenizer = getattr(processor, "tokenizer", processor)
    outs = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[i : i + batch_size]), padding=True, truncation=True, return_tensors="pt")
        enc = {k: v.to(param.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        emb = _features(model.get_text_features(**enc)).float()
        if normalize:
            emb = torch.nn.functional.normalize(emb, dim=-1)
        outs.append(emb.cpu())
    return _check_finite(torch.cat(outs), "text")


@torch.no_grad()
def embed_pixel_values(
    model,
    pixel_values: torch.Tensor,
    *,
    batch_size: int = 256,
    normalize: bool = True,
    progress: bool = False,
    desc: str = "embedding images",
) -> torch.Tensor:
    """Embed already-preprocessed ``pixel_values`` ``[n, 3, H, W]``; returns float32 ``[n, d]`` on CPU."""
    return _embed_tensor_batches(
        model,
        pixel_values,
        lambda pv: _features(model.get_image_features(pixel_values=pv)),
        batch_size=batch_size,
        normalize=normalize,
        progress=progress,
        desc=desc,
    )


def _embed_tensor_batches(
    model, inputs: torch.Tensor, forward, *, batch_size: int, normalize: bool, progress: bool, desc: str
) -> torch.Tensor:
    """``forward`` over ``inputs`` in batches moved to the model's device and dtype; float32 on CPU."""
    param = next(model.parameters())
    outs = []
    for i in tqdm(range(0, len(inputs), batch_size), desc=desc, disable=not progress):
        emb = forward(inputs[i : i + batch_size].to(device=param.device, dtype=param.dtype)).float()
        if normalize:
            emb = torch.nn.functional.normalize(emb, dim=-1)
        outs.append(emb.cpu())
    if not outs:
        raise TrustVLInputError("no images to embed; expected at least one image")
    return _check_finite(torch.cat(outs), "image")


@torch.no_grad()
def vision_prefix_states(
    model,
    processor,
    images: Sequence[Any],
    n_layers: int,
    *,
    batch_size: int = 128,
    progress: bool = False,
    desc: str = "frozen vision layers",
) -> torch.Tensor:
    """Hidden states entering vision layer ``n_layers`` of a model with ``vision_hidden_states`` (the CF_α
    CLIP), for ``images``; ``[n, tokens, width]`` on CPU in the model's dtype."""
    param = next(model.parameters())
    outs = []
    for i in tqdm(range(0, len(images), batch_size), desc=desc, disable=not progress):
        pv = processor(images=list(images[i : i + batch_size]), return_tensors="pt")["pixel_values"]
        outs.append(model.vision_hidden_states(pv.to(device=param.device, dtype=param.dtype), n_layers).cpu())
    if not outs:
        raise TrustVLInputError("no images to embed; expected at least one image")
    return torch.cat(outs)


@torch.no_grad()
def embed_vision_states(
    model,
    states: torch.Tensor,
    start_layer: int,
    *,
    batch_size: int = 256,
    normalize: bool = True,
    progress: bool = False,
    desc: str = "embedding images",
) -> torch.Tensor:
    """Image embeddings from :func:`vision_prefix_states` output (the layers from ``start_layer`` on, the
    post-LayerNorm and the projection); float32 ``[n, d]`` on CPU."""
    return _embed_tensor_batches(
        model,
        states,
        lambda chunk: model.image_features_from_hidden_states(chunk, start_layer),
        batch_size=batch_size,
        normalize=normalize,
        progress=progress,
        desc=desc,
    )
