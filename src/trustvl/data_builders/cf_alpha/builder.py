"""Build a CF_α counterfactual dataset (SPEC §2) as a Hugging Face dataset folder, resumably.

:func:`build_counterfactuals` runs three components (any implementation of the protocols in
:mod:`trustvl.data_builders.interfaces`): text-to-image for a base image per (context, repetition), a
person segmenter, an inpainter that re-paints the person once per chosen attribute-grid cell.

Output folder
-------------
``data/train-XXXXX-of-YYYYY.parquet``
    Shard ``i`` holds the variants of base images ``[i*shard_size, (i+1)*shard_size)`` (a shard whose bases
    all had no person is written with zero rows, so it still marks its bases as done).
``README.md``
    Dataset card: YAML ``configs`` + ``dataset_info``, a description of the build, counts and models.
``build_config.json``
    The config, the stages' descriptions, the content fingerprint, and (once complete) the summary.

``datasets.load_dataset(out_dir)`` loads it (split ``train``).

Rows and columns (decision)
---------------------------
Only inpainted variants are rows; the base image itself is not (its person's appearance is unknown), so
every row has every attribute. Columns: ``image`` (RGB), ``mask`` (L, 255 = re-painted, the dilated person
mask, the same for every variant of a base), ``base_id`` (the base index ``b``, see
:mod:`~.config`), ``variant_id`` (0 .. k-1 within the base, in grid-cell order), ``cell_id`` (grid cell),
``occupation`` (ClassLabel), ``setting``, ``prompt`` (the context prompt), ``caption`` (context only),
``inpaint_prompt``, one ``ClassLabel`` column per attribute, ``seed`` (inpainting seed) and ``base_seed``
(text-to-image seed). With ``paste_back`` every pixel outside ``mask`` equals the base image's, so all
variants of a base share every context pixel.

Resume, determinism, several GPUs
---------------------------------
Everything about base ``b`` is a function of ``(config, b)`` (seeds from the config's seed), so shards are
independent. The folder follows the shared build rules of :mod:`trustvl.data_builders.sharded_build`
(fingerprint, atomic shards, resume, card written last): a shard is either absent or complete. A rerun into the same folder with the same config and stages (same
fingerprint) skips every complete shard and builds the rest: a killed build resumes with no duplicate and
no gap, and the result equals an uninterrupted build (byte for byte on the same machine). A folder from a
different config is refused unless ``overwrite=True``.

Under ``accelerate launch`` (``accelerate.PartialState``), process ``i`` of ``n`` builds shards
``i, i+n, i+2n, ...``; the main process prepares the folder first and writes the card after
``wait_for_everyone()`` (the folder must be on a filesystem every process sees).

Failure policy
--------------
Bad configs and folders raise :class:`~trustvl.errors.TrustVLInputError` before anything is written. A
build in which no base image has a person (zero rows) raises at the end and leaves no dataset folder
behind (its shards and ``build_config.json`` are removed; the folder too when it is then empty). A stage
error leaves the complete shards (and ``build_config.json``) for a resume, but no card.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from trustvl.data_builders.cf_alpha.config import CounterfactualConfig, load_counterfactual_config
from trustvl.data_builders.cf_alpha.stage_utils import describe_stage, dilate_mask, paste_back
from trustvl.data_builders.parquet_shards import DATA_DIR, shard_file_name
from trustvl.data_builders.sharded_build import BUILD_RECORD, ShardedBuild, png_bytes
from trustvl.errors import TrustVLInputError
from trustvl.hub.dataset_cards import DatasetCardMetadata, SplitMetadata
from trustvl.utils.options import resolve_num_proc

__all__ = ["BuildSummary", "build_counterfactuals", "counterfactual_features", "shard_path"]

SPLIT = "train"
_FORMAT_VERSION = 1
_BUILDER = "trustvl.data_builders.cf_alpha.build_counterfactuals"
_CARD_TEMPLATE = "dataset_cf_alpha_counterfactuals"


@dataclass
class BuildSummary:
    """Counts of a build (over every shard, including shards reused from an earlier run).

    Attributes:
        out_dir: the dataset folder.
        fingerprint: sha256 of the config's content fields and the stages' descriptions.
        n_prompts: context prompts; n_bases_tried: base images generated (``n_prompts * n_base_per_prompt``).
        n_bases_skipped_no_person: base images whose mask was empty / below ``min_mask_fraction``.
        n_bases_written: base images with variants; n_variants: rows written.
        n_shards: shards in the dataset; n_shards_built / n_shards_reused: built in this run / found
            complete and skipped; seconds: wall time of this run (this process).
        skipped_base_ids: the skipped bases.
    """

    out_dir: str
    fingerprint: str
    n_prompts: int
    n_bases_tried: int
    n_bases_skipped_no_person: int
    n_bases_written: int
    n_variants: int
    n_shards: int
    n_shards_built: int
    n_shards_reused: int
    seconds: float
    skipped_base_ids: list[int] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------- features

#: ``PIL.Image.info`` key through which a text-to-image stage may give a base image its own context-only
#: caption (it then replaces the config's caption for that base's rows).
CAPTION_INFO_KEY = "trustvl_caption"


def counterfactual_features(config: CounterfactualConfig) -> Any:
    """The ``datasets.Features`` of a build with ``config`` (column order as stored)."""
    from datasets import ClassLabel, Features, Value
    from datasets import Image as ImageFeature

    cols: dict[str, Any] = {
        "image": ImageFeature(),
        "mask": ImageFeature(),
        "base_id": Value("int64"),
        "variant_id": Value("int32"),
        "cell_id": Value("int32"),
        "occupation": ClassLabel(names=list(config.occupations)),
        "setting": Value("string"),
        "prompt": Value("string"),
        "caption": Value("string"),
        "inpaint_prompt": Value("string"),
    }
    for name, values in config.attributes.items():
        cols[name] = ClassLabel(names=list(values))
    cols["seed"] = Value("int64")
    cols["base_seed"] = Value("int64")
    return Features(cols)


# ---------------------------------------------------------------------------------------------- helpers
def shard_path(out_dir: str | os.PathLike, index: int, n_shards: int) -> Path:
    """Path of shard ``index`` of ``n_shards``."""
    return Path(out_dir) / DATA_DIR / shard_file_name(SPLIT, index, n_shards)


def _mask_array(mask: Any, size: tuple[int, int], threshold: float, stage: str, i: int) -> np.ndarray:
    """A segmenter output as a bool (H, W) array at ``size`` = (W, H)."""
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L"))
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise TrustVLInputError(f"{stage}: mask {i} has shape {arr.shape}; expected (H, W)")
    if arr.dtype == bool:
        soft = None
    elif np.issubdtype(arr.dtype, np.floating):
        soft = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.integer):
        soft = arr.astype(np.float32) / (255.0 if arr.max(initial=0) > 1 else 1.0)
    else:
        raise TrustVLInputError(f"{stage}: mask {i} has dtype {arr.dtype}; expected bool, float or uint8")
    w, h = size
    if arr.shape != (h, w):
        src = arr.astype(np.uint8) * 255 if soft is None else np.clip(soft * 255, 0, 255).astype(np.uint8)
        resample = Image.Resampling.NEAREST if soft is None else Image.Resampling.BILINEAR
        resized = np.asarray(Image.fromarray(src, mode="L").resize((w, h), resample))
        if soft is None:
            return resized > 127
        soft = resized.astype(np.float32) / 255.0
    return arr if soft is None else soft >= threshold


def _check_images(out: Any, n: int, stage: str) -> list[Image.Image]:
    if not isinstance(out, Sequence) or isinstance(out, (str, bytes)):
        raise TrustVLInputError(f"{stage} returned a {type(out).__name__}; expected a list of {n} PIL images")
    if len(out) != n:
        raise TrustVLInputError(f"{stage} returned {len(out)} images for {n} inputs; expected one per input")
    for i, im in enumerate(out):
        if not isinstance(im, Image.Image):
            raise TrustVLInputError(f"{stage} returned a {type(im).__name__} at {i}; expected a PIL image")
    return list(out)


class _SingleProcess:
    num_processes = 1
    process_index = 0
    is_main_process = True
    is_local_main_process = True

    def wait_for_everyone(self) -> None:
        return None


def _state(state: Any) -> Any:
    if state is not None:
        return state
    try:
        import torch
        from accelerate import PartialState

        # a CPU-only multi-process launch (torchrun / accelerate launch --cpu) needs cpu=True to use gloo
        several = int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
        return PartialState(cpu=True) if several and not torch.cuda.is_available() else PartialState()
    except Exception:  # noqa: BLE001 - no accelerate / no distributed env: one process
        return _SingleProcess()


# ---------------------------------------------------------------------------------------------- shards
class _ShardBuilder:
    def __init__(
        self,
        config: CounterfactualConfig,
        text_to_image: Any,
        segmenter: Any,
        inpainter: Any,
        features: Any,
        build: ShardedBuild,
        progress: Any,
    ) -> None:
        self.cfg, self.t2i, self.seg, self.inp = config, text_to_image, segmenter, inpainter
        self.features, self.sharded, self.progress = features, build, progress
        self.contexts = config.contexts()
        self.n_skipped = self.n_rows = 0  # this run, for the progress bar

    def _bases(self, bases: list[int]) -> tuple[list[Image.Image], list[dict[str, Any]]]:
        cfg = self.cfg
        metas: list[dict[str, Any]] = []
        for b in bases:
            ctx = self.contexts[b % cfg.n_prompts]
            metas.append(
                {
                    "seed": cfg.base_seed(b),
                    "base_id": b,
                    "index": b,
                    "context_index": ctx.index,
                    "repetition": b // cfg.n_prompts,
                    "occupation": ctx.occupation,
                    "setting": ctx.setting,
                    "prompt": ctx.prompt,
                    "caption": ctx.caption,
                }
            )
        images = _check_images(self.t2i([m["prompt"] for m in metas], metas), len(bases), "text_to_image")
        out = []
        for im, meta in zip(images, metas):
            for k, v in im.info.items():  # e.g. SynthWorld's scene spec, for the later stages
                meta.setdefault(k, v)
            if CAPTION_INFO_KEY in im.info:  # a stage that knows its scene may caption it (context only)
                meta["caption"] = str(im.info[CAPTION_INFO_KEY])
            im = im if im.mode == "RGB" else im.convert("RGB")
            s = cfg.image_size
            if s is not None and im.size != (s, s):
                im = im.resize((s, s), Image.Resampling.BICUBIC)
            out.append(im)
        return out, metas

    def build(self, index: int, path: Path) -> dict[str, Any]:
        cfg = self.cfg
        lo, hi = index * cfg.shard_size, min((index + 1) * cfg.shard_size, cfg.n_bases)
        rows: list[dict[str, Any]] = []
        skipped: list[int] = []
        n_written = 0
        for start in range(lo, hi, cfg.batch_size):
            bases = list(range(start, min(start + cfg.batch_size, hi)))
            images, metas = self._bases(bases)
            raw = self.seg(images, metas)
            if not isinstance(raw, Sequence) or len(raw) != len(images):
                got = len(raw) if isinstance(raw, Sequence) else type(raw).__name__
                raise TrustVLInputError(
                    f"segmenter returned {got} masks for {len(images)} images; expected one each"
                )
            requests = []  # (base position in the batch, variant_id, cell_id)
            masks: dict[int, np.ndarray] = {}
            for j, (b, im, m) in enumerate(zip(bases, images, raw)):
                mask = None
                if m is not None:
                    mask = _mask_array(m, im.size, cfg.mask_threshold, "segmenter", j)
                    mask = dilate_mask(mask, cfg.mask_dilation)
                    area = int(mask.sum())
                    if area == 0 or area < cfg.min_mask_fraction * mask.size:
                        mask = None
                if mask is None:
                    skipped.append(b)
                    continue
                masks[j] = mask
                n_written += 1
                for v, cell_id in enumerate(cfg.variant_cells(b)):
                    requests.append((j, v, cell_id))
            outputs = self._inpaint(requests, bases, images, metas, masks)
            mask_png = {
                j: png_bytes(Image.fromarray(m.astype(np.uint8) * 255, mode="L")) for j, m in masks.items()
            }
            for (j, v, cell_id), out in zip(requests, outputs):
                b, meta, ctx = bases[j], metas[j], self.contexts[bases[j] % cfg.n_prompts]
                cell = cfg.cell(cell_id)
                row = {
                    "image": {"bytes": png_bytes(out), "path": None},
                    "mask": {"bytes": mask_png[j], "path": None},
                    "base_id": b,
                    "variant_id": v,
                    "cell_id": cell_id,
                    "occupation": ctx.occupation,
                    "setting": ctx.setting,
                    "prompt": ctx.prompt,
                    "caption": meta["caption"],
                    "inpaint_prompt": cfg.inpaint_prompt(ctx, cell),
                    **cell,
                    "seed": cfg.variant_seed(b, cell_id),
                    "base_seed": meta["seed"],
                }
                rows.append(row)
            self.progress.update(len(bases))
            self.progress.set_postfix(
                skipped=self.n_skipped + len(skipped), variants=self.n_rows + len(rows), refresh=False
            )
        meta = {
            "format": _FORMAT_VERSION,
            "shard": index,
            "bases": [lo, hi],
            "n_bases_tried": hi - lo,
            "n_bases_skipped": len(skipped),
            "skipped_base_ids": skipped,
            "n_bases_written": n_written,
            "n_rows": len(rows),
        }
        columns = {name: [r[name] for r in rows] for name in self.features}
        self.sharded.write_shard(path, columns, self.features, meta)
        self.n_skipped += len(skipped)
        self.n_rows += len(rows)
        return meta

    def _inpaint(
        self,
        requests: list[tuple[int, int, int]],
        bases: list[int],
        images: list[Image.Image],
        metas: list[dict[str, Any]],
        masks: dict[int, np.ndarray],
    ) -> list[Image.Image]:
        cfg = self.cfg
        outputs: list[Image.Image] = []
        for s in range(0, len(requests), cfg.batch_size):
            chunk = requests[s : s + cfg.batch_size]
            ims, ms, prompts, mds, attrs = [], [], [], [], []
            for j, v, cell_id in chunk:
                cell = cfg.cell(cell_id)
                ctx = self.contexts[bases[j] % cfg.n_prompts]
                ims.append(images[j])
                ms.append(masks[j])
                prompts.append(cfg.inpaint_prompt(ctx, cell))
                mds.append(
                    {
                        **metas[j],
                        "base_seed": metas[j]["seed"],
                        "seed": cfg.variant_seed(bases[j], cell_id),
                        "variant_id": v,
                        "cell_id": cell_id,
                        "attributes": dict(cell),
                    }
                )
                attrs.append(dict(cell))
            res = _check_images(self.inp(ims, ms, prompts, mds, attrs), len(chunk), "inpainter")
            for im, out, m in zip(ims, res, ms):
                out = out if out.mode == "RGB" else out.convert("RGB")
                if out.size != im.size:
                    out = out.resize(im.size, Image.Resampling.BICUBIC)
                outputs.append(paste_back(im, out, m) if cfg.paste_back else out)
        return outputs


# ---------------------------------------------------------------------------------------------- card
def _card_metadata(features: Any, summary: BuildSummary, num_bytes: int) -> DatasetCardMetadata:
    return DatasetCardMetadata(
        pretty_name="trustvl CF-alpha counterfactuals",
        features=features,
        splits=[SplitMetadata(SPLIT, summary.n_variants, num_bytes)],
        tags=("trustvl", "counterfactual", "fairness", "cf-alpha", "synthetic"),
        task_categories=("zero-shot-image-classification", "image-to-text"),
        download_size=num_bytes,
        # trustvl's own license; images made with third-party models may carry those models' terms too
        # (the card's body names every stage's model)
        license="apache-2.0",
    )


def _card_values(
    config: CounterfactualConfig, summary: BuildSummary, stages: dict[str, Any]
) -> dict[str, Any]:
    """What ``templates/dataset_cf_alpha_counterfactuals.md`` shows."""
    return {
        "summary": summary,
        "paste_back": config.paste_back,
        "n_variants": config.n_variants,
        "n_cells": config.n_cells,
        "shard_size": config.shard_size,
        "attributes": config.attributes,
        "stages": {name: json.dumps(d, sort_keys=True) for name, d in stages.items()},
        "build_record": BUILD_RECORD,
    }


# ---------------------------------------------------------------------------------------------- main
def _one_torch_thread() -> None:
    """A worker's initializer: each worker is one core, and torch's thread pool (mask dilation) inherited
    through fork must not be used with several threads in the child."""
    import torch

    torch.set_num_threads(1)


def _build_shard_in_worker(
    config: CounterfactualConfig,
    stages: tuple[Any, Any, Any],
    features: Any,
    build: ShardedBuild,
    index: int,
    path: Path,
) -> dict[str, Any]:
    """Shard ``index`` written by a worker process (the stages, config and build pickle); its metadata."""
    from tqdm.auto import tqdm

    with tqdm(disable=True) as silent:  # the parent's bar counts whole shards
        return _ShardBuilder(config, *stages, features, build, silent).build(index, path)


def build_counterfactuals(
    out_dir: str | os.PathLike,
    config: CounterfactualConfig | str | os.PathLike | Mapping[str, Any] | None,
    text_to_image: Any,
    segmenter: Any,
    inpainter: Any,
    *,
    progress: bool = True,
    overwrite: bool = False,
    state: Any = None,
    num_proc: int | None = 1,
) -> BuildSummary:
    """Build (or resume) a counterfactual dataset folder; see the module doc for the layout.

    Args:
        out_dir: the dataset folder (created; a folder holding the same build is resumed).
        config: a :class:`~.config.CounterfactualConfig`, a YAML path, a dict of fields, or None (default).
        text_to_image: ``(prompts, metadata) -> images``; ``metadata[i]`` carries ``seed``, ``base_id``,
            ``index`` (= ``base_id``; the scene hint of SynthWorld's ``OracleTextToImage``), ``occupation``,
            ``setting``, ``prompt``, ``caption``, ``context_index``, ``repetition``.
            Entries of each returned image's ``info`` dict are added to its metadata for the later stages.
        segmenter: ``(images, metadata) -> masks``; a mask is a bool array (or a soft float / uint8 array,
            or an L image, thresholded at ``config.mask_threshold``) or None for no person.
        inpainter: ``(images, masks, prompts, metadata, attributes) -> images``; ``metadata[i]["seed"]`` is
            the variant seed, ``attributes[i]`` the grid cell (attribute -> value).
        progress: show a tqdm bar (local main process only).
        overwrite: replace a folder holding anything else (another build, other files) instead of failing.
        state: an ``accelerate.PartialState``-like object (default: ``PartialState()``; one process when
            accelerate is not initialised for several).
        num_proc: worker processes writing shards (1, the default: in this process, as model stages on
            an accelerator need; None: every usable core). Only for stages that pickle and hold no device
            state, such as SynthWorld's; ignored (1) when ``state`` has several processes.

    Returns:
        A :class:`BuildSummary` (also written to ``build_config.json`` and the card).

    Raises:
        TrustVLInputError: bad config or folder (before anything is written), a stage returning the wrong
            number of items, or no person in any base image (then nothing is left behind).
    """
    t0 = time.perf_counter()
    if isinstance(config, CounterfactualConfig):
        cfg = config
    elif isinstance(config, Mapping):
        cfg = CounterfactualConfig.from_dict(config)
    else:
        cfg = load_counterfactual_config(config)
    for name, stage in (("text_to_image", text_to_image), ("segmenter", segmenter), ("inpainter", inpainter)):
        if not callable(stage):
            raise TrustVLInputError(f"{name}={stage!r} is not callable; expected a {name} component")
    stages = {
        "text_to_image": describe_stage(text_to_image),
        "segmenter": describe_stage(segmenter),
        "inpainter": describe_stage(inpainter),
    }
    fingerprint = cfg.fingerprint(stages)
    features = counterfactual_features(cfg)
    st = _state(state)
    n_shards = cfg.n_shards
    build = ShardedBuild(
        out_dir,
        builder=_BUILDER,
        fingerprint=fingerprint,
        settings={"config": cfg.to_dict(), "stages": stages, "n_shards": n_shards},
        kind="counterfactual build",
    )
    out = build.out
    if st.is_main_process:
        build.prepare(overwrite)
        build.write_record("in progress")
    st.wait_for_everyone()

    mine = list(range(st.process_index, n_shards, st.num_processes))
    pending = [i for i in mine if not build.shard_is_done(shard_path(out, i, n_shards))]
    reused = len(mine) - len(pending)

    from tqdm.auto import tqdm

    n_pending_bases = sum(min((i + 1) * cfg.shard_size, cfg.n_bases) - i * cfg.shard_size for i in pending)
    bar = tqdm(
        total=n_pending_bases,
        desc="counterfactual bases",
        unit="base",
        disable=not progress or not getattr(st, "is_local_main_process", True),
    )
    # shards are pure functions of their index, so worker processes write the same bytes; under accelerate
    # the processes already split the shards, and each renders in-process
    workers = resolve_num_proc(num_proc, len(pending)) if st.num_processes == 1 else 1
    try:
        if workers == 1:
            builder = _ShardBuilder(cfg, text_to_image, segmenter, inpainter, features, build, bar)
            for i in pending:
                builder.build(i, shard_path(out, i, n_shards))
        else:
            stages_ = (text_to_image, segmenter, inpainter)
            with ProcessPoolExecutor(max_workers=workers, initializer=_one_torch_thread) as ex:
                futures = [
                    ex.submit(
                        _build_shard_in_worker, cfg, stages_, features, build, i, shard_path(out, i, n_shards)
                    )
                    for i in pending
                ]
                for future in futures:
                    bar.update(future.result()["n_bases_tried"])
    finally:
        bar.close()
    st.wait_for_everyone()

    paths = [shard_path(out, i, n_shards) for i in range(n_shards)]
    metas = [build.shard_meta(path) for path in paths]
    missing = [i for i, m in enumerate(metas) if m is None]
    if missing and st.is_main_process:
        raise RuntimeError(f"shards {missing} are missing after every process finished; rerun to resume")
    done = [m for m in metas if m is not None]
    skipped_ids = sorted(b for m in done for b in m["skipped_base_ids"])
    summary = BuildSummary(
        out_dir=str(out),
        fingerprint=fingerprint,
        n_prompts=cfg.n_prompts,
        n_bases_tried=sum(m["n_bases_tried"] for m in done),
        n_bases_skipped_no_person=len(skipped_ids),
        n_bases_written=sum(m["n_bases_written"] for m in done),
        n_variants=sum(m["n_rows"] for m in done),
        n_shards=n_shards,
        n_shards_built=len(pending),
        n_shards_reused=reused,
        seconds=round(time.perf_counter() - t0, 3),
        skipped_base_ids=skipped_ids,
    )
    no_rows = not missing and summary.n_variants == 0
    st.wait_for_everyone()  # every process has read the shards before the main one may remove them
    if st.is_main_process:
        if no_rows:
            build.remove(paths)
        else:
            num_bytes = sum(path.stat().st_size for path in paths)
            build.finish(
                _card_metadata(features, summary, num_bytes),
                _CARD_TEMPLATE,
                _card_values(cfg, summary, stages),
                summary.to_dict(),
            )
    st.wait_for_everyone()
    if no_rows:
        raise TrustVLInputError(
            f"no person was found in any of the {summary.n_bases_tried} base images (segmenter "
            f"{stages['segmenter'].get('class', '?')}, mask_threshold={cfg.mask_threshold}, min_mask_fraction="
            f"{cfg.min_mask_fraction}): nothing to inpaint, no dataset written; expected images with a person"
            " (lower the threshold or check the segmenter)"
        )
    return summary
