"""benchmarks/bench_audit_scoring_rss.py: the scoring step alone over a sharded cache of random embeddings,
its peak RSS measured apart from the shard writing (done in a child process)."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_audit_scoring_rss.py"


def run(tmp_path: Path, name: str, work: Path) -> dict:
    out = tmp_path / f"{name}.json"
    cmd = [sys.executable, str(BENCH), "--n-images", "3000", "--dim", "16", "--shard-size", "1000"]
    cmd += ["--n-resamples", "5", "--ks", "10", "100", "--work-dir", str(work), "--out", str(out)]
    subprocess.run(cmd, check=True, timeout=300)
    return json.loads(out.read_text())


def test_scoring_rss_over_cached_shards(tmp_path):
    work = tmp_path / "work"
    first = run(tmp_path, "first", work)
    shards = sorted((work / "random-16").glob("shard-*.safetensors"))
    assert len(shards) == 3  # 3,000 rows in shards of 1,000
    assert first["n_images"] == 3000 and first["seconds_scoring"] > 0
    # the child process wrote the shards: this process's peak before scoring is only its imports
    assert 0 < first["peak_rss_mb_before_scoring"] <= first["peak_rss_mb"]
    mtimes = [p.stat().st_mtime_ns for p in shards]
    second = run(tmp_path, "second", work)
    assert [p.stat().st_mtime_ns for p in shards] == mtimes  # present shards are not rewritten
    assert second["ndkl_skin_tone"] == first["ndkl_skin_tone"]
