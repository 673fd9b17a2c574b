"""Counterfactual sets as training data for CF_α: :class:`CounterfactualSets` (``v`` variants of one base
image per item) with its collator, and :class:`PrefixCachedSets`, the same sets with the frozen part of the
model computed once."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from trustvl.errors import TrustVLInputError
from trustvl.modeling.cf_alpha import CFAlphaCLIPModel
from trustvl.modeling.embedding import embed_texts, vision_prefix_states

__all__ = [
    "PREFIX_CACHE_MAX_BYTES",
    "CounterfactualSetCollator",
    "CounterfactualSets",
    "PrefixCachedSets",
    "caption_groups",
    "caption_keys",
    "collate_prefix_cached_sets",
]


class CounterfactualSets(torch.utils.data.Dataset):
    """A counterfactual dataset grouped by ``base_id``: item ``i`` is ``v`` variants of the i-th base.

    Variants are chosen deterministically (a seeded permutation per base and epoch-independent), so
    training is reproducible. Bases with fewer than two variants are rejected: they teach no invariance.
    ``attribute_columns`` (integer / ClassLabel columns, e.g. the builder's ``skin_tone``, ``age``) adds each
    variant's levels to the item as ``attributes`` ``[v, n_attributes]``, for the loss's attribute-effect term.
    """

    def __init__(
        self,
        dataset: Any,
        variants_per_set: int = 4,
        seed: int = 0,
        image_column: str = "image",
        caption_column: str = "caption",
        base_column: str = "base_id",
        attribute_columns: list[str] | None = None,
    ) -> None:
        for col in (image_column, caption_column, base_column, *(attribute_columns or [])):
            if col not in dataset.column_names:
                raise TrustVLInputError(
                    f"column {col!r} is not in the counterfactual dataset; available columns:"
                    f" {dataset.column_names} (a dataset of base_id groups is expected)"
                )
        if variants_per_set < 2:
            raise TrustVLInputError(f"variants_per_set={variants_per_set}; expected at least 2")
        groups: dict[int, list[int]] = defaultdict(list)
        for row, base in enumerate(dataset[base_column]):
            groups[int(base)].append(row)
        self.bases = sorted(b for b, rows in groups.items() if len(rows) >= 2)
        if not self.bases:
            raise TrustVLInputError(
                f"no {base_column!r} group has two or more variants; expected counterfactual"
                " sets (several rows sharing a base_id)"
            )
        rng = np.random.default_rng(seed)
        self.rows = {
            b: [groups[b][i] for i in rng.permutation(len(groups[b]))[:variants_per_set]] for b in self.bases
        }
        self.v = min(variants_per_set, min(len(r) for r in self.rows.values()))
        self.dataset, self.image_column, self.caption_column = dataset, image_column, caption_column
        self.attribute_columns = list(attribute_columns or [])
        # the levels are read once (no image decoding): [n_rows, n_attributes]
        self.levels = (
            torch.tensor(
                np.stack([np.asarray(dataset[c], dtype=np.int64) for c in self.attribute_columns], 1)
            )
            if self.attribute_columns
            else None
        )

    def __len__(self) -> int:
        return len(self.bases)

    def attributes(self, i: int) -> torch.Tensor | None:
        """``[v, n_attributes]`` levels of item ``i``'s variants (None without ``attribute_columns``)."""
        return None if self.levels is None else self.levels[self.rows[self.bases[i]][: self.v]]

    def __getitem__(self, i: int) -> dict[str, Any]:
        rows = self.dataset[self.rows[self.bases[i]][: self.v]]
        item = {"images": rows[self.image_column], "caption": rows[self.caption_column][0]}
        if self.levels is not None:
            item["attributes"] = self.attributes(i)
        return item


@dataclass
class CounterfactualSetCollator:
    """Flattens sets into ``pixel_values`` ``[B·v, ...]``, one caption per set, ``set_index`` ``[B·v]`` and
    ``caption_index`` ``[B]`` (equal for sets whose captions are identical, so the loss counts them as
    positives of each other rather than negatives) and ``caption_key`` ``[B]`` (:func:`caption_keys`)."""

    processor: Any
    max_length: int | None = None

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        images = [img.convert("RGB") for it in items for img in it["images"]]
        pixel_values = self.processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
        tok = self.processor.tokenizer(
            [it["caption"] for it in items],
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        set_index = torch.tensor([i for i, it in enumerate(items) for _ in it["images"]], dtype=torch.long)
        batch = {
            "pixel_values": pixel_values,
            "input_ids": tok["input_ids"],
            "attention_mask": tok["attention_mask"],
            "set_index": set_index,
            "caption_index": caption_groups([it["caption"] for it in items]),
            "caption_key": caption_keys([it["caption"] for it in items]),
        }
        if "attributes" in items[0]:
            batch["variant_attributes"] = torch.cat([it["attributes"] for it in items])
        return batch


def caption_groups(captions: list[str]) -> torch.Tensor:
    """``[B]`` long tensor: the index of each caption's first occurrence among distinct captions."""
    first: dict[str, int] = {}
    return torch.tensor([first.setdefault(c, len(first)) for c in captions], dtype=torch.long)


def caption_keys(captions: list[str]) -> torch.Tensor:
    """``[B]`` long tensor: a 63-bit key of each caption (the first bytes of its sha256), equal for equal
    captions on every process, so a batch gathered from several processes still groups its captions."""
    return torch.tensor(
        [int.from_bytes(hashlib.sha256(c.encode("utf-8")).digest()[:8], "big") >> 1 for c in captions],
        dtype=torch.long,
    )


#: Largest cache of frozen-prefix states CF_α training builds (bytes); larger datasets train from pixels.
PREFIX_CACHE_MAX_BYTES = 4 * 2**30


class PrefixCachedSets(torch.utils.data.Dataset):
    """:class:`CounterfactualSets` with the frozen part of the model computed once: each image replaced by the
    hidden states entering the first vision layer with a LoRA delta, each caption by its text features.

    Exact when nothing before that layer is trained and the text tower carries no LoRA (see
    :meth:`~trustvl.modeling.cf_alpha.CFAlphaCLIPModel.first_adapted_vision_layer`) and the towers have no
    dropout: every step then computes the same numbers as from pixels (up to rounding) while running only the
    adapted layers, and no image is decoded or preprocessed again. The cost is one forward pass of the frozen
    part per image and the memory of the states (``n_images × tokens × width`` floats; 204 MB for the demo's
    3,072 images of the SynthWorld CLIP).
    """

    def __init__(
        self,
        sets: CounterfactualSets,
        model: CFAlphaCLIPModel,
        processor: Any,
        *,
        device: torch.device | str = "cpu",
        batch_size: int = 256,
        progress: bool = False,
    ) -> None:
        self.start_layer = model.first_adapted_vision_layer()
        self.sets = sets
        was_training, original_device = model.training, next(model.parameters()).device
        model.eval().to(device)
        states: list[torch.Tensor] = []
        self.captions: list[str] = []
        bases_per_chunk = max(1, batch_size // sets.v)
        for lo in tqdm(
            range(0, len(sets), bases_per_chunk), desc="caching frozen layers", disable=not progress
        ):
            items = [sets[i] for i in range(lo, min(lo + bases_per_chunk, len(sets)))]
            images = [img.convert("RGB") for it in items for img in it["images"]]
            hidden = vision_prefix_states(
                model, processor.image_processor, images, self.start_layer, batch_size=len(images)
            )
            states.append(hidden.reshape(len(items), sets.v, *hidden.shape[1:]))
            self.captions.extend(it["caption"] for it in items)
        distinct = sorted(set(self.captions))
        features = embed_texts(model, processor, distinct, normalize=False)
        self.hidden_states = torch.cat(states)
        lookup = {c: i for i, c in enumerate(distinct)}
        self.text_embeds = features[torch.tensor([lookup[c] for c in self.captions])]
        model.train(was_training).to(original_device)

    @staticmethod
    def applies(model: CFAlphaCLIPModel, sets: CounterfactualSets | None = None) -> bool:
        """Whether caching is exact for ``model`` (no LoRA in the text tower, no dropout in either tower) and,
        given ``sets``, whether their states fit in :data:`PREFIX_CACHE_MAX_BYTES`."""
        cfg = model.config
        dropouts = [
            getattr(sub, key, 0.0) or 0.0
            for sub in (cfg.vision_config, cfg.text_config)
            for key in ("attention_dropout", "dropout", "hidden_dropout_prob")
        ]
        if model.text_tower_adapted() or any(dropouts):
            return False
        return sets is None or PrefixCachedSets.nbytes(model, sets) <= PREFIX_CACHE_MAX_BYTES

    @staticmethod
    def nbytes(model: CFAlphaCLIPModel, sets: CounterfactualSets) -> int:
        """Memory the cached states of ``sets`` take."""
        return model.vision_hidden_states_nbytes(len(sets) * sets.v)

    def __len__(self) -> int:
        return len(self.sets)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = {
            "hidden_states": self.hidden_states[i],
            "text_embeds": self.text_embeds[i],
            "caption": self.captions[i],
            "start_layer": self.start_layer,
        }
        attributes = self.sets.attributes(i)
        if attributes is not None:
            item["attributes"] = attributes
        return item


def collate_prefix_cached_sets(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Batch of :class:`PrefixCachedSets` items: ``vision_hidden_states`` ``[B·v, tokens, width]``,
    ``vision_start_layer``, ``text_embeds`` ``[B, d]``, ``set_index`` ``[B·v]``, ``caption_index`` and
    ``caption_key`` ``[B]`` (and ``variant_attributes`` ``[B·v, n_attributes]`` when the sets carry them)."""
    hidden = torch.cat([it["hidden_states"] for it in items])
    v = items[0]["hidden_states"].shape[0]
    batch = {
        "vision_hidden_states": hidden,
        "vision_start_layer": torch.tensor(items[0]["start_layer"]),
        "text_embeds": torch.stack([it["text_embeds"] for it in items]),
        "set_index": torch.arange(len(items)).repeat_interleave(v),
        "caption_index": caption_groups([it["caption"] for it in items]),
        "caption_key": caption_keys([it["caption"] for it in items]),
    }
    if "attributes" in items[0]:
        batch["variant_attributes"] = torch.cat([it["attributes"] for it in items])
    return batch
