"""``trustvl train``: the models (the SynthWorld CLIP from scratch, CF_α, RaVL mitigation)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from trustvl.commands._common import add_group, add_run_options, print_json_summary


def add_train(sub: Any) -> None:
    g = add_group(sub, "train", "train models (SynthWorld CLIP, CF_α, RaVL)")
    _add_synthworld_clip(g)
    _add_cf_alpha(g)
    _add_ravl(g)


def _add_synthworld_clip(g: Any) -> None:
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
    p.set_defaults(handler=_cmd_synthworld_clip)


def _add_cf_alpha(g: Any) -> None:
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
    add_run_options(p, seed=0, resume=True, quiet=True)
    p.set_defaults(handler=_cmd_cf_alpha)


def _add_ravl(g: Any) -> None:
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
    add_run_options(p, seed=0, resume=True, quiet=True)
    p.set_defaults(handler=_cmd_ravl)


def _cmd_synthworld_clip(args: argparse.Namespace) -> int:
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
    print_json_summary(summary, ("n_parameters", "train_seconds", "global_step", "final_loss"))
    print(json.dumps(summary["eval"], indent=1))
    return 0


def _cmd_cf_alpha(args: argparse.Namespace) -> int:
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
    print_json_summary(summary, ("model_dir", "global_step", "final_loss", "train_seconds"))
    return 0


def _cmd_ravl(args: argparse.Namespace) -> int:
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
    print_json_summary(summary)
    return 0
