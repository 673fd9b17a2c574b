"""RaVL mitigation (arXiv 2411.04097; SPEC §3): region-aware fine-tuning through trustvl's training core.

RaVL discovery (:mod:`trustvl.discovery`) finds clusters of image regions that a fine-tuned VLM relies on
spuriously. Mitigation fine-tunes a CLIP so that the class text aligns with the *relevant* regions and the
discovered *spurious* regions carry no class information. The paper's exact loss is not public; trustvl
defines it as follows.

Region flags
------------
Every training image is cut into the same candidate regions as in discovery (default: the 2 x 2 grid of
quadrants). Each region is embedded with the model discovery ran on and assigned to the **nearest medoid**
(highest cosine similarity) among *all* discovery clusters; it is flagged **spurious** when that cluster is
one of the kept (ranked) clusters, or of a chosen subset of them (:class:`SpuriousMedoids`,
:func:`spurious_region_flags`). Flags are computed once, before training, and stay fixed.

The loss
--------
A batch holds ``B`` images ``x_b`` with labels ``y_b`` and captions ``t_b``, the ``R`` region crops
``x_{b,r}`` of every image with flags ``s_{b,r}`` (1 = spurious), and the ``C`` class prompts
(``"a photo of the digit {name}"``). Let ``x̃_b`` be the **masked image**: ``x_b`` with its spurious cells
filled with black (:func:`masked_image`), i.e. the union of its non-spurious regions (``x̃_b = x_b`` when no
cell is flagged). **One** forward of the model embeds everything a term needs: ``pixel_values`` is the
concatenation of the images, the needed crops and the needed masked images, ``input_ids`` the concatenation
``[t_1..t_B, prompt_1..prompt_C]`` (CLIP accepts different image and text batch sizes). With L2-normalised
embeddings ``v_b`` (images), ``ṽ_b`` (masked images), ``u_b`` (captions), ``z_{b,r}`` (crops), ``T_c``
(prompts), ``s = exp(logit_scale)`` (clamped at ``max_logit_scale``) and ``s̄ = s`` without gradient::

    L = L_CLIP + λ_a · L_align + λ_u · L_uninf          (defaults λ_a = λ_u = 1)

* ``L_CLIP`` — symmetric InfoNCE between images and captions with logits ``s · <v_b, u_b'>``. Positives are
  the pairs whose captions are token-for-token identical (``clip_positives="same_text"``, the default):
  on class-caption data such as spurious digits a batch holds many images of one class with the same
  caption, and plain InfoNCE would treat those identical captions as negatives of each other. Both
  directions are ``-log(Σ_pos exp / Σ_all exp)`` (multi-positive InfoNCE); with distinct captions this is
  exactly CLIP's loss (``clip_positives="diagonal"`` forces the plain one).
* ``L_align`` — the class text aligns with the relevant (non-spurious) regions, cross-entropy against ``y_b``:

      align_input="masked_image" (default): the union of the non-spurious regions as one region
          L_align = mean_b CE(s̄ · <ṽ_b, T>, y_b)
      align_input="regions": the non-spurious crops, for images with at least one
          align_pooling="mean":  p_b = normalize(Σ_r (1 - s_{b,r}) z_{b,r}),  l_{b,c} = s̄ · <p_b, T_c>
          align_pooling="max":   l_{b,c} = max_{r : s_{b,r} = 0} s̄ · <z_{b,r}, T_c>
          L_align = mean_b CE(l_b, y_b)

* ``L_uninf`` — the spurious regions carry no class information:

      uninf_mode="uniform": every spurious crop's class distribution q = softmax_c(s̄ · <z_{b,r}, T_c>) is
          pushed to uniform:  KL(U ‖ q) = -log C - (1/C) Σ_c log q_c  (>= 0, 0 iff equally similar to
          every prompt; the cross-entropy to uniform minus log C), averaged over spurious crops
      uninf_mode="counterfactual": adding the spurious cells to the rest of the image must not change the
          class distribution:  mean over images with a spurious cell of KL(p̃_b ‖ p_b),
          p_b = softmax_c(s̄ · <v_b, T_c>), p̃_b the same for ṽ_b and held fixed (no gradient) as the target
      uninf_mode="both" (default): the sum of the two

  Terms without any flagged region in the batch contribute 0.

The region terms use ``s̄`` (``detach_region_scale=True``): with full fine-tuning the logit scale is
trainable, and ``L_uninf`` could otherwise be lowered by shrinking it (less confident predictions
everywhere) instead of by changing what the spurious regions encode.

**Why these defaults** (measured, ``benchmarks/bench_ravl_spurious_digits.py``, V = 0.9, spurious class 7,
4 digits, 100 full fine-tuning steps; worst-group test accuracy over class x rectangle present): standard
fine-tuning 0.04; the crop-level form ``align_input="regions", uninf_mode="uniform"`` 0.00 (the crops of the
rectangle became uninformative, whole-image predictions still followed the rectangle); ``regions`` +
``both`` 0.00; ``masked_image`` + ``uniform`` 0.22; ``masked_image`` + ``counterfactual`` 0.74;
``masked_image`` + ``both`` 0.78 (overall 0.69 -> 0.86); ``masked_image`` + ``counterfactual`` without
``L_align`` 0.00. The image-scale terms act on what a whole-image prediction uses; both are needed.

Cost: only what a term needs is embedded — every crop for ``align_input="regions"``, only the spurious crops
for the uniform term, masked images only of the images that have a spurious cell — so the defaults cost
about ``1.3x`` a standard fine-tuning step on spurious digits, ``align_input="regions"`` about ``5x``.

Training
--------
:func:`train_ravl` (config file/CLI entry) and :func:`finetune_clip` (the "standard fine-tuning" baseline:
``L_CLIP`` alone, also used to make a spuriously correlated VLM) both run through
:func:`trustvl.training.core.train`; neither has a training loop of its own. By default the model is a
:class:`~trustvl.modeling.cf_alpha.CFAlphaCLIPModel` at α = 1 with only its LoRA factors trainable (the
base weights stay intact; α then interpolates between the original and the mitigated model); set
``use_lora=False`` for full fine-tuning of a plain ``CLIPModel``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trustvl.errors import TrustVLInputError
from trustvl.training.core import unwrap_model

__all__ = [
    "DEFAULT_PROMPT_TEMPLATE",
    "RaVLCollator",
    "RaVLLoss",
    "RaVLTrainConfig",
    "RegionImageDataset",
    "SpuriousMedoids",
    "class_prompts",
    "compute_region_flags",
    "finetune_clip",
    "region_crops",
    "spurious_region_flags",
    "train_ravl",
]

DEFAULT_PROMPT_TEMPLATE = "a photo of the digit {name}"
MEDOIDS_FILE = "spurious_medoids.npz"


# ----------------------------------------------------------------------------------------------- prompts
def class_prompts(class_names: Sequence[str], template: str = DEFAULT_PROMPT_TEMPLATE) -> list[str]:
    """``template.format(name=...)`` for every class name (e.g. ``"a photo of the digit seven"``)."""
    names = [str(n) for n in class_names]
    if len(names) < 2:
        raise TrustVLInputError(f"class_names={names!r}; expected at least 2 classes")
    if "{name}" not in template:
        raise TrustVLInputError(f"prompt template {template!r} has no '{{name}}' placeholder")
    return [template.format(name=n) for n in names]


def _class_names(dataset: Any, label_column: str) -> list[str]:
    feature = getattr(dataset, "features", {}).get(label_column) if hasattr(dataset, "features") else None
    names = getattr(feature, "names", None)
    if not names:
        raise TrustVLInputError(
            f"column {label_column!r} is not a ClassLabel with names; pass class_names explicitly"
        )
    return list(names)


# ------------------------------------------------------------------------------------------- region flags
@dataclass
class SpuriousMedoids:
    """The discovery clusters in portable form: enough to flag regions of new images.

    Attributes:
        medoid_embeds: ``[k, d]`` L2-normalised embedding of every cluster's medoid (cluster id = row).
        kept: ``[k]`` whether discovery kept (ranked) the cluster as spurious.
        rank: ``[k]`` rank of a kept cluster (0 = most spurious), -1 for the others.
        model: the model whose embedding space this is (informational, e.g. a path), or `None`.
    """

    medoid_embeds: np.ndarray
    kept: np.ndarray
    rank: np.ndarray
    model: str | None = None

    def __post_init__(self) -> None:
        emb = np.asarray(self.medoid_embeds, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] == 0 or not np.isfinite(emb).all():
            raise TrustVLInputError(
                f"medoid_embeds has shape {emb.shape}; expected a finite non-empty [k, d] array"
            )
        self.medoid_embeds = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        self.kept = np.asarray(self.kept, dtype=bool).reshape(-1)
        self.rank = np.asarray(self.rank, dtype=np.int64).reshape(-1)
        if len(self.kept) != len(emb) or len(self.rank) != len(emb):
            raise TrustVLInputError(
                f"kept ({len(self.kept)}) and rank ({len(self.rank)}) need one entry per medoid ({len(emb)})"
            )

    @property
    def k(self) -> int:
        return int(self.medoid_embeds.shape[0])

    @property
    def n_spurious(self) -> int:
        return int(self.kept.sum())

    @classmethod
    def from_result(cls, result: Any, region_embeds: Any, *, model: str | None = None) -> SpuriousMedoids:
        """From a :class:`~trustvl.discovery.DiscoveryResult` and the ``[n_regions, d]`` region embeddings
        discovery clustered (the medoids are rows of it)."""
        if getattr(result, "clustering", None) is None or not getattr(result, "all_clusters", None):
            raise TrustVLInputError(
                f"the discovery result has no clustering ({getattr(result, 'message', '')!r}); there are no"
                " clusters to flag regions with"
            )
        emb = np.asarray(
            region_embeds.detach().cpu().numpy() if hasattr(region_embeds, "detach") else region_embeds,
            dtype=np.float32,
        )
        if emb.ndim != 2 or emb.shape[0] != result.n_regions:
            raise TrustVLInputError(
                f"region_embeds has shape {emb.shape}; expected ({result.n_regions}, d), the embeddings of the"
                " regions discovery clustered"
            )
        clusters = sorted(result.all_clusters, key=lambda c: c.cluster_id)
        rank = np.full(len(clusters), -1, dtype=np.int64)
        for r, c in enumerate(result.clusters):
            rank[c.cluster_id] = r
        return cls(
            medoid_embeds=emb[[c.medoid_index for c in clusters]],
            kept=np.array([c.kept for c in clusters], dtype=bool),
            rank=rank,
            model=model,
        )

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez(
            tmp,
            medoid_embeds=self.medoid_embeds,
            kept=self.kept,
            rank=self.rank,
            model=np.array("" if self.model is None else str(self.model)),
        )
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SpuriousMedoids:
        """Load a file written by :meth:`save`, or the ``spurious_medoids.npz`` inside a discovery folder."""
        path = Path(path)
        if path.is_dir():
            path = path / MEDOIDS_FILE
        if not path.is_file():
            raise TrustVLInputError(
                f"{str(path)!r} does not exist; expected a discovery folder written by"
                " trustvl.pipelines.ravl.run_discovery (with spurious_medoids.npz)"
            )
        with np.load(path, allow_pickle=False) as data:
            model = str(data["model"]) or None
            return cls(data["medoid_embeds"], data["kept"], data["rank"], model)

    def selected(self, clusters: Sequence[int] | None = None, top: int | None = None) -> np.ndarray:
        """Boolean ``[k]`` mask of the clusters treated as spurious: ``clusters`` (ids) if given, else the kept
        ones, restricted to the ``top`` best ranked when ``top`` is set."""
        if clusters is not None and top is not None:
            raise TrustVLInputError("pass either clusters (explicit ids) or top (best ranked), not both")
        if clusters is not None:
            ids = np.asarray(list(clusters), dtype=np.int64)
            if ids.size and (ids.min() < 0 or ids.max() >= self.k):
                raise TrustVLInputError(f"clusters={list(clusters)}; expected cluster ids in [0, {self.k})")
            mask = np.zeros(self.k, dtype=bool)
            mask[ids] = True
        else:
            mask = self.kept.copy()
        if top is not None:
            if top < 1:
                raise TrustVLInputError(f"top={top}; expected a positive number of clusters")
            mask &= (self.rank >= 0) & (self.rank < top)
        return mask

    def require_selection(self, clusters: Sequence[int] | None = None, top: int | None = None) -> np.ndarray:
        """:meth:`selected`, raising :class:`~trustvl.errors.TrustVLInputError` when it is empty."""
        mask = self.selected(clusters, top)
        if not mask.any():
            raise TrustVLInputError(
                f"no spurious cluster to mitigate: discovery kept none of its {self.k} clusters (or the"
                " selection is empty); there is nothing for the RaVL loss to suppress. Pass allow_empty=True"
                " to train with every region flagged non-spurious."
            )
        return mask

    def flags(
        self,
        region_embeds: Any,
        *,
        clusters: Sequence[int] | None = None,
        top: int | None = None,
        allow_empty: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(spurious [n] bool, nearest cluster [n] int64)`` of new region embeddings ``[n, d]``.

        Every region goes to its nearest medoid among *all* clusters (highest cosine similarity); it is
        spurious when that cluster is selected (:meth:`selected`).

        Raises:
            TrustVLInputError: no cluster is selected (discovery kept none) unless ``allow_empty``, in which
                case every flag is False (a documented no-op for the spurious terms: ``L_uninf`` is 0 and
                ``L_align`` uses the whole images / all their regions).
        """
        from trustvl.discovery.clustering import assign_to_medoids

        mask = self.selected(clusters, top) if allow_empty else self.require_selection(clusters, top)
        emb = np.asarray(
            region_embeds.detach().cpu().numpy() if hasattr(region_embeds, "detach") else region_embeds,
            dtype=np.float32,
        )
        if emb.ndim != 2 or emb.shape[1] != self.medoid_embeds.shape[1]:
            raise TrustVLInputError(
                f"region_embeds has shape {emb.shape}; expected [n, {self.medoid_embeds.shape[1]}] (the"
                " embedding size of the discovery model)"
            )
        if emb.shape[0] == 0:
            return np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)
        assigned, _ = assign_to_medoids(emb, self.medoid_embeds)
        return mask[assigned], assigned


def spurious_region_flags(
    result: Any,
    discovery_region_embeds: Any,
    region_embeds: Any,
    *,
    clusters: Sequence[int] | None = None,
    top: int | None = None,
    allow_empty: bool = False,
) -> np.ndarray:
    """Per-region spurious flags of new data by nearest-medoid assignment (see :class:`SpuriousMedoids`).

    Args:
        result: the :class:`~trustvl.discovery.DiscoveryResult`.
        discovery_region_embeds: ``[n_regions, d]`` embeddings of the regions discovery clustered.
        region_embeds: ``[n, d]`` embeddings (same model) of the regions to flag.
        clusters: cluster ids to treat as spurious (default: the kept ones); ``top``: only the ``top`` ranked.
        allow_empty: with no spurious cluster, return all-False instead of raising.

    Returns:
        ``[n]`` bool.
    """
    medoids = SpuriousMedoids.from_result(result, discovery_region_embeds)
    return medoids.flags(region_embeds, clusters=clusters, top=top, allow_empty=allow_empty)[0]


# ---------------------------------------------------------------------------------------------- regions
def region_crops(image: Any, grid_n: int = 2) -> list[Any]:
    """The ``grid_n x grid_n`` cells of one image as PIL crops (row-major, like
    :func:`~trustvl.discovery.regions.grid_regions`)."""
    from trustvl.discovery.regions import _image_size, _to_pil, grid_regions

    pil = _to_pil(image)
    return [pil.crop(box) for box in grid_regions(_image_size(pil), grid_n)]


def compute_region_flags(
    model: Any,
    processor: Any,
    images: Sequence[Any],
    medoids: SpuriousMedoids,
    *,
    grid_n: int = 2,
    batch_size: int = 128,
    clusters: Sequence[int] | None = None,
    top: int | None = None,
    allow_empty: bool = False,
    progress: bool = False,
) -> np.ndarray:
    """Embed the grid regions of ``images`` with ``model`` (the discovery model) and flag them: ``[n, R]``."""
    from trustvl.modeling.embedding import embed_images

    n = len(images)
    if n == 0:
        raise TrustVLInputError("no images to flag; expected at least one image")
    crops = (c for img in images for c in region_crops(img, grid_n))
    emb = embed_images(
        model,
        processor,
        crops,
        batch_size=batch_size,
        total=n * grid_n * grid_n,
        progress=progress,
        desc="embedding regions for flags",
    )
    flags, _ = medoids.flags(emb, clusters=clusters, top=top, allow_empty=allow_empty)
    return flags.reshape(n, grid_n * grid_n)


def _pixel_values(processor: Any, images: list[Any]) -> torch.Tensor:
    ip = getattr(processor, "image_processor", processor)
    return ip(images=[im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"].float()


def masked_image(
    image: Any, spurious: Sequence[bool], grid_n: int = 2, fill: tuple[int, int, int] = (0, 0, 0)
):
    """``image`` (PIL) with its spurious grid cells filled with ``fill``: the union of its non-spurious regions."""
    from PIL import ImageDraw

    from trustvl.discovery.regions import _image_size, _to_pil, grid_regions

    pil = _to_pil(image).copy()
    draw = ImageDraw.Draw(pil)
    for (left, top, right, bottom), flag in zip(grid_regions(_image_size(pil), grid_n), spurious):
        if flag:
            draw.rectangle((left, top, right - 1, bottom - 1), fill=tuple(int(v) for v in fill))
    return pil


class RegionImageDataset(torch.utils.data.Dataset):
    """Rows for RaVL training: image, its grid-region crops, their spurious flags, label and caption.

    Item ``i`` is ``{"pixel_values": [3, H, W], "label": int, "caption": str}`` plus, with ``with_regions``,
    ``"region_pixel_values": [R, 3, H, W]`` and ``"region_spurious": [R]`` bool, and with ``with_masked``,
    ``"masked_pixel_values": [3, H, W]`` (the image with its spurious cells filled, :func:`masked_image`; the
    image itself when it has none). With ``cache=True`` (default) everything is pre-processed once, in
    batches, when the dataset is built (memory: up to ``(2 + R) · n`` images); otherwise per item.

    Args:
        dataset: a ``datasets.Dataset`` (or anything indexable by column name and row) with ``image_column``
            and ``label_column``.
        processor: the CLIP processor (its image processor resizes crops to the model's input size).
        class_names: class names (default: the ``ClassLabel`` names of ``label_column``).
        region_flags: ``[n, R]`` bool spurious flags (default all False).
        caption_column: captions; `None` uses the class prompt of each label.
        prompt_template: template of the class prompts.
        with_regions: include region crops and flags (standard fine-tuning needs none).
        with_masked: include the masked images.
        fill: colour of masked-out cells.
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
        fill: tuple[int, int, int] = (0, 0, 0),
        cache: bool = True,
        cache_batch_size: int = 256,
    ) -> None:
        columns = list(getattr(dataset, "column_names", []) or [])
        for col in [image_column, label_column] + ([caption_column] if caption_column else []):
            if columns and col not in columns:
                raise TrustVLInputError(f"column {col!r} is not in the dataset; available columns: {columns}")
        self.dataset, self.processor = dataset, processor
        self.image_column, self.grid_n = image_column, int(grid_n)
        self.with_regions, self.with_masked, self.fill = bool(with_regions), bool(with_masked), tuple(fill)
        self.class_names = (
            list(class_names) if class_names is not None else _class_names(dataset, label_column)
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
        if region_flags is None:
            self.flags = np.zeros((n, r), dtype=bool)
        else:
            self.flags = np.asarray(region_flags, dtype=bool)
            if self.flags.shape != (n, r):
                raise TrustVLInputError(
                    f"region_flags has shape {self.flags.shape}; expected ({n}, {r}) = (images, regions)"
                )
        self._pv: torch.Tensor | None = None
        self._rpv: torch.Tensor | None = None
        self._mpv: dict[int, torch.Tensor] = {}
        if cache:
            pv, rpv = [], []
            for start in range(0, n, cache_batch_size):
                images = list(dataset[start : start + cache_batch_size][image_column])
                pv.append(_pixel_values(processor, images))
                if self.with_regions:
                    crops = [c for im in images for c in region_crops(im, self.grid_n)]
                    rpv.append(_pixel_values(processor, crops).view(len(images), r, *pv[-1].shape[1:]))
                if self.with_masked:
                    rows = [j for j in range(len(images)) if self.flags[start + j].any()]
                    if rows:
                        masked = [
                            masked_image(images[j], self.flags[start + j], self.grid_n, self.fill)
                            for j in rows
                        ]
                        for j, t in zip(rows, _pixel_values(processor, masked)):
                            self._mpv[start + j] = t
            self._pv = torch.cat(pv)
            self._rpv = torch.cat(rpv) if self.with_regions else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = int(i)
        row: dict[str, Any] = {"label": int(self.labels[i]), "caption": self.captions[i]}
        image = None
        if self._pv is not None:
            row["pixel_values"] = self._pv[i]
            if self.with_regions:
                row["region_pixel_values"] = self._rpv[i]
        else:
            image = self.dataset[i][self.image_column]
            row["pixel_values"] = _pixel_values(self.processor, [image])[0]
            if self.with_regions:
                row["region_pixel_values"] = _pixel_values(self.processor, region_crops(image, self.grid_n))
        if self.with_regions or self.with_masked:
            row["region_spurious"] = torch.from_numpy(self.flags[i].copy())
        if self.with_masked:
            if not self.flags[i].any():
                row["masked_pixel_values"] = row["pixel_values"]
            elif self._pv is not None:
                row["masked_pixel_values"] = self._mpv[i]
            else:
                masked = masked_image(image, self.flags[i], self.grid_n, self.fill)
                row["masked_pixel_values"] = _pixel_values(self.processor, [masked])[0]
        return row


@dataclass
class RaVLCollator:
    """Batches :class:`RegionImageDataset` rows for :class:`RaVLLoss`.

    Output: ``pixel_values`` ``[B, 3, H, W]``, ``labels`` ``[B]``, ``input_ids`` / ``attention_mask``
    ``[B + C, L]`` (the ``B`` captions followed by the ``C`` class prompts, tokenised together so they share
    one padding length) and, when the rows have them, ``region_pixel_values`` ``[B, R, 3, H, W]``,
    ``region_spurious`` ``[B, R]`` and ``masked_pixel_values`` ``[B, 3, H, W]``.
    """

    processor: Any
    class_prompts: Sequence[str]
    max_length: int | None = None

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not rows:
            raise TrustVLInputError("cannot collate an empty list of rows")
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        texts = [r["caption"] for r in rows] + list(self.class_prompts)
        kwargs: dict[str, Any] = {"padding": True, "truncation": True, "return_tensors": "pt"}
        if self.max_length is not None:
            kwargs["max_length"] = self.max_length
        tok = tokenizer(texts, **kwargs)
        batch = {
            "pixel_values": torch.stack([r["pixel_values"] for r in rows]).float(),
            "labels": torch.tensor([r["label"] for r in rows], dtype=torch.long),
            "input_ids": tok["input_ids"].long(),
            "attention_mask": tok.get("attention_mask", torch.ones_like(tok["input_ids"])).long(),
        }
        if all("region_pixel_values" in r for r in rows):
            batch["region_pixel_values"] = torch.stack([r["region_pixel_values"] for r in rows]).float()
        if all("region_spurious" in r for r in rows):
            batch["region_spurious"] = torch.stack(
                [torch.as_tensor(r["region_spurious"]) for r in rows]
            ).bool()
        if all("masked_pixel_values" in r for r in rows):
            batch["masked_pixel_values"] = torch.stack([r["masked_pixel_values"] for r in rows]).float()
        return batch


# ------------------------------------------------------------------------------------------------- loss
def _multi_positive_ce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """``mean_i [logsumexp_j l_ij - logsumexp_{j in P(i)} l_ij]`` over rows with a positive (0 if none)."""
    has = positives.any(dim=1)
    if not bool(has.any()):
        return logits.sum() * 0.0
    log_num = torch.logsumexp(logits.masked_fill(~positives, float("-inf")), dim=1)
    return (torch.logsumexp(logits, dim=1) - log_num)[has].mean()


_ALIGN_INPUTS = ("regions", "masked_image")
_UNINF_MODES = ("uniform", "counterfactual", "both")


@dataclass
class RaVLLoss:
    """``L = L_CLIP + λ_a·L_align + λ_u·L_uninf`` as a :data:`~trustvl.training.core.LossFn` (see the module
    docstring for the exact definition and the variants).

    Args:
        lambda_align: λ_a, weight of the alignment of class text with non-spurious regions.
        lambda_uninf: λ_u, weight of the "spurious regions are uninformative" term.
        align_input: ``"masked_image"`` (default: the union of the non-spurious cells, i.e. the image with
            its spurious cells filled, embedded as one image) or ``"regions"`` (the non-spurious grid crops,
            pooled by ``align_pooling``).
        align_pooling: for ``align_input="regions"``: ``"mean"`` (mean-pooled non-spurious region embedding) or
            ``"max"`` (per-class max over non-spurious regions).
        uninf_mode: ``"both"`` (default: the sum of the next two), ``"uniform"`` (KL(uniform ‖ class
            distribution of each spurious crop)) or ``"counterfactual"`` (KL(p(masked image) ‖ p(image)) with
            the masked side as a fixed target).
        clip_positives: ``"same_text"`` (identical captions are positives) or ``"diagonal"`` (plain CLIP).
        detach_region_scale: use the logit scale without gradient in the region terms.
        max_logit_scale: clamp of ``exp(logit_scale)``.

    With ``lambda_align = lambda_uninf = 0`` it is the CLIP loss alone and only the images are embedded: the
    "standard fine-tuning" baseline. Only the images a term needs are embedded: every crop for
    ``align_input="regions"``, only the spurious crops for the uniform term alone, and masked images only of
    the images that have a spurious cell.
    """

    lambda_align: float = 1.0
    lambda_uninf: float = 1.0
    align_input: str = "masked_image"
    align_pooling: str = "mean"
    uninf_mode: str = "both"
    clip_positives: str = "same_text"
    detach_region_scale: bool = True
    max_logit_scale: float = 100.0

    def __post_init__(self) -> None:
        if self.align_input not in _ALIGN_INPUTS:
            raise TrustVLInputError(f"align_input={self.align_input!r}; expected one of {_ALIGN_INPUTS}")
        if self.align_pooling not in ("mean", "max"):
            raise TrustVLInputError(f"align_pooling={self.align_pooling!r}; expected 'mean' or 'max'")
        if self.uninf_mode not in _UNINF_MODES:
            raise TrustVLInputError(f"uninf_mode={self.uninf_mode!r}; expected one of {_UNINF_MODES}")
        if self.clip_positives not in ("same_text", "diagonal"):
            raise TrustVLInputError(
                f"clip_positives={self.clip_positives!r}; expected 'same_text' or 'diagonal'"
            )
        for name in ("lambda_align", "lambda_uninf"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v < 0:
                raise TrustVLInputError(f"{name}={getattr(self, name)!r}; expected a finite weight >= 0")

    @property
    def uses_regions(self) -> bool:
        """Whether batches need region crops (and flags)."""
        return (self.lambda_align > 0 and self.align_input == "regions") or (
            self.lambda_uninf > 0 and self.uninf_mode in ("uniform", "both")
        )

    @property
    def uses_masked(self) -> bool:
        """Whether batches need masked images."""
        return (self.lambda_align > 0 and self.align_input == "masked_image") or (
            self.lambda_uninf > 0 and self.uninf_mode in ("counterfactual", "both")
        )

    @property
    def uses_flags(self) -> bool:
        return self.uses_regions or self.uses_masked

    # -- the terms, on embeddings (pure functions, tested by hand) -----------------------------------------
    def clip_term(
        self, image_embeds: torch.Tensor, caption_embeds: torch.Tensor, scale: torch.Tensor, caption_ids: Any
    ) -> torch.Tensor:
        """Symmetric InfoNCE; positives = identical captions (``caption_ids`` ``[B, L]``) or the diagonal."""
        img = nn.functional.normalize(image_embeds.float(), dim=-1)
        cap = nn.functional.normalize(caption_embeds.float(), dim=-1)
        b = img.shape[0]
        if self.clip_positives == "same_text" and caption_ids is not None:
            ids = caption_ids
            positives = (ids[:, None, :] == ids[None, :, :]).all(dim=-1)
        else:
            positives = torch.eye(b, dtype=torch.bool, device=img.device)
        logits = scale * img @ cap.T
        return 0.5 * (_multi_positive_ce(logits, positives) + _multi_positive_ce(logits.T, positives.T))

    def align_term(
        self,
        region_embeds: torch.Tensor,
        spurious: torch.Tensor,
        class_embeds: torch.Tensor,
        labels: torch.Tensor,
        scale: torch.Tensor,
    ) -> torch.Tensor:
        """``L_align`` from region embeddings ``[B, R, D]``, flags ``[B, R]``, prompt embeddings ``[C, D]``.

        (For ``align_input="masked_image"`` pass the masked-image embeddings as ``[B, 1, D]`` with no flag.)
        """
        z = nn.functional.normalize(region_embeds.float(), dim=-1)
        t = nn.functional.normalize(class_embeds.float(), dim=-1)
        keep = ~spurious.bool()
        has = keep.any(dim=1)
        if not bool(has.any()):
            return z.sum() * 0.0
        if self.align_pooling == "mean":
            pooled = nn.functional.normalize((z * keep[..., None].to(z.dtype)).sum(dim=1), dim=-1)
            logits = scale * pooled @ t.T
        else:
            region_logits = scale * z @ t.T  # [B, R, C]
            logits = region_logits.masked_fill(~keep[..., None], float("-inf")).amax(dim=1)
        return nn.functional.cross_entropy(logits[has], labels[has])

    @staticmethod
    def uninformative_term(
        region_embeds: torch.Tensor, spurious: torch.Tensor, class_embeds: torch.Tensor, scale: torch.Tensor
    ) -> torch.Tensor:
        """``L_uninf`` (uniform): mean over spurious regions of ``KL(uniform ‖ softmax(class logits))``."""
        z = nn.functional.normalize(region_embeds.float(), dim=-1)
        t = nn.functional.normalize(class_embeds.float(), dim=-1)
        mask = spurious.bool()
        if not bool(mask.any()):
            return z.sum() * 0.0
        logq = torch.log_softmax(scale * z[mask] @ t.T, dim=-1)  # [n_spurious, C]
        c = logq.shape[-1]
        return (-float(np.log(c)) - logq.mean(dim=-1)).mean()

    @staticmethod
    def counterfactual_term(
        image_embeds: torch.Tensor,
        masked_embeds: torch.Tensor,
        class_embeds: torch.Tensor,
        scale: torch.Tensor,
    ) -> torch.Tensor:
        """``L_uninf`` (counterfactual): mean over images of ``KL(p_masked ‖ p_image)``, ``p = softmax`` of the
        class logits, the masked side detached (a fixed target): the spurious cells add no class information.
        Rows are the images that have a spurious cell; none -> 0."""
        if image_embeds.shape[0] == 0:
            return class_embeds.sum() * 0.0
        v = nn.functional.normalize(image_embeds.float(), dim=-1)
        m = nn.functional.normalize(masked_embeds.float(), dim=-1)
        t = nn.functional.normalize(class_embeds.float(), dim=-1)
        log_p = torch.log_softmax(scale * v @ t.T, dim=-1)
        log_target = torch.log_softmax(scale * m @ t.T, dim=-1).detach()
        return (log_target.exp() * (log_target - log_p)).sum(dim=-1).mean()

    # -- the LossFn -----------------------------------------------------------------------------------------
    def __call__(
        self, model: nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        pixel_values = batch["pixel_values"]
        b = pixel_values.shape[0]
        parts = [pixel_values]
        spurious = batch.get("region_spurious")
        if self.uses_flags and spurious is None:
            raise TrustVLInputError(
                "the RaVL loss needs 'region_spurious' flags in the batch (RegionImageDataset + RaVLCollator)"
            )
        all_crops = spur_crops = masked = None
        if self.uses_regions:
            regions = batch["region_pixel_values"]
            r = regions.shape[1]
            if self.lambda_align > 0 and self.align_input == "regions":
                all_crops = regions.flatten(0, 1)
                parts.append(all_crops)
            else:  # only the uniform term needs crops: embed the spurious ones alone
                spur_crops = regions[spurious.bool()]
                parts.append(spur_crops)
        flagged = spurious.bool().any(dim=1) if spurious is not None else None
        if self.uses_masked:
            masked = batch["masked_pixel_values"][flagged]
            parts.append(masked)
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            pixel_values=torch.cat(parts, dim=0) if len(parts) > 1 else pixel_values,
        )
        image_embeds, text_embeds = out.image_embeds, out.text_embeds
        if text_embeds.shape[0] <= b:
            raise TrustVLInputError(
                f"the batch has {text_embeds.shape[0]} texts for {b} images; expected the {b} captions followed"
                " by the class prompts (use RaVLCollator)"
            )
        chunks = list(torch.split(image_embeds, [p.shape[0] for p in parts], dim=0))
        img = chunks.pop(0)
        scale = unwrap_model(model).logit_scale.exp().clamp(max=self.max_logit_scale)
        clip = self.clip_term(img, text_embeds[:b], scale, batch["input_ids"][:b])
        zero = clip.new_zeros(())
        align, uninf, n_spur = zero, zero, zero
        if self.uses_flags:
            cls_emb = text_embeds[b:]
            s_reg = scale.detach() if self.detach_region_scale else scale
            spurious = spurious.bool()
            crop_emb = chunks.pop(0) if (all_crops is not None or spur_crops is not None) else None
            masked_emb = chunks.pop(0) if masked is not None else None
            if self.lambda_align > 0:
                if self.align_input == "regions":
                    align = self.align_term(
                        crop_emb.view(b, r, -1), spurious, cls_emb, batch["labels"], s_reg
                    )
                else:  # the masked image where there is one, else the image itself
                    union = img.clone()
                    union[flagged] = masked_emb
                    none = torch.zeros(b, 1, dtype=torch.bool, device=union.device)
                    align = self.align_term(union[:, None], none, cls_emb, batch["labels"], s_reg)
            if self.lambda_uninf > 0:
                if self.uninf_mode in ("uniform", "both"):
                    if all_crops is not None:
                        uninf = uninf + self.uninformative_term(
                            crop_emb.view(b, r, -1), spurious, cls_emb, s_reg
                        )
                    else:
                        ones = torch.ones(crop_emb.shape[0], 1, dtype=torch.bool, device=crop_emb.device)
                        uninf = uninf + self.uninformative_term(crop_emb[:, None], ones, cls_emb, s_reg)
                if self.uninf_mode in ("counterfactual", "both"):
                    uninf = uninf + self.counterfactual_term(img[flagged], masked_emb, cls_emb, s_reg)
            n_spur = spurious.float().mean()
        loss = clip + self.lambda_align * align + self.lambda_uninf * uninf
        return loss, {
            "clip_loss": clip.detach(),
            "align_loss": align.detach(),
            "uninf_loss": uninf.detach(),
            "spurious_region_fraction": n_spur.detach(),
            "logit_scale": scale.detach().float(),
        }


# -------------------------------------------------------------------------------------------- training
def _load_model_and_processor(model: Any, processor: Any) -> tuple[Any, Any]:
    from transformers import AutoProcessor, CLIPModel

    from trustvl.hub.loading import load_pretrained

    if isinstance(model, (str, os.PathLike)):
        name = os.fspath(model)
        if processor is None:
            processor = load_pretrained(AutoProcessor, name)
        model = load_pretrained(CLIPModel, name)
    elif processor is None:
        raise TrustVLInputError("a model object needs its processor; pass processor=...")
    elif isinstance(processor, (str, os.PathLike)):
        processor = load_pretrained(AutoProcessor, os.fspath(processor))
    return model, processor


def _load_split(dataset: Any, split: str, max_samples: int | None, seed: int) -> Any:
    from trustvl.hub.loading import load_dataset_any

    if isinstance(dataset, (str, os.PathLike)):
        dataset = load_dataset_any(os.fspath(dataset), split=split)
    elif isinstance(dataset, Mapping):  # a DatasetDict (a Dataset is used as it is)
        if split not in dataset:
            raise TrustVLInputError(
                f"split {split!r} is not in the dataset; available: {list(dataset.keys())}"
            )
        dataset = dataset[split]
    if max_samples is not None and len(dataset) > max_samples:
        dataset = dataset.shuffle(seed=seed).select(range(int(max_samples)))
    return dataset


def _prepare_model(model: Any, use_lora: bool, lora: dict[str, Any], seed: int) -> Any:
    from transformers import CLIPModel

    from trustvl.modeling.cf_alpha import CFAlphaCLIPModel

    if not use_lora:
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if isinstance(model, CFAlphaCLIPModel):
        raise TrustVLInputError(
            "use_lora=True starts a new LoRA delta from a plain CLIPModel; got a CFAlphaCLIPModel (export it"
            " with .to_clip_model(alpha) first)"
        )
    if not isinstance(model, CLIPModel):
        raise TrustVLInputError(f"use_lora=True needs a CLIPModel; got {type(model).__name__}")
    torch.manual_seed(seed)
    kwargs = {k: v for k, v in lora.items() if v is not None}
    wrapped = CFAlphaCLIPModel.from_clip(model, alpha=1.0, **kwargs)
    wrapped.mark_only_lora_trainable()
    return wrapped


def _fit(
    model: Any,
    processor: Any,
    train_rows: Any,
    loss_fn: RaVLLoss,
    prompts: Sequence[str],
    out_dir: Path,
    *,
    learning_rate: float,
    max_steps: int,
    batch_size: int,
    warmup_steps: int,
    weight_decay: float,
    seed: int,
    save_steps: int | None,
    logging_steps: int,
    mixed_precision: str,
    progress: bool,
    resume: bool,
) -> Any:
    from trustvl.training.core import TrainConfig, train

    tcfg = TrainConfig(
        output_dir=str(out_dir / "checkpoints"),
        seed=seed,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        warmup_steps=warmup_steps,
        lr_scheduler_type="cosine",
        logging_steps=logging_steps,
        save_steps=save_steps,
        save_total_limit=1,
        mixed_precision=mixed_precision,
        save_final_model=False,
        disable_tqdm=not progress,
        dataloader_drop_last=len(train_rows) >= batch_size,
    )
    collator = RaVLCollator(processor, list(prompts))
    return train(model, train_rows, loss_fn, tcfg, data_collator=collator, resume=resume)


def _save(model: Any, processor: Any, model_dir: Path) -> None:
    model.eval()
    model.save_pretrained(str(model_dir))
    processor.save_pretrained(str(model_dir))


def _summary(result: Any, t0: float, **extra: Any) -> dict[str, Any]:
    logs = [h for h in result.log_history if "loss" in h]
    return {
        "global_step": result.global_step,
        "final_loss": result.final_loss,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "first_log": logs[0] if logs else None,
        "last_log": logs[-1] if logs else None,
        **extra,
    }


def finetune_clip(
    model: Any,
    dataset: Any,
    out_dir: str | os.PathLike,
    *,
    processor: Any = None,
    split: str = "train",
    image_column: str = "image",
    label_column: str = "label",
    caption_column: str | None = "caption",
    class_names: Sequence[str] | None = None,
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
    clip_positives: str = "same_text",
    use_lora: bool = False,
    lora_r: int = 8,
    lora_alpha: float = 8.0,
    lora_dropout: float = 0.0,
    lora_target_modules: list[str] | str | None = None,
    learning_rate: float = 5e-5,
    max_steps: int = 200,
    batch_size: int = 32,
    warmup_steps: int = 10,
    weight_decay: float = 0.0,
    seed: int = 0,
    max_train_samples: int | None = None,
    save_steps: int | None = None,
    logging_steps: int = 10,
    mixed_precision: str = "no",
    save_model: bool = True,
    progress: bool = True,
    resume: bool = False,
) -> dict[str, Any]:
    """Standard fine-tuning with ``L_CLIP`` alone (:class:`RaVLLoss` with ``λ_a = λ_u = 0``), through the core.

    The "standard fine-tuning" baseline of RaVL mitigation, and the way to make a VLM that picks up a
    spurious correlation of its training data. ``model``: a CLIP folder / Hub id or a ``CLIPModel`` (then
    ``processor`` is required; it is trained in place). Full fine-tuning by default; ``use_lora=True`` trains a
    LoRA delta of a :class:`~trustvl.modeling.cf_alpha.CFAlphaCLIPModel` at α = 1. The model is saved to
    ``out_dir/model`` (with its processor) when ``save_model``; returns a JSON-able summary, whose
    ``"model"`` entry (removed before ``train_summary.json`` is written) is the trained model object.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    base_name = os.fspath(model) if isinstance(model, (str, os.PathLike)) else None
    model, processor = _load_model_and_processor(model, processor)
    ds = _load_split(dataset, split, max_train_samples, seed)
    rows = RegionImageDataset(
        ds,
        processor,
        class_names=class_names,
        image_column=image_column,
        label_column=label_column,
        caption_column=caption_column,
        prompt_template=prompt_template,
        with_regions=False,
    )
    model = _prepare_model(
        model,
        use_lora,
        {
            "lora_r": lora_r,
            "lora_alpha": lora_alpha,
            "lora_dropout": lora_dropout,
            "lora_target_modules": lora_target_modules,
        },
        seed,
    )
    loss_fn = RaVLLoss(lambda_align=0.0, lambda_uninf=0.0, clip_positives=clip_positives)
    result = _fit(
        model,
        processor,
        rows,
        loss_fn,
        rows.prompts,
        out,
        learning_rate=learning_rate,
        max_steps=max_steps,
        batch_size=batch_size,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
        seed=seed,
        save_steps=save_steps,
        logging_steps=logging_steps,
        mixed_precision=mixed_precision,
        progress=progress,
        resume=resume,
    )
    model_dir = out / "model"
    if save_model:
        _save(model, processor, model_dir)
    summary = _summary(
        result,
        t0,
        method="standard_finetuning",
        model_dir=str(model_dir) if save_model else None,
        base_model=base_name,
        n_train=len(rows),
        class_names=rows.class_names,
        use_lora=use_lora,
        learning_rate=learning_rate,
        batch_size=batch_size,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    summary["model"] = model
    return summary


@dataclass
class RaVLTrainConfig:
    """Settings of RaVL mitigation (:func:`train_ravl`).

    Attributes:
        base_model: Hub id or folder of the CLIP to fine-tune (the starting point).
        dataset: Hub id or folder of the training data (``image``, ``label`` ClassLabel, optional ``caption``).
        discovery: a discovery folder (:func:`trustvl.pipelines.ravl.run_discovery`, holding
            ``spurious_medoids.npz``) or that file.
        out_dir: run folder; the model is saved to ``out_dir/model``.
        flag_model: the model whose embedding space the medoids are in (embeds the training regions for the
            flags); default: the model recorded by discovery, else ``base_model``.
        split, image_column, label_column, caption_column: the training data (``caption_column=None``: the
            class prompt of each label is the caption).
        prompt_template: class prompts ``template.format(name=class name)``.
        grid_n: regions are the ``grid_n x grid_n`` cells (as in discovery).
        clusters, top_clusters: which discovery clusters count as spurious (default: all kept ones).
        allow_empty: train even when discovery kept no cluster (every region non-spurious) instead of raising.
        lambda_align, lambda_uninf, align_input, align_pooling, uninf_mode, clip_positives,
            detach_region_scale: the loss (:class:`RaVLLoss`).
        use_lora, lora_r, lora_alpha, lora_dropout, lora_target_modules: LoRA (a CFAlphaCLIPModel at α = 1,
            only LoRA trainable) or, with ``use_lora=False``, full fine-tuning.
        learning_rate, max_steps, batch_size, warmup_steps, weight_decay, seed, save_steps, logging_steps,
        mixed_precision, max_train_samples: optimisation (AdamW, cosine schedule). The default learning rate
            suits LoRA; full fine-tuning wants about 1e-4 (the benchmark's setting).

    Compare against :func:`finetune_clip` with the same ``use_lora``, data, steps, batch size and learning rate.
    """

    base_model: str
    dataset: str
    discovery: str
    out_dir: str
    flag_model: str | None = None
    split: str = "train"
    image_column: str = "image"
    label_column: str = "label"
    caption_column: str | None = "caption"
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    grid_n: int = 2
    clusters: list[int] | None = None
    top_clusters: int | None = None
    allow_empty: bool = False
    lambda_align: float = 1.0
    lambda_uninf: float = 1.0
    align_input: str = "masked_image"
    align_pooling: str = "mean"
    uninf_mode: str = "both"
    clip_positives: str = "same_text"
    detach_region_scale: bool = True
    use_lora: bool = True
    lora_r: int = 8
    lora_alpha: float = 8.0
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | str | None = None
    learning_rate: float = 1e-3
    max_steps: int = 200
    batch_size: int = 32
    warmup_steps: int = 10
    weight_decay: float = 0.0
    seed: int = 0
    save_steps: int | None = 100
    logging_steps: int = 10
    mixed_precision: str = "no"
    max_train_samples: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def train_ravl(
    cfg: RaVLTrainConfig,
    resume: bool = False,
    *,
    progress: bool = True,
    model: Any = None,
    processor: Any = None,
    flag_model: Any = None,
    region_flags: Any = None,
) -> dict[str, Any]:
    """RaVL mitigation: flag the training regions with the discovered clusters, then fine-tune with
    :class:`RaVLLoss` through :func:`trustvl.training.core.train`; returns a JSON-able summary (also written
    to ``out_dir/train_summary.json``) and saves the model to ``out_dir/model``.

    In-memory overrides (used by benchmarks to skip reloading): ``model``/``processor`` replace
    ``cfg.base_model`` (trained in place), ``flag_model`` (a ``(model, processor)`` pair) replaces
    ``cfg.flag_model``, and ``region_flags`` (``[n, R]`` bool) replaces the flag computation altogether.

    Raises:
        TrustVLInputError: discovery kept no spurious cluster (unless ``cfg.allow_empty``), bad columns or
            settings.
    """
    from trustvl.modeling.embedding import load_clip

    t0 = time.perf_counter()
    out = Path(cfg.out_dir)
    loss_fn = RaVLLoss(
        lambda_align=cfg.lambda_align,
        lambda_uninf=cfg.lambda_uninf,
        align_input=cfg.align_input,
        align_pooling=cfg.align_pooling,
        uninf_mode=cfg.uninf_mode,
        clip_positives=cfg.clip_positives,
        detach_region_scale=cfg.detach_region_scale,
    )
    if model is None:
        model, processor = _load_model_and_processor(cfg.base_model, processor)
    else:
        model, processor = _load_model_and_processor(model, processor)
    ds = _load_split(cfg.dataset, cfg.split, cfg.max_train_samples, cfg.seed)

    n_selected = None
    if region_flags is None and loss_fn.uses_flags:
        medoids = SpuriousMedoids.load(cfg.discovery)
        n_selected = int(medoids.selected(cfg.clusters, cfg.top_clusters).sum())
        if not cfg.allow_empty:
            medoids.require_selection(cfg.clusters, cfg.top_clusters)
        if flag_model is not None:
            f_model, f_proc = flag_model
        else:
            name = cfg.flag_model or medoids.model or cfg.base_model
            f_model, f_proc = load_clip(name, device="cpu")
        images = list(ds[cfg.image_column])
        region_flags = compute_region_flags(
            f_model,
            f_proc,
            images,
            medoids,
            grid_n=cfg.grid_n,
            clusters=cfg.clusters,
            top=cfg.top_clusters,
            allow_empty=cfg.allow_empty,
            progress=progress,
        )
    rows = RegionImageDataset(
        ds,
        processor,
        region_flags=region_flags,
        grid_n=cfg.grid_n,
        image_column=cfg.image_column,
        label_column=cfg.label_column,
        caption_column=cfg.caption_column,
        prompt_template=cfg.prompt_template,
        with_regions=loss_fn.uses_regions,
        with_masked=loss_fn.uses_masked,
    )
    model = _prepare_model(
        model,
        cfg.use_lora,
        {
            "lora_r": cfg.lora_r,
            "lora_alpha": cfg.lora_alpha,
            "lora_dropout": cfg.lora_dropout,
            "lora_target_modules": cfg.lora_target_modules,
        },
        cfg.seed,
    )
    result = _fit(
        model,
        processor,
        rows,
        loss_fn,
        rows.prompts,
        out,
        learning_rate=cfg.learning_rate,
        max_steps=cfg.max_steps,
        batch_size=cfg.batch_size,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        save_steps=cfg.save_steps,
        logging_steps=cfg.logging_steps,
        mixed_precision=cfg.mixed_precision,
        progress=progress,
        resume=resume,
    )
    model_dir = out / "model"
    _save(model, processor, model_dir)
    flags = np.asarray(rows.flags)
    summary = _summary(
        result,
        t0,
        method="ravl",
        model_dir=str(model_dir),
        n_train=len(rows),
        class_names=rows.class_names,
        n_spurious_clusters=n_selected,
        spurious_region_fraction=float(flags.mean()),
        images_with_spurious_region=float(flags.any(axis=1).mean()),
        config=asdict(cfg),
    )
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
