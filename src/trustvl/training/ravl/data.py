"""RaVL training data: class prompts, grid-region crops, masked images, the dataset rows and their collator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from trustvl.data_builders.ravl.regions import grid_regions, image_width_height, to_rgb_image
from trustvl.errors import TrustVLInputError
from trustvl.utils.class_labels import class_label_names

DEFAULT_PROMPT_TEMPLATE = "a photo of the digit {name}"


def class_prompts(class_names: Sequence[str], template: str = DEFAULT_PROMPT_TEMPLATE) -> list[str]:
    """``template.format(name=...)`` for every class name (e.g. ``"a photo of the digit seven"``)."""
    names = [str(n) for n in class_names]
    if len(names) < 2:
        raise TrustVLInputError(f"class_names={names!r}; expected at least 2 classes")
    if "{name}" not in template:
        raise TrustVLInputError(f"prompt template {template!r} has no '{{name}}' placeholder")
    return [template.format(name=n) for n in names]


def region_crops(image: Any, grid_n: int = 2) -> list[Any]:
    """The ``grid_n x grid_n`` cells of one image as PIL crops (row-major, like
    :func:`~trustvl.discovery.regions.grid_regions`)."""
    pil = to_rgb_image(image)
    return [pil.crop(box) for box in grid_regions(image_width_height(pil), grid_n)]


def masked_image(
    image: Any, spurious: Sequence[bool], grid_n: int = 2, fill: tuple[int, int, int] = (0, 0, 0)
):
    """``image`` (PIL) with its spurious grid cells filled with ``fill``: the union of its non-spurious regions."""
    from PIL import ImageDraw

    pil = to_rgb_image(image).copy()
    draw = ImageDraw.Draw(pil)
    for (left, top, right, bottom), flag in zip(grid_regions(image_width_height(pil), grid_n), spurious):
        if flag:
            draw.rectangle((left, top, right - 1, bottom - 1), fill=tuple(int(v) for v in fill))
    return pil


def _pixel_values(processor: Any, images: list[Any]) -> torch.Tensor:
    ip = getattr(processor, "image_processor", processor)
    return ip(images=[im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"].float()


class RegionImageDataset(torch.utils.data.Dataset):
    """Rows for RaVL training: image, its grid-region crops, their spurious flags, label and caption.

    Item ``i`` is ``{"pixel_values": [3, H, W], "label": int, "caption": str}`` plus, with ``with_regions``,
    ``"region_pixel_values": [R, 3, H, W]`` and ``"region_spurious": [R]`` bool, and with ``with_masked``,
    ``"region_spurious"`` and ``"masked_pixel_values": [3, H, W]`` (the image with its spurious cells filled
    with black, :func:`masked_image`; the image itself when it has none). With ``cache=True`` (default)
    everything is pre-processed once, in batches of ``cache_batch_size``, when the dataset is built (memory:
    up to ``(2 + R) · n`` images); otherwise per item.

    Args:
        dataset: a ``datasets.Dataset`` (or anything indexable by column name and row) with ``image_column``
            and ``label_column``.
        processor: the CLIP processor (its image processor resizes crops to the model's input size).
        class_names: class names (default: the ``ClassLabel`` names of ``label_column``).
        region_flags: ``[n, R]`` spurious flags (default all False), ``R = grid_n²``: bool, or float weights
            in ``[0, 1]`` (``flag_clusters="score_weighted"``; a region is flagged when its weight is > 0 and,
            when some weight lies strictly between 0 and 1, rows also carry ``"region_weight"`` ``[R]`` for
            :class:`~trustvl.training.ravl.RaVLLoss`).
        caption_column: captions; `None` uses the class prompt of each label.
        prompt_template: template of the class prompts.
        with_regions: include region crops and flags (standard fine-tuning needs none).
        with_masked: include the masked images (and flags).
    """

    def __init__(
        self,
        dataset: Any,
        processor: Any,
        *,
        class_names: Sequence[str] | None = None,
        region_flags: Any = None,
        grid_n: int = 2,
        image_column: str = "image",
        label_column: str = "label",
        caption_column: str | None = "caption",
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
        with_regions: bool = True,
        with_masked: bool = False,
        cache: bool = True,
        cache_batch_size: int = 256,
    ) -> None:
        columns = list(getattr(dataset, "column_names", []) or [])
        for col in [image_column, label_column] + ([caption_column] if caption_column else []):
            if columns and col not in columns:
                raise TrustVLInputError(f"column {col!r} is not in the dataset; available columns: {columns}")
        self.dataset, self.processor = dataset, processor
        self.image_column, self.grid_n = image_column, int(grid_n)
        self.with_regions, self.with_masked = bool(with_regions), bool(with_masked)
        self.class_names = (
            list(class_names) if class_names is not None else class_label_names(dataset, label_column)
        )
        self.prompts = class_prompts(self.class_names, prompt_template)
        self.labels = np.asarray(dataset[label_column], dtype=np.int64)
        n = len(self.labels)
        if n == 0:
            raise TrustVLInputError("the dataset is empty; expected at least one image")
        if self.labels.min() < 0 or self.labels.max() >= len(self.class_names):
            raise TrustVLInputError(
                f"labels lie in [{self.labels.min()}, {self.labels.max()}]; expected class ids in"
                f" [0, {len(self.class_names)})"
            )
        self.captions = (
            [str(c) for c in dataset[caption_column]]
            if caption_column
            else [self.prompts[y] for y in self.labels]
        )
        r = self.grid_n * self.grid_n
        self.weights: np.ndarray | None = None  # [n, R] float, only with fractional weights
        if region_flags is None:
            self.flags = np.zeros((n, r), dtype=bool)
        else:
            given = np.asarray(region_flags)
            if given.shape != (n, r):
                raise TrustVLInputError(
                    f"region_flags has shape {given.shape}; expected ({n}, {r}) = (images, regions)"
                )
            weights = given.astype(np.float32)
            if not np.isfinite(weights).all() or weights.min() < 0 or weights.max() > 1:
                raise TrustVLInputError(
                    f"region_flags lie in [{weights.min()}, {weights.max()}]; expected bool flags or weights"
                    " in [0, 1]"
                )
            self.flags = weights > 0
            # only fractional weights change the loss; 0/1 weights are plain flags (and the same batches)
            if ((weights > 0) & (weights < 1)).any():
                self.weights = weights
        # (pixel values [n, 3, H, W], crops [n, R, 3, H, W] or None, {row: masked image [3, H, W]})
        self._cache: tuple[torch.Tensor, torch.Tensor | None, dict[int, torch.Tensor]] | None = None
        if cache:
            parts = [
                self._encode(start, list(dataset[start : start + cache_batch_size][image_column]))
                for start in range(0, n, cache_batch_size)
            ]
            self._cache = (
                torch.cat([pv for pv, _, _ in parts]),
                torch.cat([rpv for _, rpv, _ in parts]) if self.with_regions else None,
                {i: t for _, _, masked in parts for i, t in masked.items()},
            )

    def _encode(
        self, start: int, images: list[Any]
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[int, torch.Tensor]]:
        """Pixel values of rows ``start, start + 1, ...`` (``images``): the images, their crops (with
        ``with_regions``) and the masked images of the rows with a spurious cell (with ``with_masked``)."""
        pv = _pixel_values(self.processor, images)
        rpv = None
        if self.with_regions:
            crops = [c for im in images for c in region_crops(im, self.grid_n)]
            rpv = _pixel_values(self.processor, crops).view(len(images), self.grid_n**2, *pv.shape[1:])
        masked: dict[int, torch.Tensor] = {}
        if self.with_masked:
            rows = [start + j for j in range(len(images)) if self.flags[start + j].any()]
            if rows:
                filled = [masked_image(images[i - start], self.flags[i], self.grid_n) for i in rows]
                masked = dict(zip(rows, _pixel_values(self.processor, filled)))
        return pv, rpv, masked

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = int(i)
        if self._cache is not None:  # (pixel values, crops, masked images) of every row
            (pv, rpv, masked), k = self._cache, i
        else:  # of row i alone
            (pv, rpv, masked), k = self._encode(i, [self.dataset[i][self.image_column]]), 0
        row: dict[str, Any] = {
            "label": int(self.labels[i]),
            "caption": self.captions[i],
            "pixel_values": pv[k],
        }
        if self.with_regions:
            row["region_pixel_values"] = rpv[k]
        if self.with_regions or self.with_masked:
            row["region_spurious"] = torch.from_numpy(self.flags[i].copy())
            if self.weights is not None:
                row["region_weight"] = torch.from_numpy(self.weights[i].copy())
        if self.with_masked:
            row["masked_pixel_values"] = masked.get(i, row["pixel_values"])
        return row


@dataclass
class RaVLCollator:
    """Batches :class:`RegionImageDataset` rows for :class:`~trustvl.training.ravl.RaVLLoss`.

    Output: ``pixel_values`` ``[B, 3, H, W]``, ``labels`` ``[B]``, ``input_ids`` / ``attention_mask``
    ``[B + C, L]`` (the ``B`` captions followed by the ``C`` class prompts, tokenised together so they share
    one padding length) and, when the rows have them, ``region_pixel_values`` ``[B, R, 3, H, W]``,
    ``region_spurious`` ``[B, R]``, ``region_weight`` ``[B, R]`` and ``masked_pixel_values`` ``[B, 3, H, W]``.
    """

    processor: Any
    class_prompts: Sequence[str]

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not rows:
            raise TrustVLInputError("cannot collate an empty list of rows")
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        texts = [r["caption"] for r in rows] + list(self.class_prompts)
        tok = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        batch = {
            "pixel_values": torch.stack([r["pixel_values"] for r in rows]).float(),
            "labels": torch.tensor([r["label"] for r in rows], dtype=torch.long),
            "input_ids": tok["input_ids"].long(),
            "attention_mask": tok.get("attention_mask", torch.ones_like(tok["input_ids"])).long(),
        }
        for key in ("region_pixel_values", "masked_pixel_values"):
            if all(key in r for r in rows):
                batch[key] = torch.stack([r[key] for r in rows]).float()
        if all("region_spurious" in r for r in rows):
            batch["region_spurious"] = torch.stack(
                [torch.as_tensor(r["region_spurious"]) for r in rows]
            ).bool()
        if all("region_weight" in r for r in rows):
            batch["region_weight"] = torch.stack([torch.as_tensor(r["region_weight"]) for r in rows]).float()
        return batch
