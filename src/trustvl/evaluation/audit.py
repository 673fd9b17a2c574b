"""``trustvl audit``: measure retrieval fairness of a CLIP-style model on an attributed image set.

For each concept prompt the model ranks the gallery of images; for each protected attribute the
ranking is scored with MaxSkew@k, MinSkew@k and NDKL (SPEC §1, Geyik et al. 2019) against a target
distribution (uniform = equal opportunity, or the gallery's own proportions = demographic parity).
With a label column, zero-shot accuracy and per-group / worst-group accuracy are reported too. The scoring
is the one evaluator's (:mod:`trustvl.evaluation.evaluator`); the result is an :class:`AuditResult`.

Outputs (written atomically into ``out_dir``): ``metrics.json`` (:meth:`AuditResult.to_dict`),
``report.md``, ``report.html`` and ``plots/*.png``. Image embeddings are cached on disk keyed by the model's and the dataset's
fingerprints, so a second audit of the same pair skips embedding.

``streaming=True`` (``--streaming``) reads the dataset as a stream (:mod:`trustvl.evaluation.streamed_gallery`):
the attribute and label columns first, without touching an image, then the images of the shards still to
embed; the embeddings stay in the cache's shards on disk, which the ranking reads one at a time
(:class:`~trustvl.metrics.GalleryChunks`, scored on the model's device), so host memory does not grow with
the gallery's images. The metrics are the same as without streaming (tested).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.dataset_columns import AttributeColumn, attribute_columns
from trustvl.evaluation.evaluator import TARGETS, evaluate_model
from trustvl.evaluation.plots import plot_group_shares, plot_skew_per_prompt
from trustvl.evaluation.report import Figure, Report
from trustvl.evaluation.results import EvaluationResult, UncertaintySettings
from trustvl.evaluation.tables import accuracy_table, fairness_summary_table, per_prompt_table
from trustvl.evaluation.wording import UNCERTAINTY_NOTE, attribute_name
from trustvl.hub.cards import Metric
from trustvl.metrics import GalleryChunks
from trustvl.utils.assets import asset_path
from trustvl.utils.class_labels import class_label_names
from trustvl.utils.distributed import ProcessGroup, process_group
from trustvl.utils.io import atomic_output_dir, write_json
from trustvl.utils.options import (
    device_option,
    dtype_option,
    overwrite_option,
    progress_option,
    resamples_option,
    uncertainty_seed_option,
)

DEFAULT_KS = (10, 100, 1000)
_DEFAULT_PROMPTS = asset_path("prompts", "occupations.txt")


def read_prompts(path: str | Path) -> list[str]:
    """Prompts from a text file: one per line, blank lines and ``#`` comments skipped."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise TrustVLInputError(
            f"prompts file {str(p)!r} does not exist; expected a text file, one prompt per line"
        )
    prompts = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    prompts = [ln for ln in prompts if ln and not ln.startswith("#")]
    if not prompts:
        raise TrustVLInputError(f"prompts file {str(p)!r} holds no prompts; expected one prompt per line")
    return prompts


def default_prompts() -> list[str]:
    return read_prompts(_DEFAULT_PROMPTS)


@dataclass
class AuditConfig:
    """What to audit and how (``trustvl audit``: each field is a flag, its help below).

    When no prompts are given, they come from ``prompts_file``, else from the label column's class names
    filled into ``prompt_template``, else trustvl's default occupation list. ``n_resamples`` and
    ``uncertainty_seed`` drive the gallery bootstrap of the intervals, floors and verdicts (SPEC §1).
    """

    model: str = field(
        metadata={"help": "Hub id or local folder of a CLIP-style model (AutoModel + AutoProcessor)"}
    )
    dataset: str = field(
        metadata={
            "help": "anything datasets.load_dataset accepts (Hub id, local dataset folder) or a .parquet file"
        }
    )
    out_dir: str = field(
        metadata={"help": "output folder (must be empty or absent unless --overwrite)", "aliases": ["--out"]}
    )
    split: str = field(default="test", metadata={"help": "dataset split to audit"})
    image_column: str = field(default="image", metadata={"help": "column holding the images"})
    attributes: list[str] | None = field(
        default=None,
        metadata={"help": "protected attribute columns; None: every ClassLabel column but the label and ids"},
    )
    label_column: str | None = field(
        default=None, metadata={"help": "class column: adds zero-shot and per-group accuracy"}
    )
    prompts: list[str] | None = field(default=None, metadata={"help": "concept prompts"})
    prompts_file: str | None = field(default=None, metadata={"help": "text file with one prompt per line"})
    prompt_template: str = field(
        default="a photo of a {}", metadata={"help": "template for class-name prompts"}
    )
    ks: list[int] | None = field(
        default=None,
        metadata={
            "help": "MaxSkew/MinSkew cut-offs, each 1 <= k <= gallery size; None: those of 10 100 1000 that fit",
            "aliases": ["--k"],
            "min": 1,
        },
    )
    target: str = field(
        default="uniform",
        metadata={
            "help": "'uniform' (equal opportunity) or 'gallery' (demographic parity)",
            "choices": ["uniform", "gallery"],
        },
    )
    batch_size: int = field(default=64, metadata={"help": "images per forward", "min": 1})
    num_workers: int = field(
        default=0,
        metadata={
            "help": "worker processes decoding images while the model runs (0: in this process)",
            "min": 0,
        },
    )
    autocast: str | None = field(
        default=None,
        metadata={
            "help": "mixed precision of the image forward (bf16 or fp16; default none)",
            "choices": ["bf16", "fp16"],
        },
    )
    streaming: bool = field(
        default=False,
        metadata={
            "help": "read the dataset as a stream (datasets streaming=True): its images are never all in host"
            " memory, the embeddings go to the cache's shards and the ranking reads them one at a time;"
            " the trust report then runs the bias axis alone"
        },
    )
    shard_size: int = field(
        default=4096,
        metadata={"help": "images per embedding-cache shard (a killed run resumes per shard)", "min": 1},
    )
    device: str = device_option()
    dtype: str | None = dtype_option(choices=["fp32", "bf16", "fp16"])
    max_images: int | None = field(
        default=None, metadata={"help": "audit only the first N images of the split", "min": 1}
    )
    cache_dir: str | None = field(
        default=None, metadata={"help": "embedding cache folder; None: $TRUSTVL_CACHE/embeddings"}
    )
    use_cache: bool = field(
        default=True,
        metadata={"help": "read and write the embedding cache", "negative_aliases": ["--no-cache"]},
    )
    overwrite: bool = overwrite_option("output folder")
    progress: bool = progress_option()
    n_resamples: int = resamples_option()
    uncertainty_seed: int = uncertainty_seed_option()
    extra: dict[str, Any] = field(default_factory=dict, metadata={"cli": False})

    def validate(self) -> None:
        UncertaintySettings.of(self.n_resamples, self.uncertainty_seed)
        if self.target not in TARGETS:
            raise TrustVLInputError(
                f"target={self.target!r} is not supported; expected 'uniform' or 'gallery'"
            )
        if self.ks is not None:
            if len(self.ks) == 0:
                raise TrustVLInputError("ks is empty; expected at least one cut-off k >= 1")
            for k in self.ks:
                if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k <= 0:
                    raise TrustVLInputError(f"k={k!r} is not valid; expected a positive integer")
        if self.batch_size <= 0:
            raise TrustVLInputError(f"batch_size={self.batch_size} must be a positive integer")
        for name in ("num_workers", "shard_size"):
            value, low = getattr(self, name), 0 if name == "num_workers" else 1
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise TrustVLInputError(f"{name}={value!r} is not valid; expected an integer >= {low}")
        if self.autocast not in (None, "bf16", "fp16"):
            raise TrustVLInputError(
                f"autocast={self.autocast!r} is not valid; expected None, 'bf16' or 'fp16'"
            )
        if self.max_images is not None and self.max_images <= 0:
            raise TrustVLInputError(f"max_images={self.max_images} must be a positive integer")
        if "{}" not in self.prompt_template:
            raise TrustVLInputError(
                f"prompt_template={self.prompt_template!r} must contain '{{}}' for the class name"
            )


def _attribute_columns(ds: Any, cfg: AuditConfig) -> list[AttributeColumn]:
    return attribute_columns(ds, cfg.image_column, cfg.label_column, cfg.attributes)


@dataclass
class AuditResult:
    """What ``trustvl audit`` measured (``metrics.json``): the run's inputs and timings, and the evaluation."""

    model: str
    dataset: str
    split: str
    embedding_cache_hit: bool
    evaluation: EvaluationResult
    seconds: float = 0.0
    seconds_embedding: float = 0.0
    #: the gallery's L2-normalised image embeddings (in memory only; not written to ``metrics.json``), so a
    #: job that audits and then sweeps the same gallery (``trustvl demo``) does not embed it twice; for a
    #: streaming audit a :class:`~trustvl.metrics.GalleryChunks` reading the cache's shards
    image_embeds: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "image_embeds"}
        out["evaluation"] = self.evaluation.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditResult:
        data = dict(data)
        data["evaluation"] = EvaluationResult.from_dict(data["evaluation"])
        return cls(**data)

    def model_index_metrics(self) -> list[Metric]:
        """The model-index of the audited model (:meth:`EvaluationResult.model_index_metrics`)."""
        return self.evaluation.model_index_metrics(self.dataset, self.split)


def _embed_gallery(
    cfg: AuditConfig, model: Any, processor: Any, ds: Any, group: ProcessGroup, stream: Any = None
) -> tuple[torch.Tensor | GalleryChunks | None, bool]:
    """The gallery's embeddings through the engine, shard by shard through the sharded cache: only the
    shards not yet on disk are embedded (a killed run resumes; a second audit of the pair embeds nothing).

    ``stream``: the gallery as a ``datasets.IterableDataset`` (``ds`` then holds only its columns,
    :class:`~trustvl.evaluation.streamed_gallery.GalleryColumns`); its images are read in order and decoded
    by the engine's threads, and rank 0 gets the cache's shards as :class:`~trustvl.metrics.GalleryChunks`
    (read from disk one at a time) instead of one tensor.

    Data parallel (``group`` of W > 1 processes, ``accelerate launch``): rank r embeds the r-th, (r+W)-th, ...
    missing shard and writes it to the cache; after a barrier rank 0 reads every shard, the other ranks get
    None. Returns the embeddings and whether every shard came from the cache."""
    from trustvl.evaluation.streamed_gallery import encoded_images, image_decoder, stream_fingerprint
    from trustvl.modeling.embedding import ImageEmbedder
    from trustvl.modeling.image_loading import ImageRows, Unreadable
    from trustvl.utils.tensor_cache import ShardedTensorCache, TensorCache, cache_dir, checkpoint_fingerprint

    def unreadable(bad: Unreadable) -> str:  # PIL's own message names an in-memory BytesIO, not the row
        return (
            f"dataset {cfg.dataset!r}, split {cfg.split!r}, row {bad.row}: the {cfg.image_column!r} value is "
            f"not a readable image ({bad.reason}); expected an image file (PNG, JPEG, ...)"
        )

    engine = ImageEmbedder(
        model,
        processor,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        autocast=cfg.autocast,
        unreadable=unreadable,
    )

    def embed_rows(rows: list[int] | None):
        """The embeddings of ``rows`` (None: all) of the gallery, batch by batch."""
        if stream is None:
            return engine.batches(ImageRows(ds, rows, column=cfg.image_column))
        images = encoded_images(stream, cfg.image_column, rows)
        return engine.stream_batches(images, image_decoder(stream, cfg.image_column))

    if not cfg.use_cache:
        if group.world_size > 1:  # the processes hand their shards to rank 0 through the cache
            raise TrustVLInputError(
                f"use_cache=False with {group.world_size} processes; expected the embedding cache on (the"
                " processes gather their shards through it) or a single process"
            )
        if stream is None:
            return engine.embed(ImageRows(ds, column=cfg.image_column), progress=cfg.progress), False
        outs = []
        with tqdm(total=len(ds), desc="embedding images", unit="img", disable=not cfg.progress) as bar:
            for emb in embed_rows(None):
                outs.append(emb)
                bar.update(len(emb))
        return _check_finite(torch.cat(outs)), False
    proc_cfg = getattr(getattr(processor, "image_processor", None), "to_dict", lambda: {})()
    fingerprint = (
        getattr(ds, "_fingerprint", None)
        if stream is None
        else stream_fingerprint(cfg.dataset, cfg.split, ds)
    )
    key = TensorCache.key(
        model=checkpoint_fingerprint(cfg.model, model),
        dataset=fingerprint,
        split=cfg.split,
        column=cfg.image_column,
        n=len(ds),
        processor=proc_cfg,
        dtype=str(next(model.parameters()).dtype),
        autocast=cfg.autocast,
        shard_size=cfg.shard_size,
    )
    folder = cfg.cache_dir if cfg.cache_dir is not None else cache_dir("embeddings")
    cache = ShardedTensorCache(folder, key, len(ds), cfg.shard_size)
    missing = cache.missing()
    group.barrier()  # every rank has listed the missing shards before any rank writes one: all split one list
    mine = missing[group.rank :: group.world_size]
    if mine:
        meta = {
            "model": str(cfg.model),
            "dataset": str(cfg.dataset),
            "split": cfg.split,
            "process": f"{group.rank} of {group.world_size}",
        }
        todo = [r for shard in mine for r in cache.rows(shard)]
        bar = tqdm(total=len(todo), desc="embedding images", unit="img", disable=not cfg.progress)
        pending: list[torch.Tensor] = []
        n_pending, shards = 0, iter(mine)
        shard = next(shards)
        try:  # one DataLoader over every row to embed; each shard is written as soon as its rows are in
            for emb in embed_rows(todo):
                pending.append(emb)
                n_pending += len(emb)
                bar.update(len(emb))
                while shard is not None and n_pending >= len(cache.rows(shard)):
                    stacked = torch.cat(pending)
                    size = len(cache.rows(shard))
                    cache.put(shard, _check_finite(stacked[:size]), meta)
                    pending, n_pending = [stacked[size:]], n_pending - size
                    shard = next(shards, None)
        finally:  # an error (an unreadable image) must not leave the bar to redraw over its message
            bar.close()
    group.barrier()  # every shard is on disk before rank 0 reads them
    if not group.is_main:
        return None, not missing
    if stream is not None:  # the ranking reads the shards from disk as it reaches them
        dim = cache.get(0).shape[1]
        return GalleryChunks(cache.n_rows, dim, cache.iter_shards), not missing
    return cache.load(), not missing


def _check_finite(emb: torch.Tensor) -> torch.Tensor:
    if not torch.isfinite(emb).all():
        raise TrustVLInputError(
            "the model produced non-finite image embeddings; expected finite values (try fp32 instead of fp16)"
        )
    return emb


@dataclass
class AuditMeasurement:
    """An audit measured in memory (:func:`measure_audit`): the result and the loaded inputs behind it, so
    that the trust report's other axes reuse the gallery, its labels and the model without loading twice."""

    result: AuditResult
    dataset: Any
    attributes: list[AttributeColumn]
    labels: np.ndarray | None
    label_names: list[str] | None


def measure_audit(cfg: AuditConfig, model: Any = None, processor: Any = None) -> AuditMeasurement | None:
    """Load the dataset (and the model unless given), embed the gallery once and evaluate it; nothing is
    written. Returns None on a rank other than 0 of a data-parallel run (see :func:`run_audit`)."""
    from trustvl.evaluation.streamed_gallery import open_stream, read_columns
    from trustvl.hub.loading import load_dataset_any
    from trustvl.modeling.embedding import load_clip

    cfg.validate()
    t0 = time.perf_counter()
    stream = None
    if cfg.streaming:  # only the columns are read here; the images are streamed by _embed_gallery
        stream = open_stream(cfg.dataset, cfg.split, cfg.max_images)
        ds = read_columns(stream, cfg.image_column, cfg.label_column, cfg.attributes)
    else:
        ds = load_dataset_any(cfg.dataset, split=cfg.split)
        if cfg.max_images is not None and cfg.max_images < len(ds):
            ds = ds.select(range(cfg.max_images))
    if len(ds) == 0:
        raise TrustVLInputError(
            f"dataset {cfg.dataset!r} split {cfg.split!r} is empty; expected at least one image"
        )
    attrs = _attribute_columns(ds, cfg)
    n = len(ds)
    if cfg.ks is not None:
        bad = [k for k in cfg.ks if k > n]
        if bad:
            raise TrustVLInputError(f"k={bad[0]} exceeds the gallery size {n}; expected 1 <= k <= {n}")
        ks = sorted(set(int(k) for k in cfg.ks))
    else:
        ks = [k for k in DEFAULT_KS if k <= n] or [n]

    label_names: list[str] | None = None
    labels: np.ndarray | None = None
    class_prompts: list[str] | None = None
    if cfg.label_column is not None:
        label_names = class_label_names(ds, cfg.label_column)
        labels = np.asarray(list(ds[cfg.label_column]), dtype=np.int64)
        class_prompts = [cfg.prompt_template.format(name.replace("_", " ")) for name in label_names]

    if cfg.prompts is not None:
        prompts = list(cfg.prompts)
        if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
            raise TrustVLInputError(f"prompts={prompts!r} must be a non-empty list of non-empty strings")
    elif cfg.prompts_file is not None:
        prompts = read_prompts(cfg.prompts_file)
    elif class_prompts is not None:
        prompts = list(class_prompts)
    else:
        prompts = default_prompts()

    group = process_group(cpu=True if str(cfg.device).startswith("cpu") else None)
    if model is None:
        model, processor = load_clip(cfg.model, device=cfg.device, dtype=cfg.dtype)
    img_emb, cache_hit = _embed_gallery(cfg, model, processor, ds, group, stream)
    if img_emb is None:  # a rank other than 0 of a data-parallel run: its shards are written, rank 0 scores
        return None
    t_embed = time.perf_counter() - t0
    evaluation = evaluate_model(
        model,
        processor,
        img_emb,
        prompts=prompts,
        attributes=attrs,
        ks=ks,
        target=cfg.target,
        labels=labels,
        class_names=label_names,
        class_prompts=class_prompts,
        uncertainty=UncertaintySettings.of(cfg.n_resamples, cfg.uncertainty_seed),
        # a streamed gallery's shards are scored where the model runs, one at a time
        ranking_device=next(model.parameters()).device if cfg.streaming else None,
    )
    result = AuditResult(
        model=str(cfg.model),
        dataset=str(cfg.dataset),
        split=cfg.split,
        embedding_cache_hit=cache_hit,
        evaluation=evaluation,
        seconds=round(time.perf_counter() - t0, 3),
        seconds_embedding=round(t_embed, 3),
        image_embeds=img_emb,
    )
    return AuditMeasurement(result, ds, attrs, labels, label_names)


def run_audit(cfg: AuditConfig) -> AuditResult | None:
    """Run an audit and write its report; returns the result (also in ``metrics.json``).

    Under ``accelerate launch`` / ``torchrun`` with W processes, the processes split the gallery's embedding
    (:func:`_embed_gallery`) and only rank 0 ranks, scores and writes the report; the other ranks return None.
    """
    measured = measure_audit(cfg)
    if measured is None:
        return None
    with atomic_output_dir(cfg.out_dir, overwrite=cfg.overwrite) as stage:
        write_audit_files(stage, measured.result, cfg.label_column)
    return measured.result


def write_audit_files(stage: Path, result: AuditResult, label_column: str | None) -> None:
    """``metrics.json``, ``report.md``, ``report.html`` and ``plots/`` of an audit, into ``stage``."""
    write_json(stage / "metrics.json", result.to_dict())
    _write_report(stage, result, label_column)


def _uncertainty_note(ev) -> list[str]:
    u = ev.uncertainty
    if u is None:
        return []
    return [
        f"{UNCERTAINTY_NOTE} Here: {100 * u.level:g}% intervals from {u.n_resamples} resamples (seed {u.seed});"
        f" floor classes: {u.floor_classes}."
    ]


def _write_report(stage: Path, result: AuditResult, label_column: str | None) -> None:
    ev = result.evaluation
    report = Report(
        f"trustvl audit: `{result.model}`",
        intro=[
            f"Dataset `{result.dataset}` (split `{result.split}`, {ev.n_images} images),"
            f" {len(ev.prompts)} prompts, target: {ev.target}.",
            "Lower |skew| and lower NDKL are fairer. MaxSkew@k >= 0 is the log-ratio of the most"
            " over-represented group's share of the top k to its target share; MinSkew@k <= 0 likewise for the"
            " most under-represented.",
            *_uncertainty_note(ev),
        ],
    )
    report.add("Summary", fairness_summary_table(ev))
    if ev.zero_shot_top1 is not None:
        report.add("Zero-shot accuracy", accuracy_table(ev, label_column or "class"))
    k_plot = sorted(ev.ks)[len(ev.ks) // 2]  # the middle cut-off, e.g. 100 of (10, 100, 1000)
    for name, a in ev.fairness.items():
        at = a.at_k[k_plot]
        skew_png = plot_skew_per_prompt(
            stage / "plots" / f"skew_{name}.png",
            ev.prompts,
            at.max_skew_per_query,
            at.min_skew_per_query,
            f"{attribute_name(name)}: skew per prompt at k={k_plot}",
            floors=None if at.max_skew_floor is None else (at.max_skew_floor, at.min_skew_floor),
        )
        share_png = plot_group_shares(
            stage / "plots" / f"shares_{name}.png",
            ev.prompts,
            a.values,
            at.top_k_shares,
            a.target,
            f"{attribute_name(name)}: group shares of the top {k_plot}",
            floor_shares=at.floor_shares,
        )
        report.add(
            attribute_name(name),
            f"Values: {', '.join(a.values)}.",
            per_prompt_table(ev, name, k_plot),
            Figure(skew_png.relative_to(stage).as_posix(), f"skew per prompt for {name}"),
            Figure(share_png.relative_to(stage).as_posix(), f"group shares for {name}"),
        )
    report.write(stage)


def audit(model: str, dataset: str, out_dir: str, **kwargs: Any) -> AuditResult:
    """Python API: ``audit("path/to/clip", "path/to/dataset", "runs/audit", attributes=["skin_tone"])``."""
    return run_audit(AuditConfig(model=model, dataset=dataset, out_dir=out_dir, **kwargs))


def config_dict(cfg: AuditConfig) -> dict[str, Any]:
    return asdict(cfg)
