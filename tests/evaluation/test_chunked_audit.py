"""An audit forced onto the chunked ranking path (tiny gallery chunks) writes the same metrics as today's."""

from __future__ import annotations

import json

from trustvl.evaluation import evaluator
from trustvl.evaluation.audit import audit


def test_audit_with_tiny_gallery_chunks_gives_identical_metrics(
    tiny_clip_dir, tiny_parquet_dir, tmp_path, monkeypatch
):
    def run(name):
        audit(
            str(tiny_clip_dir),
            str(tiny_parquet_dir),
            str(tmp_path / name),
            ks=[5],
            progress=False,
            use_cache=False,  # both runs embed: only the ranking path differs
        )
        return json.loads((tmp_path / name / "metrics.json").read_text())

    full = run("full")
    calls = []
    chunked = evaluator.chunked_rank_indices
    monkeypatch.setattr(evaluator, "CHUNKED_RANKING_MIN_CELLS", 0)
    monkeypatch.setattr(evaluator, "GALLERY_CHUNK_ROWS", 3)  # the gallery's 40 images in 14 chunks
    monkeypatch.setattr(
        evaluator, "chunked_rank_indices", lambda *a, **kw: calls.append(1) or chunked(*a, **kw)
    )
    small = run("chunked")
    assert calls, "the chunked path did not run"
    for result in (full, small):  # the run's settings and wall-clock timings, not metrics
        for key in [key for key in result if key == "config" or key.startswith("seconds")]:
            result.pop(key)
    assert full["evaluation"] == small["evaluation"]
    assert json.dumps(small, sort_keys=True).replace("chunked", "full") == json.dumps(full, sort_keys=True)
