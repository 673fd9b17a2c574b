"""RaVL end to end (SPEC §3): discovery on a labelled split, with files, and group-accuracy evaluation.

:func:`run_discovery` loads a model and a dataset split, builds the class prompts from the label column's
``ClassLabel`` names (``"a photo of the digit {name}"`` by default), decomposes every image into candidate
regions (the 2 x 2 grid by default), runs :func:`trustvl.discovery.discover` and writes into ``out_dir``:

* ``discovery.json`` — the :class:`~trustvl.discovery.DiscoveryResult` (ranked clusters, gaps, influence);
* ``clusters.png`` — exemplar regions of the ranked clusters;
* ``spurious_medoids.npz`` — the medoid embeddings, kept flags and statistics (score, gaps, influence) of
  every cluster (:class:`~trustvl.training.ravl.SpuriousMedoids`), what mitigation needs to flag regions of
  new images with any ``flag_clusters`` strategy;
* ``summary.json`` and ``report.md`` — the headline numbers. When the dataset has a ``rectangle_box``
  column (trustvl's spurious digits) they include Precision@10 of RaVL and of the whole-image baseline
  (:func:`~trustvl.discovery.discover_spurious_images`) against the planted rectangle.

:func:`evaluate_group_accuracy` measures zero-shot image accuracy overall and per group, where a group is
(class, attribute value), by default (class, ``has_rectangle``) on a balanced test split; the worst group is
the one RaVL mitigation should lift.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.report import Figure, Report, Table
from trustvl.training.ravl import (
    DEFAULT_PROMPT_TEMPLATE,
    MEDOIDS_FILE,
    ClusterStatistics,
    SpuriousMedoids,
    class_prompts,
)
from trustvl.utils.class_labels import class_label_names
from trustvl.utils.options import device_option, overwrite_option, progress_option

__all__ = ["evaluate_group_accuracy", "load_spurious_medoids", "run_discovery"]


def _model_and_processor(model: Any, processor: Any, device: Any) -> tuple[Any, Any, str | None]:
    from trustvl.modeling.embedding import load_clip

    if isinstance(model, (str, os.PathLike)):
        m, p = load_clip(os.fspath(model), device=device)
        return m, (processor if processor is not None else p), os.fspath(model)
    if isinstance(model, tuple) and len(model) == 2:
        model, processor = model
    if processor is None:
        raise TrustVLInputError(
            "a model object needs its processor: pass (model, processor) or processor=..."
        )
    model.eval()
    return model, processor, None


def _split(dataset: Any, split: str, max_images: int | None, seed: int) -> Any:
    from trustvl.hub.loading import load_dataset_any

    if isinstance(dataset, (str, os.PathLike)):
        dataset = load_dataset_any(os.fspath(dataset), split=split)
    elif isinstance(dataset, Mapping):  # a DatasetDict (a Dataset is used as it is)
        if split not in dataset:
            raise TrustVLInputError(
                f"split {split!r} is not in the dataset; available: {list(dataset.keys())}"
            )
        dataset = dataset[split]
    if max_images is not None and len(dataset) > max_images:
        dataset = dataset.shuffle(seed=seed).select(range(int(max_images)))
    return dataset


def load_spurious_medoids(discovery_dir: str | os.PathLike) -> SpuriousMedoids:
    """The :class:`~trustvl.training.ravl.SpuriousMedoids` written by :func:`run_discovery`."""
    return SpuriousMedoids.load(discovery_dir)


@dataclass
class DiscoveryConfig:
    """``trustvl discover``: the settings of :func:`run_discovery` on a model folder and a dataset (each field
    is a flag, its help below); :meth:`run` runs it."""

    model: str = field(metadata={"help": "Hub id or folder of the fine-tuned CLIP-style model"})
    dataset: str = field(metadata={"help": "labelled evaluation images (image + ClassLabel label)"})
    out_dir: str = field(
        metadata={"help": "output folder (must be empty or absent unless --overwrite)", "aliases": ["--out"]}
    )
    split: str = field(default="test", metadata={"help": "dataset split"})
    label_column: str = field(default="label", metadata={"help": "class column (ClassLabel)"})
    grid_n: int = field(
        default=2,
        metadata={
            "help": "regions are the n x n grid cells (2: quadrants)",
            "aliases": ["--grid"],
            "min": 1,
            "max": 64,
        },
    )
    max_images: int | None = field(default=None, metadata={"help": "use only the first N images", "min": 1})
    seed: int = field(default=0, metadata={"help": "seed of the clustering", "min": 0, "max": None})
    device: str = device_option()
    overwrite: bool = overwrite_option()
    progress: bool = progress_option()

    def run(self) -> Any:
        return run_discovery(
            self.model,
            self.dataset,
            self.out_dir,
            split=self.split,
            grid_n=self.grid_n,
            label_column=self.label_column,
            max_images=self.max_images,
            seed=self.seed,
            device=self.device,
            progress=self.progress,
        )


def run_discovery(
    model: Any,
    dataset: Any,
    out_dir: str | os.PathLike,
    *,
    processor: Any = None,
    split: str = "test",
    regions: Any = "grid",
    grid_n: int = 2,
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
    class_names: Sequence[str] | None = None,
    image_column: str = "image",
    label_column: str = "label",
    max_images: int | None = None,
    baseline: bool = True,
    k: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    device: Any = "auto",
    n_exemplar_clusters: int = 5,
    progress: bool = True,
    **discover_kwargs: Any,
) -> Any:
    """RaVL discovery end to end; writes ``discovery.json``, ``clusters.png``, ``spurious_medoids.npz``,
    ``summary.json`` and ``report.md`` to ``out_dir`` and returns the
    :class:`~trustvl.discovery.DiscoveryResult`.

    Args:
        model: a model folder / Hub id (loaded with :func:`~trustvl.modeling.embedding.load_clip`), a
            ``(model, processor)`` pair, or a model object with ``processor=``.
        dataset: a dataset folder / Hub id, a ``DatasetDict`` or a ``Dataset`` (then ``split`` is ignored).
        split: the labelled evaluation split.
        regions: candidate regions, anything :func:`~trustvl.discovery.make_regions` accepts (``"grid"``:
            ``grid_n x grid_n`` cells).
        prompt_template / class_names: class prompts; names default to the ``ClassLabel`` names of
            ``label_column``.
        max_images: use a seeded random subset of at most this many images.
        baseline: also run the whole-image baseline (reported when ground truth is available).
        k, seed, discover_kwargs: passed to :func:`~trustvl.discovery.discover_spurious_regions`.

    Raises:
        TrustVLInputError: missing columns, a label column without names (and no ``class_names``), fewer than
            2 classes, bad region specifications.
    """
    from trustvl.discovery import (
        discover,
        discover_spurious_images,
        embed_regions,
        plot_cluster_exemplars,
        precision_at_k,
        write_discovery_json,
        zero_shot_scores,
    )
    from trustvl.modeling.embedding import embed_images, embed_texts
    from trustvl.utils.io import write_json

    t0 = time.perf_counter()
    out = Path(out_dir)
    model, processor, model_name = _model_and_processor(model, processor, device)
    ds = _split(dataset, split, max_images, seed)
    columns = list(getattr(ds, "column_names", []) or [])
    for col in (image_column, label_column):
        if col not in columns:
            raise TrustVLInputError(f"column {col!r} is not in the dataset; available columns: {columns}")
    names = list(class_names) if class_names is not None else class_label_names(ds, label_column)
    prompts = class_prompts(names, prompt_template)
    images = [im.convert("RGB") if hasattr(im, "convert") else im for im in ds[image_column]]
    labels = np.asarray(ds[label_column], dtype=np.int64)

    result = discover(
        model,
        processor,
        images,
        labels,
        prompts,
        regions=regions,
        grid_n=grid_n,
        batch_size=batch_size,
        progress=progress,
        class_names=names,
        k=k,
        seed=seed,
        **discover_kwargs,
    )
    out.mkdir(parents=True, exist_ok=True)
    write_discovery_json(result, out / "discovery.json")
    plot_cluster_exemplars(result, images, out / "clusters.png", n_clusters=n_exemplar_clusters)

    medoids = None
    if result.clustering is not None:
        med_regions = [result.regions[int(i)] for i in result.clustering.medoids]
        med_emb = embed_regions(model, processor, images, med_regions, batch_size=batch_size, progress=False)
        clusters = sorted(result.all_clusters, key=lambda c: c.cluster_id)
        rank = np.full(len(clusters), -1, dtype=np.int64)
        for r, c in enumerate(result.clusters):
            rank[c.cluster_id] = r
        medoids = SpuriousMedoids(
            med_emb, [c.kept for c in clusters], rank, model_name, ClusterStatistics.from_result(result)
        )
        medoids.save(out / MEDOIDS_FILE)
    elif (out / MEDOIDS_FILE).exists():
        (out / MEDOIDS_FILE).unlink()  # a stale file from an earlier run must not be picked up

    summary: dict[str, Any] = {
        "model": model_name,
        "split": split,
        "n_images": int(len(images)),
        "n_regions": int(result.n_regions),
        "class_names": names,
        "prompts": prompts,
        "image_accuracy": float(result.image_accuracy),
        "k": result.k,
        "n_kept_clusters": len(result.clusters),
        "message": result.message,
        "top_clusters": [
            {"cluster_id": c.cluster_id, "score": c.score, "influence": c.influence, "size": c.size}
            for c in result.clusters[:n_exemplar_clusters]
        ],
    }
    if "rectangle_box" in columns:
        from trustvl.data_builders.ravl.spurious_digits import rectangle_region_truth

        truth = rectangle_region_truth(ds, result.regions)
        summary["precision_at_10"] = precision_at_k(result, truth, 10)
        summary["top_cluster_rectangle_fraction"] = (
            float(truth[result.clusters[0].region_indices].mean()) if result.clusters else None
        )
        if baseline:
            text = embed_texts(model, processor, prompts).numpy()
            img_emb = embed_images(model, processor, images, batch_size=batch_size, progress=False).numpy()
            scores = zero_shot_scores(img_emb, text)
            base = discover_spurious_images(
                img_emb, labels, scores.argmax(axis=1), scores, len(names), k=k, seed=seed
            )
            has_rect = np.asarray(ds["rectangle_box"], dtype=np.int64).reshape(-1, 4)[:, 0] >= 0
            summary["baseline_precision_at_10"] = precision_at_k(base, has_rect, 10)
            summary["baseline_n_kept_clusters"] = len(base.clusters)
            # stricter reading: a whole image "localises" the rectangle only as well as a random one of its
            # grid cells does (the fraction of its cells that contain the rectangle), averaged over the top 10
            cells = rectangle_region_truth(ds, grid_n=grid_n).reshape(len(images), -1)
            top = base.ranked_region_indices()[:10]
            summary["baseline_cell_precision_at_10"] = float(cells[top].mean(axis=1).sum() / 10.0)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    write_json(out / "summary.json", summary)
    _report(result, summary).write(out, html_name=None)
    return result


def _report(result: Any, summary: dict[str, Any]) -> Report:
    model = f"`{summary['model']}`" if summary["model"] else "an in-memory model"
    report = Report(
        "RaVL discovery",
        intro=[
            f"Model: {model}; split `{summary['split']}`: {summary['n_images']} images,"
            f" {summary['n_regions']} regions, classes {', '.join(summary['class_names'])}."
            f" Zero-shot image accuracy: {summary['image_accuracy']:.3f}. K-medoids k = {summary['k']}.",
            f"**{result.message}**",
        ],
    )
    if "precision_at_10" in summary:
        rows = [["RaVL (regions)", summary["precision_at_10"]]]
        if "baseline_precision_at_10" in summary:
            rows.append(
                ["whole-image baseline (image holds the rectangle)", summary["baseline_precision_at_10"]]
            )
            rows.append(
                [
                    "whole-image baseline (share of its grid cells holding it)",
                    summary["baseline_cell_precision_at_10"],
                ]
            )
        report.add("Precision@10 against the planted rectangle", Table(["method", "Precision@10"], rows))
    if result.clusters:
        names = summary["class_names"]
        rows = []
        for r, c in enumerate(result.clusters):
            gaps = ", ".join(f"{n} {g:+.3f}" for n, g in zip(names, c.gap))
            rows.append([r + 1, c.cluster_id, c.size, c.score, c.influence, gaps])
        report.add(
            "Ranked spurious clusters",
            Table(["rank", "cluster", "regions", "score (Σ abs gap)", "influence", "gap per class"], rows),
            Figure("clusters.png", "exemplar regions of the ranked clusters"),
        )
    report.add(
        "Files",
        "`discovery.json` (full result), `spurious_medoids.npz` (medoids for flagging regions in"
        " mitigation), `summary.json`.",
    )
    return report


def evaluate_group_accuracy(
    model: Any,
    dataset: Any,
    *,
    processor: Any = None,
    split: str = "test",
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
    class_names: Sequence[str] | None = None,
    image_column: str = "image",
    label_column: str = "label",
    attribute_columns: Sequence[str] = ("has_rectangle",),
    batch_size: int = 128,
    device: Any = "auto",
    max_images: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Zero-shot image accuracy overall, per group and of the worst group; groups = class × attribute(s).

    On spurious digits' balanced test split the default groups are (class, rectangle present). Returns
    ``{"overall_accuracy", "worst_group_accuracy", "worst_group", "per_group": {"<class>|<attr>=<v>": acc},
    "group_sizes", "n_images"}``.
    """
    from trustvl.discovery import zero_shot_scores
    from trustvl.metrics import per_group_accuracy, worst_group_accuracy, zero_shot_accuracy
    from trustvl.modeling.embedding import embed_images, embed_texts

    model, processor, _ = _model_and_processor(model, processor, device)
    ds = _split(dataset, split, max_images, seed)
    columns = list(getattr(ds, "column_names", []) or [])
    for col in (image_column, label_column, *attribute_columns):
        if col not in columns:
            raise TrustVLInputError(f"column {col!r} is not in the dataset; available columns: {columns}")
    names = list(class_names) if class_names is not None else class_label_names(ds, label_column)
    prompts = class_prompts(names, prompt_template)
    text = embed_texts(model, processor, prompts).numpy()
    img = embed_images(
        model, processor, ds[image_column], batch_size=batch_size, total=len(ds), progress=False
    )
    scores = zero_shot_scores(img.numpy(), text)
    labels = np.asarray(ds[label_column], dtype=np.int64)
    attrs = [np.asarray(ds[c]).astype(np.int64) for c in attribute_columns]
    correct = scores.argmax(axis=1) == labels
    groups = per_group_accuracy(correct, labels, *attrs)
    sizes: dict[str, int] = {}
    per_group: dict[str, float] = {}
    for key, acc in sorted(groups.items()):
        mask = labels == key[0]
        for a, v in zip(attrs, key[1:]):
            mask &= a == v
        label = "|".join([names[key[0]], *(f"{c}={v}" for c, v in zip(attribute_columns, key[1:]))])
        per_group[label] = float(acc)
        sizes[label] = int(mask.sum())
    worst = min(per_group, key=per_group.get) if per_group else None
    return {
        "overall_accuracy": float(zero_shot_accuracy(scores, labels)),
        "worst_group_accuracy": float(worst_group_accuracy(correct, labels, *attrs)),
        "worst_group": worst,
        "per_group": per_group,
        "group_sizes": sizes,
        "n_images": int(len(labels)),
    }
