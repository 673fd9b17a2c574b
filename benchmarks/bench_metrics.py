"""Benchmark of trustvl's retrieval fairness metrics (SPEC §1).

1,000 queries x a 100,000-image gallery (by default), two protected attributes: from a random score
matrix, rank the whole gallery once for both attributes (timed separately), then compute NDKL over the
full ranking and MaxSkew@k / MinSkew@k for k in {10, 100, 1000} for each attribute. Prints one JSON
object with wall times (total and per stage). Goals: <= 5 s on a 2-core CPU, <= 0.5 s on an H100.

    python benchmarks/bench_metrics.py --device cpu
    python benchmarks/bench_metrics.py --device cuda --also-report

Generating the random inputs is not timed. ``--also-report`` additionally times the evaluator's path
(:func:`trustvl.evaluation.evaluator.fairness_by_attribute`: one ranking for all attributes, every metric per
query, per-query values and top-k shares as Python lists) as a second measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch

from trustvl.evaluation.dataset_columns import AttributeColumn
from trustvl.evaluation.evaluator import fairness_by_attribute
from trustvl.metrics import max_skew, min_skew, ndkl, rank_labels, uniform_target


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _inputs(args, device: torch.device):
    gen = torch.Generator(device=device).manual_seed(args.seed)
    scores = torch.rand((args.queries, args.gallery), generator=gen, device=device, dtype=torch.float32)
    labels = torch.stack(
        [
            torch.randint(0, m, (args.gallery,), generator=gen, device=device, dtype=torch.int64)
            for m in args.n_values
        ],
        dim=1,
    ).to(torch.uint8)
    return scores, labels


def _attribute_means(ndkl_mean: float, max_skews: dict[int, float], min_skews: dict[int, float]) -> dict:
    return {"ndkl": ndkl_mean, "max_skew": max_skews, "min_skew": min_skews}


def run_staged(scores: torch.Tensor, labels: torch.Tensor, args, device: torch.device) -> dict:
    times: dict[str, float] = {}
    means: dict[str, dict] = {}
    _sync(device)
    t_start = time.perf_counter()
    ranked = rank_labels(scores, labels)  # [Q, N, A] uint8, full ranking (stable, ties by gallery index)
    _sync(device)
    times["rank"] = time.perf_counter() - t_start
    times["ndkl"] = times["skew"] = 0.0
    for j, m in enumerate(args.n_values):
        q = uniform_target(m, device=device)
        lab = ranked[..., j]
        t0 = time.perf_counter()
        value = ndkl(lab, q)
        _sync(device)
        dt = time.perf_counter() - t0
        times["ndkl"] += dt
        times[f"ndkl/attr{j}"] = dt
        t0 = time.perf_counter()
        max_skews = {k: float(max_skew(lab[:, :k], q, k).mean()) for k in args.ks}
        min_skews = {k: float(min_skew(lab[:, :k], q, k).mean()) for k in args.ks}
        _sync(device)
        dt = time.perf_counter() - t0
        times["skew"] += dt
        times[f"skew/attr{j}"] = dt
        means[f"attr{j}"] = _attribute_means(float(value.mean()), max_skews, min_skews)
    times["total"] = time.perf_counter() - t_start
    return {"times_s": {k: round(v, 4) for k, v in times.items()}, "means": means}


def run_report(scores: torch.Tensor, labels: torch.Tensor, args, device: torch.device) -> dict:
    """The evaluator's path: :func:`fairness_by_attribute` over every attribute and cut-off."""
    attributes = [
        AttributeColumn(f"attr{j}", labels[:, j].cpu().numpy().astype("int64"), [str(v) for v in range(m)])
        for j, m in enumerate(args.n_values)
    ]
    _sync(device)
    t0 = time.perf_counter()
    fairness = fairness_by_attribute(scores, attributes, args.ks, target="uniform")
    _sync(device)
    total = time.perf_counter() - t0
    means = {
        name: _attribute_means(
            a.ndkl, {k: s.max_skew for k, s in a.at_k.items()}, {k: s.min_skew for k, s in a.at_k.items()}
        )
        for name, a in fairness.items()
    }
    return {"times_s": {"total": round(total, 4)}, "means": means}


def verify_against_cpu(scores: torch.Tensor, labels: torch.Tensor, args, n_queries: int) -> dict:
    """Recompute the first ``n_queries`` queries on the CPU and compare (rankings exactly, metrics to 1e-12)."""
    sub, lab = scores[:n_queries], labels
    dev_ranked = rank_labels(sub, lab)
    cpu_ranked = rank_labels(sub.cpu(), lab.cpu())
    out = {"queries": n_queries, "rankings_identical": bool(torch.equal(dev_ranked.cpu(), cpu_ranked))}
    topk = max(args.ks)
    out["topk_rankings_identical"] = bool(
        torch.equal(rank_labels(sub, lab, k=topk).cpu(), rank_labels(sub.cpu(), lab.cpu(), k=topk))
    )
    worst = 0.0
    for j, m in enumerate(args.n_values):
        q = uniform_target(m)
        pairs = [(ndkl(dev_ranked[..., j], q.to(sub.device)), ndkl(cpu_ranked[..., j], q))]
        for k in args.ks:
            for fn in (max_skew, min_skew):
                pairs.append((fn(dev_ranked[:, :k, j], q.to(sub.device), k), fn(cpu_ranked[:, :k, j], q, k)))
        worst = max(worst, max(float((a.cpu() - b).abs().max()) for a, b in pairs))
    out["max_abs_diff"] = worst
    out["ok"] = out["rankings_identical"] and out["topk_rankings_identical"] and worst <= 1e-12
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--gallery", type=int, default=100_000)
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument(
        "--n-values", type=int, nargs="+", default=[2, 2], help="number of values of each attribute"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=None, help="untimed warm-up runs (default: 1 on CUDA)")
    parser.add_argument(
        "--also-report", action="store_true", help="also time the evaluator's fairness_by_attribute"
    )
    parser.add_argument(
        "--verify",
        type=int,
        default=0,
        metavar="N",
        help="check the first N queries against the CPU (untimed)",
    )
    args = parser.parse_args(argv)

    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            parser.error("--device cuda, but CUDA is not available")
    warmup = args.warmup if args.warmup is not None else (1 if device.type == "cuda" else 0)

    scores, labels = _inputs(args, device)
    for _ in range(warmup):
        run_staged(scores[:8], labels, args, device)
        if args.also_report:
            run_report(scores[:8], labels, args, device)

    result = {
        "benchmark": "trustvl.metrics fairness",
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else (platform.processor() or platform.machine()),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_before": [round(x, 2) for x in os.getloadavg()],
        "n_queries": args.queries,
        "n_gallery": args.gallery,
        "n_values": args.n_values,
        "ks": args.ks,
        "warmup_runs": warmup,
        "staged": run_staged(scores, labels, args, device),
    }
    if args.also_report:
        result["fairness_by_attribute"] = run_report(scores, labels, args, device)
    if args.verify:
        result["verify_against_cpu"] = verify_against_cpu(
            scores, labels, args, min(args.verify, args.queries)
        )
    result["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    goal = 0.5 if device.type == "cuda" else 5.0
    result["goal_s"] = goal
    result["goal_met"] = result["staged"]["times_s"]["total"] <= goal
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
