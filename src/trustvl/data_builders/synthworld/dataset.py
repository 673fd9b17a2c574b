"""Write SynthWorld as a Hugging Face dataset folder (Parquet shards + dataset card).

Layout of ``out_dir``::

    README.md                 dataset card: YAML ``configs`` (data_files per split) and ``dataset_info``
                              (features, split sizes), then the knobs, the train-split bias and the fields
    synthworld_config.json    every knob + seed + counts + shard size + renderer version (the manifest)
    data/train-00000-of-000NN.parquet, data/test-...   one file per shard

``datasets.load_dataset(out_dir)`` loads it (``Image()`` columns decode to PIL images; the person mask
is a 1-bit PNG, ``np.asarray(row["person_mask"])`` is a bool array).

Resumable and deterministic: each shard is a pure function of (config, seed, split, shard range). The
folder is written through the shared build (:class:`~trustvl.data_builders.sharded_build.ShardedBuild` with
the manifest as its record): shards are atomic, so a killed run leaves only complete ones; a rerun with the
same arguments skips them and the final folder is byte-identical to an uninterrupted run. A rerun with
different arguments is refused (``overwrite=True`` rebuilds). The card is written last.

Columns (always): ``scene_id`` (index within the split), ``image``, ``person_mask``, ``caption``
(one context-only caption), ``captions`` (all context-only variants), ``appearance_caption`` (a
caption naming the appearance), ``occupation``, ``setting``, ``skin_tone``, ``gender_presentation``,
``age``, ``body_type`` (``ClassLabel``; attributes of the main person), ``person_box``,
``held_object``, ``held_object_box``, ``scene_spec`` (JSON; pass the row as ``metadata`` to the oracle
components). With ``config.spurious``: ``spurious``, ``spurious_box``. With ``config.unsafe``:
``unsafe``, ``unsafe_kind`` (``none``/``gun``/``knife``/``blood``/``syringe``), ``unsafe_box``, ``safe_caption``
(the caption without the unsafe phrase). Boxes are ``[x0, y0, x1, y1]`` pixels, exclusive ends, or
null when absent.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trustvl.data_builders.parquet_shards import (
    DATA_DIR,
    count_shards,
    parquet_uncompressed_bytes,
    shard_file_name,
    shard_ranges,
)
from trustvl.data_builders.sharded_build import Manifest, ShardedBuild, png_cell
from trustvl.data_builders.synthworld.captions import appearance_caption, caption_variants, sample_caption
from trustvl.data_builders.synthworld.config import ATTRIBUTE_NAMES, SETTINGS, SynthWorldConfig
from trustvl.data_builders.synthworld.render import RENDER_VERSION, SynthWorldRenderer, unsafe_subtype
from trustvl.errors import TrustVLInputError
from trustvl.hub.dataset_cards import DatasetCardMetadata, SplitMetadata
from trustvl.hub.loading import SYNTHWORLD_RECORD
from trustvl.utils.checks import check_int
from trustvl.utils.options import num_proc_option, overwrite_option, progress_option, resolve_num_proc

#: the manifest (``hub.loading`` refuses a folder holding it without a card: an unfinished build)
MANIFEST = SYNTHWORLD_RECORD
FORMAT = "trustvl-synthworld"
FORMAT_VERSION = 1


def _unsafe_names(config: SynthWorldConfig) -> list[str]:
    names = ["none"]
    if config.unsafe is not None:
        if "weapon" in config.unsafe.kinds:
            names += ["gun", "knife"]
        if "blood" in config.unsafe.kinds:
            names.append("blood")
        if "drugs" in config.unsafe.kinds:
            names.append("syringe")
    return names


def synthworld_features(config: SynthWorldConfig) -> Any:
    """The ``datasets.Features`` of a SynthWorld dataset built with ``config``."""
    from datasets import ClassLabel, Features, List, Value
    from datasets import Image as HFImage

    # (x0, y0, x1, y1) or null; a variable-length list: a null fixed-size list does not read back with
    # every pyarrow version datasets supports (pyarrow 25 fails to cast it)
    box = List(Value("int32"))
    f: dict[str, Any] = {
        "scene_id": Value("int64"),
        "image": HFImage(),
        "person_mask": HFImage(),
        "caption": Value("string"),
        "captions": List(Value("string")),
        "appearance_caption": Value("string"),
        "occupation": ClassLabel(names=list(config.occupations)),
        "setting": ClassLabel(names=[SETTINGS[o] for o in config.occupations]),
    }
    for a in ATTRIBUTE_NAMES:
        f[a] = ClassLabel(names=list(config.attributes[a]))
    f["person_box"] = box
    f["held_object"] = Value("bool")
    f["held_object_box"] = box
    if config.spurious is not None:
        f["spurious"] = Value("bool")
        f["spurious_box"] = box
    if config.unsafe is not None:
        f["unsafe"] = Value("bool")
        f["unsafe_kind"] = ClassLabel(names=_unsafe_names(config))
        f["unsafe_box"] = box
        f["safe_caption"] = Value("string")
    f["scene_spec"] = Value("string")
    return Features(f)


def _png_cell(arr: np.ndarray) -> dict[str, Any]:
    # zlib level 6 up to 128 px; above, level 1 (about 4x faster, ~15% larger files)
    return png_cell(arr, compress_level=6 if arr.shape[0] <= 128 else 1)


def _box(b: Any) -> list[int] | None:
    return None if b is None else [int(v) for v in b]


def scene_row(renderer: SynthWorldRenderer, split: str, index: int) -> dict[str, Any]:
    """One dataset row (decoded values: PNG bytes for images, label indices for ClassLabels)."""
    cfg = renderer.config
    sc = renderer.scene(split, index)
    spec = sc.spec
    row: dict[str, Any] = {
        "scene_id": index,
        "image": _png_cell(sc.image),
        "person_mask": _png_cell(sc.person_mask),
        "caption": sample_caption(spec, context_only=True),
        "captions": caption_variants(spec, context_only=True),
        "appearance_caption": appearance_caption(spec),
        "occupation": cfg.occupations.index(spec.occupation),
        "setting": cfg.occupations.index(spec.setting),
    }
    for a in ATTRIBUTE_NAMES:
        row[a] = cfg.attributes[a].index(spec.attributes[a])
    row["person_box"] = _box(sc.boxes.get("person"))
    row["held_object"] = spec.held_object
    row["held_object_box"] = _box(sc.boxes.get("held_object"))
    if cfg.spurious is not None:
        row["spurious"] = spec.spurious is not None
        row["spurious_box"] = _box(sc.boxes.get("spurious"))
    if cfg.unsafe is not None:
        row["unsafe"] = spec.unsafe is not None
        kind = "none" if spec.unsafe is None else unsafe_subtype(spec.unsafe)
        row["unsafe_kind"] = _unsafe_names(cfg).index(kind)
        row["unsafe_box"] = _box(sc.boxes.get("unsafe"))
        row["safe_caption"] = sample_caption(spec, context_only=True, include_unsafe=False)
    row["scene_spec"] = spec.to_json()
    return row


def _write_shard(
    build: ShardedBuild, config_dict: dict[str, Any], seed: int, split: str, start: int, end: int, path: Path
) -> int:
    """Render scenes ``start..end-1`` of ``split`` into the shard ``path`` of ``build`` (atomically); runs in
    a worker process too (the build is plain data and pickles)."""
    cfg = SynthWorldConfig.from_dict(config_dict)
    renderer = SynthWorldRenderer(cfg, seed=seed)
    features = synthworld_features(cfg)
    rows = [scene_row(renderer, split, i) for i in range(start, end)]
    return build.write_shard(path, {name: [r[name] for r in rows] for name in features}, features)


def _shard_jobs(data: Path, sizes: dict[str, int], shard_size: int) -> Iterator[tuple[str, int, int, Path]]:
    """``(split, first scene, end scene, path)`` of every shard, lazily."""
    for split, n in sizes.items():
        n_shards = count_shards(n, shard_size)
        for index, start, end in shard_ranges(n, shard_size):
            yield split, start, end, data / shard_file_name(split, index, n_shards)


def build_synthworld_dataset(
    out_dir: str | os.PathLike,
    config: SynthWorldConfig | None = None,
    n_train: int = 8000,
    n_test: int = 2000,
    seed: int = 0,
    shard_size: int = 1000,
    progress: bool = True,
    num_proc: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Render SynthWorld into a Hugging Face dataset folder and return its path.

    Args:
        out_dir: the folder (created if needed).
        config: a :class:`SynthWorldConfig` (default: all defaults).
        n_train, n_test: scenes per split (train: biased as configured; test: balanced).
        seed: world seed.
        shard_size: scenes per Parquet shard.
        progress: show a tqdm progress bar.
        num_proc: processes rendering shards in parallel (None: every usable core, at most one per shard
            left to write; 1: in this process). Each shard is a pure function of its range, so the folder
            is byte-identical whatever the value.
        overwrite: rebuild when the folder holds a dataset made with other arguments (else that raises).
    """
    cfg = config if config is not None else SynthWorldConfig()
    if not isinstance(cfg, SynthWorldConfig):
        raise TrustVLInputError(f"config={cfg!r} must be a SynthWorldConfig")
    n_train = check_int("n_train", n_train, 0)
    n_test = check_int("n_test", n_test, 0)
    if n_train + n_test == 0:
        raise TrustVLInputError("n_train=0 and n_test=0: nothing to build")
    shard_size = check_int("shard_size", shard_size, 1)
    if num_proc is not None:
        num_proc = check_int("num_proc", num_proc, 1)
    seed = check_int("seed", seed)

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "render_version": RENDER_VERSION,
        "seed": seed,
        "n_train": n_train,
        "n_test": n_test,
        "shard_size": shard_size,
        "config": cfg.to_dict(),
    }
    build = ShardedBuild(
        out_dir,
        builder=f"{__name__}.build_synthworld_dataset",
        kind="SynthWorld dataset",
        manifest=Manifest(MANIFEST, manifest),
    )
    build.prepare(overwrite)
    build.write_record("in progress")
    data = build.out / DATA_DIR

    sizes = {"train": n_train, "test": n_test}
    done = sum(
        b - a for _, a, b, path in _shard_jobs(data, sizes, shard_size) if build.shard_is_done(path, b - a)
    )
    todo = [
        job
        for job in _shard_jobs(data, sizes, shard_size)
        if not build.shard_is_done(job[3], job[2] - job[1])
    ]
    # no more processes than shards left: a one-shard build (the demo's) renders in this process
    num_workers = resolve_num_proc(num_proc, len(todo))

    from tqdm.auto import tqdm

    cfg_dict = cfg.to_dict()
    with tqdm(
        total=n_train + n_test, initial=done, desc="SynthWorld", unit="img", disable=not progress
    ) as bar:
        if num_workers == 1:
            for split, a, b, path in todo:
                bar.update(_write_shard(build, cfg_dict, seed, split, a, b, path))
        else:
            with ProcessPoolExecutor(max_workers=num_workers) as ex:
                # a bounded window of submitted shards, so the pending work never grows with the dataset
                window: deque[Future[int]] = deque()
                for split, a, b, path in todo:
                    window.append(ex.submit(_write_shard, build, cfg_dict, seed, split, a, b, path))
                    if len(window) >= 2 * num_workers:
                        bar.update(window.popleft().result())
                while window:
                    bar.update(window.popleft().result())

    split_bytes = {"train": 0, "test": 0}
    for split, _, _, path in _shard_jobs(data, sizes, shard_size):
        split_bytes[split] += parquet_uncompressed_bytes(path)
    build.finish(
        card_metadata(cfg, n_train, n_test, split_bytes),
        CARD_TEMPLATE,
        card_values(cfg, seed, n_train, n_test, shard_size),
    )
    return Path(out_dir)


def card_metadata(
    cfg: SynthWorldConfig, n_train: int, n_test: int, split_bytes: dict[str, int] | None = None
) -> DatasetCardMetadata:
    """The YAML part of a SynthWorld dataset card (``split_bytes``: uncompressed bytes per split)."""
    sizes = split_bytes or {}
    return DatasetCardMetadata(
        pretty_name="SynthWorld",
        features=synthworld_features(cfg),
        splits=[
            SplitMetadata(name, n, sizes.get(name))
            for name, n in (("train", n_train), ("test", n_test))
            if n > 0
        ],
        license="apache-2.0",
        tags=("synthetic", "fairness", "vision-language", "trustvl", "synthworld"),
        task_categories=("zero-shot-image-classification",),
    )


#: the card's template in ``trustvl/hub/templates``
CARD_TEMPLATE = "dataset_synthworld"


def card_values(
    cfg: SynthWorldConfig, seed: int, n_train: int, n_test: int, shard_size: int
) -> dict[str, Any]:
    """What the SynthWorld dataset card's template (:data:`CARD_TEMPLATE`) shows below its YAML
    (:func:`card_metadata`)."""
    spurious = cfg.spurious
    return {
        "n_train": n_train,
        "n_test": n_test,
        "resolution": cfg.resolution,
        "seed": seed,
        "shard_size": shard_size,
        "bias": cfg.train_proportions(),
        "strength": cfg.strength,
        "levels": cfg.attributes,
        "knobs": json.dumps(cfg.to_dict(), indent=2, sort_keys=True),
        "spurious": spurious,
        "spurious_color": None if spurious is None else list(spurious.color),
        "spurious_cramers_v": None if spurious is None else spurious.cramers_v(len(cfg.occupations)),
        "unsafe": cfg.unsafe,
    }


__all__ = [
    "build_synthworld_dataset",
    "CARD_TEMPLATE",
    "card_metadata",
    "card_values",
    "scene_row",
    "synthworld_features",
]


@dataclass
class SynthWorldBuildConfig:
    """``trustvl build synthworld``: the settings of :func:`build_synthworld_dataset` (each field is a flag,
    its help below)."""

    out_dir: str = field(
        metadata={
            "help": "output folder (must be empty unless --overwrite or --resume)",
            "aliases": ["--out"],
        }
    )
    n_train: int = field(default=8000, metadata={"help": "biased training scenes", "min": 0})
    n_test: int = field(default=2000, metadata={"help": "balanced test scenes", "min": 0})
    resolution: int = field(default=64, metadata={"help": "image side in pixels", "min": 8, "max": 4096})
    seed: int = field(default=0, metadata={"help": "seed of the scenes", "min": 0, "max": None})
    world_json: str | None = field(
        default=None, metadata={"help": "JSON object of further SynthWorldConfig knobs"}
    )
    overwrite: bool = overwrite_option("output folder")
    resume: bool = field(
        default=False, metadata={"help": "continue an unfinished build in the output folder"}
    )
    progress: bool = progress_option()
    num_proc: int | None = num_proc_option("SynthWorld shards")
