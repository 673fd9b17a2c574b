"""``trustvl train``: the models (the SynthWorld CLIP from scratch, CF_α, RaVL mitigation, Safe-CLIP).

Each subcommand is its method's configuration class parsed by :class:`~transformers.HfArgumentParser`
(:class:`~trustvl.commands._common.ConfigArgumentParser`): every field is a flag (``--learning_rate`` or
``--learning-rate``, ``--output_dir``/``--out``…) listed once in ``--help`` with its default and doc, and
``--config recipe.yaml`` reads a recipe file whose values the flags override. ``--resume`` continues from
the last checkpoint in the run folder; ``--quiet`` hides progress bars.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from trustvl.commands._common import (
    ConfigArgumentParser,
    add_group,
    check_model_path,
    check_output_dir,
    config_from_namespace,
    print_json_summary,
)


def add_train(sub: Any) -> None:
    g = add_group(
        sub,
        "train",
        "train models (SynthWorld CLIP, SynthWorld SD, CF_α, RaVL, Safe-CLIP and its caption converter)",
        parser_class=ConfigArgumentParser,
    )
    _add_method(
        g,
        "synthworld-clip",
        "trustvl.training.synthworld_clip:SynthWorldCLIPPretrainConfig",
        "pretrain the small SynthWorld CLIP from scratch",
        _cmd_synthworld_clip,
    )
    _add_method(
        g,
        "cf-alpha",
        "trustvl.training.cf_alpha:CFAlphaConfig",
        "CF_α: LoRA fine-tuning on counterfactual sets (L = β1·L_CLIP + β0·L_cf + β_s·L_score)",
        _cmd_cf_alpha,
    )
    _add_method(
        g,
        "synthworld-sd",
        "trustvl.training.synthworld_sd:SynthWorldSDConfig",
        "train the SynthWorld text-to-image pipeline (VAE, UNet) and the outcome classifier",
        _cmd_synthworld_sd,
    )
    _add_method(
        g,
        "ravl",
        "trustvl.training.ravl:RaVLConfig",
        "RaVL mitigation: region-aware fine-tuning with the discovered spurious clusters",
        _cmd_ravl,
    )
    _add_method(
        g,
        "safe-clip",
        "trustvl.training.safe_clip:SafeCLIPConfig",
        "Safe-CLIP: LoRA on both towers so unsafe inputs embed like their safe counterparts (8-term loss)",
        _cmd_safe_clip,
    )
    _add_method(
        g,
        "caption-converter",
        "trustvl.training.caption_converter:CaptionConverterConfig",
        "Safe-CLIP's caption converter: a LoRA adapter on a causal LM, trained on safe→unsafe caption pairs",
        _cmd_caption_converter,
    )


def _add_method(g: Any, name: str, config_class: str, help: str, handler: Any) -> None:
    """Add the subcommand ``name`` parsed into ``config_class`` (``"module:Class"``, imported on use)."""
    p = g.add_parser(name, help=help, description=help, config_class=config_class)
    p.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in the run folder"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="train into a run folder that is not empty (without resuming)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=handler)


def _config(args: argparse.Namespace) -> Any:
    overrides = {"disable_tqdm": True} if args.quiet else {}
    config = config_from_namespace(args.config_class, args, **overrides)
    check_output_dir(config.output_dir, overwrite=args.overwrite, resume=args.resume)
    for name in ("base_model", "clip_dir", "init_from", "flag_model"):
        check_model_path(getattr(config, name, None), f"--{name}")
    if args.resume:
        _check_resumable(config.output_dir)
    return config


def _check_resumable(output_dir: str) -> None:
    """``--resume`` needs an earlier run in the folder; say so before any model is loaded. (Which checkpoint
    to continue from is the method's business: some keep one run folder per stage.)"""
    from pathlib import Path

    from trustvl.errors import TrustVLInputError

    out = Path(output_dir)
    if not out.is_dir() or not any(out.iterdir()):
        raise TrustVLInputError(
            f"--resume: the run folder {output_dir!r} does not exist or is empty, so there is nothing to "
            "continue; run without --resume to start it"
        )


def _cmd_synthworld_clip(args: argparse.Namespace) -> int:
    from trustvl.evaluation.synthworld import evaluate_synthworld
    from trustvl.evaluation.synthworld_clip_card import write_synthworld_clip_card
    from trustvl.training.synthworld_clip import pretrain_synthworld_clip

    config = _config(args)

    def evaluate(model: Any, processor: Any) -> dict[str, Any]:
        return evaluate_synthworld(
            model,
            processor,
            n_test=config.eval_test_size,
            world_seed=config.world_seed,
            resolution=config.resolution,
        ).to_dict()

    summary = pretrain_synthworld_clip(config, resume=args.resume, evaluate=evaluate)
    write_synthworld_clip_card(summary["model_dir"], summary)
    print_json_summary(summary, ("n_parameters", "train_seconds", "global_step", "final_loss"))
    print(json.dumps(summary["eval"], indent=1))
    return 0


def _cmd_synthworld_sd(args: argparse.Namespace) -> int:
    from trustvl.training.synthworld_sd import train_synthworld_sd

    summary = train_synthworld_sd(_config(args), resume=args.resume)
    print_json_summary(summary, ("unet_steps", "unet_final_loss"))
    print(json.dumps(summary["classifier_test_accuracy"]))
    return 0


def _cmd_cf_alpha(args: argparse.Namespace) -> int:
    from trustvl.training.cf_alpha import train_cf_alpha

    summary = train_cf_alpha(_config(args), resume=args.resume)
    print_json_summary(summary, ("model_dir", "adapter_dir", "global_step", "final_loss", "train_seconds"))
    return 0


def _cmd_ravl(args: argparse.Namespace) -> int:
    from pathlib import Path

    from trustvl.errors import TrustVLInputError
    from trustvl.training.ravl import train_ravl

    config = _config(args)
    found = Path(config.discovery)
    if not (found.is_dir() and (found / "spurious_medoids.npz").is_file()) and not (
        found.is_file() and found.suffix == ".npz"
    ):
        raise TrustVLInputError(
            f"--discovery {config.discovery!r} is neither a discovery folder (trustvl discover, holding "
            "spurious_medoids.npz) nor that .npz file"
        )
    summary = train_ravl(config, resume=args.resume)
    print_json_summary(summary)
    return 0


def _cmd_safe_clip(args: argparse.Namespace) -> int:
    from trustvl.training.safe_clip import train_safe_clip

    summary = train_safe_clip(_config(args), resume=args.resume)
    print_json_summary(summary, ("model_dir", "adapter_dir", "global_step", "final_loss", "train_seconds"))
    if summary["final_eval"] is not None:
        print(json.dumps(summary["final_eval"]))


def _cmd_caption_converter(args: argparse.Namespace) -> int:
    from trustvl.training.caption_converter import train_caption_converter

    summary = train_caption_converter(_config(args), resume=args.resume)
    print_json_summary(summary, ("adapter_dir", "n_pairs", "global_step", "final_loss", "train_seconds"))
    return 0
