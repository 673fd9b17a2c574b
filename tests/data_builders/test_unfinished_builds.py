"""A dataset folder whose resumable build was interrupted is refused by trustvl's loader (issue #15)."""

from __future__ import annotations

import json

import pytest
from conftest import write_attributed_parquet

from trustvl.errors import TrustVLInputError
from trustvl.hub.loading import BUILD_RECORD, load_dataset_any


@pytest.mark.parametrize("record", [{"status": "in progress"}, {"config": {}}, "{cut short"])
def test_an_unfinished_build_is_refused_with_how_to_resume(tmp_path, record):
    write_attributed_parquet(tmp_path / "data", n=8)
    text = record if isinstance(record, str) else json.dumps(record)
    (tmp_path / "data" / BUILD_RECORD).write_text(text)
    with pytest.raises(TrustVLInputError, match="unfinished build.*--resume"):
        load_dataset_any(tmp_path / "data", split="test")


def test_a_complete_build_loads(tmp_path):
    write_attributed_parquet(tmp_path / "data", n=8)
    (tmp_path / "data" / BUILD_RECORD).write_text(json.dumps({"status": "complete"}))
    assert len(load_dataset_any(tmp_path / "data", split="test")) == 8


def test_a_single_parquet_file_is_whichever_split_is_asked(tmp_path):
    write_attributed_parquet(tmp_path / "data", n=8, split="test")
    (file,) = (tmp_path / "data").rglob("*.parquet")
    assert len(load_dataset_any(file, split="test")) == 8  # the audit's default split
    assert len(load_dataset_any(file)) == 8
