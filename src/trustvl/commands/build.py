"""``trustvl build``: the datasets (SynthWorld, CF_α counterfactual sets, RaVL's spurious digits, Safe-CLIP
quadruplets)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from trustvl.commands._common import (
    add_config_command,
    add_group,
    add_run_options,
    check_model_path,
    check_output_dir,
    config_from_namespace,
    float_arg,
    int_arg,
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
    p.add_argument("--n-base-per-prompt", type=int_arg(1), default=None)
    p.add_argument("--variants-per-base", type=int_arg(1), default=None)
    p.add_argument("--seed", type=int_arg(0, None), default=None)
    p.add_argument("--device", default="auto")
    add_run_options(p, overwrite=True, resume=True, quiet=True)
    p.set_defaults(handler=_cmd_counterfactuals)

    add_config_command(
        g,
        "spurious-digits",
        "trustvl.data_builders.spurious_digits:SpuriousDigitsConfig",
        _cmd_spurious_digits,
        help="RaVL's evaluation data: digits in quadrants + a red rectangle",
    )

    p = g.add_parser(
        "safe-clip-quadruplets",
        help="Safe-CLIP quadruplets (safe text, safe image, unsafe text, unsafe image) + I2P category",
        description="Build (or resume) a Safe-CLIP quadruplet dataset folder with splits train/validation/test."
        " Image stage: SynthWorld's renderer (exact, default), the SynthWorld text-to-image model, or any"
        " diffusers pipeline (--image-stage diffusers --model ID; needs --allow-unsafe-generation).",
    )
    p.add_argument("--out", required=True)
    p.add_argument("--n-train", type=int_arg(0), default=800)
    p.add_argument("--n-validation", type=int_arg(0), default=100)
    p.add_argument("--n-test", type=int_arg(0), default=100)
    p.add_argument(
        "--resolution", type=int_arg(8, 4096), default=64, help="SynthWorld render size (renderer stage)"
    )
    p.add_argument(
        "--elements", nargs="+", default=None, help="unsafe elements (default: gun knife blood syringe)"
    )
    p.add_argument("--shard-size", type=int_arg(1), default=100)
    p.add_argument("--batch-size", type=int_arg(1), default=16)
    p.add_argument(
        "--image-stage",
        choices=("synthworld", "synthworld-sd", "diffusers"),
        default="synthworld",
        help="how V and G are made (default: %(default)s)",
    )
    p.add_argument("--model", default=None, help="diffusers pipeline id/folder (synthworld-sd: its folder)")
    p.add_argument(
        "--allow-unsafe-generation",
        action="store_true",
        help="confirm that a real text-to-image model may generate unsafe images (needed for --image-stage diffusers)",
    )
    p.add_argument(
        "--converter",
        default=None,
        help="caption-converter folder (trustvl train caption-converter); default: SynthWorld's exact conversion",
    )
    p.add_argument(
        "--steps", type=int_arg(1, 10_000), default=20, help="inference steps of a diffusion stage"
    )
    p.add_argument("--guidance", type=float_arg(), default=8.0, help="guidance scale of a diffusion stage")
    p.add_argument("--device", default="auto")
    add_run_options(p, seed=0, overwrite=True, resume=True, quiet=True)
    p.set_defaults(handler=_cmd_safe_clip_quadruplets)

    p = g.add_parser(
        "unsafe-captions",
        help="Safe-CLIP: convert safe captions into unsafe ones (checked against SynthWorld's caption grammar)",
    )
    p.add_argument("--out", required=True)
    p.add_argument(
        "--converter",
        default="oracle",
        help="'oracle' (SynthWorld's exact converter) or a trained converter folder/id",
    )
    p.add_argument(
        "--captions", default="synthworld", help="'synthworld' or a .txt (one per line) / .jsonl file"
    )
    p.add_argument(
        "--n", type=int_arg(1), default=None, help="how many captions (required with --captions synthworld)"
    )
    p.add_argument(
        "--world-seed", type=int, default=0, help="SynthWorld world seed for --captions synthworld"
    )
    p.add_argument("--batch-size", type=int_arg(1), default=32)
    p.add_argument(
        "--keep-invalid", action="store_true", help="keep invalid outputs as rows with valid=False"
    )
    p.add_argument("--sample", action="store_true", help="sample (seeded) instead of greedy decoding")
    p.add_argument("--device", default="auto")
    add_run_options(p, seed=0, overwrite=True, quiet=True)
    p.set_defaults(handler=_cmd_unsafe_captions)


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
        overwrite=cfg.overwrite,
    )
    print(f"dataset: {path}")
    return 0


def _cmd_counterfactuals(args: argparse.Namespace) -> int:
    from trustvl.data_builders import counterfactual as cf

    check_output_dir(args.out, overwrite=args.overwrite, resume=args.resume)
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


def _cmd_spurious_digits(args: argparse.Namespace) -> int:
    cfg = config_from_namespace(args.config_class, args)
    check_output_dir(cfg.out_dir, overwrite=cfg.overwrite)
    print(f"dataset: {cfg.build()}")
    return 0


def _cmd_safe_clip_quadruplets(args: argparse.Namespace) -> int:
    from trustvl.data_builders.safe_clip import quadruplets as q
    from trustvl.data_builders.safe_clip.image_stages import (
        UNSAFE_ELEMENTS,
        DiffusersQuadrupletStage,
        SynthWorldSDStage,
    )
    from trustvl.errors import TrustVLInputError

    check_output_dir(args.out, overwrite=args.overwrite, resume=args.resume)
    config = q.QuadrupletConfig(
        n_train=args.n_train,
        n_validation=args.n_validation,
        n_test=args.n_test,
        seed=args.seed,
        resolution=args.resolution,
        elements=tuple(args.elements or UNSAFE_ELEMENTS),
        shard_size=args.shard_size,
        batch_size=args.batch_size,
    )
    stage = None
    if args.image_stage == "diffusers":
        if args.model is None:
            raise TrustVLInputError(
                "--image-stage diffusers needs --model (a diffusers pipeline id or folder)"
            )
        stage = DiffusersQuadrupletStage(
            args.model,
            allow_unsafe_generation=args.allow_unsafe_generation,
            device=args.device,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
        )
    elif args.image_stage == "synthworld-sd":
        stage = SynthWorldSDStage(
            args.model, device=args.device, num_inference_steps=args.steps, guidance_scale=args.guidance
        )
    converter = None
    if args.converter is not None:
        try:  # the LoRA-tuned caption converter (trustvl.modeling.caption_converter)
            from trustvl.modeling.caption_converter import CaptionConverter
        except ImportError as e:
            raise TrustVLInputError(f"--converter needs trustvl.modeling.caption_converter: {e}") from None
        check_model_path(args.converter, "--converter")
        converter = CaptionConverter.from_pretrained(args.converter)
    summary = q.build_safe_clip_quadruplets(
        args.out,
        config,
        stage,
        converter,
        allow_unsafe_generation=args.allow_unsafe_generation,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    print(json.dumps({k: v for k, v in summary.to_dict().items() if k != "dropped"}))


def _cmd_unsafe_captions(args: argparse.Namespace) -> int:
    from trustvl.data_builders.safe_clip.unsafe_captions import build_unsafe_captions
    from trustvl.errors import TrustVLInputError

    check_output_dir(args.out, overwrite=args.overwrite)
    if args.converter != "oracle":
        check_model_path(args.converter, "--converter")
    if args.captions == "synthworld" and args.n is None:
        raise TrustVLInputError("--captions synthworld needs --n (how many captions to convert)")
    if args.captions != "synthworld" and not Path(args.captions).is_file():
        raise TrustVLInputError(
            f"--captions {args.captions!r} is not a file; expected 'synthworld' or a .txt/.jsonl file"
        )
    kwargs = None if args.converter == "oracle" else {"device": args.device, "do_sample": args.sample}
    summary = build_unsafe_captions(
        args.out,
        converter=args.converter,
        captions=args.captions,
        n=args.n,
        seed=args.seed,
        world_seed=args.world_seed,
        batch_size=args.batch_size,
        keep_invalid=args.keep_invalid,
        overwrite=args.overwrite,
        progress=not args.quiet,
        converter_kwargs=kwargs,
    )
    print(json.dumps(summary.to_dict()))
    return 0
