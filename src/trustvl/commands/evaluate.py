"""``trustvl eval``: evaluate trained models (the CF_α α sweep, Safe-CLIP)."""

from __future__ import annotations

import argparse
from typing import Any

from trustvl.commands._common import add_group, add_run_options


def add_eval(sub: Any) -> None:
    g = add_group(sub, "eval", "evaluate trained models (CF_α α sweep, Safe-CLIP)")
    p = g.add_parser(
        "cf-alpha", help="sweep α: fairness (MaxSkew/MinSkew/NDKL), zero-shot and Recall@K per α"
    )
    p.add_argument("--model", required=True, help="CF_α model folder (trustvl train cf-alpha output /model)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--alphas", nargs="+", type=float, default=[0.0, 0.25, 0.5, 0.75, 1.0])
    p.add_argument("--split", default="test")
    p.add_argument("--label-column", default="occupation")
    p.add_argument("--attributes", nargs="+", default=None)
    p.add_argument("--k", nargs="+", type=int, default=[10, 100])
    p.add_argument(
        "--n-resamples",
        type=int,
        default=200,
        help="gallery-bootstrap resamples for the intervals, floors and verdicts (0: off; default %(default)s)",
    )
    p.add_argument("--allow-extrapolation", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--max-images", type=int, default=None)
    add_run_options(p, overwrite=True, quiet=True)
    p.set_defaults(handler=_cmd_cf_alpha)
    _add_safe_clip(g)


def _cmd_cf_alpha(args: argparse.Namespace) -> int:
    from trustvl.evaluation.cf_alpha_sweep import AlphaSweepConfig, sweep_alpha
    from trustvl.evaluation.tables import sweep_change_table, sweep_table

    cfg = AlphaSweepConfig(
        model=args.model,
        dataset=args.dataset,
        out_dir=args.out,
        alphas=args.alphas,
        split=args.split,
        label_column=args.label_column,
        attributes=args.attributes,
        ks=args.k,
        allow_extrapolation=args.allow_extrapolation,
        device=args.device,
        max_images=args.max_images,
        overwrite=args.overwrite,
        progress=not args.quiet,
        n_resamples=args.n_resamples,
    )
    sweep = sweep_alpha(cfg)
    for table in (
        sweep_table(sweep),
        sweep_table(sweep, "ndkl", with_accuracy=False),
        sweep_change_table(sweep),
    ):
        print(" | ".join(table.headers))
        for row in table.rows:
            print(" | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
        print()
    print(f"report: {args.out}/report.html")
    return 0


def _add_safe_clip(g: Any) -> None:
    p = g.add_parser(
        "safe-clip",
        help="Safe-CLIP: R@1/5/10 (S→V, U→V, U→G, V→S, G→S), NSFW rate, zero-shot, per category, vs the base",
    )
    p.add_argument(
        "--model", required=True, help="Safe-CLIP model folder (trustvl train safe-clip output /model)"
    )
    p.add_argument("--dataset", required=True, help="quadruplet dataset folder or Hub id")
    p.add_argument("--out", required=True)
    p.add_argument("--base-model", default=None, help="compare with this model (usually the base CLIP)")
    p.add_argument("--split", default="test")
    p.add_argument("--k", nargs="+", type=int, default=[1, 5, 10], help="R@K cut-offs")
    p.add_argument("--nsfw-k", type=int, default=10, help="cut-off of the NSFW rate (default %(default)s)")
    p.add_argument(
        "--n-resamples",
        type=int,
        default=200,
        help="query-bootstrap resamples for the intervals and verdicts (0: off; default %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-rows", type=int, default=None)
    add_run_options(p, overwrite=True, quiet=True)
    p.set_defaults(handler=_cmd_safe_clip)


def _cmd_safe_clip(args: argparse.Namespace) -> int:
    from trustvl.evaluation.report import markdown_table
    from trustvl.evaluation.safe_clip import SafeCLIPEvalConfig, evaluate_safe_clip, overview_table

    result = evaluate_safe_clip(
        SafeCLIPEvalConfig(
            model=args.model,
            dataset=args.dataset,
            out_dir=args.out,
            base_model=args.base_model,
            split=args.split,
            ks=tuple(args.k),
            nsfw_k=args.nsfw_k,
            n_resamples=args.n_resamples,
            seed=args.seed,
            device=args.device,
            batch_size=args.batch_size,
            max_rows=args.max_rows,
            overwrite=args.overwrite,
            progress=not args.quiet,
        )
    )
    table = overview_table(result)
    print(markdown_table(table.headers, table.rows))
    print(f"report: {args.out}/report.html")
    return 0
