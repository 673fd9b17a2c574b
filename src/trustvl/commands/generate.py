"""``trustvl generate``: images from any Stable Diffusion pipeline into a dataset folder (options:
:class:`~trustvl.pipelines.generation_config.GenerateConfig`)."""

from __future__ import annotations

import argparse
from typing import Any

from trustvl.commands._common import (
    add_config_command,
    check_model_path,
    check_output_dir,
    config_from_namespace,
)


def add_generate(sub: Any) -> None:
    add_config_command(
        sub,
        "generate",
        "trustvl.pipelines.generation_config:GenerateConfig",
        _cmd_generate,
        help="generate images with an SD pipeline (default: the embedded SynthWorld SD) into a dataset folder",
        description="Generate N images per prompt (image i uses seed SEED+i); writes grid.png, a Parquet "
        "dataset with each image's prompt and seed (and, with --classify, the outcome classifier's reading) "
        "and a dataset card. datasets.load_dataset(OUT) loads it. Fair Diffusion (--fair, --fair-file): guide "
        "each image toward an assigned group (exact counts per prompt, seeded by --seed) and away from the "
        "others; each image's group goes to a fair_<attribute> column.",
    )


def _cmd_generate(args: argparse.Namespace) -> int:
    from trustvl.pipelines.generation import generate_from_config

    cfg = config_from_namespace(args.config_class, args)
    check_output_dir(cfg.out_dir, overwrite=cfg.overwrite)
    for flag, value in (
        ("--model", cfg.model),
        ("--classifier", cfg.classifier),
        ("--text-encoder", cfg.text_encoder),
    ):
        check_model_path(value, flag)
    run = generate_from_config(cfg)
    print(f"{run.n_images} images -> {run.out_dir} (grid: {run.grid_path})")
    return 0
