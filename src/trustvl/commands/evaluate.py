"""``trustvl eval``: evaluate trained models (the CF_α α sweep, Safe-CLIP) and Fair Diffusion's outcome."""

from __future__ import annotations

import argparse
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
)


def add_eval(sub: Any) -> None:
    g = add_group(
        sub, "eval", "evaluate trained models (CF_α α sweep, Safe-CLIP) and Fair Diffusion outcomes"
    )
    add_config_command(
        g,
        "cf-alpha",
        "trustvl.evaluation.cf_alpha_sweep:AlphaSweepConfig",
        _cmd_cf_alpha,
        help="sweep α: fairness (MaxSkew/MinSkew/NDKL), zero-shot and Recall@K per α",
    )
    _add_fair_diffusion(g)
    add_config_command(
        g,
        "safe-clip",
        "trustvl.evaluation.safe_clip:SafeCLIPEvalConfig",
        _cmd_safe_clip,
        help="Safe-CLIP: R@1/5/10 (S→V, U→V, U→G, V→S, G→S), NSFW rate, zero-shot, per category, vs the base",
    )


def _add_fair_diffusion(g: Any) -> None:
    from trustvl.commands.generate import add_fair_options

    p = g.add_parser(
        "fair-diffusion",
        help="Fair Diffusion outcome: group shares vs target with and without fairness instructions",
        description="Generate N images per prompt with and without the fairness instruction(s) (same seeds), "
        "read them with the outcome classifier and report per prompt the group shares vs the target, mean "
        "|share - target|, KL, prompts within the tolerance and whether the occupation is still recognised. "
        "Default: SynthWorld SD, gender 50/50, 'a photo of a {occupation}' for the 8 SynthWorld occupations.",
    )
    p.add_argument("--out", required=True)
    p.add_argument(
        "--prompts", nargs="+", default=None, help="prompts (default: the 8 SynthWorld occupations)"
    )
    p.add_argument(
        "--occupations", nargs="+", default=None, help="occupation each prompt shows (default: named in it)"
    )
    p.add_argument(
        "--model", default=None, help="SD pipeline Hub id or folder (default: embedded SynthWorld SD)"
    )
    p.add_argument("--classifier", default=None, help="image-classification model (default: embedded one)")
    p.add_argument("--n", type=int_arg(1), default=64, help="images per prompt (default: %(default)s)")
    p.add_argument("--seed", type=int_arg(0, None), default=0)
    p.add_argument("--steps", type=int_arg(1, 10_000), default=20)
    p.add_argument("--guidance", type=float_arg(), default=8.0)
    p.add_argument(
        "--batch-size", type=int_arg(1), default=512, help="images per pipeline call, prompts mixed"
    )
    p.add_argument("--tolerance", type=float_arg(0.0, 1.0), default=0.1)
    p.add_argument(
        "--n-resamples", type=int_arg(0), default=1000, help="bootstrap resamples (0: no intervals)"
    )
    p.add_argument(
        "--grid-images", type=int_arg(0), default=16, help="images per prompt in the report's grids"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default=None)
    add_fair_options(p)
    add_run_options(p, overwrite=True, quiet=True)
    p.set_defaults(handler=_cmd_fair_diffusion)


def _cmd_fair_diffusion(args: argparse.Namespace) -> int:
    from trustvl.commands.generate import fair_plan
    from trustvl.evaluation.fair_diffusion import FairDiffusionEvalConfig, run_fair_diffusion_eval
    from trustvl.pipelines.fairness_instruction import FairnessInstruction

    check_output_dir(args.out, overwrite=args.overwrite)
    check_model_path(args.model, "--model")
    check_model_path(args.classifier, "--classifier")
    plan = fair_plan(args)
    if plan is None:  # the SynthWorld default, with the command line's knobs
        knobs = dict(guidance_scale=args.fair_scale, warmup_steps=args.fair_warmup,
                     cooldown_steps=args.fair_cooldown, threshold=args.fair_threshold)  # fmt: skip
        fairness = [FairnessInstruction.synthworld("gender", contextual=args.fair_context, **knobs)]
    else:
        fairness = list(plan.instructions)
    cfg = FairDiffusionEvalConfig(
        out_dir=args.out, fairness=fairness, prompts=args.prompts, occupations=args.occupations,
        subjects=args.fair_subject,
        model=args.model, classifier=args.classifier, n=args.n, seed=args.seed, num_inference_steps=args.steps,
        guidance_scale=args.guidance, momentum_scale=args.fair_momentum, momentum_beta=args.fair_momentum_beta,
        batch_size=args.batch_size, tolerance=args.tolerance, n_resamples=args.n_resamples,
        grid_images=args.grid_images, device=args.device, dtype=args.dtype, overwrite=args.overwrite,
        progress=not args.quiet,
    )  # fmt: skip
    result = run_fair_diffusion_eval(cfg)
    for a in result.attributes:
        gap = a.mean_abs_gap
        print(f"{a.attribute}: mean |share - target| {gap.plain:.3f} -> {gap.fair:.3f}; within ±{cfg.tolerance:g}: "
              f"{a.within_tolerance.plain:.2f} -> {a.within_tolerance.fair:.2f}; KL {a.kl.plain:.3f} -> {a.kl.fair:.3f}")  # fmt: skip
    if result.content is not None:
        c = result.content.recognised
        print(f"occupation recognised: {c.plain:.3f} -> {c.fair:.3f}")
    print(f"report: {args.out}/report.html")
    return 0


def _cmd_cf_alpha(args: argparse.Namespace) -> int:
    from trustvl.evaluation.cf_alpha_sweep import sweep_alpha
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
