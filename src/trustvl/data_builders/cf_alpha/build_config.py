"""Settings of ``trustvl build counterfactuals`` (:func:`build_from_config`): each field is a flag with its
default and help. ``--config FILE`` is the counterfactual grid YAML (``default_grid.yaml``'s format,
``extends`` included), as it always was for this command; the flags ``--n-base-per-prompt``,
``--variants-per-base`` and ``--seed`` override the grid's values."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.utils.options import device_option, num_proc_option, overwrite_option, progress_option

__all__ = ["CounterfactualBuildConfig", "build_from_config"]


@dataclass
class CounterfactualBuildConfig:
    """A CF_α counterfactual build: text-to-image, person masks, inpainting (or SynthWorld's exact stages)."""

    out_dir: str = field(
        metadata={
            "help": "output folder (must be empty unless --overwrite or --resume)",
            "aliases": ["--out"],
        }
    )
    grid: str | None = field(
        default=None,
        metadata={"help": "counterfactual grid YAML (also --config FILE); None: trustvl's default grid"},
    )
    synthworld: bool = field(
        default=False,
        metadata={"help": "use SynthWorld's renderer and oracle segmenter/inpainter instead of real models"},
    )
    n_base_per_prompt: int | None = field(
        default=None, metadata={"help": "base images per context prompt; None: the grid's", "min": 1}
    )
    variants_per_base: int | None = field(
        default=None, metadata={"help": "grid cells inpainted per base image; None: the grid's", "min": 1}
    )
    seed: int | None = field(
        default=None, metadata={"help": "master seed; None: the grid's", "min": 0, "max": None}
    )
    device: str = device_option()
    overwrite: bool = overwrite_option("output folder")
    resume: bool = field(
        default=False, metadata={"help": "continue an unfinished build in the output folder"}
    )
    progress: bool = progress_option()
    # model stages hold an accelerator and are not forked: --num-proc applies to --synthworld only
    num_proc: int | None = num_proc_option("counterfactual shards (--synthworld only; model stages: 1)")

    config_file_help = "the counterfactual grid YAML (same as --grid); flags on the command line override it"

    @classmethod
    def config_file_values(cls, path: str | os.PathLike) -> dict[str, Any]:
        """``--config FILE`` names the grid (read, with its checks, when the build starts)."""
        if not Path(path).expanduser().is_file():
            raise TrustVLInputError(
                f"--config {str(path)!r} is not a file; expected a counterfactual grid YAML"
            )
        return {"grid": str(path)}

    def grid_overrides(self) -> dict[str, int]:
        """The grid fields these settings replace (those given)."""
        given = {
            "n_base_per_prompt": self.n_base_per_prompt,
            "variants_per_base": self.variants_per_base,
            "seed": self.seed,
        }
        return {k: v for k, v in given.items() if v is not None}


def build_from_config(cfg: CounterfactualBuildConfig) -> Any:
    """Build the counterfactual dataset of ``cfg`` into ``cfg.out_dir``; returns the builder's summary."""
    from trustvl.data_builders import cf_alpha as cf

    if cfg.synthworld:
        from trustvl.data_builders.cf_alpha import synthworld_stages as sw
        from trustvl.data_builders.synthworld import SynthWorldRenderer

        renderer = SynthWorldRenderer()
        config = sw.synthworld_counterfactual_config(renderer, **cfg.grid_overrides())
        return sw.build_synthworld_counterfactuals(
            cfg.out_dir,
            config,
            renderer=renderer,
            progress=cfg.progress,
            overwrite=cfg.overwrite,
            num_proc=cfg.num_proc,
        )
    config = cf.load_counterfactual_config(cfg.grid, **cfg.grid_overrides())
    t2i, seg, inp = cf.build_stages(config, device=cfg.device)
    return cf.build_counterfactuals(
        cfg.out_dir, config, t2i, seg, inp, progress=cfg.progress, overwrite=cfg.overwrite
    )
