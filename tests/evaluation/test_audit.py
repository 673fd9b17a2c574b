"""`trustvl audit`: end to end on the tiny CLIP and a local Parquet dataset; cache; bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trustvl.cli import main
from trustvl.errors import TrustVLInputError
from trustvl.evaluation.audit import AuditResult, audit


def _run(tiny_clip_dir, data_dir, out, cache, **kw):
    kw.setdefault("progress", False)
    return audit(str(tiny_clip_dir), str(data_dir), str(out), cache_dir=str(cache), **kw)


def test_audit_writes_report_and_matches_library(tiny_clip_dir, tiny_parquet_dir, tmp_path):
    from datasets import load_dataset

    from trustvl.metrics import max_skew, ndkl, rank_labels, uniform_target
    from trustvl.modeling.embedding import embed_images, embed_texts, load_clip

    out = tmp_path / "run"
    res = _run(
        tiny_clip_dir,
        tiny_parquet_dir,
        out,
        tmp_path / "cache",
        ks=[5, 10],
        attributes=["skin_tone", "gender"],
        label_column="occupation",
    )
    for name in [
        "metrics.json",
        "report.md",
        "report.html",
        "plots/skew_skin_tone.png",
        "plots/shares_gender.png",
    ]:
        assert (out / name).is_file(), name
    on_disk = AuditResult.from_dict(json.loads((out / "metrics.json").read_text()))
    assert on_disk == res  # the typed result round-trips through metrics.json
    ev = res.evaluation
    assert ev.prompts == ["a photo of a doctor", "a photo of a chef"]
    assert 0.0 <= ev.zero_shot_top1 <= 1.0
    assert set(ev.worst_group_accuracy) == {"skin_tone", "gender"}

    # recompute independently from the model
    ds = load_dataset(str(tiny_parquet_dir), split="test")
    model, proc = load_clip(str(tiny_clip_dir), device="cpu")
    scores = embed_texts(model, proc, ev.prompts) @ embed_images(model, proc, ds["image"], progress=False).T
    ranked = rank_labels(scores, torch.tensor(ds["skin_tone"]))
    expected = max_skew(ranked, uniform_target(3), 10)
    got = torch.tensor(ev.fairness["skin_tone"].at_k[10].max_skew_per_query, dtype=expected.dtype)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        torch.tensor(ev.fairness["skin_tone"].ndkl_per_query, dtype=torch.float64),
        ndkl(ranked, uniform_target(3)).double(),
        rtol=1e-5,
        atol=1e-6,
    )
    html = (out / "report.html").read_text()
    assert "skin_tone" in html and "plots/skew_skin_tone.png" in html


def test_second_audit_uses_embedding_cache(tiny_clip_dir, tiny_parquet_dir, tmp_path):
    cache = tmp_path / "cache"
    first = _run(tiny_clip_dir, tiny_parquet_dir, tmp_path / "a", cache, ks=[5])
    second = _run(tiny_clip_dir, tiny_parquet_dir, tmp_path / "b", cache, ks=[5])
    assert first.embedding_cache_hit is False and second.embedding_cache_hit is True
    assert len(list(cache.glob("*/shard-*.safetensors"))) == 1  # 40 images: one shard of 4096
    assert first.evaluation == second.evaluation
    third = _run(tiny_clip_dir, tiny_parquet_dir, tmp_path / "c", cache, ks=[5], max_images=20)
    assert third.embedding_cache_hit is False  # another subset is another key


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"attributes": ["religion"]}, "religion"),
        ({"ks": [0]}, "k=0"),
        ({"ks": [41]}, "41 exceeds the gallery size 40"),
        ({"target": "equal"}, "equal"),
        ({"image_column": "img"}, "img"),
        ({"label_column": "job"}, "job"),
        ({"split": "validation"}, "validation"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(
    tiny_clip_dir, tiny_parquet_dir, tmp_path, kwargs, match
):
    out = tmp_path / "run"
    with pytest.raises(TrustVLInputError, match=match):
        _run(tiny_clip_dir, tiny_parquet_dir, out, tmp_path / "cache", **kwargs)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run")]


def test_empty_dataset_is_an_error(tiny_clip_dir, tmp_path):
    from conftest import write_attributed_parquet

    data = write_attributed_parquet(tmp_path / "empty", n=0)
    with pytest.raises(TrustVLInputError, match="empty"):
        _run(tiny_clip_dir, data, tmp_path / "run", tmp_path / "cache")


def test_missing_model_offline_names_hf_hub_offline(tiny_parquet_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TrustVLInputError, match="HF_HUB_OFFLINE") as info:
        audit(
            "no-such-org/no-such-clip",
            str(tiny_parquet_dir),
            str(tmp_path / "run"),
            progress=False,
            cache_dir=str(tmp_path / "cache"),
        )
    assert "no-such-org/no-such-clip" in str(info.value)
    assert not (tmp_path / "run").exists()


def test_non_empty_out_dir_needs_overwrite(tiny_clip_dir, tiny_parquet_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(TrustVLInputError, match="not empty"):
        _run(tiny_clip_dir, tiny_parquet_dir, out, tmp_path / "cache", ks=[5])
    assert (out / "keep.txt").exists()
    _run(tiny_clip_dir, tiny_parquet_dir, out, tmp_path / "cache", ks=[5], overwrite=True)
    assert (out / "metrics.json").exists() and not (out / "keep.txt").exists()


def test_cli_bad_input_prints_one_line_and_exits_2(tiny_clip_dir, tiny_parquet_dir, tmp_path, capsys):
    rc = main(
        [
            "audit",
            "--model",
            str(tiny_clip_dir),
            "--dataset",
            str(tiny_parquet_dir),
            "--out",
            str(tmp_path / "run"),
            "--k",
            "1000",
            "--quiet",
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("trustvl: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_cli_audit_runs(tiny_clip_dir, tiny_parquet_dir, tmp_path, capsys):
    rc = main(
        [
            "audit",
            "--model",
            str(tiny_clip_dir),
            "--dataset",
            str(tiny_parquet_dir),
            "--out",
            str(tmp_path / "run"),
            "--k",
            "5",
            "--quiet",
            "--cache-dir",
            str(tmp_path / "c"),
            "--prompts-file",
            str(_prompts(tmp_path)),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "report:" in out and "skin tone: MaxSkew@5 " in out and "(floor " in out
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["evaluation"]["prompts"] == ["a nurse", "a pilot"]


def _prompts(tmp_path):
    p = tmp_path / "prompts.txt"
    p.write_text("# comment\na nurse\n\na pilot\n")
    return p


def test_load_dataset_any_reads_save_to_disk_folders(tmp_path):
    from datasets import Dataset, DatasetDict

    from trustvl.hub.loading import load_dataset_any

    ds = Dataset.from_dict({"x": [1, 2, 3]})
    ds.save_to_disk(str(tmp_path / "one"))
    DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "dict"))
    assert load_dataset_any(tmp_path / "one")["x"][:] == [1, 2, 3]
    assert len(load_dataset_any(tmp_path / "dict", split="test")) == 3
    with pytest.raises(TrustVLInputError, match="HF_HUB_OFFLINE"):
        load_dataset_any("no-such-org/no-such-dataset")


class _CountingEmbedder:
    """Counts the images the audit's engine embeds (wraps ImageEmbedder.batches)."""

    def __init__(self, monkeypatch):
        from trustvl.modeling.embedding import ImageEmbedder

        self.images = 0
        original = ImageEmbedder.batches

        def batches(engine, rows):
            for emb in original(engine, rows):
                self.images += len(emb)
                yield emb

        monkeypatch.setattr(ImageEmbedder, "batches", batches)


_AUDIT = (
    "import sys; from trustvl.evaluation.audit import audit; audit(sys.argv[1], sys.argv[2], sys.argv[3],"
    " cache_dir=sys.argv[4], ks=[5], batch_size=4, shard_size=8, progress=False)"
)


def test_killed_audit_resumes_embedding_only_the_missing_shards(
    tiny_clip_dir, tiny_parquet_dir, tmp_path, monkeypatch
):
    """40 images in 5 shards of 8: a run killed right after its 2nd shard's rename leaves 2 shards; the
    resumed run embeds the other 24 images only and equals an uninterrupted run; then a 3rd run embeds none."""
    cache = tmp_path / "cache"
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env["TRUSTVL_FAULT"] = "atomic-write:after-rename:2"
    args = [str(tiny_clip_dir), str(tiny_parquet_dir), str(tmp_path / "killed"), str(cache)]
    rc = subprocess.run([sys.executable, "-c", _AUDIT, *args], env=env, timeout=300).returncode
    assert rc == 137
    assert len(list(cache.glob("*/shard-*.safetensors"))) == 2
    assert not list(cache.glob("*/.*.tmp"))  # killed after the rename: nothing half-written
    counter = _CountingEmbedder(monkeypatch)
    resumed = _run(tiny_clip_dir, tiny_parquet_dir, tmp_path / "a", cache, ks=[5], batch_size=4, shard_size=8)
    assert counter.images == 24 and resumed.embedding_cache_hit is False
    assert len(list(cache.glob("*/shard-*.safetensors"))) == 5
    straight = _run(
        tiny_clip_dir, tiny_parquet_dir, tmp_path / "b", tmp_path / "c2", ks=[5], batch_size=4, shard_size=8
    )
    assert torch.equal(resumed.image_embeds, straight.image_embeds)
    assert resumed.evaluation == straight.evaluation
    counter.images = 0
    again = _run(tiny_clip_dir, tiny_parquet_dir, tmp_path / "d", cache, ks=[5], batch_size=4, shard_size=8)
    assert counter.images == 0 and again.embedding_cache_hit is True


def test_killed_before_rename_leaves_no_shard_and_resumes(
    tiny_clip_dir, tiny_parquet_dir, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env["TRUSTVL_FAULT"] = "atomic-write:before-rename:1"
    args = [str(tiny_clip_dir), str(tiny_parquet_dir), str(tmp_path / "killed"), str(cache)]
    assert subprocess.run([sys.executable, "-c", _AUDIT, *args], env=env, timeout=300).returncode == 137
    assert not list(cache.glob("*/shard-*.safetensors")) and list(cache.glob("*/.*.tmp"))
    counter = _CountingEmbedder(monkeypatch)
    _run(tiny_clip_dir, tiny_parquet_dir, tmp_path / "a", cache, ks=[5], batch_size=4, shard_size=8)
    assert counter.images == 40 and len(list(cache.glob("*/shard-*.safetensors"))) == 5


def test_audit_with_worker_processes_equals_in_process(tiny_clip_dir, tiny_parquet_dir, tmp_path):
    one = _run(tiny_clip_dir, tiny_parquet_dir, tmp_path / "a", tmp_path / "c1", ks=[5], use_cache=False)
    two = _run(tiny_clip_dir, tiny_parquet_dir, tmp_path / "b", tmp_path / "c2", ks=[5], num_workers=2)
    assert torch.equal(one.image_embeds, two.image_embeds) and one.evaluation == two.evaluation
