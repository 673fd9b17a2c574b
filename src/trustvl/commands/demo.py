"""``trustvl demo``: CF_α end to end on the embedded SynthWorld defaults, offline (options:
:class:`~trustvl.jobs.demo.DemoConfig`, its CF_α recipe under ``cf_alpha``)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from trustvl.commands._common import (
    add_config_command,
    check_model_path,
    check_output_dir,
    config_from_namespace,
)
from trustvl.errors import TrustVLInputError


def add_demo(sub: Any) -> None:
    add_config_command(
        sub,
        "demo",
        "trustvl.jobs.demo:DemoConfig",
        _cmd_demo,
        help="the main job: CF_α end to end on the embedded SynthWorld defaults (offline)",
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from trustvl.evaluation.wording import effect_lines
    from trustvl.jobs.demo import run_demo

    cfg = config_from_namespace(args.config_class, args)
    if max(cfg.ks) > cfg.n_test:
        raise TrustVLInputError(
            f"--k {max(cfg.ks)} exceeds --n-test {cfg.n_test} (the gallery size); expected every k <= --n-test"
            f" (e.g. --k {' '.join(str(k) for k in cfg.ks if k <= cfg.n_test) or cfg.n_test})"
        )
    check_output_dir(cfg.out_dir, overwrite=cfg.overwrite)
    check_model_path(cfg.base_model, "--base-model")
    result = run_demo(replace(cfg, ks=sorted(set(cfg.ks))))
    zs = result.zero_shot_top1
    print(f"zero-shot top-1: base {zs.base:.4f} -> CF_α(α=1) {zs.cf_alpha:.4f}")
    for attr, e in result.effect.items():
        for line in effect_lines(attr, e, after="CF_α(α=1)"):
            print(line)
    return 0
