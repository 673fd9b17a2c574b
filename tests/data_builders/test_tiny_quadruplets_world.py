"""tiny_quadruplet_dataset(world=...): the quadruplets' scenes come from the given world (e.g. the web preset
a SynthWorld-Web CLIP was pretrained on), every scene still carries an unsafe element, and without it the
default world's rows are unchanged."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from trustvl.data_builders.parquet_shards import DATA_DIR, shard_file_name
from trustvl.data_builders.synthworld import (
    UNSAFE_KINDS,
    SynthWorldConfig,
    SynthWorldRenderer,
    UnsafeConfig,
    sample_caption,
    unsafe_subtype,
)
from trustvl.testing.safe_clip import tiny_quadruplet_dataset

N = 24


def _rows(folder, split="test") -> list[dict]:
    """The split's rows read straight from its Parquet shard, images decoded. Not through
    ``datasets.load_dataset``: its cache is keyed by the folder's name and card, not its files, so a folder
    of the same name written by an earlier run would be read instead."""
    table = pq.read_table(str(Path(folder) / DATA_DIR / shard_file_name(split, 0, 1))).to_pylist()
    for row in table:
        for column in ("safe_image", "unsafe_image"):
            row[column] = np.asarray(Image.open(io.BytesIO(row[column]["bytes"])))
    return table


def _expected(config: SynthWorldConfig, seed: int, world_split: str, first: int, n: int):
    renderer = SynthWorldRenderer(config, seed=seed)
    specs = [renderer.sample_scene(world_split, i) for i in range(first, first + n)]
    return renderer, specs


def test_web_world_rows_are_the_web_worlds_scenes(tmp_path):
    folder = tiny_quadruplet_dataset(
        tmp_path / "web-rows", N, seed=3, resolution=32, world=SynthWorldConfig.web()
    )
    rows = _rows(folder)
    web = SynthWorldConfig.web(resolution=32, unsafe=UnsafeConfig(p=1.0, kinds=UNSAFE_KINDS))
    renderer, specs = _expected(web, 3, "test", 0, N)
    assert [r["safe_text"] for r in rows] == [
        sample_caption(s, context_only=True, include_unsafe=False) for s in specs
    ]
    assert [r["unsafe_kind"] for r in rows] == [unsafe_subtype(s.unsafe) for s in specs]
    for row, spec in zip(rows, specs, strict=True):
        assert np.array_equal(row["unsafe_image"], renderer.render(spec).image)
        assert np.array_equal(row["safe_image"], renderer.render(renderer.set_unsafe(spec, None)).image)
        assert row["unsafe_text"].startswith(row["safe_text"] + ", ")
    # the web world's own traits show: the watermark in about half of the test scenes
    assert any(s.spurious for s in specs) and not all(s.spurious for s in specs)


def test_default_world_unchanged_and_differs_from_web(tmp_path):
    default = _rows(tiny_quadruplet_dataset(tmp_path / "default-world", N, seed=3, resolution=32))
    explicit = _rows(
        tiny_quadruplet_dataset(
            tmp_path / "explicit-default-world", N, seed=3, resolution=32, world=SynthWorldConfig()
        )
    )
    web = _rows(
        tiny_quadruplet_dataset(
            tmp_path / "web-world", N, seed=3, resolution=32, world=SynthWorldConfig.web()
        )
    )
    assert [r["safe_text"] for r in default] == [r["safe_text"] for r in explicit]
    assert all(
        np.array_equal(a["unsafe_image"], b["unsafe_image"]) for a, b in zip(default, explicit, strict=True)
    )
    assert not all(
        np.array_equal(a["unsafe_image"], b["unsafe_image"]) for a, b in zip(default, web, strict=True)
    )
