"""``trustvl demo``: CF_α end to end on the embedded SynthWorld defaults, offline."""

from __future__ import annotations

import argparse
from typing import Any

from trustvl.commands._common import check_model_path, check_output_dir, int_arg
from trustvl.errors import TrustVLInputError


def add_demo(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="the main job: CF_α end to end on the embedded SynthWorld defaults (offline)"
    )
    from trustvl.evaluation.demo import DemoConfig

    d = DemoConfig()
    p.add_argument("--out", default=d.out_dir, help="run folder (default: %(default)s)")
    p.add_argument(
        "--n-test",
        type=int_arg(1),
        default=d.n_test,
        help="balanced test scenes audited (default: %(default)s)",
    )
    p.add_argument(
        "--k",
        type=int_arg(1),
        nargs="+",
        default=list(d.ks),
        help="cut-offs k of MaxSkew@k / MinSkew@k, each at most --n-test (default: %(default)s)",
    )
    p.add_argument(
        "--n-base-per-occupation",
        type=int_arg(1),
        default=d.n_base_per_occupation,
        help="counterfactual sets per occupation (default: %(default)s)",
    )
    p.add_argument(
        "--max-steps", type=int_arg(1), default=d.max_steps, help="CF_α steps (default: %(default)s)"
    )
    p.add_argument(
        "--base-model", default=None, help="CLIP id or folder (default: the embedded SynthWorld CLIP)"
    )
    p.add_argument("--seed", type=int_arg(0, None), default=d.seed)
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from trustvl.evaluation.demo import DemoConfig, run_demo
    from trustvl.evaluation.wording import effect_lines

    if max(args.k) > args.n_test:
        raise TrustVLInputError(
            f"--k {max(args.k)} exceeds --n-test {args.n_test} (the gallery size); expected every k <= --n-test"
            f" (e.g. --k {' '.join(str(k) for k in args.k if k <= args.n_test) or args.n_test})"
        )
    check_output_dir(args.out, overwrite=args.overwrite)
    check_model_path(args.base_model, "--base-model")
    cfg = DemoConfig(
        out_dir=args.out,
        n_test=args.n_test,
        ks=sorted(set(args.k)),
        max_steps=args.max_steps,
        n_base_per_occupation=args.n_base_per_occupation,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=not args.quiet,
        base_model=args.base_model,
    )
    result = run_demo(cfg)
    zs = result.zero_shot_top1
    print(f"zero-shot top-1: base {zs.base:.4f} -> CF_α(α=1) {zs.cf_alpha:.4f}")
    for attr, e in result.effect.items():
        for line in effect_lines(attr, e, after="CF_α(α=1)"):
            print(line)
    return 0
