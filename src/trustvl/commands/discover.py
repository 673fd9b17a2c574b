"""``trustvl discover``: RaVL's discovery of region-level spurious correlations in a fine-tuned CLIP
(options: :class:`~trustvl.evaluation.ravl.DiscoveryConfig`)."""

from __future__ import annotations

import argparse
from typing import Any

from trustvl.commands._common import (
    add_config_command,
    check_model_path,
    check_output_dir,
    config_from_namespace,
)


def add_discover(sub: Any) -> None:
    add_config_command(
        sub,
        "discover",
        "trustvl.evaluation.ravl:DiscoveryConfig",
        _cmd_discover,
        help="RaVL: discover region-level spurious correlations of a fine-tuned CLIP",
    )


def _cmd_discover(args: argparse.Namespace) -> int:
    cfg = config_from_namespace(args.config_class, args)
    check_output_dir(cfg.out_dir, overwrite=cfg.overwrite)
    check_model_path(cfg.model, "--model")
    result = cfg.run()
    print(getattr(result, "message", "") or f"{len(result.clusters)} spurious cluster(s) kept")
    for rank, c in enumerate(result.clusters[:5], 1):
        print(
            f"#{rank}: cluster {c.cluster_id} score={c.score:.3f} influence={c.influence:.2f} size={c.size}"
        )
    print(f"report: {cfg.out_dir}/report.md")
    return 0
