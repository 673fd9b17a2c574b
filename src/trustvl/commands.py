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


METHOD_COMMANDS: list[Callable[[Any], None]] = [_add_build, _add_train]
