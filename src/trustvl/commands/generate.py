"""``trustvl generate``: images from any Stable Diffusion pipeline into a dataset folder."""

from __future__ import annotations

import argparse
from typing import Any

from trustvl.commands._common import check_model_path, check_output_dir, field_defaults, float_arg, int_arg
from trustvl.errors import TrustVLInputError


def add_generate(sub: Any) -> None:
    p = sub.add_parser(
        "generate",
        help="generate images with an SD pipeline (default: the embedded SynthWorld SD) into a dataset folder",
        description="Generate N images per prompt (image i uses seed SEED+i); writes grid.png, a Parquet "
        "dataset with each image's prompt and seed (and, with --classify, the outcome classifier's reading) "
        "and a dataset card. datasets.load_dataset(OUT) loads it.",
    )
    p.add_argument(
        "--model", default=None, help="SD pipeline Hub id or folder (default: embedded SynthWorld SD)"
    )
    p.add_argument("--prompt", required=True, nargs="+", action="extend", help="one or more prompts")
    p.add_argument("--n", type=int_arg(1), default=8, help="images per prompt (default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder (must be empty unless --overwrite)")
    p.add_argument("--seed", type=int_arg(0, None), default=0)
    p.add_argument(
        "--steps", type=int_arg(1, 10_000), default=20, help="inference steps (default: %(default)s)"
    )
    p.add_argument("--guidance", type=float_arg(), default=8.0, help="guidance scale (default: %(default)s)")
    p.add_argument("--batch-size", type=int_arg(1), default=64)
    p.add_argument(
        "--classify", action="store_true", help="add the outcome classifier's reading of each image"
    )
    p.add_argument("--classifier", default=None, help="image-classification model (default: embedded one)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default=None, help="float32 (default), float16, bfloat16 or auto")
    p.add_argument("--overwrite", action="store_true")
    add_fair_options(p)
    p.add_argument(
        "--text-encoder",
        default=None,
        help="replace the pipeline's text encoder with this CLIP's text tower (e.g. a Safe-CLIP folder, a merged"
        " CLIPModel or a peft adapter over a CLIP)",
    )
    p.set_defaults(handler=_cmd_generate)


def add_fair_options(p: Any) -> None:
    """Fair Diffusion options (defaults: the paper's; SPEC §5)."""
    g = p.add_argument_group(
        "Fair Diffusion",
        "guide each image toward an assigned group (exact counts per prompt, seeded by --seed) and away from "
        "the others; each image's group goes to a fair_<attribute> column. SynthWorld SD phrases: "
        "'gender=female person:0.5,male person:0.5', 'skin_tone=person with very light skin,person with light "
        "skin,person with dark skin,person with very dark skin' (or the presets 'gender', 'skin_tone')",
    )
    g.add_argument("--fair", action="append", default=None, metavar="SPEC",
                   help="'ATTRIBUTE=GROUP:SHARE,GROUP:SHARE,...' or a preset name; repeat for several attributes")  # fmt: skip
    g.add_argument("--fair-file", default=None, metavar="FILE",
                   help="YAML/JSON list of instructions (FairnessInstruction fields, or --fair strings)")  # fmt: skip
    instruction = field_defaults("trustvl.pipelines.fairness_instruction:FairnessInstruction")
    g.add_argument("--fair-scale", type=float_arg(), default=instruction["guidance_scale"],
                   help="edit guidance scale s_c (default: %(default)s)")  # fmt: skip
    g.add_argument("--fair-warmup", type=int_arg(0, None), default=instruction["warmup_steps"],
                   help="steps before the edit applies (default: %(default)s)")  # fmt: skip
    g.add_argument("--fair-cooldown", type=int_arg(0, None), default=instruction["cooldown_steps"],
                   help="step from which it stops (default: never)")  # fmt: skip
    g.add_argument("--fair-threshold", type=float, default=instruction["threshold"],
                   help="SEGA quantile λ in [0, 1) (default: %(default)s: the top 5%% of each channel)")  # fmt: skip
    g.add_argument("--fair-context", action="store_true",
                   help="guide each group in the prompt's context ('a photo of a female {subject}', 'a photo of a "
                        "very dark-skinned {subject}') instead of the bare phrase (presets and SynthWorld phrases)")  # fmt: skip
    g.add_argument("--fair-subject", nargs="+", action="extend", default=None, metavar="TEXT",
                   help="what each prompt shows, one per prompt, for guidance in context (default: the SynthWorld "
                        "occupation the prompt names)")  # fmt: skip
    plan = field_defaults("trustvl.pipelines.fair_diffusion:FairGenerationPlan")
    g.add_argument("--fair-momentum", type=float, default=plan["momentum_scale"],
                   help="momentum scale (default: %(default)s)")  # fmt: skip
    g.add_argument("--fair-momentum-beta", type=float, default=plan["momentum_beta"],
                   help="momentum β (default: %(default)s)")  # fmt: skip


def fair_plan(args: argparse.Namespace) -> Any:
    """The :class:`~trustvl.pipelines.fair_diffusion.FairGenerationPlan` of ``--fair``/``--fair-file``, or
    None; every value is checked here, before any model is loaded."""
    if not args.fair and not args.fair_file:
        return None
    from trustvl.pipelines.fair_diffusion import FairGenerationPlan
    from trustvl.pipelines.fairness_instruction import FairnessInstruction, instructions_from_file

    knobs = dict(
        guidance_scale=args.fair_scale, warmup_steps=args.fair_warmup, cooldown_steps=args.fair_cooldown,
        threshold=args.fair_threshold,
    )  # fmt: skip
    instructions = [
        FairnessInstruction.from_string(text, contextual=args.fair_context, **knobs)
        for text in args.fair or ()
    ]
    if args.fair_file:
        instructions += instructions_from_file(args.fair_file, **knobs)
    prompts = getattr(args, "prompt", None)  # trustvl generate; the evaluation pairs its own prompts
    subjects = None
    if args.fair_subject is not None and prompts is not None:
        if len(prompts) != len(args.fair_subject):
            raise TrustVLInputError(
                f"--fair-subject gives {len(args.fair_subject)} subject(s) for {len(prompts)} prompt(s); give "
                "one per --prompt"
            )
        subjects = dict(zip(prompts, args.fair_subject))
    return FairGenerationPlan(tuple(instructions), args.fair_momentum, args.fair_momentum_beta, subjects)


def _cmd_generate(args: argparse.Namespace) -> int:
    from trustvl.pipelines.generation import generate_dataset

    check_output_dir(args.out, overwrite=args.overwrite)
    for flag in ("--model", "--classifier", "--text-encoder"):
        check_model_path(getattr(args, flag[2:].replace("-", "_")), flag)
    plan = fair_plan(args)
    if plan is None and (args.fair_context or args.fair_subject):
        raise TrustVLInputError(
            "--fair-context and --fair-subject need a fairness instruction (--fair or --fair-file)"
        )
    pipeline = None
    if args.text_encoder is not None:
        from trustvl.modeling.synthworld_sd import load_sd_pipeline
        from trustvl.pipelines.safe_generation import make_safe_pipeline

        pipeline = make_safe_pipeline(
            load_sd_pipeline(args.model, args.device, args.dtype), args.text_encoder
        )
    run = generate_dataset(
        args.model, args.prompt, args.n, args.out, seed=args.seed, num_inference_steps=args.steps,
        guidance_scale=args.guidance, batch_size=args.batch_size, classify=args.classify,
        classifier=args.classifier, device=args.device, dtype=args.dtype, overwrite=args.overwrite,
        fairness=plan,
        pipeline=pipeline, text_encoder=args.text_encoder,
    )  # fmt: skip
    print(f"{run.n_images} images -> {run.out_dir} (grid: {run.grid_path})")
    return 0
