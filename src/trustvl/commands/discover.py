"""``trustvl discover``: RaVL's discovery of region-level spurious correlations in a fine-tuned CLIP."""

from __future__ import annotations

import argparse
from typing import Any

from trustvl.commands._common import add_run_options, check_model_path, check_output_dir, int_arg


def add_discover(sub: Any) -> None:
    p = sub.add_parser(
        "discover", help="RaVL: discover region-level spurious correlations of a fine-tuned CLIP"
    )
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", required=True, help="labelled evaluation images (image + ClassLabel label)")
    p.add_argument("--out", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--label-column", default="label")
    p.add_argument(
        "--grid", type=int_arg(1, 64), default=2, help="regions are the n x n grid cells (default quadrants)"
    )
    p.add_argument("--max-images", type=int_arg(1), default=None)
    p.add_argument("--device", default="auto")
    add_run_options(p, seed=0, overwrite=True, quiet=True)
    p.set_defaults(handler=_cmd_discover)


def _cmd_discover(args: argparse.Namespace) -> int:
    from trustvl.evaluation.ravl import run_discovery

    check_output_dir(args.out, overwrite=args.overwrite)
    check_model_path(args.model, "--model")
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
