"""Data-parallel `trustvl audit`: 2 gloo processes on CPU split the embedding shards and give the same
metrics as one process; only rank 0 writes the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from safetensors import safe_open

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.audit import audit
from trustvl.utils.distributed import ProcessGroup


def _metrics_without_timings(path):
    data = json.loads(path.read_text())
    for key in ("seconds", "seconds_embedding"):
        data.pop(key)
    return data


@pytest.mark.slow
def test_two_process_audit_matches_single_process(tiny_clip_dir, tiny_parquet_dir, tmp_path):
    options = dict(ks=[5, 10], attributes=["skin_tone", "gender"], label_column="occupation", shard_size=8)
    audit(
        str(tiny_clip_dir),
        str(tiny_parquet_dir),
        str(tmp_path / "single"),
        cache_dir=str(tmp_path / "cache-single"),
        progress=False,
        **options,
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "trustvl.cli", "audit", "--model", str(tiny_clip_dir), "--dataset", str(tiny_parquet_dir)]
    cmd += ["--out", str(tmp_path / "dp"), "--cache_dir", str(tmp_path / "cache-dp"), "--no_progress"]
    cmd += ["--ks", "5", "10", "--attributes", "skin_tone", "gender", "--label_column", "occupation"]
    cmd += ["--shard_size", "8"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [ln for ln in proc.stdout.splitlines() if ln.startswith("report: ")] == [
        f"report: {tmp_path / 'dp' / 'report.html'}"
    ]  # rank 0 alone reports
    assert proc.stdout.count("zero-shot top-1:") == 1

    single = _metrics_without_timings(tmp_path / "single" / "metrics.json")
    parallel = _metrics_without_timings(tmp_path / "dp" / "metrics.json")
    assert parallel == single
    assert parallel["embedding_cache_hit"] is False

    # 40 images in shards of 8: rank 0 embedded shards 0, 2, 4 and rank 1 shards 1, 3, each written once
    shards = sorted((tmp_path / "cache-dp").glob("*/shard-*.safetensors"))
    assert len(shards) == 5
    writers = []
    for path in shards:
        with safe_open(str(path), "pt") as f:
            writers.append(f.metadata()["process"])
    assert writers == ["0 of 2", "1 of 2", "0 of 2", "1 of 2", "0 of 2"]

    # the shards the two processes wrote are the single process's cache entry: a later audit embeds nothing
    again = audit(
        str(tiny_clip_dir),
        str(tiny_parquet_dir),
        str(tmp_path / "again"),
        cache_dir=str(tmp_path / "cache-dp"),
        progress=False,
        **options,
    )
    assert again.embedding_cache_hit is True


class _NoWaitGroup(ProcessGroup):
    """Rank 0 of a 2-process group, in this process alone (nothing to wait for)."""

    def barrier(self) -> None:
        pass


def test_no_cache_with_several_processes_is_refused(tiny_clip_dir, tiny_parquet_dir, tmp_path, monkeypatch):
    import trustvl.evaluation.audit as audit_module

    monkeypatch.setattr(audit_module, "process_group", lambda cpu=None: _NoWaitGroup(rank=0, world_size=2))
    with pytest.raises(TrustVLInputError, match="use_cache=False with 2 processes"):
        audit(
            str(tiny_clip_dir), str(tiny_parquet_dir), str(tmp_path / "out"), use_cache=False, progress=False
        )
    assert not (tmp_path / "out").exists()
