"""CF_α effect on SynthWorld: MaxSkew@100 / NDKL drop and zero-shot change at α = 1 vs the base CLIP.

Runs trustvl's demo pipeline (audit → counterfactuals → CF_α fine-tuning → α sweep) at benchmark size,
then measures the base CLIP and the CF_α model at α = 1 on the balanced test galleries of several world
seeds (``--world-seeds``; MaxSkew@100 of one 4,000-image gallery has a sampling std of ~0.02, see
:func:`~trustvl.evaluation.synthworld.fairness_over_galleries`) and prints JSON; also records the
sampling floor of the metrics (a ranking that is random within each occupation), which bounds how far any
method can lower MaxSkew@100.

The default recipe (100 bases per occupation × 8 balanced variants, 800 steps × 32 sets, β0 = 30, score
cohesion β_s = 20, LoRA r = 8 on every layer of the vision tower, lr 1e-3) is the one picked by
``benchmarks/search_cf_alpha_recipe.py`` (rounds in ``benchmarks/results/cf_alpha_recipe_*.json``; this one is
``F1`` of ``cf_alpha_recipe_score_cohesion3.json``).

    python benchmarks/bench_cf_alpha_synthworld.py --out runs/bench_cf_alpha [--quick]

Goal (CF_α issue): for the planted attribute (skin tone), mean MaxSkew@100 and mean NDKL over the
occupation prompts drop by >= 50%, zero-shot occupation accuracy within 2 points of the base.
"""

from __future__ import annotations

import argparse
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


def _galleries(run_dir: str, world_seeds: list[int], n_test: int) -> dict:
    """Base vs CF_α (α = 1) on the galleries of ``world_seeds``: metrics and drops."""
    from trustvl.evaluation.synthworld import effect_vs_base, fairness_over_galleries
    from trustvl.modeling.embedding import load_clip
    from trustvl.modeling.synthworld_clip import default_clip_path

    device = "cuda" if torch.cuda.is_available() else "cpu"
    measured = {}
    for name, path in (("base", default_clip_path()), ("cf_alpha", Path(run_dir) / "cf_alpha" / "model")):
        model, processor = load_clip(path, device=device)
        if hasattr(model, "set_alpha"):
            model.set_alpha(1.0)
        measured[name] = fairness_over_galleries(model, processor, world_seeds, n_test=n_test)
    return {
        "base": measured["base"].to_dict(),
        "cf_alpha": measured["cf_alpha"].to_dict(),
        "effect": effect_vs_base(measured["base"], measured["cf_alpha"]).to_dict(),
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


def main() -> None:
    from trustvl.jobs.demo import DemoConfig, run_demo
    from trustvl.training.cf_alpha import VISION_LORA_TARGETS

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/bench_cf_alpha")
    ap.add_argument("--n-test", type=int, default=4000)
    ap.add_argument("--n-base-per-occupation", type=int, default=100)
    ap.add_argument("--variants-per-base", type=int, default=8)
    ap.add_argument("--variants-per-set", type=int, default=8)
    ap.add_argument("--sets-per-batch", type=int, default=32)
    ap.add_argument("--max-steps", type=int, default=800)
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--beta-cf", type=float, default=30.0)
    ap.add_argument("--beta-score", type=float, default=20.0)
    ap.add_argument("--world-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--lora-targets",
        choices=["vision", "both"],
        default="vision",
        help="every layer of the vision tower, or both",
    )
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    ap.add_argument("--json-out", default="benchmarks/results/cf_alpha_synthworld.json")
    args = ap.parse_args()
    if args.quick:
        args.n_test, args.n_base_per_occupation, args.sets_per_batch, args.max_steps = 256, 2, 4, 3
    t0 = time.perf_counter()
    cfg = DemoConfig(
        out_dir=args.out,
        n_test=args.n_test,
        n_base_per_occupation=args.n_base_per_occupation,
        variants_per_base=args.variants_per_base,
        sets_per_batch=args.sets_per_batch,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        lora_target_modules=VISION_LORA_TARGETS if args.lora_targets == "vision" else None,
        training={
            "variants_per_set": args.variants_per_set,
            "beta_cf": args.beta_cf,
            "beta_score": args.beta_score,
        },
        seed=args.seed,
        overwrite=True,
        progress=False,
    )
    res = run_demo(cfg)
    galleries = _galleries(args.out, args.world_seeds, args.n_test)
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpus": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "settings": {k: v for k, v in vars(args).items() if k != "json_out"},
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
