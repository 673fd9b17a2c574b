"""Spurious digits: RaVL's evaluation world (SPEC §3) as a Hugging Face dataset folder.

**Image.** A square ``image_size`` image (default 64) made of four quadrants, numbered like
:func:`trustvl.data_builders.ravl.regions.grid_regions` with ``n=2``: 0 = top-left, 1 = top-right, 2 = bottom-left,
3 = bottom-right. **Definition:** every image holds exactly one handwritten digit, the image's label,
in a uniformly random quadrant; the other quadrants are empty (black), so each quadrant "may hold a
digit" and the label is never ambiguous. Digits are scikit-learn's ``load_digits()`` 8x8 scans
(1,797 images, 16 grey levels), upscaled bilinearly to fill the quadrant less a margin of 1/8, drawn
white on black. The digit scans of each class are split 70/30 (seeded) between the train and test
splits, so test digits are unseen scans.

**Artefact.** A filled red (255, 0, 0) rectangle, 35-60% of the quadrant side in each direction at a
random position, in a random quadrant other than the digit's.

**Association (train split).** Let ``S`` = "the image is of ``spurious_class``" and ``R`` = "the image
has the rectangle". For the 2x2 table R x S, Cramér's V equals ``|phi|`` with
``phi = (p11 - pR pS) / sqrt(pR (1 - pR) pS (1 - pS))``. Classes are balanced, so ``pS = 1 / n_classes``.
Solving for the joint cell gives ``p11 = pR pS + V sqrt(pR (1 - pR) pS (1 - pS))`` (positive
association), ``p10 = pR - p11``, ``p01 = pS - p11``, ``p00 = 1 - pR - pS + p11``. The SPEC's rectangle
rate is 0.5, but with 10 balanced classes any ``V > 1/3`` is impossible at ``pR = 0.5`` (the cell
``p11`` would exceed ``pS``). **Definition:** ``pR = min(0.5, pS / (pS + V^2 (1 - pS)))``, the largest
rectangle rate that can reach ``V`` (at V >= 1/3 with 10 classes: every spurious-class image has the
rectangle and a fraction ``(pR - pS) / (1 - pS)`` of the others does); ``p_rect`` overrides it when
feasible. Cell counts are the rounded proportions, then adjusted by at most a few images so the
empirical V is the closest achievable to the target; which images get a rectangle is drawn at random.
This is the outcome of subsampling an infinite pool with rectangles at rate 0.5 to these cell
proportions, done directly.

**Test split.** Balanced: equal class counts, and in every class half the images (alternately rounded
up and down) have the rectangle, so the rectangle is independent of the class (V = 0 up to rounding).

**Columns.** ``image`` (``datasets.Image``), ``label`` (``ClassLabel`` with the English digit names of
``classes``, e.g. "seven"), ``digit`` (0-9), ``caption`` ("a photo of the digit seven"),
``has_rectangle``, ``rectangle_quadrant`` (-1 when none), ``digit_quadrant``, ``rectangle_box``
(left, top, right, bottom; all -1 when none), ``is_spurious_class``, ``source_index`` (index into
``load_digits()``).

**Folder.** ``README.md`` (dataset card with YAML ``configs`` and ``dataset_info``),
``data/train-00000-of-00001.parquet``, ``data/test-00000-of-00001.parquet``, ``build_info.json``, written
whole through the shared build (:meth:`~trustvl.data_builders.sharded_build.ShardedBuild.staged`: the folder
appears complete or not at all). ``datasets.load_dataset(folder)`` loads it offline.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trustvl.data_builders.parquet_shards import DATA_DIR, parquet_uncompressed_bytes
from trustvl.data_builders.ravl.regions import Region, grid_regions
from trustvl.data_builders.sharded_build import ShardedBuild
from trustvl.errors import TrustVLInputError
from trustvl.hub.dataset_cards import DatasetCardMetadata, SplitMetadata
from trustvl.utils.checks import check_int, check_number
from trustvl.utils.options import overwrite_option, progress_option

__all__ = [
    "DIGIT_NAMES",
    "build_spurious_digits",
    "cramers_v_2x2",
    "rectangle_region_truth",
    "render_spurious_digit",
    "target_cell_proportions",
]

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
RED = (255, 0, 0)


def cramers_v_2x2(x: Any, y: Any) -> float:
    """Cramér's V (= ``|phi|``) of two binary vectors; 0 when either is constant."""
    a = np.asarray(x).astype(bool)
    b = np.asarray(y).astype(bool)
    if a.shape != b.shape or a.ndim != 1:
        raise TrustVLInputError(
            f"x has shape {a.shape} and y {b.shape}; expected two 1-D vectors of equal length"
        )
    n = a.size
    if n == 0:
        return 0.0
    n11 = float(np.sum(a & b))
    n1_, n_1 = float(a.sum()), float(b.sum())
    denom = n1_ * (n - n1_) * n_1 * (n - n_1)
    if denom == 0:
        return 0.0
    return abs(n * n11 - n1_ * n_1) / math.sqrt(denom)


def target_cell_proportions(
    cramers_v: float, p_spurious: float, p_rect: float | None = None
) -> dict[str, float]:
    """Joint proportions of (rectangle, spurious class) reaching ``cramers_v`` with positive association.

    Returns ``{"p_rect", "p11", "p10", "p01", "p00"}`` (first index: rectangle, second: spurious class).
    ``p_rect=None`` picks ``min(0.5, pS / (pS + V^2 (1 - pS)))``; see the module docstring.
    """
    v, ps = float(cramers_v), float(p_spurious)
    if not 0.0 <= v <= 1.0:
        raise TrustVLInputError(f"cramers_v={cramers_v!r}; expected a value in [0, 1]")
    if not 0.0 < ps < 1.0:
        raise TrustVLInputError(
            f"spurious-class share {p_spurious!r}; expected in (0, 1): use at least 2 classes"
        )
    max_pr = 1.0 if v == 0 else ps / (ps + v * v * (1.0 - ps))
    if p_rect is None:
        pr = min(0.5, max_pr)
    else:
        pr = float(p_rect)
        lo = 0.0 if v == 0 else ps * v * v / (ps * v * v + (1.0 - ps))  # symmetric bound: p11 <= pR
        if not 0.0 < pr < 1.0 or pr > max_pr + 1e-12 or pr < lo - 1e-12:
            raise TrustVLInputError(
                f"p_rect={p_rect!r} cannot reach cramers_v={v} with a spurious-class share of {ps:.4f};"
                f" expected p_rect in [{lo:.4f}, {max_pr:.4f}] (or None to choose it)"
            )
    p11 = pr * ps + v * math.sqrt(pr * (1.0 - pr) * ps * (1.0 - ps))
    p11 = min(p11, pr, ps)
    return {"p_rect": pr, "p11": p11, "p10": pr - p11, "p01": ps - p11, "p00": 1.0 - pr - ps + p11}


def _cell_counts(n: int, n_s: int, target: float, p_rect: float | None) -> tuple[int, int]:
    """(n11, n10): rectangle counts inside / outside the spurious class, closest achievable V to target."""
    props = target_cell_proportions(target, n_s / n, p_rect)
    n_r = int(round(props["p_rect"] * n))
    n_r = min(max(n_r, 1), n - 1)
    base = int(round(props["p11"] * n))
    best: tuple[float, int] | None = None
    for n11 in range(base - 3, base + 4):
        if not (max(0, n_r - (n - n_s)) <= n11 <= min(n_s, n_r)):
            continue
        denom = n_r * (n - n_r) * n_s * (n - n_s)
        v = (n * n11 - n_r * n_s) / math.sqrt(denom)
        err = abs(v - target)
        if best is None or err < best[0] - 1e-15:
            best = (err, n11)
    if best is None:
        raise TrustVLInputError(
            f"cannot place rectangles for cramers_v={target} with {n} images; use more images"
        )
    return best[1], n_r - best[1]


def _digit_tile(scan: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    arr = np.clip(np.asarray(scan, dtype=np.float64) * (255.0 / 16.0), 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(arr, mode="L").resize((size, size), Image.BILINEAR))


def render_spurious_digit(
    scan: np.ndarray, digit_quadrant: int, rectangle_box: Sequence[int] | None, image_size: int = 64
) -> Any:
    """Render one image: the 8x8 ``scan`` in ``digit_quadrant`` and, if given, a red rectangle (PIL RGB)."""
    from PIL import Image

    q = image_size // 2
    margin = max(1, q // 8)
    canvas = np.zeros((image_size, image_size, 3), dtype=np.uint8)
    tile = _digit_tile(scan, q - 2 * margin)
    r, c = divmod(int(digit_quadrant), 2)
    y0, x0 = r * q + margin, c * q + margin
    canvas[y0 : y0 + tile.shape[0], x0 : x0 + tile.shape[1], :] = tile[:, :, None]
    if rectangle_box is not None and rectangle_box[0] >= 0:
        left, top, right, bottom = (int(v) for v in rectangle_box)
        canvas[top:bottom, left:right] = RED
    return Image.fromarray(canvas, mode="RGB")


def _rectangle_box(rng: np.random.Generator, quadrant: int, image_size: int) -> tuple[int, int, int, int]:
    q = image_size // 2
    w = int(rng.integers(max(2, round(0.35 * q)), max(3, round(0.6 * q)) + 1))
    h = int(rng.integers(max(2, round(0.35 * q)), max(3, round(0.6 * q)) + 1))
    x = int(rng.integers(1, q - w))
    y = int(rng.integers(1, q - h))
    r, c = divmod(quadrant, 2)
    return c * q + x, r * q + y, c * q + x + w, r * q + y + h


def _class_counts(n: int, n_classes: int) -> np.ndarray:
    counts = np.full(n_classes, n // n_classes, dtype=np.int64)
    counts[: n % n_classes] += 1
    return counts


def _split_plan(
    rng: np.random.Generator,
    split: str,
    n: int,
    classes: list[int],
    spurious_pos: int,
    cramers_v: float,
    p_rect: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(class position per image, has_rectangle per image) for one split."""
    counts = _class_counts(n, len(classes))
    if counts.min() < 2:
        raise TrustVLInputError(
            f"n_{split}={n} gives fewer than 2 images per class for {len(classes)} classes;"
            " expected more images"
        )
    cls = np.repeat(np.arange(len(classes)), counts)
    rect = np.zeros(n, dtype=bool)
    if split == "train":
        n_s = int(counts[spurious_pos])
        n11, n10 = _cell_counts(n, n_s, cramers_v, p_rect)
        spur = np.flatnonzero(cls == spurious_pos)
        other = np.flatnonzero(cls != spurious_pos)
        rect[rng.choice(spur, size=n11, replace=False)] = True
        rect[rng.choice(other, size=n10, replace=False)] = True
    else:
        up = True
        for pos in range(len(classes)):
            idx = np.flatnonzero(cls == pos)
            half = len(idx) // 2 + (len(idx) % 2 if up else 0)
            if len(idx) % 2:
                up = not up
            rect[rng.choice(idx, size=half, replace=False)] = True
    perm = rng.permutation(n)
    return cls[perm], rect[perm]


def _features(class_names: list[str]):
    from datasets import ClassLabel, Features, Image, Sequence, Value

    return Features(
        {
            "image": Image(),
            "label": ClassLabel(names=class_names),
            "digit": Value("int8"),
            "caption": Value("string"),
            "has_rectangle": Value("bool"),
            "rectangle_quadrant": Value("int8"),
            "digit_quadrant": Value("int8"),
            "rectangle_box": Sequence(Value("int16"), length=4),
            "is_spurious_class": Value("bool"),
            "source_index": Value("int32"),
        }
    )


def _card_metadata(build: ShardedBuild, info: dict[str, Any], features: Any) -> DatasetCardMetadata:
    return DatasetCardMetadata(
        pretty_name="trustvl spurious digits",
        features=features,
        splits=[
            SplitMetadata(
                split,
                stats["n"],
                parquet_uncompressed_bytes(build.shard_path(split, 0, 1)),
                data_files=f"{DATA_DIR}/{split}-*.parquet",
            )
            for split, stats in info["splits"].items()
        ],
        license="cc-by-4.0",
        tags=("trustvl", "spurious-correlation", "ravl", "synthetic"),
        task_categories=("zero-shot-image-classification",),
    )


def _card_values(info: dict[str, Any]) -> dict[str, Any]:
    """What ``templates/dataset_spurious_digits.md`` shows."""
    return {
        "spurious_class_name": info["spurious_class_name"],
        "cramers_v_target": info["cramers_v_target"],
        "splits": info["splits"],
        "params": json.dumps(info["params"]),
    }


def build_spurious_digits(
    out_dir: str | os.PathLike,
    *,
    cramers_v: float = 0.9,
    spurious_class: int = 7,
    classes: Iterable[int] = range(10),
    n_train: int = 2000,
    n_test: int = 1000,
    image_size: int = 64,
    p_rect: float | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Build the spurious-digits dataset folder (see the module docstring) and return its path.

    Args:
        cramers_v: target association in the train split between the rectangle and ``spurious_class``
            (SPEC values 0.7, 0.8, 0.9, 0.95, 0.99; any value in [0, 1]).
        classes: the digits used (a subset of 0-9, at least 2); ``label`` indexes this list in order.
        p_rect: overall train rectangle rate; default the largest rate that can reach ``cramers_v``.
        overwrite: replace an existing non-empty ``out_dir`` (atomically).
    """
    classes = sorted({int(c) for c in classes})
    if len(classes) < 2 or classes[0] < 0 or classes[-1] > 9:
        raise TrustVLInputError(f"classes={classes}; expected at least 2 distinct digits in 0-9")
    if spurious_class not in classes:
        raise TrustVLInputError(f"spurious_class={spurious_class!r} is not one of classes={classes}")
    if check_int("image_size", image_size, 16) % 2:
        raise TrustVLInputError(f"image_size={image_size!r}; expected an even integer >= 16")
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        check_int(name, n, 2 * len(classes), where=f" (2 images per class of {len(classes)})")
    check_number("cramers_v", cramers_v, 0.0, 1.0)
    target_cell_proportions(cramers_v, 1.0 / len(classes), p_rect)  # p_rect feasibility, before any work

    import datasets
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    digits = load_digits()
    scans, targets = digits.images, digits.target
    pools: dict[str, dict[int, np.ndarray]] = {"train": {}, "test": {}}
    for d in classes:
        idx = rng.permutation(np.flatnonzero(targets == d))
        cut = int(round(0.7 * len(idx)))
        pools["train"][d], pools["test"][d] = idx[:cut], idx[cut:]
    class_names = [DIGIT_NAMES[d] for d in classes]
    spurious_pos = classes.index(spurious_class)
    info: dict[str, Any] = {
        "spurious_class": spurious_class,
        "spurious_class_name": DIGIT_NAMES[spurious_class],
        "cramers_v_target": float(cramers_v),
        "classes": classes,
        "class_names": class_names,
        "quadrants": {"0": "top-left", "1": "top-right", "2": "bottom-left", "3": "bottom-right"},
        "params": {
            "cramers_v": float(cramers_v),
            "spurious_class": spurious_class,
            "classes": classes,
            "n_train": n_train,
            "n_test": n_test,
            "image_size": image_size,
            "p_rect": p_rect,
            "seed": seed,
        },
        "splits": {},
    }
    features = _features(class_names)
    bars_were_on = not datasets.are_progress_bars_disabled()
    if not progress:
        datasets.disable_progress_bars()
    try:
        with ShardedBuild.staged(
            out_dir,
            builder=f"{__name__}.build_spurious_digits",
            kind="spurious-digits build",
            overwrite=overwrite,
        ) as build:
            _write_splits(
                build,
                rng,
                info,
                features,
                classes,
                pools,
                scans,
                spurious_pos,
                float(cramers_v),
                p_rect,
                {"train": n_train, "test": n_test},
                image_size,
                progress,
            )
            build.finish(
                _card_metadata(build, info, features),
                "dataset_spurious_digits",
                _card_values(info),
                files={"build_info.json": info},
            )
    finally:
        if bars_were_on and not progress:
            datasets.enable_progress_bars()
    return Path(out_dir).expanduser().resolve()


def _write_splits(
    build: ShardedBuild,
    rng: np.random.Generator,
    info: dict[str, Any],
    features: Any,
    classes: list[int],
    pools: dict[str, dict[int, np.ndarray]],
    scans: np.ndarray,
    spurious_pos: int,
    cramers_v: float,
    p_rect: float | None,
    sizes: dict[str, int],
    image_size: int,
    progress: bool,
) -> None:
    from tqdm.auto import tqdm

    spurious_class = classes[spurious_pos]
    for split, n in sizes.items():
        cls, rect = _split_plan(rng, split, n, classes, spurious_pos, cramers_v, p_rect)
        rows: dict[str, list[Any]] = {k: [] for k in features}
        for i in tqdm(range(n), desc=f"spurious digits ({split})", disable=not progress):
            d = classes[cls[i]]
            src = int(rng.choice(pools[split][d]))
            dq = int(rng.integers(4))
            rq, box = -1, (-1, -1, -1, -1)
            if rect[i]:
                rq = int(rng.choice([q for q in range(4) if q != dq]))
                box = _rectangle_box(rng, rq, image_size)
            rows["image"].append(render_spurious_digit(scans[src], dq, box if rq >= 0 else None, image_size))
            rows["label"].append(int(cls[i]))
            rows["digit"].append(d)
            rows["caption"].append(f"a photo of the digit {DIGIT_NAMES[d]}")
            rows["has_rectangle"].append(bool(rect[i]))
            rows["rectangle_quadrant"].append(rq)
            rows["digit_quadrant"].append(dq)
            rows["rectangle_box"].append(list(box))
            rows["is_spurious_class"].append(d == spurious_class)
            rows["source_index"].append(src)
        build.write_shard(build.shard_path(split, 0, 1), rows, features, hub_layout=True)
        info["splits"][split] = {
            "n": n,
            "rectangle_rate": float(rect.mean()),
            "cramers_v": cramers_v_2x2(rect, cls == spurious_pos),
            "n_rect_spurious": int((rect & (cls == spurious_pos)).sum()),
            "n_rect_other": int((rect & (cls != spurious_pos)).sum()),
            "n_spurious": int((cls == spurious_pos).sum()),
        }


def rectangle_region_truth(
    dataset: Any,
    regions: Sequence[Any] | None = None,
    *,
    grid_n: int = 2,
    image_size: int | None = None,
    min_fraction: float = 0.5,
) -> np.ndarray:
    """Which candidate regions contain the rectangle: boolean ``[n_regions]``.

    ``dataset``: a ``datasets.Dataset`` split (or a mapping) with a ``rectangle_box`` column.
    ``regions``: the :class:`~trustvl.data_builders.ravl.regions.Region` list used for discovery; default the
    ``grid_n x grid_n`` grid of every image in order (``image_size`` default: read from the first image),
    which for ``grid_n=2`` is exactly "region == rectangle_quadrant". A region contains the rectangle when
    at least ``min_fraction`` of the rectangle's area lies inside its box.
    """
    boxes = np.asarray(dataset["rectangle_box"], dtype=np.int64).reshape(-1, 4)
    if regions is None:
        if image_size is None:
            first = dataset["image"][0] if isinstance(dataset, Mapping) else dataset[0]["image"]
            image_size = first.size[0] if hasattr(first, "size") else int(np.asarray(first).shape[1])
        cells = grid_regions(int(image_size), grid_n)
        regions = [Region(i, b) for i in range(len(boxes)) for b in cells]
    img = np.array([r.image_index for r in regions], dtype=np.int64)
    rb = np.array([r.box for r in regions], dtype=np.int64).reshape(-1, 4)
    art = boxes[img]
    has = art[:, 0] >= 0
    iw = np.clip(np.minimum(rb[:, 2], art[:, 2]) - np.maximum(rb[:, 0], art[:, 0]), 0, None)
    ih = np.clip(np.minimum(rb[:, 3], art[:, 3]) - np.maximum(rb[:, 1], art[:, 1]), 0, None)
    area = np.maximum((art[:, 2] - art[:, 0]) * (art[:, 3] - art[:, 1]), 1)
    return has & (iw * ih >= min_fraction * area)


@dataclass
class SpuriousDigitsConfig:
    """``trustvl build spurious-digits``: the settings of :func:`build_spurious_digits` (each field is a
    flag, its help below); :meth:`build` runs it."""

    out_dir: str = field(
        metadata={"help": "output folder (must be empty or absent unless --overwrite)", "aliases": ["--out"]}
    )
    cramers_v: float = field(
        default=0.9,
        metadata={
            "help": "Cramér's V between the red rectangle and the spurious class",
            "min": 0.0,
            "max": 1.0,
        },
    )
    spurious_class: int = field(
        default=7, metadata={"help": "the digit the rectangle goes with", "min": 0, "max": 9}
    )
    n_train: int = field(default=2000, metadata={"help": "training images", "min": 0})
    n_test: int = field(default=1000, metadata={"help": "test images", "min": 0})
    image_size: int = field(default=64, metadata={"help": "image side in pixels", "min": 8, "max": 4096})
    seed: int = field(default=0, metadata={"help": "seed of the build", "min": 0, "max": None})
    overwrite: bool = overwrite_option("output folder")
    progress: bool = progress_option()

    def build(self) -> Path:
        return build_spurious_digits(
            self.out_dir,
            cramers_v=self.cramers_v,
            spurious_class=self.spurious_class,
            n_train=self.n_train,
            n_test=self.n_test,
            image_size=self.image_size,
            seed=self.seed,
            overwrite=self.overwrite,
            progress=self.progress,
        )
