"""Benchmark of the SynthWorld renderer (SPEC §6): images per second on one CPU core.

Times ``SynthWorldRenderer.scene(split, i)`` (sampling the scene spec + drawing + colouring + masks)
for ``--n`` consecutive scenes in this single process, at each ``--resolution``. Goal: >= 1,000
images/s at 64x64 on one core. ``--png`` also times PNG encoding of image + mask (what the dataset
writer adds per row). Prints one JSON object.

    python benchmarks/bench_synthworld_render.py
    python benchmarks/bench_synthworld_render.py --resolution 32 64 128 224 --n 2000 --png
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time

from PIL import Image

from trustvl.data_builders.synthworld import (
    SpuriousConfig,
    SynthWorldConfig,
    SynthWorldRenderer,
    UnsafeConfig,
)


def _bench(res: int, n: int, split: str, rich: bool, png: bool, seed: int) -> dict:
    cfg = SynthWorldConfig(resolution=res)
    if rich:
        cfg = SynthWorldConfig(resolution=res, spurious=SpuriousConfig(), unsafe=UnsafeConfig())
    r = SynthWorldRenderer(cfg, seed=seed)
    for i in range(20):  # warm up (noise texture, imports)
        r.scene(split, i)
    t0 = time.perf_counter()
    scenes = [r.scene(split, i) for i in range(n)]
    dt = time.perf_counter() - t0
    out = {
        "resolution": res,
        "n": n,
        "seconds": round(dt, 4),
        "images_per_s": round(n / dt, 1),
        "us_per_image": round(dt / n * 1e6, 1),
    }
    if png:
        t0 = time.perf_counter()
        for sc in scenes:
            for arr in (sc.image, sc.person_mask):
                Image.fromarray(arr).save(io.BytesIO(), format="PNG", compress_level=6)
        dp = time.perf_counter() - t0
        out["with_png_images_per_s"] = round(n / (dt + dp), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--resolution", type=int, nargs="+", default=[64])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--split", default="train", choices=["train", "test"])
    ap.add_argument(
        "--rich", action="store_true", help="with the spurious square and unsafe elements enabled"
    )
    ap.add_argument("--png", action="store_true", help="also time PNG encoding of image + mask")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    results = [_bench(res, args.n, args.split, args.rich, args.png, args.seed) for res in args.resolution]
    report = {
        "benchmark": "synthworld_render",
        "split": args.split,
        "rich": args.rich,
        "single_process": True,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "results": results,
        "goal_images_per_s_at_64": 1000,
    }
    r64 = [r for r in results if r["resolution"] == 64]
    if r64:
        report["meets_goal"] = r64[0]["images_per_s"] >= 1000
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
