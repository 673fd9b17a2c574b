"""Benchmark of RaVL discovery's default (scalable) mode (SPEC §3, :mod:`trustvl.discovery`) on synthetic data.

A synthetic evaluation set with a planted spurious artefact, built to look like the spurious-digits world:
``--images`` images (default 10,000) of 4 regions each (40,000 regions), ``--classes`` classes (10),
embedding dimension ``--dim`` (128). Each image has one "digit" region (one of 3 "writing style"
sub-centres of its class + noise, so the natural number of clusters, 10 x 3 + 3 + 1 = 34, lies in
[2C, 5C) as real region embeddings with more structure than C would), one
"rectangle" region with probability 0.5 (independent of the class, as in a balanced test set) and
background regions (one of 3 background centres + noise) elsewhere. The simulated model is fooled by the
rectangle: images with it are predicted as the spurious class (7) with probability 0.7, spurious-class
images without it are misclassified with probability 0.4, all others are right with probability 0.9.
Zero-shot scores are cosine similarities to class "text" embeddings, the spurious class's text embedding
leaning towards the rectangle. Whole-image embeddings (for the baseline) are the normalised mean of an
image's region embeddings. Generating the data is not timed.

Measured:

* **discovery** on all regions in the default mode (the exact sweep on a seeded 10,000-region subsample,
  then every region assigned to its nearest medoid): seconds per stage, precision@10 of RaVL and of the
  whole-image baseline. Goals: <= 60 s for 40,000 regions on a 2-core CPU, and for 1,000,000 regions on
  a GPU (``--images 250000 --device cuda``).
* **agreement with exact mode** (``--agreement-regions`` x ``--agreement-seeds``; skipped when empty): for
  each size and seed a fresh world, discovery in exact mode (``max_exact=None``) and in the default mode;
  the Jaccard overlap of their top-ranked clusters (as region sets), whether that overlap is >= 0.9 ("same
  top cluster"), their containment (``|A & B| / min(|A|, |B|)``, 1 when one mode split a cluster that the
  other kept whole), both top clusters' rectangle fractions, both precision@10 values, and the chosen k. Exact mode needs the full ``4 n^2``-byte
  matrix, so large sizes belong on a GPU.

Prints one JSON object.

    python benchmarks/bench_ravl_discovery.py --agreement-regions 12000 16000            # CPU
    python benchmarks/bench_ravl_discovery.py --images 250000 --device cuda \
        --agreement-regions 20000 40000 80000 --agreement-seeds 5                        # GPU, 1M regions
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from trustvl.discovery import (
    discover_spurious_images,
    discover_spurious_regions,
    precision_at_k,
)

SPURIOUS = 7
N_REGIONS = 4


def make_world(
    n_images: int,
    n_classes: int,
    dim: int,
    seed: int,
    noise: float = 0.45,
    styles: int = 3,
    spurious: int | None = None,
) -> dict[str, np.ndarray]:
    """The synthetic evaluation set of the module docstring; ``spurious`` defaults to class 7 (or C - 1)."""
    spurious = min(SPURIOUS, n_classes - 1) if spurious is None else spurious
    rng = np.random.default_rng(seed)

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    class_centres = unit(rng.normal(size=(n_classes, dim)))
    # each class is written in `styles` ways: sub-centres around the class centre
    style_centres = unit(class_centres[:, None, :] + 0.8 * unit(rng.normal(size=(n_classes, styles, dim))))
    rect_centre = unit(rng.normal(size=dim))
    bg_centres = unit(rng.normal(size=(3, dim)))
    labels = rng.integers(0, n_classes, n_images)
    has_rect = rng.random(n_images) < 0.5
    digit_q = rng.integers(0, N_REGIONS, n_images)
    rect_q = (digit_q + rng.integers(1, N_REGIONS, n_images)) % N_REGIONS  # never the digit's quadrant
    kind = np.full((n_images, N_REGIONS), -1, dtype=np.int64)  # -1 background, -2 rectangle, c >= 0 digit c
    rows = np.arange(n_images)
    kind[rows, digit_q] = labels
    kind[rows[has_rect], rect_q[has_rect]] = -2
    kind = kind.ravel()
    centres = np.empty((kind.size, dim), dtype=np.float32)
    digit = kind >= 0
    centres[digit] = style_centres[kind[digit], rng.integers(0, styles, int(digit.sum()))]
    centres[kind == -2] = rect_centre
    bg = kind == -1
    centres[bg] = bg_centres[rng.integers(0, 3, int(bg.sum()))]
    region_embeds = unit(
        centres + rng.normal(scale=noise / np.sqrt(dim), size=centres.shape).astype(np.float32)
    )
    text = class_centres.copy()
    text[spurious] = unit(class_centres[spurious] + 0.9 * rect_centre)
    region_scores = region_embeds @ text.T

    # the simulated (fooled) model's image predictions
    preds = labels.copy()
    u = rng.random(n_images)
    rand_other = (labels + rng.integers(1, n_classes, n_images)) % n_classes
    fooled = has_rect & (labels != spurious) & (u < 0.7)
    missed = (~has_rect) & (labels == spurious) & (u < 0.4)
    noisy = ~fooled & ~missed & (rng.random(n_images) < 0.1)
    preds[fooled] = spurious
    preds[missed | noisy] = rand_other[missed | noisy]
    image_embeds = unit(region_embeds.reshape(n_images, N_REGIONS, dim).mean(axis=1))
    return {
        "region_embeds": region_embeds,
        "region_image_index": np.repeat(rows, N_REGIONS),
        "region_scores": region_scores.astype(np.float32),
        "region_is_rect": kind == -2,
        "labels": labels,
        "preds": preds,
        "has_rect": has_rect,
        "image_embeds": image_embeds,
        "image_scores": (image_embeds @ text.T).astype(np.float32),
    }


def run(world: dict[str, np.ndarray], n_classes: int, **kw) -> tuple[dict, object]:
    t = time.perf_counter()
    res = discover_spurious_regions(
        world["region_embeds"],
        world["region_image_index"],
        world["labels"],
        world["preds"],
        world["region_scores"],
        n_classes,
        **kw,
    )
    total = time.perf_counter() - t
    top = res.clusters[0] if res.clusters else None
    out = {
        "seconds_total": round(total, 3),
        "seconds_per_stage": {
            **{f"clustering.{k}": round(v, 3) for k, v in res.clustering.timings.items()},
            "scoring": round(res.timings["scoring"], 3),
        },
        "k": res.k,
        "method": res.clustering.method,
        "n_select": res.clustering.n_select,
        "n_fit": res.clustering.n_fit,
        "n_kept_clusters": len(res.clusters),
        "precision_at_10": precision_at_k(res, world["region_is_rect"], 10),
        "top_cluster": None
        if top is None
        else {
            "size": top.size,
            "score": round(top.score, 4),
            "influence": round(top.influence, 4),
            "rectangle_fraction": round(float(world["region_is_rect"][top.region_indices].mean()), 4),
        },
    }
    return out, res


def top_members(res) -> set[int]:
    return set(res.clusters[0].region_indices.tolist()) if res.clusters else set()


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a | b) and len(a & b) / len(a | b)


def agreement(args: argparse.Namespace) -> dict:
    """Top-cluster agreement of the default mode with exact mode over sizes and seeds."""
    rows = []
    for n_regions in args.agreement_regions:
        for seed in range(args.agreement_seeds):
            world = make_world(n_regions // N_REGIONS, args.classes, args.dim, 1000 + seed)
            exact, exact_res = run(world, args.classes, seed=seed, max_exact=None, device=args.device)
            default, default_res = run(world, args.classes, seed=seed, device=args.device)
            a, b = top_members(exact_res), top_members(default_res)
            overlap = jaccard(a, b)
            rows.append(
                {
                    "regions": n_regions,
                    "seed": seed,
                    "k": {"exact": exact["k"], "default": default["k"]},
                    "top_cluster_jaccard": round(overlap, 4),
                    "same_top_cluster": overlap >= 0.9,
                    # |A & B| / min(|A|, |B|): 1 when one top cluster contains the other (e.g. a split)
                    "top_cluster_containment": round(len(a & b) / max(min(len(a), len(b)), 1), 4),
                    "top_cluster_size": {"exact": len(a), "default": len(b)},
                    "top_cluster_rectangle_fraction": {
                        "exact": (exact["top_cluster"] or {}).get("rectangle_fraction"),
                        "default": (default["top_cluster"] or {}).get("rectangle_fraction"),
                    },
                    "precision_at_10": {
                        "exact": exact["precision_at_10"],
                        "default": default["precision_at_10"],
                    },
                    "seconds": {"exact": exact["seconds_total"], "default": default["seconds_total"]},
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    same = [r["same_top_cluster"] for r in rows]
    return {
        "runs": rows,
        "n_runs": len(rows),
        "same_top_cluster_fraction": round(float(np.mean(same)), 4) if rows else None,
        "mean_top_cluster_jaccard": round(float(np.mean([r["top_cluster_jaccard"] for r in rows])), 4)
        if rows
        else None,
        "mean_top_cluster_containment": round(float(np.mean([r["top_cluster_containment"] for r in rows])), 4)
        if rows
        else None,
        "definition": "same top cluster = Jaccard overlap of the top-ranked clusters' region sets >= 0.9;"
        " containment = |A & B| / min(|A|, |B|)",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--agreement-regions", type=int, nargs="*", default=[12_000, 16_000])
    ap.add_argument("--agreement-seeds", type=int, default=3)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args(argv)

    import torch

    report: dict = {
        "benchmark": "ravl_discovery",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        "config": {
            "images": args.images,
            "regions": args.images * N_REGIONS,
            "classes": args.classes,
            "dim": args.dim,
            "seed": args.seed,
        },
    }
    if args.device.startswith("cuda"):  # initialise CUDA outside the timed runs
        run(make_world(500, args.classes, args.dim, args.seed), args.classes, device=args.device)
    world = make_world(args.images, args.classes, args.dim, args.seed)
    main_run, _ = run(world, args.classes, seed=args.seed, device=args.device)
    report["discovery"] = main_run
    report["goal_60s_met"] = main_run["seconds_total"] <= 60.0

    if not args.skip_baseline:
        t = time.perf_counter()
        base = discover_spurious_images(
            world["image_embeds"],
            world["labels"],
            world["preds"],
            world["image_scores"],
            args.classes,
            seed=args.seed,
            device=args.device,
        )
        report["baseline_whole_image"] = {
            "seconds_total": round(time.perf_counter() - t, 3),
            "k": base.k,
            "n_kept_clusters": len(base.clusters),
            "precision_at_10": precision_at_k(base, world["has_rect"], 10),
            "definition": "clusters of whole-image embeddings; hit = the image contains the rectangle",
        }
    del world
    if args.agreement_regions:
        report["agreement_default_vs_exact"] = agreement(args)

    text = json.dumps(report, indent=2)
    print(text)
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
