"""Peak host memory (RSS) of ``trustvl audit`` over a generated Parquet gallery of N images (issue 28 item 2).

For each N it writes (once, kept in ``--data-dir``) a Parquet gallery in files of 10,000 rows: a PNG image of
``--image-size`` px per row (smooth random content, every image different) and three ClassLabel columns
(skin_tone, gender, occupation). Then, each in a fresh child process so the peaks do not mix, it audits the
gallery with a tiny random CLIP (``trustvl.testing.tiny``, fast on CPU: the point is memory, not speed):

* ``streaming``: ``audit(..., streaming=True)``, the gallery read as a ``datasets`` stream;
* ``loaded``: the default path (``load_dataset`` converts the Parquet to its Arrow cache, memory-mapped).

Each child reports, from ``resource.getrusage`` (``ru_maxrss``, the process's peak RSS so far):
``rss_start_mb`` after importing and loading the model, ``rss_embed_mb`` when the scoring starts (peak of
reading the columns and embedding every image) and ``rss_peak_mb`` at the end (the scoring included: the
ranking's ``[n_prompts, N]`` index, the bootstrap's ``[n_resamples, N]`` resample counts, ...), and the
wall-clock seconds. The embedding cache goes to a fresh folder per run (every image is embedded).

CPU run of docs/scale.md:

    python benchmarks/bench_streaming_rss.py --n-images 10000 50000 100000 --out rss.json

A big host (the issue's goal: <= 8 GB peak RSS for a 1,000,000-image gallery):

    python benchmarks/bench_streaming_rss.py --n-images 1000000 --modes streaming --num-workers 14
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS_PER_FILE = 10_000
SKIN, GENDER, JOBS = ["light", "medium", "dark"], ["female", "male"], ["doctor", "chef", "nurse", "pilot"]


def rss_mb() -> float:
    """This process's peak RSS so far, MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_gallery(n: int, size: int, folder: Path) -> Path:
    """A Parquet gallery of ``n`` rows in ``folder/gallery-<n>-<size>/data/test-*.parquet`` (kept)."""
    import numpy as np
    from datasets import ClassLabel, Dataset, Features, Image
    from PIL import Image as PILImage

    root = folder / f"gallery-{n}-{size}"
    done = root / "COMPLETE"
    if done.is_file():
        return root
    features = Features(
        {
            "image": Image(),
            "skin_tone": ClassLabel(names=SKIN),
            "gender": ClassLabel(names=GENDER),
            "occupation": ClassLabel(names=JOBS),
        }
    )
    (root / "data").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n_files = -(-n // ROWS_PER_FILE)
    for f in range(n_files):
        rows = range(f * ROWS_PER_FILE, min((f + 1) * ROWS_PER_FILE, n))
        images = []
        for _ in rows:
            small = rng.integers(0, 256, (max(size // 8, 2), max(size // 8, 2), 3), dtype=np.uint8)
            buf = io.BytesIO()
            PILImage.fromarray(small).resize((size, size), PILImage.Resampling.BILINEAR).save(
                buf, format="PNG"
            )
            images.append({"bytes": buf.getvalue(), "path": None})
        ds = Dataset.from_dict(
            {
                "image": images,
                "skin_tone": [int(v) for v in rng.integers(0, len(SKIN), len(rows))],
                "gender": [int(v) for v in rng.integers(0, len(GENDER), len(rows))],
                "occupation": [int(v) for v in rng.integers(0, len(JOBS), len(rows))],
            },
            features=features,
        )
        ds.to_parquet(str(root / "data" / f"test-{f:05d}-of-{n_files:05d}.parquet"))
    done.write_text("ok\n")
    return root


def child(args: argparse.Namespace) -> None:
    """One audit in this process; prints one JSON line."""
    import trustvl.evaluation.audit as audit_module
    from trustvl.testing.tiny import build_tiny_clip

    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="trustvl-rss-"))
    model = build_tiny_clip(work / "clip", image_size=args.image_size, patch_size=16)
    marks: dict[str, float] = {"rss_start_mb": rss_mb()}
    evaluate = audit_module.evaluate_model

    def marked(*a, **kw):  # the scoring starts: the peak so far is the columns' and the embedding's
        marks["rss_embed_mb"] = rss_mb()
        marks["seconds_embed"] = time.perf_counter() - t0
        return evaluate(*a, **kw)

    audit_module.evaluate_model = marked
    os.environ["HF_DATASETS_CACHE"] = str(work / "hf-datasets")  # the loaded path converts into a fresh cache
    result = audit_module.audit(
        str(model),
        args.gallery,
        str(work / "out"),
        split="test",
        attributes=["skin_tone", "gender"],  # ranked by trustvl's 16 default occupation prompts
        streaming=args.child == "streaming",
        cache_dir=str(work / "embeddings"),
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        n_resamples=args.n_resamples,
        progress=False,
    )
    row = {
        "mode": args.child,
        "n_images": result.evaluation.n_images,
        "image_size": args.image_size,
        "n_prompts": len(result.evaluation.prompts),
        "n_resamples": args.n_resamples,
        "num_workers": args.num_workers,
        **{k: round(v, 1) for k, v in marks.items()},
        "rss_peak_mb": round(rss_mb(), 1),
        # DataLoader worker processes (the loaded path with --num-workers > 0): the largest one's peak
        "rss_worker_peak_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(row), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-images", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    p.add_argument("--modes", nargs="+", default=["streaming", "loaded"], choices=["streaming", "loaded"])
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-workers", type=int, default=2, help="decoding threads (streaming) / processes")
    p.add_argument("--n-resamples", type=int, default=200, help="the audit's bootstrap resamples")
    p.add_argument("--data-dir", default="/tmp/trustvl-bench-rss")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--gallery", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    rows = []
    for n in args.n_images:
        gallery = write_gallery(n, args.image_size, Path(args.data_dir))
        for mode in args.modes:
            cmd = [sys.executable, __file__, "--child", mode, "--gallery", str(gallery)]
            cmd += ["--image-size", str(args.image_size), "--batch-size", str(args.batch_size)]
            cmd += ["--num-workers", str(args.num_workers), "--n-resamples", str(args.n_resamples)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                sys.exit(f"{mode} N={n} failed:\n{out.stderr[-3000:]}")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print(
        "\n| mode | images | RSS after load (MB) | peak RSS embedding (MB) | peak RSS audit (MB) | seconds |"
        "\n|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['mode']} | {r['n_images']:,} | {r['rss_start_mb']:,.0f} | {r['rss_embed_mb']:,.0f} |"
            f" {r['rss_peak_mb']:,.0f} | {r['seconds']:,.0f} |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
