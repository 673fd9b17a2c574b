"""The shared data-layer utilities: device/dtype resolution, atomic writes, Parquet shards, dataset cards."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from trustvl.data_builders.parquet_shards import (
    count_shards,
    parquet_num_rows,
    read_shard_metadata,
    remove_partial_shards,
    shard_file_name,
    shard_ranges,
    write_parquet_shard,
)
from trustvl.errors import TrustVLInputError
from trustvl.hub.dataset_cards import DatasetCardMetadata, SplitMetadata, dataset_card, write_dataset_card
from trustvl.utils.devices import resolve_device, resolve_dtype
from trustvl.utils.io import atomic_write, write_json


def test_device_and_dtype_conventions():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == resolve_device(None)
    assert resolve_dtype(None) is torch.float32
    assert resolve_dtype("bf16") is torch.bfloat16 and resolve_dtype("torch.float16") is torch.float16
    assert resolve_dtype("auto", "cpu") is torch.float32  # half precision only on CUDA
    with pytest.raises(TrustVLInputError, match="dtype='int3'"):
        resolve_dtype("int3")
    with pytest.raises(TrustVLInputError, match="device='gpu0'"):
        resolve_device("gpu0")


def test_every_module_uses_the_one_resolver():
    from trustvl.data_builders.cf_alpha import diffusers_stage, segmentation
    from trustvl.modeling import embedding

    for module in (embedding, diffusers_stage, segmentation):
        assert module.resolve_device is resolve_device and module.resolve_dtype is resolve_dtype


def test_atomic_write_leaves_old_file_on_error(tmp_path):
    path = write_json(tmp_path / "a.json", {"x": 1})
    with pytest.raises(RuntimeError), atomic_write(path, "w") as fh:
        fh.write("half")
        raise RuntimeError("killed")
    assert path.read_text() == '{\n  "x": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temporary file left
    assert (path.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_shard_names_and_ranges():
    assert shard_file_name("train", 2, 10) == "train-00002-of-00010.parquet"
    assert count_shards(0, 4) == 0 and count_shards(9, 4) == 3
    assert list(shard_ranges(9, 4)) == [(0, 0, 4), (1, 4, 8), (2, 8, 9)]
    with pytest.raises(TrustVLInputError, match="shard_size=0"):
        count_shards(3, 0)


def _features():
    from datasets import ClassLabel, Features, Value
    from datasets import Image as ImageFeature

    return Features({"image": ImageFeature(), "label": ClassLabel(names=["a", "b"]), "n": Value("int32")})


def _columns():
    images = [Image.fromarray(np.full((4, 4, 3), v, dtype=np.uint8)) for v in (0, 255)]
    return {"n": [1, 2], "label": [1, 0], "image": images}


@pytest.mark.parametrize("hub_layout", [False, True])
def test_shard_round_trip_and_card_load(tmp_path, hub_layout):
    import datasets

    features = _features()
    meta = None if hub_layout else {"trustvl": {"fingerprint": "abc"}}
    path = tmp_path / "data" / shard_file_name("train", 0, 1)
    assert write_parquet_shard(path, _columns(), features, metadata=meta, hub_layout=hub_layout) == 2
    assert parquet_num_rows(path) == 2 and parquet_num_rows(tmp_path / "nope.parquet") is None
    assert read_shard_metadata(path, "trustvl") == (None if hub_layout else {"fingerprint": "abc"})
    card_meta = DatasetCardMetadata(
        pretty_name="tiny", features=features, splits=[SplitMetadata("train", 2)], license="apache-2.0"
    )
    write_dataset_card(tmp_path, card_meta, template="dataset_published", name="tiny")
    card = dataset_card(card_meta, template="dataset_published", name="tiny")
    assert "# tiny\n\nParquet shards published with `trustvl publish dataset`." in str(card)
    assert card.data.configs == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}
    ]
    ds = datasets.load_dataset(str(tmp_path), split="train")
    assert ds.features == features and ds["n"] == [1, 2] and ds["label"] == [1, 0]
    assert np.asarray(ds[1]["image"]).max() == 255


def test_shard_writer_rejects_bad_columns_and_cleans_leftovers(tmp_path):
    with pytest.raises(TrustVLInputError, match="lack"):
        write_parquet_shard(tmp_path / "x.parquet", {"n": [1]}, _features())
    with pytest.raises(TrustVLInputError, match="lengths"):
        write_parquet_shard(tmp_path / "x.parquet", {**_columns(), "n": [1]}, _features())
    (tmp_path / ".train-00000-of-00001.parquet.abc.tmp").write_bytes(b"partial")
    remove_partial_shards(tmp_path)
    assert list(tmp_path.iterdir()) == []
