"""How often does an ideal α knob pass issue 26's monotone check? (CF_α, issue 26)

The CF_α benchmark calls a sweep monotone when no step α → α' (0 → 0.25 → 0.5 → 0.75 → 1) is worse beyond noise
in any attribute, MaxSkew@100 or NDKL, with paired verdicts on the mean of three 4,000-image galleries
(``bench_cf_alpha_synthworld._galleries``). That is 4 steps × 4 attributes × 2 metrics = 32 paired verdicts per
sweep, each "worse" when its 95 % interval excludes 0. This script asks what the check does with a knob that
is as good as a knob can be: the default CLIP's own gallery embeddings, from which the model's mean
appearance effects are removed exactly, in proportion.

For each gallery, occupation and attribute ``a``, ``D_{a,i} = μ_{occ, a, level_i} − μ_occ`` is image ``i``'s
appearance offset along ``a`` (the mean embedding of its occupation's images at its level of ``a``, minus the
occupation's mean). The knob at α embeds image ``i`` as ``z_i − Σ_a s_a(α)·D_{a,i}``; at α = 1 (``s_a = 1``) no
attribute shifts an occupation's mean embedding on that gallery, and what is left is each image's own,
appearance-independent variation and the interactions between attributes. Two kinds of path:

* ``linear`` (``--keep-powers q``): ``s_a(α) = 1 − (1 − α)^q`` for every attribute (``q = 1``: every mean effect
  shrinks in proportion, what CF_α's linear α path asks of a recipe; ``q > 1``: faster at first);
* ``others_first`` (``--others-first``): the attributes other than ``--planted`` are removed whole at the
  sweep's first α > 0, the planted one linearly (``s = α``): the order a top-k cut needs when the planted
  attribute masks the others in the base's ranking.

``--offsets joint`` removes ``μ_{occ, cell_i} − μ_occ`` in all, with ``cell_i`` image ``i``'s combination of
every attribute's level: the interactions between attributes go along with the main effects (in sample: a
cell holds about 10 of a 4,000-image gallery's images, so at α = 1 the cells' own noise is removed too, and
the skews can fall below a fair model's). It is split in two parts, the planted attribute's main effect
``D_planted`` and the rest (every other main effect and every interaction, the planted attribute's included),
so that ``others_first`` removes the rest whole at the first α > 0 and the planted main effect linearly.

Every α is measured exactly as the benchmark measures a model (the same galleries, metrics, intervals and paired
verdicts), on ``--triples`` disjoint triples of world seeds (0, 1, 2), (3, 4, 5), …: the share of triples on
which a path passes is what a recipe that follows it exactly could expect. ``spread_ratio_at_last_alpha``: per
attribute, how much wider the widest level's scores spread than the narrowest's at the last α
(:func:`spread_ratios`, mean over galleries and occupations); ``spread_ratio_by_chance``: the same of i.i.d.
scores on the same galleries (equal spreads: above 1 only by sampling).

    python benchmarks/cf_alpha_ideal_knob.py --triples 6 --keep-powers 1 2 --others-first \\
        --out benchmarks/results/cf_alpha_ideal_knob_cpu.json
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from trustvl.data_builders.synthworld import occupation_prompt
from trustvl.evaluation.synthworld import (
    GalleryFairness,
    combine_galleries,
    effect_vs_base,
    evaluate_synthworld,
    synthworld_test_set,
)
from trustvl.modeling.clip_components import normalize_uint8
from trustvl.modeling.embedding import embed_pixel_values, embed_texts
from trustvl.modeling.synthworld_clip import load_default_clip
from trustvl.utils.io import print_json


def _within_occupation_offsets(
    embeds: torch.Tensor, occupation: np.ndarray, groups: np.ndarray
) -> torch.Tensor:
    """``[n, d]``: each image's group mean minus its occupation's mean (groups taken within each occupation)."""
    occ, grp = torch.as_tensor(occupation), torch.as_tensor(groups)
    offsets = torch.zeros_like(embeds)
    for o in occ.unique():
        rows = occ == o
        mean = embeds[rows].mean(0)
        for g in grp[rows].unique():
            sel = rows & (grp == g)
            offsets[sel] = embeds[sel].mean(0) - mean
    return offsets


def appearance_offsets(
    embeds: torch.Tensor, occupation: np.ndarray, attributes: dict[str, np.ndarray]
) -> dict[str, torch.Tensor]:
    """Per attribute, ``D_a`` ``[n, d]``: each image's level-mean offset within its occupation (module
    docstring)."""
    return {
        name: _within_occupation_offsets(embeds, occupation, levels) for name, levels in attributes.items()
    }


def joint_offsets(
    embeds: torch.Tensor, occupation: np.ndarray, attributes: dict[str, np.ndarray], planted: str
) -> dict[str, torch.Tensor]:
    """``{planted: D_planted, "rest": D − D_planted}``: ``D`` each image's cell-mean offset within its
    occupation, the cell being its combination of every attribute's level, and ``D_planted`` the planted
    attribute's main effect (module docstring)."""
    _, cell = np.unique(np.stack(list(attributes.values()), axis=1), axis=0, return_inverse=True)
    whole = _within_occupation_offsets(embeds, occupation, cell.reshape(-1))
    main = _within_occupation_offsets(embeds, occupation, attributes[planted])
    return {planted: main, "rest": whole - main}


def spread_ratios(
    scores: torch.Tensor, occupation: np.ndarray, attributes: dict[str, np.ndarray]
) -> dict[str, float]:
    """Per attribute, the mean over occupations of max/min over levels of the standard deviation of the
    occupation's images' scores against its own prompt (``scores`` ``[n, n_occupations]``): 1 when no level's
    scores spread wider than another's. A knob that equalises the level means leaves these: a top-k cut takes
    more of the wider-spread level."""
    out = {}
    for name, levels in attributes.items():
        ratios = []
        for o in np.unique(occupation):
            rows = occupation == o
            own = scores[torch.as_tensor(rows), int(o)]
            stds = [float(own[torch.as_tensor(levels[rows] == v)].std()) for v in np.unique(levels[rows])]
            ratios.append(max(stds) / min(stds))
        out[name] = float(np.mean(ratios))
    return out


def chance_spread_ratios(
    occupation: np.ndarray,
    attributes: dict[str, np.ndarray],
    n_occupations: int,
    draws: int = 50,
    seed: int = 0,
) -> dict[str, float]:
    """:func:`spread_ratios` of scores drawn i.i.d. (every level's spread equal), averaged over ``draws``: what
    the ratio is by chance on this gallery's level counts."""
    g = torch.Generator().manual_seed(seed)
    runs = [
        spread_ratios(torch.randn(len(occupation), n_occupations, generator=g), occupation, attributes)
        for _ in range(draws)
    ]
    return {a: float(np.mean([r[a] for r in runs])) for a in attributes}


def path_shares(
    path: str, alphas: list[float], attributes: list[str], planted: str
) -> list[dict[str, float]]:
    """Per α of ``alphas``, the share ``s_a(α)`` of each attribute's offset removed (module docstring):
    ``path`` is ``"linear:q"`` or ``"others_first"``."""
    if path == "others_first":
        first = min((a for a in alphas if a > 0), default=1.0)
        return [
            {a: (alpha if a == planted else float(alpha >= first)) for a in attributes} for alpha in alphas
        ]
    q = float(path.split(":")[1])
    return [{a: 1.0 - (1.0 - alpha) ** q for a in attributes} for alpha in alphas]


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
    ap.add_argument(
        "--keep-powers", type=float, nargs="+", default=[1.0], help="q of the linear paths' (1 − α)^q"
    )
    ap.add_argument("--others-first", action="store_true", help="also the others_first path")
    ap.add_argument("--planted", default="skin_tone", help="the attribute others_first removes last")
    ap.add_argument(
        "--offsets",
        default="main",
        choices=["main", "joint"],
        help="per-attribute main effects, or cell means",
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.triples < 1 or args.n_test < args.k:
        sys.exit(f"--triples {args.triples} / --n-test {args.n_test}: expected >= 1 triple and n_test >= k")
    t0 = time.perf_counter()
    model, processor = load_default_clip(device="cpu", dtype="float32")
    alphas = sorted(args.alphas)
    paths = [f"linear:{q:g}" for q in args.keep_powers] + (["others_first"] if args.others_first else [])
    # per path, per α: the GalleryFairness of every gallery (seed order)
    per = {p: [[] for _ in alphas] for p in paths}
    spreads = {p: [] for p in paths}  # per path, per gallery: spread_ratios at the last α
    chance = []  # per gallery: chance_spread_ratios
    seeds = list(range(args.first_seed, args.first_seed + 3 * args.triples))
    for i, seed in enumerate(seeds):
        test = synthworld_test_set(args.n_test, seed, 64)
        if args.planted not in test.attributes:
            sys.exit(f"--planted {args.planted!r}; expected one of {', '.join(test.attributes)}")
        embeds = embed_pixel_values(model, normalize_uint8(test.images, processor.image_processor))
        prompts = embed_texts(model, processor, [occupation_prompt(o) for o in test.occupations])
        chance.append(
            chance_spread_ratios(test.occupation, test.attributes, len(test.occupations), seed=seed)
        )
        if args.offsets == "main":
            offsets = appearance_offsets(embeds, test.occupation, test.attributes)
        else:
            offsets = joint_offsets(embeds, test.occupation, test.attributes, args.planted)
        for p in paths:
            for j, shares in enumerate(path_shares(p, alphas, list(offsets), args.planted)):
                moved = embeds - sum(shares[a] * offsets[a] for a in offsets)
                ev = evaluate_synthworld(
                    model,
                    processor,
                    n_test=args.n_test,
                    world_seed=seed,
                    ks=(args.k,),
                    n_recall=0,
                    image_embeds=moved,
                )
                per[p][j].append(GalleryFairness.of(seed, ev, args.k))
            spreads[p].append(spread_ratios(moved @ prompts.T, test.occupation, test.attributes))
        print(
            f"[ideal knob] gallery {i + 1}/{len(seeds)} (world seed {seed}) at {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        synthworld_test_set.cache_clear()
    results = {}
    for p in paths:
        triples = []
        for t in range(args.triples):
            galleries = [per[p][j][3 * t : 3 * t + 3] for j in range(len(alphas))]
            row = sweep_verdicts(galleries, alphas, args.k)
            row["world_seeds"] = seeds[3 * t : 3 * t + 3]
            triples.append(row)
        n_pass = sum(r["monotone"] for r in triples)
        verdicts = 4 * 2 * (len(alphas) - 1)
        n_worse = sum(len(r["worse_steps"]) for r in triples)
        results[p] = {
            "monotone_triples": n_pass,
            "triples": len(triples),
            "monotone_share": round(n_pass / len(triples), 3),
            "worse_verdicts": n_worse,
            "verdicts": verdicts * len(triples),
            "spread_ratio_at_last_alpha": {
                a: round(float(np.mean([g[a] for g in spreads[p]])), 3) for a in spreads[p][0]
            },
            "per_triple": triples,
        }
    print_json(
        {
            "benchmark": "cf_alpha_ideal_knob",
            "settings": {k: v for k, v in vars(args).items() if k != "out"},
            "spread_ratio_by_chance": {
                a: round(float(np.mean([g[a] for g in chance])), 3) for a in chance[0]
            },
            "paths": results,
            "seconds": round(time.perf_counter() - t0, 1),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
