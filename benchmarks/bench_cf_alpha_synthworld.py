"""CF_α effect on SynthWorld: MaxSkew@100 / NDKL drop and zero-shot change at α = 1 vs the base CLIP.

Runs trustvl's demo pipeline (audit → counterfactuals → CF_α fine-tuning → α sweep) at benchmark size,
then measures the CF_α model at every α of the sweep (α = 0 is the base CLIP) on the balanced test galleries
of several world seeds (``--world-seeds``; MaxSkew@100 of one 4,000-image gallery has a sampling std of ~0.02,
see :func:`~trustvl.evaluation.synthworld.fairness_over_galleries`) and prints JSON: each α against the base
and against the previous α with paired verdicts, and ``monotone`` (no step worse beyond noise in any
attribute, MaxSkew@100 or NDKL: issue 26); also records the sampling floor of the metrics (a ranking that is
random within each occupation), which bounds how far any method can lower MaxSkew@100.

``--recipe demo`` (default) trains the demo's own CF_α recipe (:func:`trustvl.jobs.demo.demo_cf_alpha_recipe`,
the one default of issue 26) with the demo's set sizes; ``--recipe benchmark`` the GPU-sized recipe of the
earlier rounds (100 bases per occupation × 8 balanced variants, 800 steps × 32 sets, β0 = 30, score
cohesion β_s = 20, LoRA r = 8 on every layer of the vision tower, lr 1e-3; ``F1`` of
``benchmarks/results/cf_alpha_recipe_score_cohesion3.json``; pass ``--n-base-per-occupation 100
--variants-per-base 8`` for its set sizes). Three training seeds: ``--seed 0/1/2``.

    python benchmarks/bench_cf_alpha_synthworld.py --seed 0 --out runs/bench_cf_alpha \
        --json-out benchmarks/results/cf_alpha_web_seed0.json [--quick]

Goal (CF_α issue): for the planted attribute (skin tone), mean MaxSkew@100 and mean NDKL over the
occupation prompts drop by >= 50%, zero-shot occupation accuracy within 2 points of the base.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch


def sampling_floor(n_test: int, attribute: str, trials: int = 20, k: int = 100) -> dict[str, float]:
    """Mean and std over ``trials`` rankings random within each occupation of mean MaxSkew@k and NDKL."""
    from trustvl.evaluation.synthworld import synthworld_test_set
    from trustvl.metrics import max_skew, ndkl, rank_labels, uniform_target

    ts = synthworld_test_set(n_test)
    occ = torch.as_tensor(ts.occupation)
    labels = torch.as_tensor(ts.attributes[attribute])
    m = len(ts.attribute_levels[attribute])
    gen = torch.Generator().manual_seed(0)
    ms, nd = [], []
    for _ in range(trials):
        scores = (occ[None, :] == torch.arange(len(ts.occupations))[:, None]).float()
        scores = scores + 0.01 * torch.rand(scores.shape, generator=gen)
        ranked = rank_labels(scores, labels)
        ms.append(float(max_skew(ranked, uniform_target(m), k).mean()))
        nd.append(float(ndkl(ranked, uniform_target(m)).mean()))
    t = torch.tensor([ms, nd], dtype=torch.float64)
    return {
        "k": k,
        "max_skew_mean": float(t[0].mean()),
        "max_skew_std": float(t[0].std()),
        "ndkl_mean": float(t[1].mean()),
        "ndkl_std": float(t[1].std()),
    }


def _galleries(run_dir: str, world_seeds: list[int], n_test: int, alphas: list[float]) -> dict:
    """Base (α = 0) and the CF_α model at every α of ``alphas`` on the galleries of ``world_seeds``: metrics,
    each α against the base and against the previous α (paired verdicts), and whether the knob is monotone
    (no step worse beyond noise in any attribute, MaxSkew@100 or NDKL)."""
    from trustvl.evaluation.synthworld import effect_vs_base, fairness_over_galleries
    from trustvl.modeling.embedding import load_clip

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, processor = load_clip(Path(run_dir) / "cf_alpha" / "model", device=device)
    measured = []
    for alpha in sorted(alphas):
        model.set_alpha(float(alpha))
        measured.append((float(alpha), fairness_over_galleries(model, processor, world_seeds, n_test=n_test)))
    base = measured[0][1]
    steps, worse = [], []
    for (a_prev, prev), (a, cur) in zip(measured, measured[1:]):
        effect = effect_vs_base(prev, cur).to_dict()
        steps.append({"from_alpha": a_prev, "alpha": a, "effect": effect})
        for metric in ("max_skew_change", "ndkl_change"):
            for attr, change in (effect.get(metric) or {}).items():
                if change and change.get("verdict") == "worse":
                    worse.append({"alpha": a, "metric": metric.removesuffix("_change"), "attribute": attr})
    return {
        "alphas": [a for a, _ in measured],
        "per_alpha": [{"alpha": a, "fairness": m.to_dict()} for a, m in measured],
        "base": base.to_dict(),
        "cf_alpha": measured[-1][1].to_dict(),
        "effect": effect_vs_base(base, measured[-1][1]).to_dict(),
        "vs_base": [{"alpha": a, "effect": effect_vs_base(base, m).to_dict()} for a, m in measured[1:]],
        "vs_previous": steps,
        "monotone": not worse,
        "worse_steps": worse,
        "world_seeds": list(world_seeds),
    }


def _sweep_rows(path: Path, k: int = 100) -> list[dict]:
    """Per α: zero-shot top-1 and, per attribute, mean MaxSkew@k and NDKL (the demo gallery)."""
    from trustvl.evaluation.results import AlphaSweepResult

    sweep = AlphaSweepResult.from_dict(json.loads(path.read_text()))
    return [
        {
            "alpha": p.alpha,
            "zero_shot_top1": p.evaluation.zero_shot_top1,
            "k": k,
            "max_skew": {a: f.at_k[k].max_skew for a, f in p.evaluation.fairness.items()},
            "ndkl": {a: f.ndkl for a, f in p.evaluation.fairness.items()},
        }
        for p in sweep.points
    ]


def _recipe(args: argparse.Namespace):
    """The CF_α recipe: the demo's default (``demo``, issue 26's one default) or the GPU-sized ``benchmark``
    recipe of earlier rounds (every vision layer, 800 steps × 32 sets of 8, lr 1e-3)."""
    from trustvl.jobs.demo import demo_cf_alpha_recipe
    from trustvl.training.cf_alpha import VISION_LORA_TARGETS, CFAlphaConfig

    if args.recipe == "demo":
        recipe = demo_cf_alpha_recipe()
        return dataclasses.replace(recipe, **args.cf_alpha) if args.cf_alpha else recipe
    return CFAlphaConfig(
        dataset="data/counterfactuals",
        output_dir="cf_alpha",
        per_device_train_batch_size=args.sets_per_batch,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        lora_target_modules=VISION_LORA_TARGETS if args.lora_targets == "vision" else None,
        variants_per_set=args.variants_per_set,
        beta_cf=args.beta_cf,
        beta_score=args.beta_score,
        save_strategy="no",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/bench_cf_alpha")
    ap.add_argument(
        "--recipe",
        choices=["demo", "benchmark"],
        default="demo",
        help="demo: the demo's default CF_α recipe (sizes below ignored but the gallery and sets); "
        "benchmark: the GPU-sized recipe set by the options below",
    )
    ap.add_argument("--n-test", type=int, default=4000)
    ap.add_argument("--n-base-per-occupation", type=int, default=None, help="default: the demo's")
    ap.add_argument("--variants-per-base", type=int, default=None, help="default: the demo's")
    ap.add_argument("--variants-per-set", type=int, default=8)
    ap.add_argument("--sets-per-batch", type=int, default=32)
    ap.add_argument("--max-steps", type=int, default=800)
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--beta-cf", type=float, default=30.0)
    ap.add_argument("--beta-score", type=float, default=20.0)
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--world-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--seed", type=int, default=0, help="seed of every stage (the training seed)")
    ap.add_argument(
        "--lora-targets",
        choices=["vision", "both"],
        default="vision",
        help="benchmark recipe: every layer of the vision tower, or both",
    )
    ap.add_argument(
        "--cf-alpha",
        type=json.loads,
        default={},
        help="demo recipe: JSON object of CFAlphaConfig fields on top of it, as in"
        " benchmarks/recipes/recipes_demo_mono.json, e.g. '{\"alpha_range\": [0, 1], \"max_steps\": 240}'",
    )
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    ap.add_argument("--json-out", default="benchmarks/results/cf_alpha_synthworld.json")
    return ap.parse_args(argv)


def demo_config(args: argparse.Namespace):
    """The :class:`~trustvl.jobs.demo.DemoConfig` the benchmark runs (``--quick`` shrinks it in place)."""
    from trustvl.jobs.demo import DemoConfig

    cf_alpha = _recipe(args)
    sizes = {}
    if args.n_base_per_occupation is not None:
        sizes["n_base_per_occupation"] = args.n_base_per_occupation
    if args.variants_per_base is not None:
        sizes["variants_per_base"] = args.variants_per_base
    if args.quick:
        args.n_test, args.world_seeds = 256, args.world_seeds[:1]
        sizes["n_base_per_occupation"] = 2
        cf_alpha.max_steps, cf_alpha.per_device_train_batch_size = 3, 4
    return DemoConfig(
        out_dir=args.out,
        n_test=args.n_test,
        cf_alpha=cf_alpha,
        alphas=sorted(args.alphas),
        seed=args.seed,
        overwrite=True,
        progress=False,
        **sizes,
    )


def main() -> None:
    from trustvl.jobs.demo import run_demo

    args = parse_args()
    t0 = time.perf_counter()
    cfg = demo_config(args)
    res = run_demo(cfg)
    galleries = _galleries(args.out, args.world_seeds, args.n_test, args.alphas)
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpus": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "settings": {k: v for k, v in vars(args).items() if k != "json_out"},
        "recipe": cfg.summary()["cf_alpha"],
        "galleries": galleries,
        "demo_gallery": {
            "zero_shot_top1": asdict(res.zero_shot_top1),
            "effect": {a: asdict(e) for a, e in res.effect.items()},
        },
        "alpha_sweep": _sweep_rows(Path(args.out) / "sweep" / "metrics.json"),
        "sampling_floor_skin_tone": sampling_floor(args.n_test, "skin_tone"),
        "seconds": res.seconds,
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(report, indent=2))
    if not args.quick:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
