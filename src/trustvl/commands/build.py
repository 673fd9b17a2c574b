"""``trustvl build``: the datasets (SynthWorld, CF_α counterfactual sets, RaVL's spurious digits, Safe-CLIP
quadruplets)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from trustvl.commands._common import (
    add_config_command,
    add_group,
    check_model_path,
    check_output_dir,
    config_from_namespace,
    parse_json_object,
)


def add_build(sub: Any) -> None:
    g = add_group(
        sub,
        "build",
        "build datasets (SynthWorld, counterfactuals, spurious digits, Safe-CLIP unsafe captions and quadruplets)",
    )
    add_config_command(
        g,
        "synthworld",
        "trustvl.data_builders.synthworld.dataset:SynthWorldBuildConfig",
        _cmd_synthworld,
        help="render a SynthWorld HF dataset (train biased, test balanced)",
    )

    add_config_command(
        g,
        "counterfactuals",
        "trustvl.data_builders.cf_alpha.build_config:CounterfactualBuildConfig",
        _cmd_counterfactuals,
        help="CF_α counterfactual sets: text-to-image, person masks, inpainting",
    )

    add_config_command(
        g,
        "spurious-digits",
        "trustvl.data_builders.ravl.spurious_digits:SpuriousDigitsConfig",
        _cmd_spurious_digits,
        help="RaVL's evaluation data: digits in quadrants + a red rectangle",
    )

    add_config_command(
        g,
        "safe-clip-quadruplets",
        "trustvl.data_builders.safe_clip.quadruplet_build_config:QuadrupletBuildConfig",
        _cmd_safe_clip_quadruplets,
        help="Safe-CLIP quadruplets (safe text, safe image, unsafe text, unsafe image) + I2P category",
        description="Build (or resume) a Safe-CLIP quadruplet dataset folder with splits train/validation/test."
        " Image stage: SynthWorld's renderer (exact, default), the SynthWorld text-to-image model, or any"
        " diffusers pipeline (--image-stage diffusers --model ID; needs --allow-unsafe-generation).",
    )
    add_config_command(
        g,
        "unsafe-captions",
        "trustvl.data_builders.safe_clip.unsafe_captions_config:UnsafeCaptionsConfig",
        _cmd_unsafe_captions,
        help="Safe-CLIP: convert safe captions into unsafe ones (checked against SynthWorld's caption grammar)",
    )


def _cmd_synthworld(args: argparse.Namespace) -> int:
    from trustvl.data_builders.synthworld import SynthWorldConfig, build_synthworld_dataset
    from trustvl.errors import TrustVLInputError

    cfg = config_from_namespace(args.config_class, args)
    knobs = parse_json_object(cfg.world_json, "--world-json") if cfg.world_json else {}
    try:
        world = SynthWorldConfig(resolution=cfg.resolution, **knobs)
    except TypeError as err:  # an unknown knob
        raise TrustVLInputError(f"--world-json: {err}; see SynthWorldConfig for the knobs") from None
    check_output_dir(cfg.out_dir, overwrite=cfg.overwrite, resume=cfg.resume)
    path = build_synthworld_dataset(
        cfg.out_dir,
        world,
        n_train=cfg.n_train,
        n_test=cfg.n_test,
        seed=cfg.seed,
        progress=cfg.progress,
        num_proc=cfg.num_proc,
        overwrite=cfg.overwrite,
    )
    print(f"dataset: {path}")
    return 0


def _cmd_counterfactuals(args: argparse.Namespace) -> int:
    from trustvl.data_builders.cf_alpha.build_config import build_from_config

    cfg = config_from_namespace(args.config_class, args)
    check_output_dir(cfg.out_dir, overwrite=cfg.overwrite, resume=cfg.resume)
    print(build_from_config(cfg))
    return 0


def _cmd_spurious_digits(args: argparse.Namespace) -> int:
    cfg = config_from_namespace(args.config_class, args)
    check_output_dir(cfg.out_dir, overwrite=cfg.overwrite)
    print(f"dataset: {cfg.build()}")
    return 0


def _cmd_safe_clip_quadruplets(args: argparse.Namespace) -> int:
    from trustvl.data_builders.safe_clip.quadruplet_build_config import build_from_config

    cfg = config_from_namespace(args.config_class, args)
    check_output_dir(cfg.out_dir, overwrite=cfg.overwrite, resume=cfg.resume)
    check_model_path(cfg.converter, "--converter")
    summary = build_from_config(cfg)
    print(json.dumps({k: v for k, v in summary.to_dict().items() if k != "dropped"}))
    return 0


def _cmd_unsafe_captions(args: argparse.Namespace) -> int:
    from trustvl.data_builders.safe_clip.unsafe_captions_config import build_from_config

    cfg = config_from_namespace(args.config_class, args)
    check_output_dir(cfg.out_dir, overwrite=cfg.overwrite)
    if cfg.converter != "oracle":
        check_model_path(cfg.converter, "--converter")
    cfg.check()
    print(json.dumps(build_from_config(cfg).to_dict()))
    return 0
