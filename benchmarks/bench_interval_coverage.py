"""Coverage of trustvl's 95 % intervals (SPEC §1, issue 24): do they cover the truth as often as they claim?

On SynthWorld, where galleries can be drawn at will, a fixed model (the embedded default CLIP, and CF_α as
the Space ships it: ``spaces/cf-alpha/adapter`` at α = 1 on that CLIP) ranks ``--galleries`` independent
galleries of the demo's size (1,500) and of 4x that size. The target of a metric at a gallery size is its
mean over those galleries (its expectation at that size). Reported per size: the share of galleries whose
95 % interval covers the target, for the centred interval trustvl reports (estimate ± 1.96·SE of the
gallery bootstrap, truncated at 0) and, for comparison, the percentile interval; for the occupation prompts'
mean MaxSkew@10, MaxSkew@100 and NDKL of each attribute, and the paired CF_α − base difference of each. Also
the false-positive rate of the verdict when the base model is compared with itself on two independent
galleries (gallery ``g`` vs ``g + 1``, cyclic: a "better"/"worse" there is a false alarm), and how often
an interval is flagged ``bootstrap_biased``.

Galleries (documented choice): a pool of ``--pool`` scenes of the balanced test split (world seed 0) is
rendered and embedded once per model; each gallery is a random subset (without replacement, seeded) of the
pool. Subsets of one pool are not fully independent: a gallery of ``n`` holds ``n / pool`` of the pool, so
the spread of the metric across galleries is smaller than across fresh worlds by about the finite-population
factor ``sqrt(1 - n / pool)``, and the bootstrap's SE (which assumes an infinite world) overstates it by that
factor. Coverage is therefore also reported with the half-width shrunk by that factor ("fpc"), which is what
the intervals would cover on fresh galleries.

Fair Diffusion's per-prompt share (a group's share of ``n`` images) is binomial: simulated with
``--fd-draws`` draws per (p, n), Wilson 95 % intervals, target p. Also the mean over 8 prompts of
|share − 0.5| (the mean-absolute-gap metric, image bootstrap within prompts, centred interval, target its
simulated mean), where the percentile interval fails near a fair generator.

    python benchmarks/bench_interval_coverage.py --threads 2 \\
        --out benchmarks/results/interval_coverage_cpu2.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from trustvl.metrics import (
    bootstrap_fairness,
    centred_interval,
    max_skew,
    ndkl,
    paired_comparison,
    percentile_interval,
    rank_labels,
    uniform_target,
    wilson_interval,
    within_stratum_resamples,
)

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("max_skew@10", "max_skew@100", "ndkl")


def _embed_pool(n_pool: int, batch_size: int, cache: Path | None):
    """Pool embeddings of both models (cached in ``cache`` as safetensors), the attributes and timings."""
    from safetensors.torch import load_file, save_file

    from trustvl.data_builders.synthworld import occupation_prompt
    from trustvl.evaluation.synthworld import synthworld_test_set
    from trustvl.modeling.cf_alpha import CFAlphaCLIPModel
    from trustvl.modeling.clip_components import normalize_uint8
    from trustvl.modeling.embedding import embed_pixel_values, embed_texts
    from trustvl.modeling.synthworld_clip import default_clip_path, load_default_clip

    timings = {}
    t = time.perf_counter()
    test = synthworld_test_set(n_pool, 0, 64)
    timings["render_s"] = round(time.perf_counter() - t, 2)
    attrs = {a: (torch.as_tensor(v), len(test.attribute_levels[a])) for a, v in test.attributes.items()}
    prompts = [occupation_prompt(o) for o in test.occupations]
    path = None if cache is None else cache / f"pool{n_pool}.safetensors"
    if path is not None and path.exists():
        emb = load_file(str(path))
        timings["embed_s"] = "cached"
        return emb, attrs, timings
    t = time.perf_counter()
    base, processor = load_default_clip(device="cpu")
    pixels = normalize_uint8(test.images, processor.image_processor)
    emb = {
        "base_images": embed_pixel_values(base, pixels, batch_size=batch_size),
        "base_prompts": embed_texts(base, processor, prompts),
    }
    cf = CFAlphaCLIPModel.from_peft(default_clip_path(), ROOT / "spaces/cf-alpha/adapter", alpha=1.0).eval()
    emb["cf_images"] = embed_pixel_values(cf, pixels, batch_size=batch_size)
    emb["cf_prompts"] = embed_texts(cf, processor, prompts)
    timings["embed_s"] = round(time.perf_counter() - t, 2)
    timings["embed_images_per_s"] = round(2 * n_pool / (time.perf_counter() - t), 1)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in emb.items()}, str(path))
    return emb, attrs, timings


def _gallery_metrics(scores, labels, targets, n_resamples, seed):
    """Per attribute (column of ``labels``): point values and bootstrap replicates of the three metrics
    (means over the prompts), all attributes sharing one ranking and one set of resamples."""
    ranked_all = rank_labels(scores, labels)
    boots = bootstrap_fairness(scores, labels, targets, [10, 100], n_resamples=n_resamples, seed=seed)
    out = []
    for j, (q, reps) in enumerate(zip(targets, boots)):
        ranked = ranked_all[..., j]
        points = {
            "max_skew@10": float(max_skew(ranked, q, 10).mean()),
            "max_skew@100": float(max_skew(ranked, q, 100).mean()),
            "ndkl": float(ndkl(ranked, q).mean()),
        }
        replicates = {"max_skew@10": reps.max_skew[10], "max_skew@100": reps.max_skew[100], "ndkl": reps.ndkl}
        out.append((points, replicates))
    return out


def _coverage_rows(points, intervals, percentile, halfwidth_fpc, target):
    """Share of galleries whose interval covers ``target`` (and the same with the fpc-shrunk half-width)."""
    n = len(points)
    cover = sum(i.low <= target <= i.high for i in intervals) / n
    cover_pct = sum(lo <= target <= hi for lo, hi in percentile) / n if percentile else None
    cover_fpc = None
    if halfwidth_fpc is not None:
        cover_fpc = sum(abs(p - target) <= h for p, h in zip(points, halfwidth_fpc)) / n
    return {
        "target": target,
        "coverage_centred": round(cover, 4),
        "coverage_centred_fpc": None if cover_fpc is None else round(cover_fpc, 4),
        "coverage_percentile": None if cover_pct is None else round(cover_pct, 4),
        "mean_halfwidth": float(np.mean([(i.high - i.low) / 2 for i in intervals])),
        "sd_over_galleries": float(np.std(points, ddof=1)),
        "flagged_share": round(sum(i.bootstrap_biased for i in intervals) / n, 4),
        "point_inside_own_interval": all(i.low <= p <= i.high for p, i in zip(points, intervals)),
        "percentile_excludes_point_share": None
        if not percentile
        else round(sum(not lo <= p <= hi for p, (lo, hi) in zip(points, percentile)) / n, 4),
    }


def retrieval_study(emb, attrs, sizes, n_galleries, n_resamples, attributes, seed, on_size=None):
    """Coverage per gallery size; ``on_size(partial result)`` is called after each size (to save progress)."""
    n_pool = emb["base_images"].shape[0]
    n_levels = {a: m for a, (_, m) in attrs.items()}
    attrs = {a: v for a, (v, _) in attrs.items()}
    out = {}
    z = 1.959963984540054
    for size in sizes:
        t = time.perf_counter()
        rng = np.random.default_rng(seed + size)
        fpc = float(np.sqrt(1 - size / n_pool))
        rec = {a: {m: {"base": [], "cf": [], "diff": []} for m in METRICS} for a in attributes}
        targets = [uniform_target(n_levels[a]) for a in attributes]
        for g in range(n_galleries):
            if g % 50 == 0:
                print(
                    json.dumps({"size": size, "gallery": g, "seconds": round(time.perf_counter() - t, 1)}),
                    flush=True,
                )
            idx = torch.as_tensor(np.sort(rng.choice(n_pool, size, replace=False)))
            labels = torch.stack([attrs[a][idx] for a in attributes], 1)
            both = {}
            for model in ("base", "cf"):
                scores = emb[f"{model}_prompts"] @ emb[f"{model}_images"][idx].T
                both[model] = _gallery_metrics(scores, labels, targets, n_resamples, 0)
            for j, a in enumerate(attributes):
                per_model = {model: both[model][j] for model in both}
                for m in METRICS:
                    for model in ("base", "cf"):
                        point, reps = per_model[model][0][m], per_model[model][1][m]
                        ci = centred_interval(point, reps, lower=0.0)
                        se = float(reps.std(correction=1))
                        rec[a][m][model].append((point, ci, percentile_interval(reps), z * se * fpc, reps))
                    change = paired_comparison(
                        per_model["base"][0][m],
                        per_model["cf"][0][m],
                        per_model["base"][1][m],
                        per_model["cf"][1][m],
                    )
                    d_reps = per_model["cf"][1][m] - per_model["base"][1][m]
                    se = float(d_reps.std(correction=1))
                    rec[a][m]["diff"].append(
                        (change.difference, change.interval, percentile_interval(d_reps), z * se * fpc, None)
                    )
        size_out = {}
        for a in attributes:
            size_out[a] = {}
            for m in METRICS:
                row = {}
                for which in ("base", "cf", "diff"):
                    items = rec[a][m][which]
                    points = [p for p, *_ in items]
                    row[which] = _coverage_rows(
                        points, [c for _, c, *_ in items], [p for _, _, p, _, _ in items],
                        [h for _, _, _, h, _ in items], float(np.mean(points)),
                    )  # fmt: skip
                base = rec[a][m]["base"]
                alarms = 0
                for g in range(n_galleries):  # the base model against itself on galleries g and g + 1
                    (p0, _, _, _, r0), (p1, _, _, _, r1) = base[g], base[(g + 1) % n_galleries]
                    alarms += paired_comparison(p0, p1, r0, r1).verdict != "within noise"
                row["self_comparison_false_positive_rate"] = round(alarms / n_galleries, 4)
                size_out[a][m] = row
        out[str(size)] = {
            "gallery": size,
            "fpc_factor": round(fpc, 4),
            "seconds": round(time.perf_counter() - t, 1),
            "by_attribute": size_out,
        }
        print(json.dumps({"size": size, "seconds": out[str(size)]["seconds"]}), flush=True)
        if on_size is not None:
            on_size(out)
    return out


def fair_diffusion_study(ns, ps, draws, n_resamples, seed):
    """Wilson coverage of a per-prompt share; centred and percentile coverage of the mean |share − 0.5|."""
    rng = np.random.default_rng(seed)
    shares = []
    for n in ns:
        for p in ps:
            hits = rng.binomial(n, p, size=draws)
            cover = np.mean([wilson_interval(int(h), n).contains(p) for h in hits])
            shares.append({"n": n, "p": p, "draws": draws, "coverage_wilson": round(float(cover), 4)})
    gaps = []
    n_prompts, gap_draws = 8, max(200, draws // 20)
    for n in ns:
        for p in (0.5, 0.7):
            points, cis, pcts = [], [], []
            for _ in range(gap_draws):
                images = (rng.random((n_prompts, n)) < p).astype(float)
                point = float(np.abs(images.mean(1) - 0.5).mean())
                idx = within_stratum_resamples(n_prompts, n, n_resamples, int(rng.integers(1 << 31)))
                reps = np.abs(images[np.arange(n_prompts)[None, :, None], idx].mean(-1) - 0.5).mean(-1)
                points.append(point)
                cis.append(centred_interval(point, reps, lower=0.0, upper=1.0))
                pcts.append(percentile_interval(torch.as_tensor(reps)))
            row = _coverage_rows(points, cis, pcts, None, float(np.mean(points)))
            gaps.append({"n": n, "p": p, "prompts": n_prompts, "draws": gap_draws, **row})
    return {"per_prompt_share": shares, "mean_abs_gap": gaps}


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def markdown_tables(result: dict) -> str:
    """The coverage tables of a result (as docs/uncertainty.md shows them)."""
    lines = [
        "| gallery | attribute | metric | model | coverage, centred (%) | centred, fpc (%) | percentile (%) "
        "| SE / SD over galleries | flagged (%) | self-comparison false alarms (%) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size, block in result.get("retrieval", {}).items():
        for a, metrics in block["by_attribute"].items():
            for m, row in metrics.items():
                for which, name in (("base", "base"), ("cf", "CF_α"), ("diff", "CF_α − base")):
                    r = row[which]
                    fp = _pct(row["self_comparison_false_positive_rate"]) if which == "base" else ""
                    lines.append(
                        f"| {size} | {a} | {m} | {name} | {_pct(r['coverage_centred'])} |"
                        f" {_pct(r['coverage_centred_fpc'])} | {_pct(r['coverage_percentile'])} |"
                        f" {r['mean_halfwidth'] / 1.959964 / r['sd_over_galleries']:.2f} |"
                        f" {_pct(r['flagged_share'])} | {fp} |"
                    )
    fd = result.get("fair_diffusion", {})
    lines += [
        "",
        "| images per prompt n | share p | draws | Wilson coverage (%) |",
        "| --- | --- | --- | --- |",
    ]
    for r in fd.get("per_prompt_share", []):
        lines.append(f"| {r['n']} | {r['p']} | {r['draws']} | {_pct(r['coverage_wilson'])} |")
    lines += [
        "",
        "| images per prompt n | share p (8 prompts) | draws | centred coverage (%) | percentile coverage (%) "
        "| percentile excludes its point (%) | flagged (%) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in fd.get("mean_abs_gap", []):
        lines.append(
            f"| {r['n']} | {r['p']} | {r['draws']} | {_pct(r['coverage_centred'])} | {_pct(r['coverage_percentile'])} |"
            f" {_pct(r['percentile_excludes_point_share'])} | {_pct(r['flagged_share'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", type=int, default=30000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1500, 6000])
    ap.add_argument("--galleries", type=int, default=200)
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument(
        "--attributes", nargs="+", default=["skin_tone", "gender_presentation", "age", "body_type"]
    )
    ap.add_argument("--fd-n", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--fd-p", type=float, nargs="+", default=[0.05, 0.25, 0.5])
    ap.add_argument("--fd-draws", type=int, default=4000)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--cache", type=Path, default=None, help="folder for the pool embeddings (reruns skip them)"
    )
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--tables", type=Path, default=None, help="only print the markdown tables of this result JSON"
    )
    args = ap.parse_args()
    if args.tables is not None:
        print(markdown_tables(json.loads(args.tables.read_text(encoding="utf-8"))))
        return
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    result = {
        "command": "python benchmarks/bench_interval_coverage.py "
        + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
            if v is not None and k not in ("out", "cache")
        ),  # fmt: skip
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "models": {"base": "embedded default SynthWorld CLIP", "cf": "spaces/cf-alpha/adapter at alpha = 1"},
        "machine": {
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__,
        },
        "complete": False,
    }

    def save(**parts) -> None:
        result.update(parts)
        result["machine"]["load_average_1min"] = os.getloadavg()[0]
        result["seconds"] = round(time.perf_counter() - start, 1)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")

    save(fair_diffusion=fair_diffusion_study(args.fd_n, args.fd_p, args.fd_draws, args.resamples, args.seed))
    emb, attrs, timings = _embed_pool(args.pool, args.batch_size, args.cache)
    print(json.dumps(timings), flush=True)
    save(timings=timings)
    retrieval_study(
        emb, attrs, args.sizes, args.galleries, args.resamples, args.attributes, args.seed,
        on_size=lambda partial: save(retrieval=partial),
    )  # fmt: skip
    save(complete=True)
    print(json.dumps({"seconds": result["seconds"]}))


if __name__ == "__main__":
    main()
