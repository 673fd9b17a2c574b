"""How often does an ideal α knob pass issue 26's monotone check? (CF_α, issue 26)

The CF_α benchmark calls a sweep monotone when no step α → α' (0 → 0.25 → 0.5 → 0.75 → 1) is worse beyond noise
in any attribute, MaxSkew@100 or NDKL, with paired verdicts on the mean of three 4,000-image galleries
(``bench_cf_alpha_synthworld._galleries``). That is 4 steps × 4 attributes × 2 metrics = 32 paired verdicts per
sweep, each "worse" when its 95 % interval excludes 0. This script asks what the check does with a knob that
is as good as a knob can be: the default CLIP's own gallery embeddings, from which the model's mean
appearance effects are removed exactly, in proportion.

For each gallery and occupation, ``D_i = Σ_a (μ_{occ, a, level_i} − μ_occ)`` is image ``i``'s additive
appearance offset (the mean embedding of its occupation's images at its level of attribute ``a``, minus the
occupation's mean; summed over the four attributes). The ideal knob at α embeds image ``i`` as
``z_i − (1 − (1 − α)^q)·D_i`` (``q = 1``: every mean effect shrinks linearly, as CF_α's linear α path asks;
``q > 1``: faster at first). At α = 1 no attribute shifts an occupation's mean embedding on that gallery; what is
left is each image's own, appearance-independent variation (and interactions between attributes). Every α is
then measured exactly as the benchmark measures a model (the same galleries, metrics, intervals and paired
verdicts), on ``--triples`` disjoint triples of world seeds (0, 1, 2), (3, 4, 5), …: the share of triples on
which the ideal knob passes is what a recipe that removes every mean effect linearly could expect.

    python benchmarks/cf_alpha_ideal_knob.py --triples 6 --keep-powers 1 2 \\
        --out benchmarks/results/cf_alpha_ideal_knob_cpu.json
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from trustvl.evaluation.synthworld import (
    GalleryFairness,
    combine_galleries,
    effect_vs_base,
    evaluate_synthworld,
    synthworld_test_set,
)
from trustvl.modeling.clip_components import normalize_uint8
from trustvl.modeling.embedding import embed_pixel_values
from trustvl.modeling.synthworld_clip import load_default_clip
from trustvl.utils.io import print_json


def appearance_offsets(embeds: torch.Tensor, occupation: np.ndarray, attributes: dict[str, np.ndarray]):
    """``D`` ``[n, d]``: each image's summed per-attribute level-mean offset within its occupation (module
    docstring)."""
    offsets = torch.zeros_like(embeds)
    occ = torch.as_tensor(occupation)
    for o in occ.unique():
        rows = occ == o
        mean = embeds[rows].mean(0)
        for levels in attributes.values():
            lv = torch.as_tensor(levels)
            for level in lv[rows].unique():
                sel = rows & (lv == level)
                offsets[sel] += embeds[sel].mean(0) - mean
    return offsets


def sweep_verdicts(per_alpha: list[list[GalleryFairness]], alphas: list[float], k: int) -> dict:
    """The benchmark's step verdicts (``bench_cf_alpha_synthworld._galleries``) of per-α gallery lists."""
    measured = [combine_galleries(g, k) for g in per_alpha]
    steps, worse = [], []
    for a, prev, cur in zip(alphas[1:], measured, measured[1:]):
        effect = effect_vs_base(prev, cur).to_dict()
        row = {"alpha": a}
        for metric in ("max_skew_change", "ndkl_change"):
            for attr, change in (effect.get(metric) or {}).items():
                row[f"{metric.removesuffix('_change')}:{attr}"] = [
                    round(change["difference"], 4),
                    round(change["interval"]["low"], 4),
                    round(change["interval"]["high"], 4),
                ]
                if change.get("verdict") == "worse":
                    worse.append({"alpha": a, "metric": metric.removesuffix("_change"), "attribute": attr})
        steps.append(row)
    return {
        "max_skew": [{a: round(v, 4) for a, v in m.max_skew.items()} for m in measured],
        "zero_shot_top1": [round(m.zero_shot_top1, 4) for m in measured],
        "steps": steps,
        "worse_steps": worse,
        "monotone": not worse,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--triples", type=int, default=6, help="disjoint triples of world seeds (0, 1, 2), (3, 4, 5), …"
    )
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--n-test", type=int, default=4000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--keep-powers", type=float, nargs="+", default=[1.0], help="q of (1 − α)^q")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.triples < 1 or args.n_test < args.k:
        sys.exit(f"--triples {args.triples} / --n-test {args.n_test}: expected >= 1 triple and n_test >= k")
    t0 = time.perf_counter()
    model, processor = load_default_clip(device="cpu", dtype="float32")
    alphas = sorted(args.alphas)
    # per q, per α: the GalleryFairness of every gallery (seed order)
    per = {q: [[] for _ in alphas] for q in args.keep_powers}
    seeds = list(range(args.first_seed, args.first_seed + 3 * args.triples))
    for i, seed in enumerate(seeds):
        test = synthworld_test_set(args.n_test, seed, 64)
        embeds = embed_pixel_values(model, normalize_uint8(test.images, processor.image_processor))
        offsets = appearance_offsets(embeds, test.occupation, test.attributes)
        for q in args.keep_powers:
            for j, alpha in enumerate(alphas):
                shift = 1.0 - (1.0 - alpha) ** q
                ev = evaluate_synthworld(
                    model,
                    processor,
                    n_test=args.n_test,
                    world_seed=seed,
                    ks=(args.k,),
                    n_recall=0,
                    image_embeds=embeds - shift * offsets,
                )
                per[q][j].append(GalleryFairness.of(seed, ev, args.k))
        print(
            f"[ideal knob] gallery {i + 1}/{len(seeds)} (world seed {seed}) at {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        synthworld_test_set.cache_clear()
    results = {}
    for q in args.keep_powers:
        triples = []
        for t in range(args.triples):
            galleries = [per[q][j][3 * t : 3 * t + 3] for j in range(len(alphas))]
            row = sweep_verdicts(galleries, alphas, args.k)
            row["world_seeds"] = seeds[3 * t : 3 * t + 3]
            triples.append(row)
        n_pass = sum(r["monotone"] for r in triples)
        verdicts = 4 * 2 * (len(alphas) - 1)
        n_worse = sum(len(r["worse_steps"]) for r in triples)
        results[str(q)] = {
            "monotone_triples": n_pass,
            "triples": len(triples),
            "monotone_share": round(n_pass / len(triples), 3),
            "worse_verdicts": n_worse,
            "verdicts": verdicts * len(triples),
            "per_triple": triples,
        }
    print_json(
        {
            "benchmark": "cf_alpha_ideal_knob",
            "settings": {k: v for k, v in vars(args).items() if k != "out"},
            "keep_power": results,
            "seconds": round(time.perf_counter() - t0, 1),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
