"""Why does CF_α's knob overshoot at α = 0.25? Each attribute's effect on the retrieval scores per α (issue 26).

For a trained CF_α model (a run's ``cf_alpha/model`` folder) and every α of the sweep:

* **gallery** (the benchmark's balanced SynthWorld test gallery of each ``--world-seeds``): per occupation
  prompt, the scores of that occupation's images are fitted as ``μ + Σ_a effect_a[level] + residual`` (least
  squares on one-hot levels). Reported, averaged over the occupations: each attribute's effect spread (max −
  min level effect, cosine units), the residual std, the *standardised* effect (spread / residual std: what
  a top-k cut turns into skew), MaxSkew@k of the actual top k and the share of the planted attribute's most
  frequent level in it. Independent scenes: an effect spread carries sampling noise of about
  ``2·residual_std/sqrt(n per occupation)`` (≈ 0.0006 here), so small spreads are biased upwards.
* **paired** (``--counterfactuals DIR``, a counterfactual build such as a run's ``data/counterfactuals``):
  the same spreads measured on counterfactual sets, each variant's score against its occupation prompt minus
  its set's mean: the base scene cancels, so these are the model's own attribute effects without the
  gallery's sampling noise.
* **top k without the paired effects** (with ``--counterfactuals``): each gallery image's score minus the
  build's paired effect of its level (per occupation, every attribute but ``--planted``), then MaxSkew@k of
  that ranking (``max_skew_minus_paired_*``). If it falls to the sampling floor, the mean effects measured on
  the training sets are what skews the gallery's top k (session 17: so they are, for the demo's recipe at
  α = 0.75 and 1).

    python benchmarks/cf_alpha_attribute_effects.py --model RUN/cf_alpha/model \
        --counterfactuals RUN/data/counterfactuals --world-seeds 0 --out effects.json

``--train RECIPE_JSON --model DIR`` first trains the demo's CF_α recipe with those overrides (the
benchmark's ``--cf-alpha``) on ``--counterfactuals`` into ``DIR`` (the CPU proxy of issue 26's search: the
benchmark's training without its audit, build and three-gallery sweep), then measures ``DIR/model``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch

from trustvl.data_builders.synthworld import SynthWorldConfig, occupation_prompt
from trustvl.evaluation.synthworld import synthworld_test_set
from trustvl.hub.loading import load_dataset_any
from trustvl.jobs.demo import demo_cf_alpha_recipe
from trustvl.modeling.clip_components import normalize_uint8
from trustvl.modeling.embedding import embed_pixel_values, embed_texts, load_clip
from trustvl.training.cf_alpha import train_cf_alpha
from trustvl.utils.io import print_json


def effect_spreads(scores: np.ndarray, attributes: dict[str, np.ndarray]) -> tuple[dict[str, float], float]:
    """Least-squares fit of ``scores`` on one-hot attribute levels (an intercept, first level of each
    dropped): each attribute's spread of level effects (max − min) and the residual std."""
    cols, owner = [np.ones_like(scores, dtype=np.float64)], []
    for a, lab in attributes.items():
        for lv in range(1, int(lab.max()) + 1):
            cols.append((lab == lv).astype(np.float64))
            owner.append(a)
    x = np.stack(cols, 1)
    coef, *_ = np.linalg.lstsq(x, scores.astype(np.float64), rcond=None)
    spread = {}
    for a in attributes:
        eff = [0.0] + [float(c) for o, c in zip(owner, coef[1:]) if o == a]
        spread[a] = max(eff) - min(eff)
    return spread, float((scores - x @ coef).std())


def paired_level_effects(
    scores: np.ndarray, sets: np.ndarray, attributes: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Per attribute, the mean set-centred score of each level (index = level; a level absent from the sets
    gets 0): the signed paired effects whose spread :func:`paired_spreads` reports."""
    _, inverse, counts = np.unique(sets, return_inverse=True, return_counts=True)
    centred = scores - (np.bincount(inverse, weights=scores) / counts)[inverse]
    out = {}
    for a, lab in attributes.items():
        n = np.bincount(lab, minlength=int(lab.max()) + 1)
        out[a] = np.bincount(lab, weights=centred, minlength=len(n)) / np.maximum(n, 1)
    return out


def paired_spreads(
    scores: np.ndarray, sets: np.ndarray, attributes: dict[str, np.ndarray]
) -> dict[str, float]:
    """Each attribute's spread (max − min over the levels present) of the mean set-centred score: ``scores``
    minus the mean of their counterfactual set, so whatever the variants share (the scene) cancels."""
    effects = paired_level_effects(scores, sets, attributes)
    out = {}
    for a, eff in effects.items():
        present = eff[np.unique(attributes[a])]
        out[a] = float(present.max() - present.min())
    return out


def max_skew(labels: np.ndarray, m: int) -> float:
    """MaxSkew of ``labels`` against the uniform target over ``m`` levels (levels with no member, whose
    log-ratio is −∞, never set the max)."""
    p = np.bincount(labels, minlength=m) / max(1, len(labels))
    return float(np.log(p[p > 0] * m).max())


def gallery_effects(
    img: torch.Tensor,
    text: torch.Tensor,
    ts,
    planted: str,
    k: int,
    level_effects: dict[int, dict[str, np.ndarray]] | None = None,
) -> dict[str, float]:
    """Occupation-averaged effect spreads, standardised effects, top-k MaxSkew and the planted attribute's
    top-level share in the top k (see the module docstring), and the gallery's zero-shot top-1. With
    ``level_effects`` (occupation -> attribute -> signed effect per level, :func:`paired_level_effects` on a
    counterfactual build) also ``max_skew_minus_paired_*``: the top k once each image of the occupation
    lost its levels' effects, every attribute but ``planted``."""
    scores = (img @ text.T).numpy().astype(np.float64)  # [n, n_occupations]
    levels = {a: len(v) for a, v in ts.attribute_levels.items()}
    rows = []
    for q in range(len(ts.occupations)):
        mine = ts.occupation == q
        spread, resid = effect_spreads(scores[mine, q], {a: ts.attributes[a][mine] for a in levels})
        top = np.argsort(-scores[:, q], kind="stable")[:k]
        row = {f"effect_{a}": s for a, s in spread.items()} | {"residual_std": resid}
        row |= {f"standardised_{a}": s / resid for a, s in spread.items()}
        row |= {f"max_skew_{a}": max_skew(ts.attributes[a][top], levels[a]) for a in levels}
        row[f"top_level_share_{planted}"] = float(np.bincount(ts.attributes[planted][top]).max() / k)
        if level_effects is not None:
            adjusted = scores[:, q].copy()
            for a, eff in level_effects[q].items():
                if a != planted:
                    adjusted[mine] -= eff[ts.attributes[a][mine]]
            top = np.argsort(-adjusted, kind="stable")[:k]
            row |= {
                f"max_skew_minus_paired_{a}": max_skew(ts.attributes[a][top], levels[a])
                for a in levels
                if a != planted
            }
        rows.append(row)
    out = {key: round(float(np.mean([r[key] for r in rows])), 5) for key in rows[0]}
    out["zero_shot_top1"] = round(float((scores.argmax(1) == ts.occupation).mean()), 5)
    return out


def paired_effects(
    model, processor, data_dir: str, attributes: list[str], alphas: list[float]
) -> tuple[dict, dict]:
    """Per α: :func:`paired_spreads` of each variant's score against its occupation prompt, averaged over
    the occupations, and per occupation the signed :func:`paired_level_effects`."""
    ds = load_dataset_any(data_dir, split="train")
    occupations = ds.features["occupation"].names
    pixels = normalize_uint8(
        np.stack([np.asarray(im.convert("RGB")) for im in ds["image"]]), processor.image_processor
    )
    text = embed_texts(model, processor, [occupation_prompt(o) for o in occupations])
    occ, sets = np.asarray(ds["occupation"]), np.asarray(ds["base_id"])
    labels = {a: np.asarray(ds[a]) for a in attributes}
    out, level_effects = {}, {}
    for alpha in alphas:
        model.set_alpha(float(alpha))
        scores = (embed_pixel_values(model, pixels, batch_size=512) * text[occ]).sum(-1).numpy()
        scores = scores.astype(np.float64)
        mine = [{a: v[occ == q] for a, v in labels.items()} for q in range(len(occupations))]
        per_occ = [paired_spreads(scores[occ == q], sets[occ == q], mine[q]) for q in range(len(occupations))]
        out[str(alpha)] = {a: round(float(np.mean([p[a] for p in per_occ])), 5) for a in attributes}
        level_effects[str(alpha)] = {
            q: paired_level_effects(scores[occ == q], sets[occ == q], mine[q])
            for q in range(len(occupations))
        }
    return out, level_effects


def proxy_recipe(overrides: dict, counterfactuals: str, out_dir: str, seed: int = 0):
    """The demo's CF_α recipe with ``overrides`` (as the benchmark's ``--cf-alpha``), on ``counterfactuals``,
    written to ``out_dir``."""
    return dataclasses.replace(
        demo_cf_alpha_recipe(),
        dataset=counterfactuals,
        output_dir=out_dir,
        seed=seed,
        disable_tqdm=True,
        **overrides,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a CF_α model folder (RUN/cf_alpha/model)")
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--world-seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--n-test", type=int, default=4000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--planted", default="skin_tone")
    ap.add_argument("--counterfactuals", default=None, help="a counterfactual build for the paired effects")
    ap.add_argument("--train", type=json.loads, default=None, help="train this --cf-alpha recipe first")
    ap.add_argument("--seed", type=int, default=0, help="training seed (with --train)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    train = None
    if args.train is not None:
        if not args.counterfactuals:
            ap.error("--train needs --counterfactuals (the sets to train on)")
        summary = train_cf_alpha(proxy_recipe(args.train, args.counterfactuals, args.model, args.seed))
        train = {k: summary[k] for k in ("train_seconds", "global_step", "final_loss", "last_log")}
        args.model = summary["model_dir"]
    model, processor = load_clip(args.model, device="cpu")
    model.requires_grad_(False)
    paired = level_effects = None
    if args.counterfactuals:
        attributes = list(SynthWorldConfig().attributes)
        paired, level_effects = paired_effects(
            model, processor, args.counterfactuals, attributes, args.alphas
        )
    gallery = {}
    for seed in args.world_seeds:
        ts = synthworld_test_set(args.n_test, seed, 64)
        pixels = normalize_uint8(ts.images, processor.image_processor)
        text = embed_texts(model, processor, [occupation_prompt(o) for o in ts.occupations])
        per_alpha = {}
        for alpha in args.alphas:
            model.set_alpha(float(alpha))
            img = embed_pixel_values(model, pixels, batch_size=500)
            per_alpha[str(alpha)] = gallery_effects(
                img, text, ts, args.planted, args.k, level_effects and level_effects[str(alpha)]
            )
        gallery[str(seed)] = per_alpha
    print_json(
        {
            "benchmark": "cf_alpha_attribute_effects",
            "settings": vars(args),
            "train": train,
            "gallery": gallery,
            "paired": paired,
            "seconds": round(time.perf_counter() - t0, 1),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
