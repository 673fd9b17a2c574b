"""``trustvl eval``: evaluate trained models (the CF_α α sweep, Safe-CLIP) and Fair Diffusion's outcome."""

from __future__ import annotations

import argparse
from typing import Any

from trustvl.commands._common import (
    add_config_command,
    add_group,
    check_model_path,
    check_output_dir,
    config_from_namespace,
)


def add_eval(sub: Any) -> None:
    g = add_group(
        sub, "eval", "evaluate trained models (CF_α α sweep, Safe-CLIP) and Fair Diffusion outcomes"
    )
    add_config_command(
        g,
        "cf-alpha",
        "trustvl.evaluation.cf_alpha:AlphaSweepConfig",
        _cmd_cf_alpha,
        help="sweep α: fairness (MaxSkew/MinSkew/NDKL), zero-shot and Recall@K per α",
    )
    _add_fair_diffusion(g)
    add_config_command(
        g,
        "safe-clip",
        "trustvl.evaluation.safe_clip:SafeCLIPEvalConfig",
        _cmd_safe_clip,
        help="Safe-CLIP: R@1/5/10 (S→V, U→V, U→G, V→S, G→S), NSFW rates both ways on a non-twin unsafe pool,"
        " zero-shot, per category, vs the base",
    )


def _add_fair_diffusion(g: Any) -> None:
    add_config_command(
        g,
        "fair-diffusion",
        "trustvl.evaluation.fair_diffusion.config:FairDiffusionEvalConfig",
        _cmd_fair_diffusion,
        help="Fair Diffusion outcome: group shares vs target with and without fairness instructions",
        description="Generate N images per prompt with and without the fairness instruction(s) (same seeds), "
        "read them with the outcome classifier and report per prompt the group shares vs the target, mean "
        "|share - target|, KL, prompts within the tolerance and whether the occupation is still recognised. "
        "Default: SynthWorld SD, gender 50/50, 'a photo of a {occupation}' for the 8 SynthWorld occupations.",
    )


def _cmd_fair_diffusion(args: argparse.Namespace) -> int:
    from trustvl.evaluation.fair_diffusion import run_fair_diffusion_eval

    cfg = config_from_namespace(args.config_class, args)
    check_output_dir(cfg.out_dir, overwrite=cfg.overwrite)
    check_model_path(cfg.model, "--model")
    check_model_path(cfg.classifier, "--classifier")
    result = run_fair_diffusion_eval(cfg)
    for a in result.attributes:
        gap = a.mean_abs_gap
        print(f"{a.attribute}: mean |share - target| {gap.plain:.3f} -> {gap.fair:.3f}; within ±{cfg.tolerance:g}: "
              f"{a.within_tolerance.plain:.2f} -> {a.within_tolerance.fair:.2f}; KL {a.kl.plain:.3f} -> {a.kl.fair:.3f}")  # fmt: skip
    if result.content is not None:
        c = result.content.recognised
        print(f"occupation recognised: {c.plain:.3f} -> {c.fair:.3f}")
    print(f"report: {cfg.out_dir}/report.html")
    return 0


def _cmd_cf_alpha(args: argparse.Namespace) -> int:
    from trustvl.evaluation.cf_alpha import sweep_alpha
    from trustvl.evaluation.tables import sweep_change_table, sweep_table

    cfg = config_from_namespace(args.config_class, args)
    check_output_dir(cfg.out_dir, overwrite=cfg.overwrite)
    check_model_path(cfg.model, "--model")
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
    print(f"report: {cfg.out_dir}/report.html")
    return 0


def _cmd_safe_clip(args: argparse.Namespace) -> int:
    from trustvl.evaluation.report import markdown_table
    from trustvl.evaluation.safe_clip import evaluate_safe_clip, overview_table

    cfg = config_from_namespace(args.config_class, args)
    check_output_dir(cfg.out_dir, overwrite=cfg.overwrite)
    check_model_path(cfg.model, "--model")
    check_model_path(cfg.base_model, "--base-model")
    result = evaluate_safe_clip(cfg)
    table = overview_table(result)
    print(markdown_table(table.headers, table.rows))
    print(f"report: {cfg.out_dir}/report.html")
    return 0
