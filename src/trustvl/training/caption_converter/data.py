"""The caption converter's training data: the curated safe→unsafe pairs shipped with trustvl
(:data:`CURATED_PAIRS_PATH`), each pair tokenised as ``prompt_ids(safe) + completion_ids(safe, unsafe)`` in the
converter's prompt format with the prompt's labels set to :data:`IGNORE_INDEX` (:class:`CaptionPairDataset`),
and right padding into batches (:class:`CaptionPairCollator`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from trustvl.errors import TrustVLInputError
from trustvl.modeling.caption_converter import completion_ids, prompt_ids
from trustvl.utils.assets import asset_path

__all__ = ["CURATED_PAIRS_PATH", "IGNORE_INDEX", "CaptionPairCollator", "CaptionPairDataset"]

#: The curated safe→unsafe caption pairs shipped with trustvl (an HF dataset folder: train/test splits).
CURATED_PAIRS_PATH = asset_path("datasets", "safe-unsafe-caption-pairs")
#: Label of the positions left out of the loss (prompt, padding): cross-entropy's ``ignore_index``.
IGNORE_INDEX = -100


class CaptionPairDataset(torch.utils.data.Dataset):
    """Safe→unsafe pairs tokenised for the converter: ``input_ids`` (prompt + completion) and ``labels``
    (-100 on the prompt, the completion's ids after it). Pairs longer than ``max_length`` tokens are an
    error (truncating would train on a cut caption)."""

    def __init__(
        self,
        pairs: Any,
        tokenizer: Any,
        prompt_format: str,
        max_length: int = 256,
        safe_column: str = "safe_text",
        unsafe_column: str = "unsafe_text",
    ) -> None:
        columns = getattr(pairs, "column_names", None)
        if columns is not None:
            missing = [c for c in (safe_column, unsafe_column) if c not in columns]
            if missing:
                raise TrustVLInputError(
                    f"the caption-pair dataset lacks columns {missing}; available: {columns}"
                    f" (expected {safe_column!r} and {unsafe_column!r})"
                )
            rows = list(zip(pairs[safe_column], pairs[unsafe_column]))
        else:
            rows = [(p[safe_column], p[unsafe_column]) for p in pairs]
        if not rows:
            raise TrustVLInputError("the caption-pair dataset is empty; expected safe→unsafe pairs")
        self.items: list[dict[str, list[int]]] = []
        for i, (safe, unsafe) in enumerate(rows):
            for name, text in (("safe", safe), ("unsafe", unsafe)):
                if not isinstance(text, str) or not text.strip():
                    raise TrustVLInputError(f"pair {i}: {name} caption {text!r}; expected a non-empty string")
            prompt = prompt_ids(tokenizer, safe.strip(), prompt_format)
            completion = completion_ids(tokenizer, safe.strip(), unsafe.strip(), prompt_format)
            if len(prompt) + len(completion) > max_length:
                raise TrustVLInputError(
                    f"pair {i} is {len(prompt) + len(completion)} tokens; expected at most max_length={max_length}"
                )
            self.items.append(
                {"input_ids": prompt + completion, "labels": [IGNORE_INDEX] * len(prompt) + completion}
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.items[i]


@dataclass
class CaptionPairCollator:
    """Pads a batch on the right: ``input_ids`` with ``pad_token_id``, ``attention_mask`` 0 and ``labels``
    -100 on padding."""

    pad_token_id: int

    def __call__(self, items: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(it["input_ids"]) for it in items)
        ids, mask, labels = [], [], []
        for it in items:
            n = len(it["input_ids"])
            ids.append(it["input_ids"] + [self.pad_token_id] * (width - n))
            mask.append([1] * n + [0] * (width - n))
            labels.append(it["labels"] + [IGNORE_INDEX] * (width - n))
        return {
            "input_ids": torch.tensor(ids),
            "attention_mask": torch.tensor(mask),
            "labels": torch.tensor(labels),
        }
