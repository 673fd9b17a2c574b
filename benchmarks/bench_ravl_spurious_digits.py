"""RaVL on spurious digits (SPEC §3): discovery precision and mitigation, end to end on CPU.

Per setting (Cramér's V x spurious class):

1. build spurious digits (:func:`~trustvl.data_builders.ravl.spurious_digits.build_spurious_digits`): a train split
   with the rectangle associated with the spurious class at the target V, a balanced test split, and a
   second build (other seed) whose balanced test split is the held-out **discovery split**;
2. **standard fine-tuning**: fine-tune the embedded SynthWorld CLIP (which knows no digits) on the train split
   with ``L_CLIP`` alone (:func:`~trustvl.training.ravl.finetune_clip`, full fine-tuning) — the spuriously
   correlated VLM; its worst-group test accuracy (groups = class x rectangle present) shows the reliance;
3. **discovery** with that VLM on the discovery split, 2 x 2 grid regions
   (:func:`~trustvl.evaluation.ravl.run_discovery`): Precision@10 against the rectangle
   (:func:`~trustvl.data_builders.ravl.spurious_digits.rectangle_region_truth`) and the whole-image baseline's;
4. **RaVL mitigation**: the training regions are flagged once (nearest medoid of the discovered clusters, in
   the VLM's embedding space; flag precision/recall against the rectangle are reported), then from the same
   starting point (the SynthWorld CLIP), with the same data, steps, batch size and learning rate, a model is
   fine-tuned with the RaVL loss (:func:`~trustvl.training.ravl.train_ravl`). The standard fine-tuning
   baseline of the comparison is therefore exactly the step-2 model (same start, data and steps, ``L_CLIP``
   only). Variant ``ravl`` is the loss's defaults (masked-image alignment, uniform + counterfactual
   ``L_uninf``) and runs in every setting; ``ravl_crops`` is the crop-level form (mean-pooled non-spurious
   crops, uniform spurious crops), about 5x the CPU, and runs at the Cramér's V values of
   ``--crop-variant-v`` (default 0.7 and 0.99).

Prints one JSON object per setting and a summary with the means; writes everything to
``benchmarks/results/ravl_spurious_digits.json`` (``--out``). Goals (from the issue): mean Precision@10
>= 0.8 and >= 2x the baseline; worst-group accuracy after RaVL >= 5 points above standard fine-tuning on
average.

CPU notes: torch runs with ``--threads`` (default 1) threads; on a 2-core machine shared with another busy
process, 2 threads oversubscribe the cores and are ~5x slower. A 4-digit subset (``--classes``) keeps each
setting at a few CPU minutes.

    python benchmarks/bench_ravl_spurious_digits.py            # 10 settings
    python benchmarks/bench_ravl_spurious_digits.py --quick    # 2 settings, tiny sizes (smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def build_setting_data(
    args: argparse.Namespace, v: float, spurious: int, work: Path
) -> tuple[Path, Path, dict]:
    """Step 1 of one setting: the spurious-digits build (train + balanced test), the held-out build whose
    balanced test split is the discovery split, and the first build's ``build_info.json``."""
    from trustvl.data_builders.ravl.spurious_digits import build_spurious_digits

    name = f"v{v}_s{spurious}"
    data = build_spurious_digits(
        work / f"data_{name}",
        cramers_v=v,
        spurious_class=spurious,
        classes=args.classes,
        n_train=args.n_train,
        n_test=args.n_test,
        seed=args.seed,
        overwrite=True,
        progress=False,
    )
    disc_data = build_spurious_digits(
        work / f"disc_{name}",
        cramers_v=v,
        spurious_class=spurious,
        classes=args.classes,
        n_train=8 * len(args.classes),
        n_test=args.n_discovery,
        seed=args.seed + 1000,
        overwrite=True,
        progress=False,
    )
    info = json.loads((Path(data) / "build_info.json").read_text())
    return Path(data), Path(disc_data), info


def standard_finetune(args: argparse.Namespace, data: Path, work: Path, name: str) -> dict:
    """Step 2 of one setting: the embedded SynthWorld CLIP fine-tuned on ``data``'s train split with ``L_CLIP``
    alone (the spuriously correlated VLM); :func:`~trustvl.training.ravl.finetune_clip`'s summary, the model
    under ``"model"``."""
    import torch

    from trustvl.modeling.synthworld_clip import default_clip_path
    from trustvl.training.ravl import CLIPFinetuneConfig, finetune_clip

    torch.manual_seed(args.seed)
    return finetune_clip(
        CLIPFinetuneConfig(
            base_model=str(default_clip_path()),
            dataset=str(data),
            output_dir=str(work / f"std_{name}"),
            use_lora=args.lora,
            save_model=False,
            disable_tqdm=True,
            logging_steps=max(args.steps // 5, 1),
            **_train_kwargs(args),
        )
    )


def _train_kwargs(args: argparse.Namespace) -> dict:
    """The fine-tuning knobs shared by standard fine-tuning and RaVL mitigation (same data, steps, seed)."""
    return dict(
        learning_rate=args.lr,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        warmup_steps=args.warmup,
        seed=args.seed,
    )


def run_setting(args: argparse.Namespace, v: float, spurious: int, work: Path) -> dict:
    import torch
    from datasets import disable_progress_bars
    from transformers import AutoProcessor

    from trustvl.evaluation.ravl import evaluate_group_accuracy, run_discovery
    from trustvl.modeling.synthworld_clip import default_clip_path
    from trustvl.training.ravl import RaVLConfig, train_ravl

    disable_progress_bars()
    t_setting = time.process_time()
    w_setting = time.perf_counter()
    name = f"v{v}_s{spurious}"
    base = str(default_clip_path())
    data, disc_data, info = build_setting_data(args, v, spurious, work)
    common = _train_kwargs(args)

    # 2. standard fine-tuning = the spurious VLM
    t = time.process_time()
    std = standard_finetune(args, data, work, name)
    cpu_std = time.process_time() - t
    vlm = std.pop("model")
    processor = AutoProcessor.from_pretrained(base)
    ev_std = evaluate_group_accuracy(vlm, str(data), processor=processor, device="cpu")
    _log(
        f"{name}: standard FT {cpu_std:.0f}s cpu, overall {ev_std['overall_accuracy']:.3f}"
        f" worst {ev_std['worst_group_accuracy']:.3f}"
    )

    # 3. discovery on the held-out balanced split
    t = time.process_time()
    disc_dir = work / f"discovery_{name}"
    result = run_discovery(
        (vlm, processor), str(disc_data), disc_dir, split="test", seed=args.seed, progress=False, device="cpu"
    )
    cpu_disc = time.process_time() - t
    dsum = json.loads((disc_dir / "summary.json").read_text())
    _log(
        f"{name}: discovery {cpu_disc:.0f}s cpu, P@10 {dsum.get('precision_at_10')}"
        f" baseline {dsum.get('baseline_precision_at_10')}, {len(result.clusters)} kept clusters"
    )

    # 4. RaVL mitigation from the same starting point; flags once, with the VLM (discovery's embedding space)
    from datasets import load_dataset

    from trustvl.data_builders.ravl.spurious_digits import rectangle_region_truth
    from trustvl.evaluation.ravl import load_spurious_medoids
    from trustvl.modeling.embedding import load_clip
    from trustvl.training.ravl import compute_region_flags

    variants = {"ravl": {}}  # the defaults: masked-image alignment, uniform + counterfactual L_uninf
    if v in args.crop_variant_v:  # the crop-level form: mean-pooled crops, uniform crops
        variants["ravl_crops"] = {"align_input": "regions", "uninf_mode": "uniform"}
    mitigated: dict = {}
    flag_stats = None
    if result.clusters:
        t = time.process_time()
        train = load_dataset(str(data), split="train")
        flags = compute_region_flags(vlm, processor, list(train["image"]), load_spurious_medoids(disc_dir))
        truth = rectangle_region_truth(train).reshape(flags.shape)
        cpu_flags = time.process_time() - t
        flag_stats = {
            "region_fraction": float(flags.mean()),
            "images_with_flag": float(flags.any(axis=1).mean()),
            "precision": float(truth[flags].mean()) if flags.any() else None,
            "recall": float(flags[truth].mean()) if truth.any() else None,
            "cpu_seconds": round(cpu_flags, 1),
        }
        for variant, loss_kw in variants.items():
            t = time.process_time()
            cfg = RaVLConfig(
                base_model=base,
                dataset=str(data),
                discovery=str(disc_dir),
                output_dir=str(work / f"{variant}_{name}"),
                use_lora=args.lora,
                lambda_align=args.lambda_align,
                lambda_uninf=args.lambda_uninf,
                save_strategy="no",
                disable_tqdm=True,
                logging_steps=max(args.steps // 5, 1),
                **loss_kw,
                **common,
            )
            torch.manual_seed(args.seed)
            summary = train_ravl(cfg, region_flags=flags)
            cpu = time.process_time() - t
            model, proc = load_clip(summary["model_dir"], device="cpu")
            ev = evaluate_group_accuracy(model, str(data), processor=proc, device="cpu")
            shutil.rmtree(summary["model_dir"], ignore_errors=True)
            if summary.get("adapter_dir"):
                shutil.rmtree(summary["adapter_dir"], ignore_errors=True)
            mitigated[variant] = {
                "loss": {"align_input": cfg.align_input, "uninf_mode": cfg.uninf_mode},
                "overall_accuracy": ev["overall_accuracy"],
                "worst_group_accuracy": ev["worst_group_accuracy"],
                "worst_group": ev["worst_group"],
                "per_group": ev["per_group"],
                "final_loss": summary["final_loss"],
                "last_log": summary["last_log"],
                "worst_group_gain_points": 100.0
                * (ev["worst_group_accuracy"] - ev_std["worst_group_accuracy"]),
                "overall_gain_points": 100.0 * (ev["overall_accuracy"] - ev_std["overall_accuracy"]),
                "cpu_seconds": round(cpu, 1),
            }
            _log(
                f"{name}: {variant} {cpu:.0f}s cpu, overall {ev['overall_accuracy']:.3f}"
                f" worst {ev['worst_group_accuracy']:.3f}"
            )
    else:
        _log(f"{name}: discovery kept no cluster; RaVL mitigation skipped ({result.message})")

    return {
        "setting": name,
        "cramers_v": v,
        "spurious_class": spurious,
        "train_cramers_v_measured": info["splits"]["train"]["cramers_v"],
        "train_rectangle_rate": info["splits"]["train"]["rectangle_rate"],
        "standard": {
            "overall_accuracy": ev_std["overall_accuracy"],
            "worst_group_accuracy": ev_std["worst_group_accuracy"],
            "worst_group": ev_std["worst_group"],
            "per_group": ev_std["per_group"],
            "final_loss": std["final_loss"],
            "cpu_seconds": round(cpu_std, 1),
        },
        "discovery": {
            "precision_at_10": dsum.get("precision_at_10"),
            "baseline_precision_at_10": dsum.get("baseline_precision_at_10"),
            "baseline_cell_precision_at_10": dsum.get("baseline_cell_precision_at_10"),
            "n_kept_clusters": dsum["n_kept_clusters"],
            "baseline_n_kept_clusters": dsum.get("baseline_n_kept_clusters"),
            "k": dsum["k"],
            "top_cluster_rectangle_fraction": dsum.get("top_cluster_rectangle_fraction"),
            "vlm_zero_shot_accuracy_on_discovery_split": dsum["image_accuracy"],
            "cpu_seconds": round(cpu_disc, 1),
        },
        "train_flags": flag_stats,
        "mitigation": mitigated,
        "cpu_seconds_setting": round(time.process_time() - t_setting, 1),
        "wall_seconds_setting": round(time.perf_counter() - w_setting, 1),
    }


def _mean(values: list) -> float | None:
    vals = [float(x) for x in values if x is not None]
    return float(np.mean(vals)) if vals else None


def summarise(rows: list[dict]) -> dict:
    p = _mean([r["discovery"]["precision_at_10"] for r in rows])
    pb = _mean([r["discovery"]["baseline_precision_at_10"] for r in rows])
    pc = _mean([r["discovery"]["baseline_cell_precision_at_10"] for r in rows])
    out = {
        "n_settings": len(rows),
        "mean_precision_at_10": p,
        "mean_baseline_precision_at_10": pb,
        "precision_ratio_vs_baseline": None if not p or not pb else p / pb,
        "mean_baseline_cell_precision_at_10": pc,
        "precision_ratio_vs_baseline_cells": None if not p or not pc else p / pc,
        "mean_standard_overall_accuracy": _mean([r["standard"]["overall_accuracy"] for r in rows]),
        "mean_standard_worst_group_accuracy": _mean([r["standard"]["worst_group_accuracy"] for r in rows]),
        "mean_flag_precision": _mean([(r["train_flags"] or {}).get("precision") for r in rows]),
        "mean_flag_recall": _mean([(r["train_flags"] or {}).get("recall") for r in rows]),
        "mitigation": {},
        "mean_cpu_seconds_standard_finetuning": _mean([r["standard"]["cpu_seconds"] for r in rows]),
        "mean_cpu_seconds_discovery": _mean([r["discovery"]["cpu_seconds"] for r in rows]),
        "mean_cpu_seconds_per_setting": _mean([r["cpu_seconds_setting"] for r in rows]),
        "mean_wall_seconds_per_setting": _mean([r["wall_seconds_setting"] for r in rows]),
    }
    variants = sorted({k for r in rows for k in r["mitigation"]})
    for variant in variants:
        with_v = [r for r in rows if variant in r["mitigation"]]
        m = [r["mitigation"][variant] for r in with_v]
        gain = _mean([x["worst_group_gain_points"] for x in m])
        out["mitigation"][variant] = {
            "n_settings": len(m),
            "settings": [r["setting"] for r in with_v],
            "mean_standard_overall_accuracy": _mean([r["standard"]["overall_accuracy"] for r in with_v]),
            "mean_standard_worst_group_accuracy": _mean(
                [r["standard"]["worst_group_accuracy"] for r in with_v]
            ),
            "mean_overall_accuracy": _mean([x["overall_accuracy"] for x in m]),
            "mean_worst_group_accuracy": _mean([x["worst_group_accuracy"] for x in m]),
            "mean_worst_group_gain_points": gain,
            "mean_overall_gain_points": _mean([x["overall_gain_points"] for x in m]),
            "settings_with_gain": int(sum(x["worst_group_gain_points"] > 0 for x in m)),
            "mean_cpu_seconds": _mean([x["cpu_seconds"] for x in m]),
            "goal_worst_group_plus_5_points": None if gain is None else gain >= 5.0,
        }
    out["goal_precision_0.8"] = None if p is None else p >= 0.8
    out["goal_precision_2x_baseline"] = None if p is None or pb is None else p >= 2 * pb
    out["goal_precision_2x_baseline_cells"] = None if p is None or pc is None else p >= 2 * pc
    return out


def add_setting_arguments(ap: argparse.ArgumentParser) -> None:
    """The spurious-digits settings (Cramér's V x spurious class), data sizes and fine-tuning knobs, shared
    with ``bench_ravl_mitigation_ablation.py``."""
    ap.add_argument("--cramers-v", type=float, nargs="+", default=[0.7, 0.8, 0.9, 0.95, 0.99])
    ap.add_argument("--spurious-classes", type=int, nargs="+", default=[3, 7])
    ap.add_argument("--classes", type=int, nargs="+", default=[1, 3, 7, 8])
    ap.add_argument("--n-train", type=int, default=1200)
    ap.add_argument("--n-test", type=int, default=400)
    ap.add_argument("--n-discovery", type=int, default=400)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--lora", action="store_true", help="a peft LoRA delta instead of full fine-tuning")
    ap.add_argument("--lambda-align", type=float, default=1.0)
    ap.add_argument("--lambda-uninf", type=float, default=1.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 settings, tiny sizes (smoke run)")
    add_setting_arguments(ap)
    ap.add_argument(
        "--crop-variant-v",
        type=float,
        nargs="*",
        default=[0.7, 0.99],
        help="Cramér's V values at which the crop-level loss form also runs (5x the CPU of the default)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work-dir", default=None, help="keep intermediate models/data here (default: temp)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ravl_spurious_digits.json"))
    args = ap.parse_args(argv)
    if args.quick:
        args.cramers_v, args.spurious_classes = [0.95], [3, 7]
        args.n_train, args.n_test, args.n_discovery, args.steps = 256, 128, 128, 8
        args.classes, args.crop_variant_v = [1, 3, 7], [0.95]

    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="ravl_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "benchmark": "ravl_spurious_digits",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "config": {k: v for k, v in vars(args).items() if k not in ("out", "work_dir")},
        "settings": [],
    }
    try:
        for s in args.spurious_classes:
            for v in args.cramers_v:
                row = run_setting(args, v, s, work)
                report["settings"].append(row)
                print(json.dumps(row), flush=True)
                report["summary"] = summarise(report["settings"])
                out = Path(args.out)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(report, indent=2))
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"summary": report["summary"]}, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
