"""A 1,000,000-image audit on one GPU, end to end and split by stage (issue 28 item 7).

The audit's own path after the dataset is read: :class:`~trustvl.modeling.embedding.ImageEmbedder` (encoded
images decoded by ``--num-workers`` DataLoader workers, resized / normalised on the device, the forward under
autocast) writing the sharded embedding cache (:class:`~trustvl.utils.tensor_cache.ShardedTensorCache`),
then :func:`~trustvl.evaluation.evaluator.evaluate_embeddings` reading the shards back one at a time
(:class:`~trustvl.metrics.GalleryChunks`, ranked on the device): MaxSkew@k / MinSkew@k / NDKL with their
bootstrap intervals and sampling floors for two attributes, as ``trustvl audit`` reports them.

It needs torch, transformers, Pillow and safetensors only: no ``datasets`` (absent on the GPU machines), so
the gallery is built in memory: ``--pool`` distinct encoded images (JPEG by default, as LAION / DataComp
store them; ``--source-size`` px) repeated to ``--n-images`` rows. Every row is decoded and embedded; only
the image content repeats. The model is a random-weight CLIP image tower of ``--shape`` (``vit-l14``:
ViT-L/14 at 224 px, as in the issue); the 16 queries are random unit vectors standing in for the prompts'
text embeddings (embedding 16 prompts costs nothing at this scale); the attributes are random.

Reported (JSON + a table):

* standalone throughput of each stage on its own, images/s: ``decode`` (the workers decoding and collating,
  no model), ``preprocess`` (the device resize / normalise of decoded batches), ``forward`` (the image tower
  on device-resident pixels);
* ``embedding``: the engine end to end, cache writes included, images/s, its share of ``forward`` and the
  MFU against the card's peak (``--peak-tflops``; default: a square bf16 matmul measured here);
* ``scoring``: the ranking and the metrics with intervals, seconds;
* ``total``: embedding + scoring, seconds for ``--n-images`` (the 1M-image time);
* ``peak_rss_mb``: this process's peak host RSS (``resource.getrusage``; the DataLoader workers' own, each
  one's peak, as ``worker_peak_rss_mb``).

GPU (one card, 16 cores):

    python benchmarks/bench_audit_1m.py --n-images 1000000 --shape vit-l14 --batch-size 256 \\
        --num-workers 14 --autocast bf16 --out bench-audit-1m.json

CPU smoke test (numbers mean nothing for the goal):

    python benchmarks/bench_audit_1m.py --n-images 2000 --shape tiny --resolution 64 --source-size 64 \\
        --pool 256 --batch-size 64 --num-workers 1 --autocast none --device cpu --n-split 512
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embedding_engine import SHAPES, build_model, flops_per_image, peak_matmul_tflops, sync  # noqa: E402

N_QUERIES = 16  # trustvl's default occupation prompts
ATTRIBUTES = {"skin_tone": ["light", "medium", "dark"], "gender": ["female", "male"]}


class CycledPool(Sequence):
    """``n`` rows whose row ``i`` is ``pool[i % len(pool)]`` (encoded image bytes)."""

    def __init__(self, pool: list[bytes], n: int) -> None:
        self.pool, self.n = pool, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> bytes:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.pool[i % len(self.pool)]


def encoded_pool(n: int, size: int, fmt: str, seed: int = 0) -> list[bytes]:
    """``n`` distinct smooth random images of ``size`` px, encoded as ``fmt``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, (max(size // 8, 2), max(size // 8, 2), 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((size, size), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90) if fmt == "jpeg" else img.save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def time_decode(engine, rows) -> float:
    """images/s of the DataLoader workers decoding and collating ``rows`` (no model)."""
    n, t = 0, time.perf_counter()
    for batch in engine.loader(rows):
        n += len(batch)
    return n / (time.perf_counter() - t)


def time_preprocess(engine, rows, device: torch.device, reps: int) -> float:
    """images/s of the device resize / normalise on decoded batches already on the device."""
    batch = next(iter(engine.loader(rows)))
    batch = batch.to(device) if isinstance(batch, torch.Tensor) else batch
    engine.pixel_values(batch)
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        engine.pixel_values(batch)
    sync(device)
    return reps * len(batch) / (time.perf_counter() - t)


def time_forward(engine, n: int, resolution: int, device: torch.device) -> float:
    x = torch.randn(engine.batch_size, 3, resolution, resolution, device=device)
    for _ in range(3):
        engine.forward(x)
    sync(device)
    steps = max(1, n // engine.batch_size)
    t = time.perf_counter()
    for _ in range(steps):
        engine.forward(x)
    sync(device)
    return steps * engine.batch_size / (time.perf_counter() - t)


def embed_to_cache(engine, source, cache, shards: list[int], deadline: float | None = None) -> list[int]:
    """The audit's embedding loop: one DataLoader over the rows of ``shards`` (in order), each shard written
    once its rows are in. With ``deadline`` (a ``time.perf_counter()`` value) the loop stops after the first
    shard written past it, as a killed run would have, and the next run computes only the shards still
    missing. Returns the shards written."""
    from trustvl.modeling.image_loading import ImageRows

    indices = [i for shard in shards for i in cache.rows(shard)]
    written: list[int] = []
    pending, n_pending = [], 0
    batches = engine.batches(ImageRows(source, indices))
    for emb in batches:
        pending.append(emb)
        n_pending += len(emb)
        while len(written) < len(shards) and n_pending >= len(cache.rows(shards[len(written)])):
            shard = shards[len(written)]
            stacked, size = torch.cat(pending), len(cache.rows(shard))
            cache.put(shard, stacked[:size])
            written.append(shard)
            pending, n_pending = [stacked[size:]], n_pending - size
        if deadline is not None and written and time.perf_counter() >= deadline:
            batches.close()  # shuts the DataLoader's workers down
            break
    return written


def read_progress(path: Path) -> list[dict]:
    """The earlier runs' embedding records of a resumed ``--work-dir`` (empty for a fresh one)."""
    return json.loads(path.read_text())["runs"] if path.is_file() else []


def main() -> None:
    from trustvl.evaluation.dataset_columns import AttributeColumn
    from trustvl.evaluation.evaluator import evaluate_embeddings
    from trustvl.evaluation.results import UncertaintySettings
    from trustvl.metrics import GalleryChunks
    from trustvl.modeling.embedding import ImageEmbedder
    from trustvl.modeling.image_loading import ImageRows
    from trustvl.utils.tensor_cache import ShardedTensorCache

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-images", type=int, default=1_000_000)
    p.add_argument("--shape", default="vit-l14", choices=sorted(SHAPES))
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--source-size", type=int, default=None, help="gallery image size (default: --resolution)")
    p.add_argument("--format", default="jpeg", choices=["jpeg", "png"])
    p.add_argument("--pool", type=int, default=4096, help="distinct encoded images, repeated to --n-images")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-workers", type=int, default=min(14, os.cpu_count() or 1))
    p.add_argument("--autocast", default="bf16", choices=["bf16", "fp16", "none"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--peak-tflops", type=float, default=None, help="the card's peak (default: measured matmul)"
    )
    p.add_argument("--shard-size", type=int, default=65_536, help="images per embedding-cache shard")
    p.add_argument("--n-split", type=int, default=20_000, help="images timed for each standalone stage")
    p.add_argument("--n-resamples", type=int, default=200, help="bootstrap resamples (0: no intervals)")
    p.add_argument("--ks", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument(
        "--work-dir",
        default=None,
        help="embedding cache folder (default: a temporary one, removed at the end); a run over the same folder"
        " embeds only the shards still missing and adds the earlier runs' embedding time",
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="stop embedding after the first shard written past this many seconds (with --work-dir: the next"
        " run resumes; no scoring until every shard is in)",
    )
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args()

    device = torch.device(args.device)
    autocast = None if args.autocast == "none" else args.autocast
    peak = args.peak_tflops or peak_matmul_tflops(
        device, torch.float16 if autocast == "fp16" else torch.bfloat16
    )
    t = time.perf_counter()
    pool = encoded_pool(min(args.pool, args.n_images), args.source_size or args.resolution, args.format)
    seconds_pool = time.perf_counter() - t
    source = CycledPool(pool, args.n_images)
    split_rows = ImageRows(CycledPool(pool, min(args.n_split, args.n_images)))

    model, processor = build_model(args.shape, args.resolution, device, torch.float32)
    engine = ImageEmbedder(
        model, processor, batch_size=args.batch_size, num_workers=args.num_workers, autocast=autocast
    )
    flops = flops_per_image(engine, args.resolution, device)
    decode = time_decode(engine, split_rows)
    preprocess = time_preprocess(engine, split_rows, device, reps=max(1, args.n_split // args.batch_size))
    forward = time_forward(engine, args.n_split, args.resolution, device)

    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="trustvl-audit-1m-"))
    key = f"{args.shape}-{args.resolution}-{args.source_size or args.resolution}-{args.format}-{args.pool}"
    cache = ShardedTensorCache(work, key, args.n_images, args.shard_size)
    progress_path = work / f"{key}-progress.json"
    earlier = read_progress(progress_path)
    missing = cache.missing()
    engine.embed(ImageRows(CycledPool(pool, 2 * args.batch_size)), progress=False)  # workers and kernels warm
    sync(device)
    t = time.perf_counter()
    deadline = None if args.time_limit is None else t + args.time_limit
    written = embed_to_cache(engine, source, cache, missing, deadline) if missing else []
    sync(device)
    this_run = {
        "shards_written": len(written),
        "images": sum(len(cache.rows(i)) for i in written),
        "seconds_embedding": time.perf_counter() - t,
        "peak_rss_mb": peak_rss_mb(),
    }
    runs = [*earlier, this_run]
    save_json(progress_path, {"runs": runs})
    seconds_embedding = sum(r["seconds_embedding"] for r in runs)
    if len(written) < len(missing):
        done = cache.n_shards - len(missing) + len(written)
        print(
            f"stopped at --time-limit {args.time_limit} s: {done} of {cache.n_shards} shards in {work};"
            " run the same command again to embed the rest and score",
            flush=True,
        )
        if args.out:
            save_json(
                Path(args.out),
                {
                    "complete": False,
                    "shards_done": done,
                    "n_shards": cache.n_shards,
                    "runs": runs,
                    "work_dir": str(work),
                },
            )
        return

    gen = torch.Generator().manual_seed(0)
    dim = cache.get(0).shape[1]
    queries = torch.nn.functional.normalize(torch.randn(N_QUERIES, dim, generator=gen), dim=-1)
    attributes = [
        AttributeColumn(name, torch.randint(0, len(values), (args.n_images,), generator=gen).numpy(), values)
        for name, values in ATTRIBUTES.items()
    ]
    gallery = GalleryChunks(args.n_images, dim, cache.iter_shards)
    t = time.perf_counter()
    result = evaluate_embeddings(
        gallery,
        queries,
        prompts=[f"query {i}" for i in range(N_QUERIES)],
        attributes=attributes,
        ks=[k for k in args.ks if k <= args.n_images],
        uncertainty=UncertaintySettings.of(args.n_resamples, 0) if args.n_resamples else None,
        ranking_device=device,
    )
    sync(device)
    seconds_scoring = time.perf_counter() - t
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)

    e2e = args.n_images / seconds_embedding
    row = {
        "complete": True,
        "embedding_runs": runs,
        "shape": args.shape,
        "resolution": args.resolution,
        "source_size": args.source_size or args.resolution,
        "format": args.format,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpu_cores": os.cpu_count(),
        "num_workers": args.num_workers,
        "batch_size": args.batch_size,
        "autocast": autocast,
        "n_images": args.n_images,
        "pool": len(pool),
        "gflop_per_image": flops / 1e9,
        "peak_tflops": peak,
        "decode_images_per_s": decode,
        "preprocess_images_per_s": preprocess,
        "forward_images_per_s": forward,
        "embedding_images_per_s": e2e,
        "embedding_share_of_forward": e2e / forward,
        "forward_mfu": forward * flops / 1e12 / peak,
        "embedding_mfu": e2e * flops / 1e12 / peak,
        "seconds_decode_alone": args.n_images / decode,
        "seconds_preprocess_alone": args.n_images / preprocess,
        "seconds_forward_alone": args.n_images / forward,
        "seconds_embedding": seconds_embedding,
        "seconds_scoring": seconds_scoring,
        "seconds_total": seconds_embedding + seconds_scoring,
        "seconds_building_pool": seconds_pool,
        "n_resamples": args.n_resamples,
        "peak_rss_mb": max(peak_rss_mb(), *(r["peak_rss_mb"] for r in runs)),
        "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "ndkl_skin_tone": result.fairness["skin_tone"].ndkl,
    }
    print(json.dumps(row), flush=True)
    print(
        "\n| images | decode img/s | preprocess img/s | forward img/s | embedding img/s | % of forward |"
        " MFU | embedding s | scoring s | total s | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|---|"
        f"\n| {row['n_images']:,} | {decode:,.0f} | {preprocess:,.0f} | {forward:,.0f} | {e2e:,.0f} |"
        f" {100 * row['embedding_share_of_forward']:.0f} % | {100 * row['embedding_mfu']:.1f} % |"
        f" {seconds_embedding:,.1f} | {seconds_scoring:,.1f} | {row['seconds_total']:,.1f} |"
        f" {row['peak_rss_mb']:,.0f} |"
    )
    if args.out:
        save_json(Path(args.out), row)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


if __name__ == "__main__":
    main()
