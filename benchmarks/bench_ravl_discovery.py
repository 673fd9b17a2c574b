"""Benchmark of RaVL discovery (SPEC §3, :mod:`trustvl.discovery`) on synthetic region embeddings.

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

Measured: discovery on all regions (clustering stages: distance matrix, k sweep on the subsample, fit,
assignment; then scoring), precision@10 of RaVL and of the whole-image baseline, and on a smaller set
(``--exact-images``, default 2,000 images = 8,000 regions) the fully exact run (k sweep and FasterPAM on
all regions) against the default (subsampled sweep) and the forced subsample+assign path: chosen k, and
the Jaccard overlap of the top-ranked cluster's member set (and of all kept clusters' regions) with the
exact run's; ``top_cluster_same_as_exact`` is true when both approximate runs reach a top-cluster Jaccard
>= 0.95. Prints one JSON object.
Goal: <= 60 s for the 40,000-region discovery on a 2-core CPU.

    python benchmarks/bench_ravl_discovery.py                      # CPU, 40k regions + exactness check
    python benchmarks/bench_ravl_discovery.py --images 250000 --device cuda --skip-exact   # 1M regions
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
    cluster_embeddings,
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


def kept_members(res) -> set[int]:
    return set(np.concatenate([c.region_indices for c in res.clusters]).tolist()) if res.clusters else set()


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / max(len(a | b), 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--exact-images", type=int, default=2_000)
    ap.add_argument("--skip-exact", action="store_true")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args(argv)

    t = time.perf_counter()
    import kmedoids  # noqa: F401  (imports scikit-learn: 1-3 s, reported separately, not in the stage times)
    import torch  # noqa: F401  (used by the assignment step; import reported separately)

    import_s = time.perf_counter() - t
    report: dict = {
        "benchmark": "ravl_discovery",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": args.device,
        "import_kmedoids_torch_s": round(import_s, 3),
        "config": {
            "images": args.images,
            "regions": args.images * N_REGIONS,
            "classes": args.classes,
            "dim": args.dim,
            "seed": args.seed,
        },
    }
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

    if not args.skip_exact:
        small = make_world(args.exact_images, args.classes, args.dim, args.seed + 1)
        exact, exact_res = run(small, args.classes, seed=args.seed, max_exact=None, select_sample=None)
        default, default_res = run(small, args.classes, seed=args.seed)
        n_small = args.exact_images * N_REGIONS
        forced, forced_res = run(
            small, args.classes, seed=args.seed, max_exact=n_small // 2, select_sample=n_small // 4
        )
        ref = top_members(exact_res)
        ref_kept = kept_members(exact_res)
        report["exactness"] = {
            "regions": n_small,
            "exact": exact,
            "default_subsampled_k_sweep": {
                **default,
                "top_cluster_jaccard_vs_exact": round(jaccard(top_members(default_res), ref), 4),
                "kept_regions_jaccard_vs_exact": round(jaccard(kept_members(default_res), ref_kept), 4),
            },
            "subsample_plus_assign": {
                **forced,
                "top_cluster_jaccard_vs_exact": round(jaccard(top_members(forced_res), ref), 4),
                "kept_regions_jaccard_vs_exact": round(jaccard(kept_members(forced_res), ref_kept), 4),
            },
        }
        report["exactness"]["top_cluster_same_as_exact"] = bool(
            jaccard(top_members(default_res), ref) >= 0.95 and jaccard(top_members(forced_res), ref) >= 0.95
        )

    # the same assignment path as the 1M-region GPU route, timed alone on all regions
    t = time.perf_counter()
    cl = cluster_embeddings(
        world["region_embeds"],
        args.classes,
        k=main_run["k"],
        seed=args.seed,
        max_exact=min(10_000, len(world["region_embeds"]) - 1),
        device=args.device,
    )
    report["fixed_k_subsample_assign_s"] = round(time.perf_counter() - t, 3)
    report["fixed_k_assign_stage_s"] = round(cl.timings["assign"], 3)

    text = json.dumps(report, indent=2)
    print(text)
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
