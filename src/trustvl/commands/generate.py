"""``trustvl generate``: images from any Stable Diffusion pipeline into a dataset folder."""

from __future__ import annotations

import argparse
from typing import Any


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
    p.add_argument("--n", type=int, default=8, help="images per prompt (default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder (must be empty unless --overwrite)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=20, help="inference steps (default: %(default)s)")
    p.add_argument("--guidance", type=float, default=8.0, help="guidance scale (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--classify", action="store_true", help="add the outcome classifier's reading of each image"
    )
    p.add_argument("--classifier", default=None, help="image-classification model (default: embedded one)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default=None, help="float32 (default), float16, bfloat16 or auto")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument(
        "--text-encoder",
        default=None,
        help="replace the pipeline's text encoder with this CLIP's text tower (e.g. a Safe-CLIP folder, a merged"
        " CLIPModel or a peft adapter over a CLIP)",
    )
    p.set_defaults(handler=_cmd_generate)


def _cmd_generate(args: argparse.Namespace) -> int:
    from trustvl.data_builders.generated_images import generate_dataset

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
        pipeline=pipeline, text_encoder=args.text_encoder,
    )  # fmt: skip
    print(f"{run.n_images} images -> {run.out_dir} (grid: {run.grid_path})")
    return 0
