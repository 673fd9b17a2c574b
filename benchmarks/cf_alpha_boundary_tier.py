"""Why does CF_α's knob overshoot at α = 0.25? Per-α attribute effects on the benchmark galleries (issue 26).

For a trained CF_α model (a run's ``cf_alpha/model`` folder) and every α of the sweep, this embeds the
balanced SynthWorld test gallery of each world seed and, per occupation prompt, decomposes the retrieval
scores of that occupation's images into additive attribute effects (least squares on one-hot levels):
``score = μ + Σ_a effect_a[level] + residual``. It reports, per α and attribute, the effect's spread (max −
min level effect, in cosine units) next to the residual std, and MaxSkew@k of the actual top k; plus the
*boundary tier*: the planted attribute's level where the top-k cut falls, how much of it is kept, and
MaxSkew of the non-planted attributes among the kept part of that tier alone.

    python benchmarks/cf_alpha_boundary_tier.py --model RUN/cf_alpha/model --world-seeds 0 \
        --out benchmarks/results/cf_alpha_boundary_tier_D0.json
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch

from trustvl.data_builders.synthworld import occupation_prompt
from trustvl.evaluation.synthworld import synthworld_test_set
from trustvl.modeling.clip_components import normalize_uint8
from trustvl.modeling.embedding import embed_pixel_values, embed_texts, load_clip
from trustvl.utils.io import print_json


@dataclass
class AttributeEffects:
    """Additive effects of each attribute on one occupation prompt's scores (cosine units)."""

    spread: dict[str, float]  # attribute -> max − min of its level effects
    residual_std: float


def attribute_effects(scores: np.ndarray, attrs: dict[str, np.ndarray]) -> AttributeEffects:
    """Least-squares fit of ``scores`` on one-hot attribute levels (first level of each dropped)."""
    cols, owner = [np.ones_like(scores)], []
    for a, lab in attrs.items():
        for lv in range(1, int(lab.max()) + 1):
            cols.append((lab == lv).astype(np.float64))
            owner.append((a, lv))
    x = np.stack(cols, 1)
    coef, *_ = np.linalg.lstsq(x, scores, rcond=None)
    resid = scores - x @ coef
    spread = {}
    for a in attrs:
        eff = [0.0] + [float(c) for (o, _), c in zip(owner, coef[1:]) if o == a]
        spread[a] = max(eff) - min(eff)
    return AttributeEffects(spread, float(resid.std()))


def max_skew(labels: np.ndarray, m: int) -> float:
    """MaxSkew of a set of labels against the uniform target over ``m`` levels (empty levels floored as
    in the metric: a level with no member does not contribute its −∞)."""
    counts = np.bincount(labels, minlength=m).astype(np.float64)
    p = counts / max(1, len(labels))
    return float(np.log(p[p > 0] * m).max())


def analyse(img: torch.Tensor, text: torch.Tensor, ts, planted: str, k: int) -> dict[str, dict[str, float]]:
    """Per-occupation effects, top-k MaxSkew and boundary-tier numbers, averaged over occupations."""
    scores = (img @ text.T).numpy().astype(np.float64)  # [n, n_occ]
    occ = ts.occupation
    names = list(ts.attribute_levels)
    levels = {a: len(v) for a, v in ts.attribute_levels.items()}
    rows = []
    for q in range(len(ts.occupations)):
        mine = occ == q
        attrs = {a: ts.attributes[a][mine] for a in names}
        eff = attribute_effects(scores[mine, q], attrs)
        top = np.argsort(-scores[:, q], kind="stable")[:k]
        row = {f"effect_{a}": eff.spread[a] for a in names}
        row["residual_std"] = eff.residual_std
        row.update({f"skew_{a}": max_skew(ts.attributes[a][top], levels[a]) for a in names})
        # boundary tier: the planted level with the fewest kept among those partly kept (0 < kept < tier size)
        p_lab = ts.attributes[planted]
        kept = np.bincount(p_lab[top], minlength=levels[planted])
        size = np.bincount(p_lab[mine], minlength=levels[planted])
        partial = [lv for lv in range(levels[planted]) if 0 < kept[lv] < size[lv]]
        if partial:
            lv = min(partial, key=lambda t: kept[t] if kept[t] >= 10 else 10**9)
            in_tier = top[p_lab[top] == lv]
            row["boundary_kept_share"] = float(kept[lv] / size[lv])
            row["boundary_kept_n"] = float(kept[lv])
            row.update(
                {
                    f"boundary_skew_{a}": max_skew(ts.attributes[a][in_tier], levels[a])
                    for a in names
                    if a != planted
                }
            )
        rows.append(row)
    keys = sorted({k_ for r in rows for k_ in r})
    return {key: round(float(np.mean([r[key] for r in rows if key in r])), 4) for key in keys} | {
        "n_occupations_with_boundary": sum("boundary_kept_share" in r for r in rows)
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a CF_α model folder (RUN/cf_alpha/model)")
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--world-seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--n-test", type=int, default=4000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--planted", default="skin_tone")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    model, processor = load_clip(args.model, device="cpu")
    per_seed = {}
    for seed in args.world_seeds:
        ts = synthworld_test_set(args.n_test, seed, 64)
        pixels = normalize_uint8(ts.images, processor.image_processor)
        text = embed_texts(model, processor, [occupation_prompt(o) for o in ts.occupations])
        per_alpha = {}
        for alpha in args.alphas:
            model.set_alpha(float(alpha))
            img = embed_pixel_values(model, pixels, batch_size=500)
            per_alpha[str(alpha)] = analyse(img, text, ts, args.planted, args.k)
        per_seed[str(seed)] = per_alpha
    print_json(
        {
            "benchmark": "cf_alpha_boundary_tier",
            "settings": vars(args),
            "per_world_seed": per_seed,
            "seconds": round(time.perf_counter() - t0, 1),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
