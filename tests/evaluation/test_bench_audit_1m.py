"""benchmarks/bench_audit_1m.py: a run stopped by --time-limit resumes over its --work-dir, embeds only the
missing shards, and scores exactly what one uninterrupted run scores."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_audit_1m.py"
ARGS = [
    "--n-images", "700", "--shape", "tiny", "--resolution", "32", "--source-size", "32", "--pool", "40",
    "--batch-size", "50", "--num-workers", "0", "--autocast", "none", "--device", "cpu", "--n-split", "100",
    "--shard-size", "100", "--n-resamples", "10", "--ks", "10", "100",
]  # fmt: skip


def run(tmp_path: Path, name: str, *extra: str) -> dict:
    out = tmp_path / f"{name}.json"
    subprocess.run([sys.executable, str(BENCH), *ARGS, *extra, "--out", str(out)], check=True, timeout=300)
    return json.loads(out.read_text())


def test_stopped_run_resumes_and_scores_like_one_run(tmp_path):
    work = tmp_path / "work"
    first = run(tmp_path, "first", "--work-dir", str(work), "--time-limit", "0")
    assert first["complete"] is False
    assert first["shards_done"] == 1 and first["n_shards"] == 7  # stops after the first shard it writes

    second = run(tmp_path, "second", "--work-dir", str(work))
    assert second["complete"] is True
    assert [r["shards_written"] for r in second["embedding_runs"]] == [1, 6]  # only the missing shards
    assert sum(r["images"] for r in second["embedding_runs"]) == 700
    assert second["seconds_embedding"] == sum(r["seconds_embedding"] for r in second["embedding_runs"])

    again = run(tmp_path, "again", "--work-dir", str(work))
    assert again["embedding_runs"][-1]["shards_written"] == 0  # everything cached: nothing embedded

    whole = run(tmp_path, "whole")
    assert whole["embedding_runs"][0]["shards_written"] == 7
    assert second["ndkl_skin_tone"] == whole["ndkl_skin_tone"] == again["ndkl_skin_tone"]
