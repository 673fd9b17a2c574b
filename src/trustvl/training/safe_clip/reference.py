"""The frozen reference of Safe-CLIP: the ORIGINAL model's embeddings of the safe inputs, computed once.

Safe-CLIP's references are ``Tref(S)`` and ``Vref(V)``: the original towers applied to the safe caption and
the safe image of every quadruplet. They depend on the original model and the dataset only, so trustvl
computes them once per (model, dataset) pair, before any LoRA layer exists, with a model instance of its
own (loaded from the checkpoint, in eval mode, under ``torch.no_grad()``), and caches them on disk. The
adapted model is a different object, so nothing the adapter does can reach the references; the public
script instead wraps with peft the very module it later calls as the reference (peft injects its layers
in place), so its "reference" likely moves with the adapter.

Cache: ``<cache_dir>/<key>.safetensors`` holding ``text`` and ``image`` (float32 ``[N, D]``, projected,
not normalised), written atomically. The key hashes the checkpoint's files (config and weights), the
dataset's fingerprint and split, its row count, the image preprocessing and the tokenizer settings, so a
changed model or dataset never reads stale references. ``cache_dir`` defaults to
``$TRUSTVL_CACHE/safe_clip_references`` (else ``$HF_HOME/trustvl/...``, else ``~/.cache/trustvl/...``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from trustvl.errors import TrustVLInputError
from trustvl.modeling.embedding import load_clip_float32
from trustvl.utils.devices import resolve_device
from trustvl.utils.io import sha256_text
from trustvl.utils.tensor_cache import TensorCache, checkpoint_fingerprint
from trustvl.utils.tensor_cache import cache_dir as trustvl_cache_dir

__all__ = [
    "ReferenceEmbeddings",
    "checkpoint_fingerprint",
    "compute_reference_embeddings",
    "dataset_fingerprint",
    "default_reference_cache_dir",
]


@dataclass
class ReferenceEmbeddings:
    """``Tref(S)`` (``text``) and ``Vref(V)`` (``image``) of every row, float32 ``[N, D]`` on CPU; ``key``
    names the cache entry and ``from_cache`` says whether they were read from it."""

    text: torch.Tensor
    image: torch.Tensor
    key: str
    from_cache: bool = False

    def __len__(self) -> int:
        return int(self.text.shape[0])


def default_reference_cache_dir() -> Path:
    """``safe_clip_references`` under trustvl's cache root (:func:`trustvl.utils.tensor_cache.cache_dir`)."""
    return trustvl_cache_dir("safe_clip_references")


def dataset_fingerprint(dataset: Any) -> str:
    """``datasets``' own fingerprint of a ``Dataset`` (it changes with the data files and every transform);
    for other sequences, a hash of the captions."""
    fingerprint = getattr(dataset, "_fingerprint", None)
    if fingerprint:
        return str(fingerprint)
    return sha256_text(*[str(row["safe_text"]) for row in dataset])


def _preprocessing(processor: Any) -> dict[str, Any]:
    image_processor = getattr(processor, "image_processor", None)
    tokenizer = getattr(processor, "tokenizer", None)
    return {
        "image": image_processor.to_dict() if image_processor is not None else None,
        "tokenizer": type(tokenizer).__name__,
        "vocab": len(tokenizer) if tokenizer is not None else None,
    }


@torch.no_grad()
def compute_reference_embeddings(
    base_model: str | os.PathLike,
    processor: Any,
    dataset: Any,
    *,
    split: str = "train",
    batch_size: int = 256,
    device: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool = True,
    max_length: int | None = None,
) -> ReferenceEmbeddings:
    """``Tref(S)`` and ``Vref(V)`` of every row of ``dataset`` (columns ``safe_text`` and ``safe_image``),
    from a fresh, frozen float32 instance of ``base_model``; read from / written to the cache.

    The instance is loaded here and dropped on return: the model that training adapts is never used.
    """
    if batch_size < 1:
        raise TrustVLInputError(f"reference batch_size={batch_size}; expected an integer >= 1")
    n = len(dataset)
    if n == 0:
        raise TrustVLInputError("the Safe-CLIP dataset split is empty; expected at least one quadruplet")
    key = sha256_text(
        "safe-clip-reference-v1",
        checkpoint_fingerprint(base_model),
        dataset_fingerprint(dataset),
        split,
        str(n),
        str(max_length),
        json.dumps(_preprocessing(processor), sort_keys=True, default=str),
    )[:40]
    cache = TensorCache(cache_dir if cache_dir is not None else default_reference_cache_dir())
    if use_cache:
        stored = cache.get(key, ("text", "image"), expected_rows=n)
        if stored is not None:
            return ReferenceEmbeddings(stored["text"], stored["image"], key, from_cache=True)

    dev = resolve_device(device)
    reference = load_clip_float32(base_model).to(dev).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    tokenizer = processor.tokenizer
    texts, images = [], []
    for start in tqdm(range(0, n, batch_size), desc="Safe-CLIP references", disable=not progress):
        rows = dataset[start : start + batch_size]
        enc = tokenizer(
            list(rows["safe_text"]), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        out = reference.get_text_features(
            input_ids=enc["input_ids"].to(dev), attention_mask=enc["attention_mask"].to(dev)
        )
        texts.append((out.pooler_output if hasattr(out, "pooler_output") else out).float().cpu())
        pixel_values = processor.image_processor(
            images=[img.convert("RGB") for img in rows["safe_image"]], return_tensors="pt"
        )["pixel_values"]
        out = reference.get_image_features(pixel_values=pixel_values.to(dev))
        images.append((out.pooler_output if hasattr(out, "pooler_output") else out).float().cpu())
    result = ReferenceEmbeddings(torch.cat(texts).contiguous(), torch.cat(images).contiguous(), key)
    if not (torch.isfinite(result.text).all() and torch.isfinite(result.image).all()):
        raise TrustVLInputError(f"the reference model {os.fspath(base_model)!r} gave non-finite embeddings")
    if use_cache:
        cache.put(
            key, {"text": result.text, "image": result.image}, metadata={"split": split, "rows": str(n)}
        )
    return result
