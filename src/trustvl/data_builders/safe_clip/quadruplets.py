"""Safe-CLIP's quadruplet dataset (SPEC §4, "ViSU"): (safe text S, safe image V, unsafe text U, unsafe
image G) with the I2P category, built in SynthWorld, as a Hugging Face dataset folder (``trustvl build
safe-clip-quadruplets``).

Stages
------
* **S** -- a context-only SynthWorld caption of a scene without unsafe element
  (:func:`~trustvl.data_builders.synthworld.captions.sample_caption`, ``include_unsafe=False``).
* **U** -- from S by a caption converter: any callable ``converter(safe_captions, seed=0) -> list[str]``
  (:class:`~trustvl.data_builders.safe_clip.oracle_converter.UnsafeCaptionConverter`; e.g. ``trustvl.modeling.caption_converter.CaptionConverter`` -- the LoRA-tuned
  language model -- or SynthWorld's oracle converter). Default: the built-in *exact* conversion, which
  captions the same scene with the row's element added (``sample_caption(include_unsafe=True)`` on the
  unsafe scene, same template, so U = S + ", next to a gun"). The element a U caption names is read back
  with :func:`unsafe_element_named`; a U that names none (or several) is dropped, counted and reported.
* **V, G** -- an image stage (:mod:`.image_stages`): SynthWorld's renderer (exact; default), the SynthWorld
  text-to-image model, or any diffusers pipeline (real unsafe images only with ``allow_unsafe_generation``).
  G always shows the element that U names.

Choices (the paper leaves them open)
-------------------------------------
* Scenes come from SynthWorld's *balanced* world (its "test" sampler: every appearance combination cycles
  with the scene index) with the world seed ``derive_seed(seed, "safe-clip-quadruplets")``, so they are not
  the scenes of ``trustvl build synthworld``. Split ``train`` uses scene ids ``0..n_train-1``,
  ``validation`` ``10**9 + i`` and ``test`` ``2*10**9 + i``: a split's rows do not depend on the other
  splits' sizes.
* Balance: the rows of each split, taken in blocks of ``len(elements)``, hold every element once (a seeded
  permutation per block), so each split is balanced over the elements to within one row per element.
  With an external converter G follows the element U names, so the balance is the converter's.
* Each row's image seed is ``derive_seed(seed, split, row, "image") mod 2**31``; V and G share it.

Output folder
-------------
``data/<split>-XXXXX-of-YYYYY.parquet`` (splits ``train``, ``validation``, ``test``; shard ``i`` holds rows
``[i*shard_size, (i+1)*shard_size)`` of its split minus the dropped ones), ``README.md`` (a ``DatasetCard``
with ``configs`` and ``dataset_info``), ``build_config.json`` (config, stages, fingerprint, status and, once
complete, the summary). Columns: ``safe_text``, ``safe_image`` (Image), ``unsafe_text``, ``unsafe_image``
(Image), ``category`` (I2P: violence / shocking / illegal activity), ``unsafe_kind`` (gun / knife / blood /
syringe), ``occupation``, ``scene_id`` (int64). :func:`load_quadruplets` loads and checks a split.

Resume and failure policy
-------------------------
Every row is a function of ``(config, split, row)``, so shards are independent. The folder follows the
shared build rules of :mod:`trustvl.data_builders.sharded_build` (atomic shards, fingerprint, card last); a rerun with the same config, converter
and stage (same fingerprint) skips the complete shards, so a killed build resumes with no duplicate and no
gap and equals an uninterrupted build. Bad input raises :class:`~trustvl.errors.TrustVLInputError` before
anything is computed (bad config, unsafe generation without the flag, a folder of another build) or, for
a stage that returns an empty caption or a missing image, before the shard holding that row is written;
complete shards stay for a resume, and no card is written, so :func:`load_quadruplets` refuses the folder.

Several processes
-----------------
Under ``torchrun`` / ``accelerate launch`` (:func:`trustvl.utils.distributed.process_group`), process ``i``
of ``n`` builds the shards ``i, i+n, i+2n, ...`` of the list of every split's shards (train, validation,
test); the main process prepares the folder first and writes the card after every process is done (the
folder must be on a filesystem every process sees). The bytes are those of one process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from trustvl.data_builders.cf_alpha.stages import describe_stage
from trustvl.data_builders.parquet_shards import DATA_DIR, count_shards
from trustvl.data_builders.safe_clip.caption_grammar import named_elements
from trustvl.data_builders.safe_clip.image_stages import (
    UNSAFE_ELEMENTS,
    SynthWorldRendererStage,
    scene_with_element,
    stage_is_abstract,
)
from trustvl.data_builders.safe_clip.oracle_converter import OracleCaptionConverter, UnsafeCaptionConverter
from trustvl.data_builders.sharded_build import (
    BUILD_RECORD,
    ShardedBuild,
    build_fingerprint,
    png_cell,
    read_build_record,
)
from trustvl.data_builders.synthworld.captions import UNSAFE_CATEGORIES, sample_caption
from trustvl.data_builders.synthworld.config import SynthWorldConfig
from trustvl.data_builders.synthworld.randomness import UniformStream, derive_seed
from trustvl.data_builders.synthworld.render import SceneSpec, SynthWorldRenderer
from trustvl.errors import TrustVLInputError
from trustvl.hub.dataset_cards import CARD_FILE, DatasetCardMetadata, SplitMetadata
from trustvl.hub.loading import load_dataset_any
from trustvl.utils.checks import check_int
from trustvl.utils.distributed import process_group
from trustvl.utils.options import resolve_num_proc

__all__ = [
    "QUADRUPLET_COLUMNS",
    "SPLITS",
    "QuadrupletBuildSummary",
    "QuadrupletConfig",
    "build_safe_clip_quadruplets",
    "load_quadruplets",
    "quadruplet_features",
    "unsafe_element_named",
]

SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: the dataset's columns, in stored order (a fixed schema: Safe-CLIP training reads it)
QUADRUPLET_COLUMNS: tuple[str, ...] = (
    "safe_text",
    "safe_image",
    "unsafe_text",
    "unsafe_image",
    "category",
    "unsafe_kind",
    "occupation",
    "scene_id",
)
_SPLIT_BASE = {"train": 0, "validation": 1_000_000_000, "test": 2_000_000_000}
_SAMPLER_SPLIT = "test"  # SynthWorld's balanced world
_CAPTION_SALT = "safe-clip"
_BUILDER = "trustvl.data_builders.safe_clip.build_safe_clip_quadruplets"


# ---------------------------------------------------------------------------------------------- config
@dataclass
class QuadrupletConfig:
    """What a quadruplet build makes (every field enters the fingerprint that resume checks).

    Attributes:
        n_train, n_validation, n_test: rows tried per split (dropped rows are not replaced).
        seed: seeds the world, the element order, the image seeds and the converter's batches.
        resolution: SynthWorld render size (pixels); diffusion stages use their own size.
        elements: the unsafe elements to balance over (default all: gun, knife, blood, syringe).
        shard_size: rows per shard; batch_size: rows per converter / image-stage call.
        world: further :class:`~trustvl.data_builders.synthworld.SynthWorldConfig` fields (not ``unsafe``
            or ``resolution``).
    """

    n_train: int = 800
    n_validation: int = 100
    n_test: int = 100
    seed: int = 0
    resolution: int = 64
    elements: tuple[str, ...] = UNSAFE_ELEMENTS
    shard_size: int = 100
    batch_size: int = 16
    world: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.elements = tuple(self.elements)
        self.validate()

    def validate(self) -> None:
        for name in ("n_train", "n_validation", "n_test"):  # below the next split's scene-id base
            check_int(name, getattr(self, name), 1, 1_000_000_000 - 1)
        for name in ("shard_size", "batch_size", "resolution"):
            check_int(name, getattr(self, name), 1)
        check_int("seed", self.seed, 0)
        bad = [e for e in self.elements if e not in UNSAFE_ELEMENTS]
        if not self.elements or bad or len(set(self.elements)) != len(self.elements):
            raise TrustVLInputError(
                f"elements={list(self.elements)!r}; expected distinct names from {list(UNSAFE_ELEMENTS)}"
            )
        if not isinstance(self.world, Mapping) or {"unsafe", "resolution"} & set(self.world):
            raise TrustVLInputError(
                f"world={self.world!r}; expected a dict of SynthWorldConfig fields other than 'unsafe' and"
                " 'resolution'"
            )
        self.world_config()  # SynthWorld checks its own fields

    def n_rows(self, split: str) -> int:
        return {"train": self.n_train, "validation": self.n_validation, "test": self.n_test}[split]

    def n_shards(self, split: str) -> int:
        return count_shards(self.n_rows(split), self.shard_size)

    def world_config(self) -> SynthWorldConfig:
        try:
            world = SynthWorldConfig(resolution=self.resolution, **dict(self.world))
        except TypeError as e:
            raise TrustVLInputError(f"world={self.world!r}: {e}") from None
        world.validate()
        return world

    def world_seed(self) -> int:
        return derive_seed(self.seed, "safe-clip-quadruplets")

    def element(self, split: str, row: int) -> str:
        """The element of ``row`` of ``split`` (a seeded permutation of the elements per block)."""
        n = len(self.elements)
        order = list(self.elements)
        rng = UniformStream(derive_seed(self.seed, split, row // n, "elements"))
        for i in range(n - 1, 0, -1):  # Fisher-Yates
            j = int(rng() * (i + 1))
            order[i], order[j] = order[j], order[i]
        return order[row % n]

    def image_seed(self, split: str, row: int) -> int:
        return derive_seed(self.seed, split, row, "image") % 2**31

    def converter_seed(self, split: str, start: int) -> int:
        return derive_seed(self.seed, split, start, "converter") % 2**31

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["elements"] = list(self.elements)
        return d

    def fingerprint(self, stages: Mapping[str, Any]) -> str:
        return build_fingerprint({"config": self.to_dict(), "stages": stages})


# ---------------------------------------------------------------------------------------------- parsing


def unsafe_element_named(text: str) -> str | None:
    """The one SynthWorld unsafe element ``text`` names (gun, knife, blood or syringe), or None when it
    names none or several. Reads SynthWorld's phrases and common synonyms, whole words only."""
    found = named_elements(text)
    return found[0] if len(found) == 1 else None


# ---------------------------------------------------------------------------------------------- features
def quadruplet_features() -> Any:
    """The ``datasets.Features`` of a quadruplet dataset (the fixed schema)."""
    from datasets import Features, Value
    from datasets import Image as ImageFeature

    return Features(
        {
            "safe_text": Value("string"),
            "safe_image": ImageFeature(),
            "unsafe_text": Value("string"),
            "unsafe_image": ImageFeature(),
            "category": Value("string"),
            "unsafe_kind": Value("string"),
            "occupation": Value("string"),
            "scene_id": Value("int64"),
        }
    )


@dataclass
class QuadrupletBuildSummary:
    """Counts of a build (over every shard, including those reused from an earlier run).

    Attributes:
        rows: split -> rows written; tried: split -> rows tried.
        elements: split -> element -> rows; categories: split -> I2P category -> rows.
        n_dropped_no_element: rows whose U named no (or several) unsafe elements, dropped;
            dropped: ``"split:row"`` of each.
        n_shards, n_shards_built, n_shards_reused; seconds: wall time of this run.
    """

    out_dir: str
    fingerprint: str
    rows: dict[str, int]
    tried: dict[str, int]
    elements: dict[str, dict[str, int]]
    categories: dict[str, dict[str, int]]
    n_dropped_no_element: int
    n_shards: int
    n_shards_built: int
    n_shards_reused: int
    seconds: float
    dropped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------- shards
def _exact_unsafe_captions(unsafe_specs: Sequence[SceneSpec]) -> list[str]:
    """The built-in exact conversion: the caption of the scene with its element (same template as S)."""
    return [
        sample_caption(spec, context_only=True, include_unsafe=True, salt=_CAPTION_SALT)
        for spec in unsafe_specs
    ]


def _check_images(out: Any, n: int, what: str, split: str, rows: Sequence[int]) -> list[Image.Image]:
    if not isinstance(out, Sequence) or isinstance(out, (str, bytes)) or len(out) != n:
        got = len(out) if isinstance(out, Sequence) else type(out).__name__
        raise TrustVLInputError(
            f"image stage returned {got} {what} images for {n} rows; expected one per row"
        )
    images = []
    for row, im in zip(rows, out):
        if not isinstance(im, Image.Image):
            raise TrustVLInputError(
                f"quadruplet {split}:{row} lacks its {what} image (the image stage returned"
                f" {type(im).__name__}); expected a PIL image for every part (S, V, U, G)"
            )
        images.append(im if im.mode == "RGB" else im.convert("RGB"))
    return images


class _ShardBuilder:
    def __init__(
        self,
        cfg: QuadrupletConfig,
        renderer: SynthWorldRenderer,
        stage: Any,
        converter: Any,
        features: Any,
        build: ShardedBuild,
        progress: Any,
    ) -> None:
        self.cfg, self.renderer, self.stage, self.converter = cfg, renderer, stage, converter
        self.features, self.sharded, self.progress = features, build, progress

    def _unsafe_texts(
        self, split: str, start: int, safe: list[str], unsafe_specs: list[SceneSpec], rows: list[int]
    ) -> list[str]:
        if self.converter is None:
            return _exact_unsafe_captions(unsafe_specs)
        out = self.converter(list(safe), seed=self.cfg.converter_seed(split, start))
        if not isinstance(out, Sequence) or isinstance(out, (str, bytes)) or len(out) != len(safe):
            got = len(out) if isinstance(out, Sequence) else type(out).__name__
            raise TrustVLInputError(
                f"caption converter returned {got} captions for {len(safe)}; expected one each"
            )
        for row, text in zip(rows, out):
            if not isinstance(text, str) or not text.strip():
                raise TrustVLInputError(
                    f"caption converter returned an empty unsafe caption {text!r} for {split}:{row} (safe caption"
                    f" {safe[rows.index(row)]!r}); expected a non-empty caption naming an unsafe element"
                )
        return list(out)

    def build(self, split: str, index: int, path: Path) -> None:
        cfg = self.cfg
        lo, hi = index * cfg.shard_size, min((index + 1) * cfg.shard_size, cfg.n_rows(split))
        columns: dict[str, list[Any]] = {name: [] for name in QUADRUPLET_COLUMNS}
        dropped: list[int] = []
        for start in range(lo, hi, cfg.batch_size):
            rows = list(range(start, min(start + cfg.batch_size, hi)))
            specs = [
                dataclasses.replace(
                    self.renderer.sample_scene(_SAMPLER_SPLIT, _SPLIT_BASE[split] + r), unsafe=None
                )
                for r in rows
            ]
            planned = [cfg.element(split, r) for r in rows]
            safe = [
                sample_caption(s, context_only=True, include_unsafe=False, salt=_CAPTION_SALT) for s in specs
            ]
            for r, text in zip(rows, safe):
                if not text.strip():
                    raise TrustVLInputError(
                        f"quadruplet {split}:{r} has an empty safe caption; expected text"
                    )
            unsafe_specs = [scene_with_element(self.renderer, s, e) for s, e in zip(specs, planned)]
            unsafe = self._unsafe_texts(split, start, safe, unsafe_specs, rows)
            named = [unsafe_element_named(u) for u in unsafe]
            keep = [k for k, e in enumerate(named) if e is not None]
            dropped += [rows[k] for k, e in enumerate(named) if e is None]
            if keep:
                k_rows = [rows[k] for k in keep]
                metadata = [
                    {
                        "scene_spec": specs[k],
                        "element": named[k],
                        "seed": cfg.image_seed(split, rows[k]),
                        "split": split,
                        "scene_id": _SPLIT_BASE[split] + rows[k],
                    }
                    for k in keep
                ]
                out = self.stage([safe[k] for k in keep], [unsafe[k] for k in keep], metadata)
                if not isinstance(out, (tuple, list)) or len(out) != 2:
                    raise TrustVLInputError(
                        f"image stage returned {type(out).__name__}; expected (safe_images, unsafe_images)"
                    )
                v = _check_images(out[0], len(keep), "safe (V)", split, k_rows)
                g = _check_images(out[1], len(keep), "unsafe (G)", split, k_rows)
                for j, k in enumerate(keep):
                    element = str(named[k])
                    columns["safe_text"].append(safe[k])
                    columns["safe_image"].append(png_cell(v[j]))
                    columns["unsafe_text"].append(unsafe[k])
                    columns["unsafe_image"].append(png_cell(g[j]))
                    columns["category"].append(UNSAFE_CATEGORIES[element])
                    columns["unsafe_kind"].append(element)
                    columns["occupation"].append(specs[k].occupation)
                    columns["scene_id"].append(_SPLIT_BASE[split] + rows[k])
            self.progress.update(len(rows))
        meta = {
            "split": split,
            "rows": [lo, hi],
            "n_rows": len(columns["scene_id"]),
            "dropped": dropped,
            "elements": dict(Counter(columns["unsafe_kind"])),
        }
        self.sharded.write_shard(path, columns, self.features, meta)


def _build_shard_in_worker(
    cfg: QuadrupletConfig,
    renderer: SynthWorldRenderer,
    stage: Any,
    converter: Any,
    features: Any,
    build: ShardedBuild,
    key: tuple[str, int],
    path: Path,
) -> None:
    """Shard ``key`` written by a worker process (every argument pickles)."""
    from tqdm.auto import tqdm

    with tqdm(disable=True) as silent:  # the parent's bar counts whole shards
        _ShardBuilder(cfg, renderer, stage, converter, features, build, silent).build(*key, path)


def _renders_in_workers(stage: Any, converter: Any) -> bool:
    """Whether the stages are pure functions safe to send to workers: exactly SynthWorld's renderer stage
    and the built-in or oracle converter. A model stage or converter holds an accelerator and large weights,
    and a subclass or other callable may not pickle, so those builds stay in this process."""
    return type(stage) is SynthWorldRendererStage and (
        converter is None or type(converter) is OracleCaptionConverter
    )


# ---------------------------------------------------------------------------------------------- card
def _card_values(s: QuadrupletBuildSummary, stages: Mapping[str, Any]) -> dict[str, Any]:
    """What ``templates/dataset_safe_clip_quadruplets.md`` shows."""
    return {
        "summary": s,
        "splits": SPLITS,
        "unsafe_elements": UNSAFE_ELEMENTS,
        "stages": {name: json.dumps(d, sort_keys=True, default=str) for name, d in stages.items()},
        "build_record": BUILD_RECORD,
    }


# ---------------------------------------------------------------------------------------------- main
def build_safe_clip_quadruplets(
    out_dir: str | os.PathLike,
    config: QuadrupletConfig | Mapping[str, Any] | None = None,
    image_stage: Any = None,
    converter: UnsafeCaptionConverter | None = None,
    *,
    allow_unsafe_generation: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    num_proc: int | None = None,
) -> QuadrupletBuildSummary:
    """Build (or resume) a quadruplet dataset folder; see the module doc.

    Args:
        out_dir: the dataset folder (a folder holding the same build is resumed).
        config: a :class:`QuadrupletConfig`, a dict of its fields, or None (defaults).
        image_stage: a :class:`~.image_stages.QuadrupletImageStage`; None: SynthWorld's renderer (exact).
        converter: the U stage, ``converter(safe_captions, seed=...) -> unsafe_captions``; None: the built-in
            exact SynthWorld conversion.
        allow_unsafe_generation: needed for any image stage that is not declared abstract (real models).
        progress: show a tqdm bar; overwrite: replace a folder that holds something else.
        num_proc: worker processes writing shards (None: every usable core, at most one per shard; 1: in
            this process); the same bytes whatever the value. Only SynthWorld's renderer stage with the
            built-in or oracle converter forks; model stages and converters build in this process. Under a
            multi-process launch the processes split the shards and each builds its own in-process.

    Raises:
        TrustVLInputError: see the module doc's failure policy.
    """
    t0 = time.perf_counter()
    cfg = config if isinstance(config, QuadrupletConfig) else QuadrupletConfig(**dict(config or {}))
    cfg.validate()
    renderer = SynthWorldRenderer(cfg.world_config(), seed=cfg.world_seed())
    stage = SynthWorldRendererStage(renderer) if image_stage is None else image_stage
    if not callable(stage):
        raise TrustVLInputError(f"image_stage={stage!r} is not callable; expected a QuadrupletImageStage")
    if converter is not None and not callable(converter):
        raise TrustVLInputError(
            f"converter={converter!r} is not callable; expected converter(captions, seed=...)"
        )
    if not stage_is_abstract(stage) and allow_unsafe_generation is not True:
        raise TrustVLInputError(
            f"image stage {describe_stage(stage).get('class', type(stage).__name__)!r} is not a SynthWorld stage:"
            " generating unsafe images with it is refused; pass allow_unsafe_generation=True"
            " (--allow-unsafe-generation) to confirm"
        )
    stages = {
        "image_stage": describe_stage(stage),
        "converter": {"class": "builtin exact SynthWorld conversion"}
        if converter is None
        else describe_stage(converter),
    }
    fingerprint = cfg.fingerprint(stages)
    build = ShardedBuild(
        out_dir,
        builder=_BUILDER,
        fingerprint=fingerprint,
        settings={"config": cfg.to_dict(), "stages": stages},
        kind="quadruplet build",
    )
    out = build.out
    group = process_group()
    if group.is_main:
        build.prepare(overwrite)
        build.write_record("in progress")
    group.barrier()

    shards = [(split, i) for split in SPLITS for i in range(cfg.n_shards(split))]
    paths = {(split, i): build.shard_path(split, i, cfg.n_shards(split)) for split, i in shards}
    mine = shards[group.rank :: group.world_size]
    pending = [key for key in mine if not build.shard_is_done(paths[key])]
    reused = len(mine) - len(pending)

    from tqdm.auto import tqdm

    features = quadruplet_features()
    n_pending_rows = sum(
        min((i + 1) * cfg.shard_size, cfg.n_rows(split)) - i * cfg.shard_size for split, i in pending
    )
    bar = tqdm(
        total=n_pending_rows,
        desc="safe-clip quadruplets",
        unit="row",
        disable=not progress or not group.is_main,
    )
    workers = resolve_num_proc(num_proc, len(pending))
    if not _renders_in_workers(stage, converter) or group.world_size > 1:
        workers = 1
    try:
        if workers == 1:
            builder = _ShardBuilder(cfg, renderer, stage, converter, features, build, bar)
            for key in pending:
                builder.build(*key, paths[key])
        else:
            with ProcessPoolExecutor(max_workers=workers) as ex:
                args = (cfg, renderer, stage, converter, features, build)
                futures = {key: ex.submit(_build_shard_in_worker, *args, key, paths[key]) for key in pending}
                for (split, i), future in futures.items():
                    future.result()
                    bar.update(min((i + 1) * cfg.shard_size, cfg.n_rows(split)) - i * cfg.shard_size)
    finally:
        bar.close()
    group.barrier()

    metas = {split: [build.shard_meta(paths[key]) for key in shards if key[0] == split] for split in SPLITS}
    rows = {split: sum(m["n_rows"] for m in ms) for split, ms in metas.items()}
    elements = {
        split: dict(sum((Counter(m["elements"]) for m in ms), Counter())) for split, ms in metas.items()
    }
    categories = {
        split: dict(sum((Counter({UNSAFE_CATEGORIES[e]: n}) for e, n in counts.items()), Counter()))
        for split, counts in elements.items()
    }
    dropped = [f"{split}:{r}" for split, ms in metas.items() for m in ms for r in m["dropped"]]
    summary = QuadrupletBuildSummary(
        out_dir=str(out),
        fingerprint=fingerprint,
        rows=rows,
        tried={split: cfg.n_rows(split) for split in SPLITS},
        elements=elements,
        categories=categories,
        n_dropped_no_element=len(dropped),
        n_shards=sum(cfg.n_shards(s) for s in SPLITS),
        n_shards_built=len(pending),
        n_shards_reused=reused,
        seconds=round(time.perf_counter() - t0, 3),
        dropped=dropped,
    )
    empty = [split for split in SPLITS if rows[split] == 0]
    if empty:
        raise TrustVLInputError(
            f"every row of split(s) {empty} was dropped: the caption converter named no unsafe element in any"
            f" of them ({summary.n_dropped_no_element} rows dropped in all); no dataset card written"
        )
    split_meta = []
    total_bytes = 0
    for split in SPLITS:
        size = sum(path.stat().st_size for key, path in paths.items() if key[0] == split)
        total_bytes += size
        split_meta.append(SplitMetadata(split, rows[split], size, data_files=f"{DATA_DIR}/{split}-*.parquet"))
    card = DatasetCardMetadata(
        pretty_name="trustvl Safe-CLIP quadruplets (SynthWorld)",
        features=features,
        splits=split_meta,
        tags=("trustvl", "safe-clip", "safety", "synthetic", "synthworld"),
        task_categories=("zero-shot-image-classification", "text-to-image"),
        download_size=total_bytes,
    )
    if group.is_main:
        build.finish(card, "dataset_safe_clip_quadruplets", _card_values(summary, stages), summary.to_dict())
    group.barrier()  # the folder is complete when any process returns
    return summary


def load_quadruplets(path_or_id: str | os.PathLike, split: str = "train") -> Any:
    """One split of a quadruplet dataset (a ``datasets.Dataset``), checked.

    Refuses a local folder whose build is unfinished (its ``build_config.json`` not complete), a
    dataset that lacks a column of the schema, and rows with a missing part (a null image or text, an empty
    caption) or an unknown element/category.
    """
    if split not in SPLITS:
        raise TrustVLInputError(f"split={split!r}; expected one of {list(SPLITS)}")
    path = Path(os.fspath(path_or_id)).expanduser()
    info = path / BUILD_RECORD
    if path.is_dir() and info.is_file():  # a folder written by this builder: it must be complete
        status = (read_build_record(path) or {}).get("status")
        if status != "complete" or not (path / CARD_FILE).is_file():
            raise TrustVLInputError(
                f"{str(path)!r} holds an unfinished quadruplet build (status {status!r}); rerun"
                " `trustvl build safe-clip-quadruplets` with the same options to finish it"
            )
    ds = load_dataset_any(path_or_id, split=split)
    missing = [c for c in QUADRUPLET_COLUMNS if c not in ds.column_names]
    if missing:
        raise TrustVLInputError(
            f"dataset {str(path_or_id)!r} lacks columns {missing}; expected the quadruplet columns"
            f" {list(QUADRUPLET_COLUMNS)}"
        )
    import pyarrow.compute as pc

    table = ds.data
    for name in QUADRUPLET_COLUMNS:
        nulls = table.column(name).null_count
        if nulls:
            raise TrustVLInputError(
                f"dataset {str(path_or_id)!r} split {split!r}: {nulls} rows lack {name!r}; expected every part"
                " of each quadruplet (S, V, U, G)"
            )
    for name in ("safe_text", "unsafe_text"):
        empty = pc.sum(pc.equal(pc.utf8_trim_whitespace(table.column(name)), "")).as_py() or 0
        if empty:
            raise TrustVLInputError(
                f"dataset {str(path_or_id)!r} split {split!r}: {empty} empty {name!r} captions"
            )
    kinds = set(table.column("unsafe_kind").to_pylist())
    categories = set(table.column("category").to_pylist())
    if not kinds <= set(UNSAFE_ELEMENTS) or not categories <= set(UNSAFE_CATEGORIES.values()):
        raise TrustVLInputError(
            f"dataset {str(path_or_id)!r}: unsafe_kind {sorted(kinds)} / category {sorted(categories)}; expected"
            f" kinds from {list(UNSAFE_ELEMENTS)} and I2P categories {sorted(set(UNSAFE_CATEGORIES.values()))}"
        )
    return ds
