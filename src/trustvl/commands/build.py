"""``trustvl build``: the datasets (SynthWorld, CF_α counterfactual sets, RaVL's spurious digits)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from trustvl.commands._common import add_group, add_run_options


def add_build(sub: Any) -> None:
    g = add_group(sub, "build", "build datasets (SynthWorld, counterfactuals, spurious digits, unsafe captions)")
    p = g.add_parser("synthworld", help="render a SynthWorld HF dataset (train biased, test balanced)")
    p.add_argument("--out", required=True)
    p.add_argument("--n-train", type=int, default=8000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--world-json", default=None, help="JSON object of further SynthWorldConfig knobs")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=_cmd_synthworld)

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
    add_run_options(p, overwrite=True, quiet=True)
    p.set_defaults(handler=_cmd_counterfactuals)

    p = g.add_parser("spurious-digits", help="RaVL's evaluation data: digits in quadrants + a red rectangle")
    p.add_argument("--out", required=True)
    p.add_argument("--cramers-v", type=float, default=0.9)
    p.add_argument("--spurious-class", type=int, default=7)
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--image-size", type=int, default=64)
    add_run_options(p, seed=0, overwrite=True)
    p.set_defaults(handler=_cmd_spurious_digits)

    p = g.add_parser(
        "unsafe-captions",
        help="Safe-CLIP: convert safe captions into unsafe ones (checked against SynthWorld's caption grammar)",
    )
    p.add_argument("--out", required=True)
    p.add_argument(
        "--converter", default="oracle", help="'oracle' (SynthWorld's exact converter) or a trained converter folder/id"
    )
    p.add_argument("--captions", default="synthworld", help="'synthworld' or a .txt (one per line) / .jsonl file")
    p.add_argument("--n", type=int, default=None, help="how many captions (required with --captions synthworld)")
    p.add_argument("--world-seed", type=int, default=0, help="SynthWorld world seed for --captions synthworld")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--keep-invalid", action="store_true", help="keep invalid outputs as rows with valid=False")
    p.add_argument("--sample", action="store_true", help="sample (seeded) instead of greedy decoding")
    p.add_argument("--device", default="auto")
    add_run_options(p, seed=0, overwrite=True, quiet=True)
    p.set_defaults(handler=_cmd_unsafe_captions)


def _cmd_synthworld(args: argparse.Namespace) -> int:
    from trustvl.data_builders.synthworld import SynthWorldConfig, build_synthworld_dataset

    world = SynthWorldConfig(
        resolution=args.resolution, **(json.loads(args.world_json) if args.world_json else {})
    )
    path = build_synthworld_dataset(
        args.out, world, n_train=args.n_train, n_test=args.n_test, seed=args.seed, progress=not args.quiet
    )
    print(f"dataset: {path}")
    return 0


def _cmd_counterfactuals(args: argparse.Namespace) -> int:
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


def _cmd_spurious_digits(args: argparse.Namespace) -> int:
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


def _cmd_unsafe_captions(args: argparse.Namespace) -> int:
    from trustvl.data_builders.safe_clip.unsafe_captions import build_unsafe_captions

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
