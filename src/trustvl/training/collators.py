"""Collators: lists of dataset rows → batch dicts for :func:`trustvl.training.train`.

:class:`ImageTextCollator` is the generic one for image–caption data. Method-specific collators (e.g. a
Safe-CLIP quadruplet collator) can reuse it per field or follow the same conventions: images become
``pixel_values`` ``(B, C, H, W)``, captions ``input_ids``/``attention_mask`` ``(B, L)``, and integer/float
bookkeeping fields (``group_id``, ``base_id``, ``label``…) pass through as tensors.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from trustvl.errors import TrustVLInputError

__all__ = ["ImageTextCollator"]


def _is_tokenizer(obj: Any) -> bool:
    return hasattr(obj, "convert_tokens_to_ids") and callable(obj)


def _tokenizer_of(processor: Any) -> Any:
    if processor is None:
        return None
    tok = getattr(processor, "tokenizer", None)
    if tok is not None and _is_tokenizer(tok):
        return tok
    return processor if _is_tokenizer(processor) else None


def _image_processor_of(processor: Any) -> Any:
    if processor is None:
        return None
    ip = getattr(processor, "image_processor", None)
    if ip is not None:
        return ip
    return processor if hasattr(processor, "preprocess") and not _is_tokenizer(processor) else None


def _as_image_tensor(x: Any) -> torch.Tensor | None:
    """A ``(C, H, W)`` float tensor from a tensor/array already laid out that way, else `None`."""
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, np.ndarray) and x.dtype.kind == "f":
        t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        return None
    return t.float() if t.dim() == 3 else None


class ImageTextCollator:
    """Collate ``{"image": PIL/ndarray, "caption": str, ...}`` rows into a CLIP batch.

    Output keys:

    * ``pixel_values`` ``(B, C, H, W)`` float — from, in order of preference: a ``pixel_values`` entry already in
      each row (fast path: pre-processed tensors/arrays are stacked as they are); ``image_transform(image)``
      when it returns a ``(C, H, W)`` tensor/float array; the processor's image processor (applied to the raw
      images, or to what ``image_transform`` returned if that was still an image).
    * ``input_ids`` / ``attention_mask`` ``(B, L)`` long — from ``input_ids`` entries already in each row
      (padded to the longest with ``pad_token_id``; ``attention_mask`` taken from the rows or built), else by
      tokenising the captions (truncated to ``max_length``, padded per ``padding``).
    * passthrough fields: every other field whose values are ints/bools (→ ``torch.long``/``torch.bool``),
      floats (→ ``torch.float32``) or equally shaped tensors/arrays (→ stacked); ``passthrough`` restricts
      the set (and makes a listed field that cannot be tensorised an error). Strings and other objects are
      dropped unless ``keep_other=True`` (then returned as lists).

    A batch may omit images (text-only) or captions (image-only); a row must not mix.

    Args:
        processor_or_tokenizer (*optional*):
            A ``CLIPProcessor``-like object (``.tokenizer`` and ``.image_processor``), a tokenizer, or an image
            processor. May be `None` when rows are already pre-processed.
        image_transform (`callable`, *optional*):
            Per-image transform (e.g. torchvision), applied before the image processor.
        max_length (`int`, *optional*, defaults to 77):
            Maximum caption length in tokens (CLIP's context).
        padding (`str` or `bool`, *optional*, defaults to `"longest"`):
            Tokenizer padding: ``"longest"`` (dynamic) or ``"max_length"`` (fixed shapes).
        image_key (`str`, *optional*, defaults to `"image"`):
            Field holding the image.
        text_key (`str`, *optional*, defaults to `"caption"`):
            Field holding the caption.
        passthrough (sequence of `str`, *optional*):
            Fields to pass through; `None` passes every numeric field.
        keep_other (`bool`, *optional*, defaults to `False`):
            Return non-numeric fields (not consumed above) as lists instead of dropping them.
        pad_token_id (`int`, *optional*):
            Padding id for pre-tokenised rows; defaults to the tokenizer's, else 0.
    """

    _CONSUMED = ("pixel_values", "input_ids", "attention_mask")

    def __init__(
        self,
        processor_or_tokenizer: Any = None,
        image_transform: Callable[[Any], Any] | None = None,
        max_length: int = 77,
        *,
        padding: str | bool = "longest",
        image_key: str = "image",
        text_key: str = "caption",
        passthrough: Sequence[str] | None = None,
        keep_other: bool = False,
        pad_token_id: int | None = None,
    ) -> None:
        self.processor = processor_or_tokenizer
        self.tokenizer = _tokenizer_of(processor_or_tokenizer)
        self.image_processor = _image_processor_of(processor_or_tokenizer)
        self.image_transform = image_transform
        if int(max_length) < 1:
            raise TrustVLInputError(f"max_length={max_length} must be >= 1")
        self.max_length = int(max_length)
        self.padding = padding
        self.image_key = image_key
        self.text_key = text_key
        self.passthrough = None if passthrough is None else list(passthrough)
        self.keep_other = keep_other
        if pad_token_id is None and self.tokenizer is not None:
            pad_token_id = getattr(self.tokenizer, "pad_token_id", None)
        self.pad_token_id = 0 if pad_token_id is None else int(pad_token_id)

    # -- images ---------------------------------------------------------------------------------------------
    def _pixel_values(self, rows: Sequence[Mapping[str, Any]]) -> torch.Tensor | None:
        has_pv = ["pixel_values" in r and r["pixel_values"] is not None for r in rows]
        has_img = [self.image_key in r and r[self.image_key] is not None for r in rows]
        if all(has_pv):
            tensors = [
                torch.as_tensor(np.asarray(r["pixel_values"]))
                if not isinstance(r["pixel_values"], torch.Tensor)
                else r["pixel_values"]
                for r in rows
            ]
            return self._stack("pixel_values", tensors).float()
        if any(has_pv):
            raise TrustVLInputError("some rows have 'pixel_values' and some do not; pre-process all or none")
        if not any(has_img):
            return None
        if not all(has_img):
            raise TrustVLInputError(f"some rows have an {self.image_key!r} and some do not")
        images = [r[self.image_key] for r in rows]
        if self.image_transform is not None:
            images = [self.image_transform(im) for im in images]
            tensors = [_as_image_tensor(im) for im in images]
            if all(t is not None for t in tensors):
                return self._stack("pixel_values", tensors)
        if self.image_processor is None:
            raise TrustVLInputError(
                "images need an image processor (pass a CLIPProcessor/image processor as processor_or_tokenizer) "
                "or an image_transform returning (C, H, W) tensors"
            )
        out = self.image_processor(images=images, return_tensors="pt")
        return out["pixel_values"].float()

    # -- text -----------------------------------------------------------------------------------------------
    def _text(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        has_ids = ["input_ids" in r and r["input_ids"] is not None for r in rows]
        has_txt = [self.text_key in r and r[self.text_key] is not None for r in rows]
        if all(has_ids):
            return self._pad_ids(rows)
        if any(has_ids):
            raise TrustVLInputError("some rows have 'input_ids' and some do not; tokenise all or none")
        if not any(has_txt):
            return {}
        if not all(has_txt):
            raise TrustVLInputError(f"some rows have a {self.text_key!r} and some do not")
        texts = [r[self.text_key] for r in rows]
        if not all(isinstance(t, str) for t in texts):
            raise TrustVLInputError(
                f"{self.text_key!r} values must be strings; got {[type(t).__name__ for t in texts]}"
            )
        if self.tokenizer is None:
            raise TrustVLInputError(
                "captions need a tokenizer (pass a CLIPProcessor or tokenizer as processor_or_tokenizer)"
            )
        enc = self.tokenizer(
            texts, padding=self.padding, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        out = {"input_ids": enc["input_ids"].long()}
        if "attention_mask" in enc:
            out["attention_mask"] = enc["attention_mask"].long()
        else:
            out["attention_mask"] = torch.ones_like(out["input_ids"])
        return out

    def _pad_ids(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        ids = [torch.as_tensor(r["input_ids"], dtype=torch.long).reshape(-1)[: self.max_length] for r in rows]
        masks = []
        for r, i in zip(rows, ids):
            m = r.get("attention_mask")
            m = (
                torch.ones_like(i)
                if m is None
                else torch.as_tensor(m, dtype=torch.long).reshape(-1)[: i.shape[0]]
            )
            masks.append(m)
        length = self.max_length if self.padding == "max_length" else max(i.shape[0] for i in ids)
        input_ids = torch.full((len(ids), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(ids), length), dtype=torch.long)
        for k, (i, m) in enumerate(zip(ids, masks)):
            input_ids[k, : i.shape[0]] = i
            attention_mask[k, : m.shape[0]] = m
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    # -- other fields ---------------------------------------------------------------------------------------
    @staticmethod
    def _stack(name: str, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) != 1:
            raise TrustVLInputError(
                f"field {name!r} has rows of different shapes {sorted(shapes)}; cannot stack"
            )
        return torch.stack(list(tensors))

    @classmethod
    def _tensorise(cls, name: str, values: list[Any]) -> torch.Tensor | None:
        if all(isinstance(v, (bool, np.bool_)) for v in values):
            return torch.tensor([bool(v) for v in values], dtype=torch.bool)
        if all(isinstance(v, numbers.Integral) for v in values):
            return torch.tensor([int(v) for v in values], dtype=torch.long)
        if all(isinstance(v, numbers.Real) for v in values):
            return torch.tensor([float(v) for v in values], dtype=torch.float32)
        if all(isinstance(v, torch.Tensor) for v in values):
            return cls._stack(name, values)
        if all(isinstance(v, np.ndarray) and v.dtype.kind in "biuf" for v in values):
            return cls._stack(name, [torch.from_numpy(np.ascontiguousarray(v)) for v in values])
        return None

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if not rows:
            raise TrustVLInputError("cannot collate an empty list of rows")
        batch: dict[str, Any] = {}
        pixel_values = self._pixel_values(rows)
        if pixel_values is not None:
            batch["pixel_values"] = pixel_values
        batch.update(self._text(rows))
        if not batch:
            raise TrustVLInputError(
                f"rows have neither {self.image_key!r}/'pixel_values' nor {self.text_key!r}/'input_ids'; "
                f"got fields {sorted(rows[0])}"
            )
        consumed = {*self._CONSUMED, self.image_key, self.text_key}
        names = (
            self.passthrough if self.passthrough is not None else [k for k in rows[0] if k not in consumed]
        )
        for name in names:
            if any(name not in r for r in rows):
                if self.passthrough is not None:
                    raise TrustVLInputError(f"passthrough field {name!r} is missing from some rows")
                continue
            values = [r[name] for r in rows]
            tensor = self._tensorise(name, values)
            if tensor is not None:
                batch[name] = tensor
            elif self.passthrough is not None and not self.keep_other:
                raise TrustVLInputError(
                    f"passthrough field {name!r} holds {type(values[0]).__name__} values that cannot become a tensor"
                )
            elif self.keep_other:
                batch[name] = values
        return batch
