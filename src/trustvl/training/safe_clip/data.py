"""Safe-CLIP quadruplets as training rows, their collator, and the validation recall used for early stopping.

A quadruplet dataset (``trustvl build safe-clip-quadruplets``, or any dataset with the same columns) has
``safe_text`` (S), ``safe_image`` (V), ``unsafe_text`` (U) and ``unsafe_image`` (G) per row.
:class:`QuadrupletDataset` pairs each row with its cached references (``Tref(S)``, ``Vref(V)``);
:class:`QuadrupletCollator` turns ``B`` rows into one CLIP forward's inputs: ``2B`` texts (S rows, then U
rows, tokenised together so they share one padding length) and ``2B`` images (V, then G).

:class:`ValidationRecall` is the early-stopping metric ``recall_sum``: the sum of R@1 in both directions of
S↔V, S↔G and U↔V on the validation split (U↔G left out on purpose, as in the paper's code: a model that
redirects U and G to the safe embeddings need not keep them apart or together). Where the split says which
rows are twins and their unsafe kind (``scene_id``, ``unsafe_kind`` or ``category``), it also reports
``nsfw_rate_t2i``, the validation NSFW rate text→image as ``trustvl eval safe-clip`` measures it (each unsafe
caption of the query side ranks the query side's safe images plus an equally large pool of other scenes' unsafe
images; the share of unsafe ones in its top 10, :data:`NSFW_K`), which ``SafeCLIPConfig.selection_metric``
can select the checkpoint on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trustvl.data_builders.safe_clip.unsafe_pool import NonTwinPool, non_twin_pool_of
from trustvl.errors import TrustVLInputError
from trustvl.metrics import recall_at_k, unsafe_share_at_k
from trustvl.training.safe_clip.reference import ReferenceEmbeddings

__all__ = [
    "NSFW_K",
    "QUADRUPLET_COLUMNS",
    "RECALL_PAIRS",
    "QuadrupletCollator",
    "QuadrupletDataset",
    "ValidationRecall",
    "check_quadruplet_columns",
]

#: The four parts of a quadruplet, as dataset columns.
QUADRUPLET_COLUMNS = ("safe_text", "safe_image", "unsafe_text", "unsafe_image")

#: the cut-off of the validation NSFW rate (Safe-CLIP's evaluation: the top 10)
NSFW_K = 10

#: ``recall_sum``'s six R@1 terms: (metric name, text column, image column, direction).
RECALL_PAIRS: tuple[tuple[str, str, str, str], ...] = (
    ("r1_s2v", "safe_text", "safe_image", "text_to_image"),
    ("r1_v2s", "safe_text", "safe_image", "image_to_text"),
    ("r1_s2g", "safe_text", "unsafe_image", "text_to_image"),
    ("r1_g2s", "safe_text", "unsafe_image", "image_to_text"),
    ("r1_u2v", "unsafe_text", "safe_image", "text_to_image"),
    ("r1_v2u", "unsafe_text", "safe_image", "image_to_text"),
)


def check_quadruplet_columns(dataset: Any, what: str = "dataset") -> None:
    """Raise :class:`TrustVLInputError` unless ``dataset`` has the four quadruplet columns, non-empty
    captions and at least one row."""
    columns = list(getattr(dataset, "column_names", []) or [])
    missing = [c for c in QUADRUPLET_COLUMNS if c not in columns]
    if missing:
        raise TrustVLInputError(
            f"the Safe-CLIP {what} lacks the columns {missing}; expected {list(QUADRUPLET_COLUMNS)}"
            f" (got {columns})"
        )
    if len(dataset) == 0:
        raise TrustVLInputError(f"the Safe-CLIP {what} has no rows; expected at least one quadruplet")
    for column in ("safe_text", "unsafe_text"):
        for row, text in enumerate(dataset[column]):
            if text is None or not str(text).strip():
                raise TrustVLInputError(
                    f"row {row} of the Safe-CLIP {what} has an empty {column!r}; expected a caption"
                )


class QuadrupletDataset(torch.utils.data.Dataset):
    """Rows of a quadruplet dataset, each with its cached references (``ref_text``, ``ref_image``)."""

    def __init__(self, dataset: Any, references: ReferenceEmbeddings) -> None:
        check_quadruplet_columns(dataset)
        if len(references) != len(dataset):
            raise TrustVLInputError(
                f"{len(references)} reference rows for {len(dataset)} quadruplets; expected one per row"
            )
        self.dataset, self.references = dataset, references

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.dataset[int(index)]
        item = {c: row[c] for c in QUADRUPLET_COLUMNS}
        item["ref_text"] = self.references.text[index]
        item["ref_image"] = self.references.image[index]
        return item


def _rgb(image: Any, column: str) -> Any:
    if image is None:
        raise TrustVLInputError(f"a Safe-CLIP quadruplet has no {column!r}; expected an image in every row")
    return image.convert("RGB") if hasattr(image, "convert") else image


@dataclass
class QuadrupletCollator:
    """``B`` quadruplets -> ``input_ids``/``attention_mask`` ``[2B, L]`` (S then U), ``pixel_values``
    ``[2B, 3, H, W]`` (V then G) and, when the rows carry them, ``ref_text``/``ref_image`` ``[B, D]``."""

    processor: Any
    max_length: int | None = None

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        texts = [str(it["safe_text"]) for it in items] + [str(it["unsafe_text"]) for it in items]
        images = [_rgb(it["safe_image"], "safe_image") for it in items]
        images += [_rgb(it["unsafe_image"], "unsafe_image") for it in items]
        tok = self.processor.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        batch = {
            "input_ids": tok["input_ids"],
            "attention_mask": tok["attention_mask"],
            "pixel_values": self.processor.image_processor(images=images, return_tensors="pt")[
                "pixel_values"
            ],
        }
        if "ref_text" in items[0]:
            batch["ref_text"] = torch.stack([torch.as_tensor(it["ref_text"]) for it in items])
            batch["ref_image"] = torch.stack([torch.as_tensor(it["ref_image"]) for it in items])
        return batch


class ValidationRecall:
    """``metric_fn(model) -> {"recall_sum", "r1_s2v", ...}`` on a validation split (see the module docstring).

    Inputs are preprocessed once (pixel values and token ids kept in memory); each call embeds them with
    the model as it is (eval mode, no grad; the training core takes care of both) in batches.
    """

    def __init__(self, dataset: Any, processor: Any, *, batch_size: int = 256, max_length: int | None = None):
        check_quadruplet_columns(dataset, "validation split")
        if len(dataset) < 2:
            raise TrustVLInputError(
                "the Safe-CLIP validation split has one row; expected at least 2 for recall"
            )
        self.batch_size = int(batch_size)
        tokenizer = processor.tokenizer
        self.tokens = {
            c: tokenizer(
                list(dataset[c]), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            for c in ("safe_text", "unsafe_text")
        }
        self.pixels = {
            c: processor.image_processor(images=[_rgb(i, c) for i in dataset[c]], return_tensors="pt")[
                "pixel_values"
            ]
            for c in ("safe_image", "unsafe_image")
        }
        self.pool: NonTwinPool | None
        try:  # a split without the kind columns, or of one scene, has no non-twin pool: no NSFW rate
            self.pool = non_twin_pool_of(dataset, seed=0)
        except TrustVLInputError:
            self.pool = None

    def _embed(self, model: nn.Module, column: str) -> torch.Tensor:
        param = next(model.parameters())
        outs = []
        if column in self.tokens:
            enc = self.tokens[column]
            for s in range(0, enc["input_ids"].shape[0], self.batch_size):
                out = model.get_text_features(
                    input_ids=enc["input_ids"][s : s + self.batch_size].to(param.device),
                    attention_mask=enc["attention_mask"][s : s + self.batch_size].to(param.device),
                )
                outs.append(out.pooler_output if hasattr(out, "pooler_output") else out)
        else:
            pixels = self.pixels[column]
            for s in range(0, pixels.shape[0], self.batch_size):
                out = model.get_image_features(
                    pixel_values=pixels[s : s + self.batch_size].to(device=param.device, dtype=param.dtype)
                )
                outs.append(out.pooler_output if hasattr(out, "pooler_output") else out)
        return nn.functional.normalize(torch.cat(outs).float(), dim=-1)

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> dict[str, float]:
        emb = {c: self._embed(model, c) for c in (*self.tokens, *self.pixels)}
        values = {
            name: float(recall_at_k(emb[text] @ emb[image].T, 1, direction))
            for name, text, image, direction in RECALL_PAIRS
        }
        out = {"recall_sum": sum(values.values()), **values}
        if self.pool is not None:
            query, other = torch.tensor(self.pool.query_rows), torch.tensor(self.pool.pool_rows)
            gallery = torch.cat([emb["safe_image"][query], emb["unsafe_image"][other]])
            unsafe = torch.cat(
                [torch.zeros(len(query), dtype=torch.bool), torch.ones(len(other), dtype=torch.bool)]
            )
            k = min(NSFW_K, gallery.shape[0])
            out["nsfw_rate_t2i"] = float(
                unsafe_share_at_k(emb["unsafe_text"][query] @ gallery.T, unsafe, k).mean()
            )
        return out
