"""The shared resumable Parquet build (data_builders/sharded_build.py) and template-rendered dataset cards."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from trustvl.data_builders.sharded_build import (
    BUILD_RECORD,
    Manifest,
    ShardedBuild,
    build_fingerprint,
    png_bytes,
    png_cell,
    read_build_record,
)
from trustvl.errors import TrustVLInputError
from trustvl.hub.dataset_cards import CARD_FILE, DatasetCardMetadata, SplitMetadata, dataset_card


def _features():
    from datasets import Features, Value
    from datasets import Image as ImageFeature

    return Features({"image": ImageFeature(), "n": Value("int64")})


def _build(out, seed=0):
    settings = {"config": {"seed": seed}, "stages": {"maker": "test"}}
    return ShardedBuild(
        out,
        builder="tests.maker",
        fingerprint=build_fingerprint(settings),
        settings=settings,
        kind="test build",
    )


def _columns(k: int):
    rng = np.random.default_rng(k)
    images = [png_cell(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)) for _ in range(2)]
    return {"image": images, "n": [k, k + 1]}


def _card(n_rows: int) -> DatasetCardMetadata:
    return DatasetCardMetadata("tiny", _features(), [SplitMetadata("train", n_rows)], license="apache-2.0")


_DIGIT_VALUES = {
    "spurious_class_name": "seven",
    "cramers_v_target": 0.9,
    "splits": {"train": {"n": 4, "rectangle_rate": 0.25, "cramers_v": 0.5}},
    "params": "{}",
}


def test_png_bytes_is_pillows_png_and_reads_back():
    arr = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    assert png_bytes(arr) == png_bytes(Image.fromarray(arr)) == buf.getvalue()
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(arr)))), arr)
    fast = png_bytes(arr, compress_level=0)
    assert fast != png_bytes(arr) and np.array_equal(np.asarray(Image.open(io.BytesIO(fast))), arr)
    assert png_cell(arr) == {"bytes": png_bytes(arr), "path": None}


def test_build_resumes_refuses_other_builds_and_writes_the_card_last(tmp_path):
    out = tmp_path / "ds"
    build = _build(out)
    build.prepare(overwrite=False)
    assert build.created and (out / "data").is_dir()
    build.write_record("in progress")
    paths = [build.shard_path("train", i, 2) for i in range(2)]
    assert not build.shard_is_done(paths[0])
    build.write_shard(paths[0], _columns(0), _features(), {"n_rows": 2})
    assert build.shard_meta(paths[0]) == {"n_rows": 2, "fingerprint": build.fingerprint}
    (out / "data" / ".train-00001-of-00002.parquet.tmp").write_bytes(b"half a shard")

    again = _build(out)  # a rerun with the same settings: resumes, keeps the complete shard
    again.prepare(overwrite=False)
    assert not again.created and again.shard_is_done(paths[0]) and not again.shard_is_done(paths[1])
    assert not list((out / "data").glob(".*.tmp"))  # the killed run's temporary file is gone
    assert read_build_record(out)["status"] == "in progress" and not (out / CARD_FILE).exists()
    again.write_shard(paths[1], _columns(1), _features(), {"n_rows": 2})
    again.finish(_card(4), "dataset_spurious_digits", _DIGIT_VALUES, {"rows": 4})
    record = read_build_record(out)
    assert record == {
        "builder": "tests.maker",
        "status": "complete",
        "fingerprint": build.fingerprint,
        "config": {"seed": 0},
        "stages": {"maker": "test"},
        "summary": {"rows": 4},
    }
    assert "class **seven**" in (out / CARD_FILE).read_text(encoding="utf-8")

    from datasets import load_dataset

    ds = load_dataset(str(out), split="train")
    assert ds["n"] == [0, 1, 1, 2]

    other = _build(out, seed=1)
    with pytest.raises(TrustVLInputError, match="another config"):
        other.prepare(overwrite=False)
    with pytest.raises(TrustVLInputError, match="not written by this build"):
        other.shard_is_done(paths[0])
    other.prepare(overwrite=True)  # replaces the folder
    assert other.created and not paths[0].exists() and not (out / BUILD_RECORD).exists()


def test_build_refuses_a_foreign_folder_and_removes_an_empty_build(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(TrustVLInputError, match="not empty and holds no test build"):
        _build(foreign).prepare(overwrite=False)
    assert (foreign / "notes.txt").read_text(encoding="utf-8") == "mine"
    with pytest.raises(TrustVLInputError, match="not a folder"):
        _build(foreign / "notes.txt").prepare(overwrite=False)

    out = tmp_path / "empty"
    build = _build(out)
    build.prepare(overwrite=False)
    build.write_record("in progress")
    path = build.shard_path("train", 0, 1)
    build.write_shard(path, {"image": [], "n": []}, _features(), {"n_rows": 0})
    build.remove([path])
    assert not out.exists()  # made by this build, so removed with it


def test_dataset_card_renders_a_template_or_refuses(tmp_path):
    card = str(dataset_card(_card(4), template="dataset_spurious_digits", **_DIGIT_VALUES))
    assert card.startswith("---\n") and card.endswith("Build parameters: `{}`\n")
    assert "| train | 4 | 0.2500 | 0.5000 |" in card
    assert "license: apache-2.0" in card
    with pytest.raises(TrustVLInputError, match="no file"):
        dataset_card(_card(4), template="dataset_nope")
    with pytest.raises(TypeError):
        dataset_card(_card(4))  # a template is required: no hand-written card bodies


def _manifest_build(out, seed=0):
    return ShardedBuild(
        out, builder="tests.maker", kind="test dataset", manifest=Manifest("m.json", {"seed": seed})
    )


def test_manifest_build_keeps_its_record_as_text_and_recognises_shards_by_rows(tmp_path):
    out = tmp_path / "ds"
    build = _manifest_build(out)
    build.prepare(overwrite=False)
    build.write_record("in progress")
    assert (out / "m.json").read_text() == '{\n  "seed": 0\n}\n'
    assert not (out / BUILD_RECORD).exists()
    shard = build.shard_path("train", 0, 1)
    assert not build.shard_is_done(shard, 2)
    assert build.write_shard(shard, _columns(0), _features()) == 2
    assert build.shard_meta(shard) is None  # manifest shards carry no metadata
    assert build.shard_is_done(shard, 2) and not build.shard_is_done(shard, 3)
    with pytest.raises(TrustVLInputError, match="no metadata"):
        build.write_shard(shard, _columns(0), _features(), {"n_rows": 2})
    with pytest.raises(TrustVLInputError, match="n_rows"):
        build.shard_is_done(shard)
    build.finish(_card(2), "dataset_spurious_digits", _DIGIT_VALUES)
    assert (out / CARD_FILE).is_file() and not (out / BUILD_RECORD).exists()

    # the same manifest resumes; another is refused, and overwrite clears only what the build owns
    _manifest_build(out).prepare(overwrite=False)
    (out / "notes.txt").write_text("mine")
    other = _manifest_build(out, seed=1)
    with pytest.raises(TrustVLInputError, match="m.json differs"):
        other.prepare(overwrite=False)
    other.prepare(overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "m.json").exists() and not (out / CARD_FILE).exists() and not shard.exists()


def test_manifest_build_refuses_shards_without_a_manifest(tmp_path):
    out = tmp_path / "ds"
    build = _manifest_build(out)
    build.prepare(overwrite=False)
    build.write_shard(build.shard_path("train", 0, 1), _columns(0), _features())
    with pytest.raises(TrustVLInputError, match="no m.json"):
        _manifest_build(out).prepare(overwrite=False)
    _manifest_build(out).prepare(overwrite=True)
    assert not any((out / "data").glob("*.parquet"))
    with pytest.raises(TrustVLInputError, match="no fingerprint or settings"):
        ShardedBuild(out, builder="b", kind="k", fingerprint="x", manifest=Manifest("m.json", {}))


def test_staged_build_appears_complete_or_not_at_all(tmp_path):
    out = tmp_path / "ds"
    with pytest.raises(ValueError, match="boom"):
        with ShardedBuild.staged(out, builder="tests.maker", kind="test build", overwrite=False) as build:
            build.write_shard(build.shard_path("train", 0, 1), _columns(0), _features())
            raise ValueError("boom")
    assert not out.exists() and not list(tmp_path.iterdir())  # no staging folder left either
    with pytest.raises(RuntimeError, match="before finish"):
        with ShardedBuild.staged(out, builder="tests.maker", kind="test build", overwrite=False) as build:
            build.write_shard(build.shard_path("train", 0, 1), _columns(0), _features())
    assert not out.exists() and not list(tmp_path.iterdir())

    with ShardedBuild.staged(out, builder="tests.maker", kind="test build", overwrite=False) as build:
        with pytest.raises(TrustVLInputError, match="staged"):
            build.prepare(overwrite=False)
        build.write_shard(build.shard_path("train", 0, 1), _columns(0), _features(), hub_layout=True)
        build.finish(_card(2), "dataset_spurious_digits", _DIGIT_VALUES, files={"info.json": {"n": 2}})
    assert sorted(p.name for p in out.iterdir()) == [CARD_FILE, "data", "info.json"]  # no build record
    assert out.stat().st_mode & 0o777 == 0o755
    assert read_build_record(out) is None
    with pytest.raises(TrustVLInputError, match="not empty"):
        with ShardedBuild.staged(out, builder="tests.maker", kind="test build", overwrite=False):
            pass
