"""CF_α effect on SynthWorld: MaxSkew@100 / NDKL drop and zero-shot change at α = 1 vs the base CLIP.

Runs trustvl's demo pipeline (audit → counterfactuals → CF_α fine-tuning → α sweep) at benchmark size
and prints JSON; also records the sampling floor of the metrics (a ranking that is random within each
occupation), which bounds how far any method can lower MaxSkew@100 on this gallery.

    python benchmarks/bench_cf_alpha_synthworld.py --out runs/bench_cf_alpha [--quick]

Goal (CF_α issue): for the planted attribute (skin tone), mean MaxSkew@100 and mean NDKL over the
occupation prompts drop by >= 50%, zero-shot occupation accuracy within 2 points of the base.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch


def sampling_floor(n_test: int, attribute: str, trials: int = 20, k: int = 100) -> dict[str, float]:
    from trustvl.metrics import max_skew, ndkl, rank_labels, uniform_target
    from trustvl.pipelines.synthworld_eval import synthworld_test_set

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
        f"mean_max_skew@{k}": float(t[0].mean()),
        f"std_max_skew@{k}": float(t[0].std()),
        "mean_ndkl": float(t[1].mean()),
        "std_ndkl": float(t[1].std()),
    }


def main() -> None:
    from trustvl.pipelines.demo import DemoConfig, run_demo

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/bench_cf_alpha")
    ap.add_argument("--n-test", type=int, default=4000)
    ap.add_argument("--n-base-per-occupation", type=int, default=48)
    ap.add_argument("--sets-per-batch", type=int, default=16)
    ap.add_argument("--max-steps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lora-targets", choices=["vision", "both"], default="vision")
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
        sets_per_batch=args.sets_per_batch,
        max_steps=args.max_steps,
        seed=args.seed,
        lora_targets=args.lora_targets,
        overwrite=True,
        progress=False,
    )
    res = run_demo(cfg)
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpus": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "settings": {k: v for k, v in vars(args).items() if k != "json_out"},
        "zero_shot_top1": res["zero_shot_top1"],
        "effect": res["effect"],
        "sampling_floor_skin_tone": sampling_floor(args.n_test, "skin_tone"),
        "seconds": res["seconds"],
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(report, indent=2))
    if not args.quick:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
