"""Host memory of the audit's scoring step at gallery sizes a CPU cannot embed (issue 28 item 2).

What grows with the gallery ``N`` in an audit is the scoring, not the embedding (whose peak is flat in ``N``:
docs/scale.md): the rankings ``[n_prompts, N]``, the attribute codes and the bootstrap's ``[n_resamples, N]``
counts. This script measures that step alone at any ``N``: it writes ``N`` seeded random unit embeddings of
``--dim`` (768: ViT-L/14's projection) into the sharded embedding cache, as the engine would, then runs
:func:`~trustvl.evaluation.evaluator.evaluate_embeddings` over the shards exactly as
``benchmarks/bench_audit_1m.py`` does (16 queries, two attributes, MaxSkew/MinSkew/NDKL with intervals and
floors), and reports the scoring's seconds and the process's peak RSS before and after it. No model and no
images: the embeddings' content does not change the memory.

    python benchmarks/bench_audit_scoring_rss.py --n-images 1000000 --n-resamples 100 --out rss-scoring-1m.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_audit_1m import ATTRIBUTES, N_QUERIES, peak_rss_mb  # noqa: E402


def write_shards(work: Path, n_images: int, dim: int, shard_size: int) -> None:
    """Seeded random unit embeddings in the cache's shards (only the missing ones)."""
    from trustvl.utils.tensor_cache import ShardedTensorCache

    cache = ShardedTensorCache(work, f"random-{dim}", n_images, shard_size)
    gen = torch.Generator().manual_seed(0)
    for shard in range(cache.n_shards):
        part = torch.nn.functional.normalize(torch.randn(len(cache.rows(shard)), dim, generator=gen), dim=-1)
        if cache.get(shard) is None:
            cache.put(shard, part)


def main() -> None:
    from trustvl.evaluation.dataset_columns import AttributeColumn
    from trustvl.evaluation.evaluator import evaluate_embeddings
    from trustvl.evaluation.results import UncertaintySettings
    from trustvl.metrics import GalleryChunks
    from trustvl.utils.tensor_cache import ShardedTensorCache

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-images", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--shard-size", type=int, default=65_536)
    p.add_argument("--n-resamples", type=int, default=200, help="bootstrap resamples (0: no intervals)")
    p.add_argument("--ks", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--device", default="cpu", help="where the shards are ranked")
    p.add_argument("--work-dir", default=None, help="cache folder (default: a temporary one, removed)")
    p.add_argument("--out", default=None)
    args = p.parse_args()

    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="trustvl-scoring-rss-"))
    t = time.perf_counter()
    # the shards are written in a child process, so this process's peak RSS is the scoring's alone
    writer = multiprocessing.get_context("spawn").Process(
        target=write_shards, args=(work, args.n_images, args.dim, args.shard_size)
    )
    writer.start()
    writer.join()
    if writer.exitcode != 0:
        raise SystemExit(f"writing the shards failed (exit code {writer.exitcode})")
    seconds_writing = time.perf_counter() - t
    cache = ShardedTensorCache(work, f"random-{args.dim}", args.n_images, args.shard_size)
    rss_before = peak_rss_mb()
    gen = torch.Generator().manual_seed(1)

    queries = torch.nn.functional.normalize(torch.randn(N_QUERIES, args.dim, generator=gen), dim=-1)
    attributes = [
        AttributeColumn(name, torch.randint(0, len(values), (args.n_images,), generator=gen).numpy(), values)
        for name, values in ATTRIBUTES.items()
    ]
    t = time.perf_counter()
    result = evaluate_embeddings(
        GalleryChunks(args.n_images, args.dim, cache.iter_shards),
        queries,
        prompts=[f"query {i}" for i in range(N_QUERIES)],
        attributes=attributes,
        ks=[k for k in args.ks if k <= args.n_images],
        uncertainty=UncertaintySettings.of(args.n_resamples, 0) if args.n_resamples else None,
        ranking_device=torch.device(args.device),
    )
    seconds_scoring = time.perf_counter() - t
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    row = {
        "n_images": args.n_images,
        "dim": args.dim,
        "shard_size": args.shard_size,
        "n_resamples": args.n_resamples,
        "ks": args.ks,
        "device": args.device,
        "cpu_cores": os.cpu_count(),
        "seconds_writing_shards": seconds_writing,
        "seconds_scoring": seconds_scoring,
        "peak_rss_mb_before_scoring": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "ndkl_skin_tone": result.fairness["skin_tone"].ndkl,
    }
    print(json.dumps(row, indent=2), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
