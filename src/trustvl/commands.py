"""Subcommands of the methods (build, train, eval, demo), kept apart from the core CLI plumbing.

Each ``_add_*`` function takes argparse's subparsers, adds one subcommand and sets its ``handler``;
``METHOD_COMMANDS`` lists them for :func:`trustvl.cli.build_parser`. Groups (``build``, ``train``,
``eval``) hold one sub-subcommand per method.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any


def _group(sub: Any, name: str, help: str) -> Any:
    p = sub.add_parser(name, help=help)
    inner = p.add_subparsers(dest=f"{name}_what", metavar="WHAT")
    inner.required = True
    return inner


# ---------------------------------------------------------------- build
def _cmd_build_synthworld(args: argparse.Namespace) -> int:
    from trustvl.data_builders.synthworld import SynthWorldConfig, build_synthworld_dataset

    world = SynthWorldConfig(
        resolution=args.resolution, **(json.loads(args.world_json) if args.world_json else {})
    )
    path = build_synthworld_dataset(
        args.out, world, n_train=args.n_train, n_test=args.n_test, seed=args.seed, progress=not args.quiet
    )
    print(f"dataset: {path}")
    return 0


def _add_build(sub: Any) -> None:
    g = _group(sub, "build", "build datasets (SynthWorld, counterfactuals, spurious digits)")
    p = g.add_parser("synthworld", help="render a SynthWorld HF dataset (train biased, test balanced)")
    p.add_argument("--out", required=True)
    p.add_argument("--n-train", type=int, default=8000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--world-json", default=None, help="JSON object of further SynthWorldConfig knobs")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=_cmd_build_synthworld)

    p = g.add_parser(
        "counterfactuals", help="CF_α counterfactual sets: text-to-image, person masks, inpainting"
    )
    p.add_argument("--out", required=True)
    p.add_argument("--config", default=None, help="YAML grid/config (default: trustvl's default grid)")
    p.add_argument(
        "--synthworld",
        action="store_true",
        help="use SynthWorld's renderer and oracle segmenter/inpainter instead of real models",
    )
    p.add_argument("--n-base-per-prompt", type=int, default=None)
    p.add_argument("--variants-per-base", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=_cmd_build_counterfactuals)

    p = g.add_parser("spurious-digits", help="RaVL's evaluation data: digits in quadrants + a red rectangle")
    p.add_argument("--out", required=True)
    p.add_argument("--cramers-v", type=float, default=0.9)
    p.add_argument("--spurious-class", type=int, default=7)
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(handler=_cmd_build_spurious_digits)


def _cmd_build_counterfactuals(args: argparse.Namespace) -> int:
    from trustvl.data_builders import counterfactual as cf

    overrides = {
        k: v
        for k, v in (
            ("n_base_per_prompt", args.n_base_per_prompt),
            ("variants_per_base", args.variants_per_base),
            ("seed", args.seed),
        )
        if v is not None
    }
    if args.synthworld:
        from trustvl.data_builders.counterfactual import synthworld_stages as sw
        from trustvl.data_builders.synthworld import SynthWorldRenderer

        renderer = SynthWorldRenderer()
        config = sw.synthworld_counterfactual_config(renderer, **overrides)
        summary = sw.build_synthworld_counterfactuals(
            args.out, config, renderer=renderer, progress=not args.quiet, overwrite=args.overwrite
        )
    else:
        config = cf.load_counterfactual_config(args.config, **overrides)
        t2i, seg, inp = cf.build_stages(config, device=args.device)
        summary = cf.build_counterfactuals(
            args.out, config, t2i, seg, inp, progress=not args.quiet, overwrite=args.overwrite
        )
    print(summary)
    return 0


def _cmd_build_spurious_digits(args: argparse.Namespace) -> int:
    from trustvl.data_builders.spurious_digits import build_spurious_digits

    path = build_spurious_digits(
        args.out,
        cramers_v=args.cramers_v,
        spurious_class=args.spurious_class,
        n_train=args.n_train,
        n_test=args.n_test,
        image_size=args.image_size,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(f"dataset: {path}")
    return 0


# ---------------------------------------------------------------- train
def _cmd_train_synthworld_clip(args: argparse.Namespace) -> int:
    from trustvl.training.synthworld_pretrain import SynthWorldPretrainConfig, pretrain_synthworld_clip

    cfg = SynthWorldPretrainConfig(
        out_dir=args.out,
        n_scenes=args.n_scenes,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup_steps=args.warmup_steps,
        num_workers=args.num_workers,
        mixed_precision=args.mixed_precision,
        eval_test_size=args.eval_test_size,
        seed=args.seed,
        max_train_seconds=args.max_train_seconds,
        save_steps=args.save_steps,
        appearance_caption_prob=args.appearance_caption_prob,
        world=json.loads(args.world_json) if args.world_json else {},
    )
    summary = pretrain_synthworld_clip(cfg, resume=args.resume)
    print(json.dumps({k: summary[k] for k in ("n_parameters", "train_seconds", "global_step", "final_loss")}))
    print(json.dumps(summary["eval"], indent=1))
    return 0


def _add_train(sub: Any) -> None:
    g = _group(sub, "train", "train models (SynthWorld CLIP, CF_α, RaVL)")
    p = g.add_parser("synthworld-clip", help="pretrain the small SynthWorld CLIP from scratch")
    p.add_argument("--out", required=True)
    p.add_argument("--n-scenes", type=int, default=2_000_000)
    p.add_argument("--max-steps", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup-steps", type=int, default=300)
    p.add_argument("--num-workers", type=int, default=8)
    p.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"], default="no")
    p.add_argument("--eval-test-size", type=int, default=4000)
    p.add_argument("--save-steps", type=int, default=1000)
    p.add_argument("--max-train-seconds", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--appearance-caption-prob", type=float, default=0.3)
    p.add_argument(
        "--world-json", default=None, help="JSON object of SynthWorldConfig knobs for the train split"
    )
    p.add_argument("--resume", action="store_true")
    p.set_defaults(handler=_cmd_train_synthworld_clip)

    p = g.add_parser(
        "cf-alpha", help="CF_α: LoRA fine-tuning on counterfactual sets (L = β1·L_CLIP + β0·L_cf)"
    )
    p.add_argument(
        "--base-model", default=None, help="CLIP to debias (default: the embedded SynthWorld CLIP)"
    )
    p.add_argument("--dataset", required=True, help="counterfactual dataset (trustvl build counterfactuals)")
    p.add_argument("--out", required=True)
    p.add_argument("--max-steps", type=int, default=300)
    p.add_argument("--sets-per-batch", type=int, default=32)
    p.add_argument("--variants-per-set", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--beta-clip", type=float, default=1.0)
    p.add_argument("--beta-cf", type=float, default=30.0, help="β0, weight of L_cf (default: %(default)s)")
    p.add_argument("--cf-loss", choices=["cohesion", "info_nce"], default="cohesion")
    p.add_argument(
        "--alpha-range",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        default=None,
        help="train each step at α ~ U(LO, HI) (the α path) instead of α = 1: a smoother α sweep for some"
        " accuracy at α = 1 (see the README)",
    )
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--lora-alpha", type=float, default=8.0)
    p.add_argument("--lora-targets", nargs="+", default=None)
    p.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"], default="no")
    p.add_argument("--save-steps", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=_cmd_train_cf_alpha)
    _add_train_ravl(g)


def _cmd_train_cf_alpha(args: argparse.Namespace) -> int:
    from trustvl.modeling.synthworld_clip import default_clip_path
    from trustvl.training.cf_alpha import CFAlphaTrainConfig, train_cf_alpha

    cfg = CFAlphaTrainConfig(
        base_model=args.base_model or str(default_clip_path()),
        dataset=args.dataset,
        out_dir=args.out,
        max_steps=args.max_steps,
        sets_per_batch=args.sets_per_batch,
        variants_per_set=args.variants_per_set,
        learning_rate=args.lr,
        beta_clip=args.beta_clip,
        beta_cf=args.beta_cf,
        cf_loss=args.cf_loss,
        alpha_range=None if args.alpha_range is None else tuple(args.alpha_range),
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        **({"lora_target_modules": args.lora_targets} if args.lora_targets else {}),
        mixed_precision=args.mixed_precision,
        save_steps=args.save_steps,
        seed=args.seed,
    )
    summary = train_cf_alpha(cfg, resume=args.resume, progress=not args.quiet)
    print(json.dumps({k: summary[k] for k in ("model_dir", "global_step", "final_loss", "train_seconds")}))
    return 0


def _cmd_train_ravl(args: argparse.Namespace) -> int:
    from trustvl.training.ravl import RaVLTrainConfig, train_ravl

    cfg = RaVLTrainConfig(
        base_model=args.base_model,
        dataset=args.dataset,
        discovery=args.discovery,
        out_dir=args.out,
        label_column=args.label_column,
        lambda_align=args.lambda_align,
        lambda_uninf=args.lambda_uninf,
        use_lora=not args.full_finetune,
        learning_rate=args.lr,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    summary = train_ravl(cfg, resume=args.resume, progress=not args.quiet)
    print(json.dumps({k: v for k, v in summary.items() if isinstance(v, (int, float, str))}))
    return 0


def _add_train_ravl(g: Any) -> None:
    p = g.add_parser(
        "ravl", help="RaVL mitigation: region-aware fine-tuning with the discovered spurious clusters"
    )
    p.add_argument("--base-model", required=True)
    p.add_argument("--dataset", required=True, help="training data with image and label columns")
    p.add_argument("--discovery", required=True, help="folder written by `trustvl discover`")
    p.add_argument("--out", required=True)
    p.add_argument("--label-column", default="label")
    p.add_argument("--lambda-align", type=float, default=1.0)
    p.add_argument("--lambda-uninf", type=float, default=1.0)
    p.add_argument("--full-finetune", action="store_true", help="train all weights instead of a LoRA delta")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=_cmd_train_ravl)


# ---------------------------------------------------------------- discover
def _cmd_discover(args: argparse.Namespace) -> int:
    from trustvl.pipelines.ravl import run_discovery

    result = run_discovery(
        args.model,
        args.dataset,
        args.out,
        split=args.split,
        grid_n=args.grid,
        label_column=args.label_column,
        max_images=args.max_images,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
    )
    print(getattr(result, "message", "") or f"{len(result.clusters)} spurious cluster(s) kept")
    for rank, c in enumerate(result.clusters[:5], 1):
        print(
            f"#{rank}: cluster {c.cluster_id} score={c.score:.3f} influence={c.influence:.2f} size={c.size}"
        )
    print(f"report: {args.out}/report.md")
    return 0


def _add_discover(sub: Any) -> None:
    p = sub.add_parser(
        "discover", help="RaVL: discover region-level spurious correlations of a fine-tuned CLIP"
    )
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", required=True, help="labelled evaluation images (image + ClassLabel label)")
    p.add_argument("--out", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--label-column", default="label")
    p.add_argument("--grid", type=int, default=2, help="regions are the n x n grid cells (default quadrants)")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=_cmd_discover)


# ---------------------------------------------------------------- eval
def _cmd_eval_cf_alpha(args: argparse.Namespace) -> int:
    from trustvl.pipelines.cf_alpha_eval import AlphaSweepConfig, sweep_alpha, sweep_table

    cfg = AlphaSweepConfig(
        model=args.model,
        dataset=args.dataset,
        out_dir=args.out,
        alphas=args.alphas,
        split=args.split,
        label_column=args.label_column,
        attributes=args.attributes,
        ks=args.k,
        allow_extrapolation=args.allow_extrapolation,
        device=args.device,
        max_images=args.max_images,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    results = sweep_alpha(cfg)
    headers, rows = sweep_table(results)
    print(" | ".join(headers))
    for row in rows:
        print(" | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    print(f"report: {args.out}/report.html")
    return 0


def _add_eval(sub: Any) -> None:
    g = _group(sub, "eval", "evaluate trained models (CF_α α sweep)")
    p = g.add_parser(
        "cf-alpha", help="sweep α: fairness (MaxSkew/MinSkew/NDKL), zero-shot and Recall@K per α"
    )
    p.add_argument("--model", required=True, help="CF_α model folder (trustvl train cf-alpha output /model)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--alphas", nargs="+", type=float, default=[0.0, 0.25, 0.5, 0.75, 1.0])
    p.add_argument("--split", default="test")
    p.add_argument("--label-column", default="occupation")
    p.add_argument("--attributes", nargs="+", default=None)
    p.add_argument("--k", nargs="+", type=int, default=[10, 100])
    p.add_argument("--allow-extrapolation", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=_cmd_eval_cf_alpha)


# ---------------------------------------------------------------- demo
def _cmd_demo(args: argparse.Namespace) -> int:
    from trustvl.pipelines.demo import DemoConfig, run_demo

    cfg = DemoConfig(
        out_dir=args.out,
        n_test=args.n_test,
        max_steps=args.max_steps,
        n_base_per_occupation=args.n_base_per_occupation,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=not args.quiet,
        base_model=args.base_model,
    )
    result = run_demo(cfg)
    zs = result["zero_shot_top1"]
    print(f"zero-shot top-1: base {zs['base']:.4f} -> CF_α(α=1) {zs['cf_alpha']:.4f}")
    k = max(cfg.ks)
    for attr, e in result["effect"].items():
        print(
            f"{attr}: MaxSkew@{k} {e[f'base_mean_max_skew@{k}']:.3f} -> {e[f'cf_alpha_mean_max_skew@{k}']:.3f}"
            f" ({-e[f'mean_max_skew@{k}_drop_pct']:+.1f}%), NDKL {e['base_mean_ndkl']:.4f} ->"
            f" {e['cf_alpha_mean_ndkl']:.4f} ({-e['mean_ndkl_drop_pct']:+.1f}%)"
        )
    return 0


def _add_demo(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="the main job: CF_α end to end on the embedded SynthWorld defaults (offline)"
    )
    from trustvl.pipelines.demo import DemoConfig

    d = DemoConfig()
    p.add_argument("--out", default=d.out_dir, help="run folder (default: %(default)s)")
    p.add_argument(
        "--n-test", type=int, default=d.n_test, help="balanced test scenes audited (default: %(default)s)"
    )
    p.add_argument(
        "--n-base-per-occupation",
        type=int,
        default=d.n_base_per_occupation,
        help="counterfactual sets per occupation (default: %(default)s)",
    )
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="CF_α steps (default: %(default)s)")
    p.add_argument(
        "--base-model", default=None, help="CLIP id or folder (default: the embedded SynthWorld CLIP)"
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_cmd_demo)


METHOD_COMMANDS: list[Callable[[Any], None]] = [_add_build, _add_train, _add_eval, _add_discover, _add_demo]
