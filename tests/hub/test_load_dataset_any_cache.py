"""``load_dataset_any`` on a local folder returns that folder's rows, never another same-named folder's.

``datasets`` keys its Arrow cache of a local folder whose card lists the data files by the folder's name and
card; two builds named alike (or one folder rebuilt) shared a cache entry and the second load returned the
first one's rows (found when two quadruplet datasets of different worlds were evaluated one after the other).
"""

from __future__ import annotations

import os

import pandas as pd

from trustvl.hub.loading import load_dataset_any

CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.parquet
---
# rows
"""


def _folder(root, value):
    folder = root / "quadruplets"
    (folder / "data").mkdir(parents=True)
    pd.DataFrame({"x": [value] * 3}).to_parquet(folder / "data" / "train-00000.parquet")
    (folder / "README.md").write_text(CARD)
    return folder


def test_two_folders_of_the_same_name_keep_their_own_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("TRUSTVL_CACHE", str(tmp_path / "tvl-cache"))
    first, second = _folder(tmp_path / "a", 1), _folder(tmp_path / "b", 2)
    assert load_dataset_any(first, split="train")["x"] == [1, 1, 1]
    assert load_dataset_any(second, split="train")["x"] == [2, 2, 2]
    assert load_dataset_any(first, split="train")["x"] == [1, 1, 1]


def test_a_rebuilt_folder_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("TRUSTVL_CACHE", str(tmp_path / "tvl-cache"))
    folder = _folder(tmp_path, 1)
    assert load_dataset_any(folder, split="train")["x"] == [1, 1, 1]
    data = folder / "data" / "train-00000.parquet"
    pd.DataFrame({"x": [5] * 3}).to_parquet(data)
    os.utime(data, ns=(1, 1))  # a different mtime even where the clock is coarse
    assert load_dataset_any(folder, split="train")["x"] == [5, 5, 5]
