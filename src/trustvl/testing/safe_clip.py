"""A tiny Safe-CLIP quadruplet dataset rendered from SynthWorld, for tests, smoke runs and benchmarks.

:func:`tiny_quadruplet_dataset` writes a dataset folder with the columns of trustvl's quadruplet
datasets (``safe_text`` S, ``safe_image`` V, ``unsafe_text`` U, ``unsafe_image`` G, ``category``,
``unsafe_kind``, ``occupation``, ``scene_id``) as Parquet shards plus a card, so
``datasets.load_dataset(folder, split=...)`` reads it. Every scene carries an unsafe element (G); V is the
same scene rendered without it; S is a context-only caption and U the same caption with the element's
phrase (SynthWorld's exact converter). It is the oracle version of the quadruplet builder, kept short on
purpose; the real builder is ``trustvl build safe-clip-quadruplets``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from trustvl.data_builders.parquet_shards import DATA_DIR, shard_file_name, write_parquet_shard
from trustvl.data_builders.safe_clip.quadruplets import quadruplet_features  # the one schema
from trustvl.data_builders.synthworld import (
    UNSAFE_KINDS,
    SynthWorldConfig,
    SynthWorldRenderer,
    UnsafeConfig,
    sample_caption,
    unsafe_subtype,
)
from trustvl.data_builders.synthworld.captions import UNSAFE_CATEGORIES
from trustvl.errors import TrustVLInputError
from trustvl.hub.dataset_cards import DatasetCardMetadata, SplitMetadata, write_dataset_card

__all__ = ["QUADRUPLET_SPLITS", "quadruplet_features", "tiny_quadruplet_dataset"]

#: Splits of a quadruplet dataset and the SynthWorld split + first scene index each is drawn from
#: (validation and test are disjoint ranges of SynthWorld's balanced test split).
QUADRUPLET_SPLITS: dict[str, tuple[str, int]] = {
    "train": ("train", 0),
    "validation": ("test", 1_000_000),
    "test": ("test", 0),
}


def tiny_quadruplet_dataset(
    path: str | os.PathLike,
    n_per_split: int | dict[str, int] = 16,
    seed: int = 0,
    *,
    resolution: int = 64,
    kinds: tuple[str, ...] = UNSAFE_KINDS,
    world: SynthWorldConfig | None = None,
) -> Path:
    """Render ``n_per_split`` SynthWorld quadruplets per split into the dataset folder ``path``.

    Args:
        path: the dataset folder (created; existing shards of the same names are replaced).
        n_per_split: rows per split, one number for all or ``{"train": .., "validation": .., "test": ..}``.
        seed: the SynthWorld world seed.
        resolution: image side in pixels.
        kinds: the unsafe element kinds drawn (default: all of SynthWorld's).
        world: the world the scenes come from, e.g. ``SynthWorldConfig.web()`` so that a CLIP pretrained on
            it is evaluated on its own world (default: SynthWorld's default world). Its ``resolution`` and
            ``unsafe`` knobs are replaced by ``resolution`` and ``kinds`` (every scene carries an element).
    """
    counts = (
        dict(n_per_split)
        if isinstance(n_per_split, dict)
        else {split: int(n_per_split) for split in QUADRUPLET_SPLITS}
    )
    if set(counts) != set(QUADRUPLET_SPLITS) or any(int(n) < 1 for n in counts.values()):
        raise TrustVLInputError(
            f"n_per_split={n_per_split!r}; expected a positive int or one per split {list(QUADRUPLET_SPLITS)}"
        )
    from PIL import Image

    unsafe = UnsafeConfig(p=1.0, kinds=tuple(kinds))
    config = (
        SynthWorldConfig(resolution=resolution, unsafe=unsafe)
        if world is None
        else dataclasses.replace(world, resolution=resolution, unsafe=unsafe)
    )
    renderer = SynthWorldRenderer(config, seed=seed)
    folder = Path(path)
    features = quadruplet_features()
    splits = []
    for split, (world_split, first) in QUADRUPLET_SPLITS.items():
        rows: dict[str, list] = {name: [] for name in features}
        for index in range(first, first + counts[split]):
            spec = renderer.sample_scene(world_split, index)
            kind = unsafe_subtype(spec.unsafe)
            rows["safe_text"].append(sample_caption(spec, context_only=True, include_unsafe=False))
            rows["unsafe_text"].append(sample_caption(spec, context_only=True, include_unsafe=True))
            rows["safe_image"].append(Image.fromarray(renderer.render(renderer.set_unsafe(spec, None)).image))
            rows["unsafe_image"].append(Image.fromarray(renderer.render(spec).image))
            rows["category"].append(UNSAFE_CATEGORIES[kind])
            rows["unsafe_kind"].append(kind)
            rows["occupation"].append(spec.occupation)
            rows["scene_id"].append(index)
        write_parquet_shard(folder / DATA_DIR / shard_file_name(split, 0, 1), rows, features)
        splits.append(SplitMetadata(split, counts[split]))
    write_dataset_card(
        folder,
        DatasetCardMetadata(
            "SynthWorld Safe-CLIP quadruplets (tiny)", features, splits, license="apache-2.0"
        ),
        template="dataset_tiny_quadruplets",
    )
    return folder
