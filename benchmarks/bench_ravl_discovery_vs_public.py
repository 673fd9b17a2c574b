"""RaVL discovery, exact mode: trustvl against the public RaVL implementation's algorithm, side by side.

**The peer.** ``public_discovery`` below is a re-implementation, written for this comparison, of the
discovery algorithm of the public RaVL code released with the paper (arXiv 2411.04097), so that the
comparison runs offline on identical inputs. It follows that code's algorithm step by step; it is not
trustvl code and trustvl does not use it:

1. distances ``clip(1 - E E^T, 0, 1)`` with a zero diagonal, numpy float32;
2. for every k in ``[2C, 5C)``: scikit-learn-extra's ``KMedoids(metric="precomputed", init="k-medoids++",
   random_state=0)`` — input validation (``check_array``, ``pairwise_distances(metric="precomputed")``),
   greedy k-medoids++ seeding (``2 + int(log k)`` trials, squared distances, ``RandomState(0)``), then the
   default ``method="alternate"`` (Voronoi iteration, at most 300 rounds) — and scikit-learn's
   ``silhouette_score(metric="precomputed")``; a k replaces the best only with a strictly larger
   silhouette; then the best k is fitted again and its silhouette computed again, as the public code does;
3. per cluster: the images with a region in it (in) against the other images of the same labels (out);
   per-label gaps ``2 min(n_in, n_out) / (n_in + n_out) (acc_in - acc_out)``; influence over the in-images
   with more than one region whose top region for the predicted class is in the cluster, among the
   misclassified ones of labels with a negative gap; kept with gaps of both signs and influence >= 0.25,
   ordered by ``sum |gap|`` (descending, ``argsort(...)[::-1]``);
4. the kept clusters' regions ranked by similarity to the medoid.

The loops are plain Python/numpy as in the original, with sets for membership tests (the original's
list scans would only make the peer slower). scikit-learn's own functions are called where the public code
calls them (it is installed); scikit-learn-extra is not, so its K-medoids is re-implemented.

**trustvl**: :func:`trustvl.discovery.discover_spurious_regions` with ``max_exact=None`` (exact mode: the
k sweep on all regions, see :mod:`trustvl.discovery.clustering`) on ``--device``.

**Data**: :func:`bench_ravl_discovery.make_world` (``--classes`` classes, default 4, so k in [8, 20) as in the
issue's comparison; 4 regions per image; a planted rectangle), built before any timing. Both methods get
the same unit-norm region embeddings, labels, predictions and region scores (the raw cosine scores; the
peer's image score distributions are one-hot predictions, so its "predicted class" is the prediction).

**Timing**: wall clock of each method from the embeddings to the ranked regions. On a shared CPU the runs
interleave (trustvl, peer, trustvl) and the ratio uses the mean of the two trustvl runs, so that load
changing during the run affects both sides. On ``--device cuda`` trustvl runs on the GPU (after one
warm-up call that initialises CUDA) and the peer, which is CPU code, on the host's CPU cores.

Reported per size: seconds per stage, the ratio, and agreement of the results: k, silhouettes, identical
partition (up to cluster numbering), adjusted Rand index, Jaccard overlap of the top-ranked cluster,
Precision@10 against the rectangle. ``--check-devices`` also compares trustvl on CPU and on the GPU.

    python benchmarks/bench_ravl_discovery_vs_public.py --regions 16000                 # 2-core CPU goal: >= 3x
    python benchmarks/bench_ravl_discovery_vs_public.py --regions 16000 --device cuda   # GPU goal: >= 10x
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ravl_discovery import N_REGIONS, make_world  # noqa: E402

from trustvl.discovery import discover_spurious_regions, precision_at_k  # noqa: E402


# ---------------------------------------------------------------- the peer: public RaVL's algorithm
def _peer_kmedoids_pp(dist: np.ndarray, k: int, random_state: np.random.RandomState) -> np.ndarray:
    """Greedy k-medoids++ seeding as scikit-learn-extra does it (squared distances, 2 + int(log k) trials)."""
    n = dist.shape[0]
    trials = 2 + int(np.log(k))
    centers = np.empty(k, dtype=int)
    centers[0] = random_state.randint(n)
    closest = dist[centers[0], :] ** 2
    potential = closest.sum()
    for i in range(1, k):
        draws = random_state.random_sample(trials) * potential
        candidates = np.searchsorted(np.cumsum(closest, dtype=np.float64), draws)
        candidates = np.minimum(candidates, n - 1)
        to_candidates = dist[candidates, :] ** 2
        best = best_potential = best_closest = None
        for t in range(trials):
            trial_closest = np.minimum(closest, to_candidates[t])
            trial_potential = trial_closest.sum()
            if best is None or trial_potential < best_potential:
                best, best_potential, best_closest = candidates[t], trial_potential, trial_closest
        centers[i], potential, closest = best, best_potential, best_closest
    return centers


def _peer_kmedoids_fit(dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``KMedoids(n_clusters=k, metric="precomputed", init="k-medoids++", random_state=0).fit(dist)``."""
    from sklearn.metrics import pairwise_distances
    from sklearn.utils import check_array

    dist = check_array(dist, dtype=[np.float64, np.float32])
    dist = pairwise_distances(dist, metric="precomputed")
    medoids = _peer_kmedoids_pp(dist, k, np.random.RandomState(0))
    for _ in range(300):  # alternate: assign, then move each medoid to its cluster's best member
        previous = medoids.copy()
        labels = np.argmin(dist[medoids, :], axis=0)
        for j in range(k):
            members = np.where(labels == j)[0]
            if len(members) == 0:
                continue
            costs = np.sum(dist[members, members[:, np.newaxis]], axis=1)
            best = np.argmin(costs)
            if costs[best] < costs[np.argmax(members == medoids[j])]:
                medoids[j] = members[best]
        if np.all(previous == medoids):
            break
    return medoids, np.argmin(dist[medoids, :], axis=0)


def _peer_cluster(embeds: np.ndarray, ks: range, timings: dict) -> tuple[np.ndarray, np.ndarray, int, dict]:
    from sklearn.metrics import silhouette_score

    t = time.perf_counter()
    dist = 1.0 - (embeds @ embeds.T)
    np.clip(dist, 0, 1, out=dist)
    np.fill_diagonal(dist, 0)
    timings["distance_matrix"] = time.perf_counter() - t
    t = time.perf_counter()
    best = (0, 0)
    scores = {}
    for k in ks:
        _, labels = _peer_kmedoids_fit(dist, k)
        scores[k] = float(silhouette_score(dist, labels, metric="precomputed"))
        if scores[k] > best[0]:
            best = (scores[k], k)
    timings["sweep"] = time.perf_counter() - t
    t = time.perf_counter()
    medoids, labels = _peer_kmedoids_fit(dist, best[1])
    silhouette_score(dist, labels, metric="precomputed")
    timings["refit"] = time.perf_counter() - t
    return labels, medoids, best[1], scores


def _peer_identify(clusters, true, pred, image_scores, region_scores, img_of_region, regions_of_image):
    gaps_sum, influence, both_signs = [], [], []
    for c in sorted(set(clusters.tolist())):
        region_idx = np.where(clusters == c)[0]
        region_set = set(region_idx.tolist())
        in_images = sorted({int(img_of_region[r]) for r in region_idx})
        in_set = set(in_images)
        cluster_labels = set(true[in_images].tolist())
        out_images = [i for i in range(len(true)) if true[i] in cluster_labels and i not in in_set]
        gaps = {}
        for label in cluster_labels:
            inc = [i for i in in_images if true[i] == label]
            outc = [i for i in out_images if true[i] == label]
            if not inc or not outc:
                continue
            acc_in = float(np.mean(pred[inc] == label))
            acc_out = float(np.mean(pred[outc] == label))
            gaps[label] = 2 * min(len(inc), len(outc)) / (len(inc) + len(outc)) * (acc_in - acc_out)
        per_label: dict[int, list[bool]] = {}
        for i in in_images:
            regs = regions_of_image[i]
            if len(regs) == 1:
                continue
            predicted = int(np.argmax(image_scores[i]))
            top = int(regs[int(np.argmax(region_scores[regs, predicted]))])
            label = int(true[i])
            if true[i] != pred[i] and label in gaps and gaps[label] < 0:
                per_label.setdefault(label, []).append(top in region_set)
        influence.append(max(float(np.mean(v)) for v in per_label.values()) if per_label else -np.inf)
        gaps_sum.append(sum(abs(v) for v in gaps.values()))
        both_signs.append(any(v > 0 for v in gaps.values()) and any(v < 0 for v in gaps.values()))
    order = np.argsort(np.array(gaps_sum))[::-1]
    return [int(a) for a in order if both_signs[a] and influence[a] >= 0.25]


def public_discovery(world: dict, n_classes: int) -> dict:
    """The peer end to end; returns ranked clusters, ranked regions, clustering and stage timings."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    embeds = world["region_embeds"]
    labels, medoids, k, scores = _peer_cluster(embeds, range(2 * n_classes, 5 * n_classes), timings)
    t = time.perf_counter()
    img = world["region_image_index"]
    regions_of_image = np.split(np.arange(len(img)), np.cumsum(np.bincount(img))[:-1])
    image_scores = np.eye(n_classes)[world["preds"]]
    kept = _peer_identify(
        labels, world["labels"], world["preds"], image_scores, world["region_scores"], img, regions_of_image
    )
    ranked = []
    for c in kept:
        members = np.where(labels == c)[0]
        sim = np.argsort((embeds[members] @ embeds[medoids[c]].reshape(-1, 1)).flatten())[::-1]
        ranked.append(members[sim])
    timings["identify_rank"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return {
        "labels": labels,
        "k": k,
        "silhouette": scores,
        "kept": kept,
        "ranked": ranked,
        "timings": timings,
    }


# ---------------------------------------------------------------- comparison
def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Identical clusterings up to the numbering of the clusters."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def run_trustvl(world: dict, n_classes: int, device: str) -> tuple[dict, object]:
    t = time.perf_counter()
    res = discover_spurious_regions(
        world["region_embeds"],
        world["region_image_index"],
        world["labels"],
        world["preds"],
        world["region_scores"],
        n_classes,
        max_exact=None,
        device=device,
    )
    total = time.perf_counter() - t
    return {"total": total, **{f"clustering.{k}": v for k, v in res.clustering.timings.items()}}, res


def compare(world: dict, n_classes: int, device: str, interleave: bool) -> dict:
    from sklearn.metrics import adjusted_rand_score

    runs = []
    t_first, res = run_trustvl(world, n_classes, device)
    runs.append(t_first)
    peer = public_discovery(world, n_classes)
    if interleave:
        runs.append(run_trustvl(world, n_classes, device)[0])
    trust_s = float(np.mean([r["total"] for r in runs]))
    rect = world["region_is_rect"]
    peer_top = set(peer["ranked"][0].tolist()) if peer["ranked"] else set()
    ours_top = set(res.clusters[0].region_indices.tolist()) if res.clusters else set()
    peer_p10 = float(rect[np.concatenate(peer["ranked"])[:10]].sum()) / 10 if peer["ranked"] else 0.0
    return {
        "regions": len(rect),
        "public_seconds": round(peer["timings"]["total"], 3),
        "public_stages": {k: round(v, 3) for k, v in peer["timings"].items()},
        "trustvl_seconds": round(trust_s, 3),
        "trustvl_runs": [{k: round(v, 3) for k, v in r.items()} for r in runs],
        "speedup": round(peer["timings"]["total"] / trust_s, 2),
        "k": {"public": peer["k"], "trustvl": res.k},
        "best_silhouette": {
            "public": round(max(peer["silhouette"].values()), 4),
            "trustvl": round(max(res.clustering.silhouette.values()), 4),
        },
        "silhouette_per_k": {
            "public": {str(k): round(v, 4) for k, v in peer["silhouette"].items()},
            "trustvl": {str(k): round(v, 4) for k, v in res.clustering.silhouette.items()},
        },
        "identical_partition": same_partition(peer["labels"], res.clustering.labels),
        "adjusted_rand_index": round(float(adjusted_rand_score(peer["labels"], res.clustering.labels)), 4),
        "n_kept": {"public": len(peer["kept"]), "trustvl": len(res.clusters)},
        "top_cluster_jaccard": round(len(peer_top & ours_top) / max(len(peer_top | ours_top), 1), 4),
        "precision_at_10": {"public": peer_p10, "trustvl": precision_at_k(res, rect, 10)},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--regions", type=int, nargs="+", default=[16_000])
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--noise", type=float, default=0.45)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--check-devices", type=int, default=0, help="regions for a CPU-vs-GPU exactness check")
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args(argv)

    import torch

    report: dict = {
        "benchmark": "ravl_discovery_vs_public",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": list(os.getloadavg()),
        "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        "config": {k: v for k, v in vars(args).items() if k != "json_out"},
        "sizes": [],
    }
    if args.device.startswith("cuda"):  # initialise CUDA outside the timed runs
        small = make_world(500, args.classes, args.dim, args.seed)
        run_trustvl(small, args.classes, args.device)
    for n in args.regions:
        world = make_world(n // N_REGIONS, args.classes, args.dim, args.seed, noise=args.noise)
        row = compare(world, args.classes, args.device, interleave=not args.device.startswith("cuda"))
        report["sizes"].append(row)
        print(json.dumps(row), flush=True)
    if args.check_devices and torch.cuda.is_available():
        world = make_world(args.check_devices // N_REGIONS, args.classes, args.dim, args.seed + 1, noise=1.5)
        cpu = run_trustvl(world, args.classes, "cpu")[1].clustering
        gpu = run_trustvl(world, args.classes, "cuda")[1].clustering
        report["cpu_vs_gpu"] = {
            "regions": args.check_devices,
            "noise": 1.5,
            "same_k": cpu.k == gpu.k,
            "identical_labels": bool(np.array_equal(cpu.labels, gpu.labels)),
            "identical_medoids": bool(np.array_equal(cpu.medoids, gpu.medoids)),
        }
    report["load_average_at_end"] = list(os.getloadavg())
    text = json.dumps(report, indent=2)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
