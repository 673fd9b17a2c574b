"""Settings of ``trustvl build unsafe-captions`` (:func:`build_from_config`, over
:func:`~trustvl.data_builders.safe_clip.unsafe_captions.build_unsafe_captions`): each field is a flag with its
default and help, checked before any converter loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.utils.options import device_option, overwrite_option, progress_option

__all__ = ["UnsafeCaptionsConfig", "build_from_config"]


@dataclass
class UnsafeCaptionsConfig:
    """Convert safe captions into unsafe ones, checked against SynthWorld's caption grammar."""

    out_dir: str = field(
        metadata={"help": "output folder (must be empty unless --overwrite)", "aliases": ["--out"]}
    )
    converter: str = field(
        default="oracle",
        metadata={"help": "'oracle' (SynthWorld's exact converter) or a trained converter folder/id"},
    )
    captions: str = field(
        default="synthworld", metadata={"help": "'synthworld' or a .txt (one per line) / .jsonl file"}
    )
    n: int | None = field(
        default=None,
        metadata={
            "help": "how many captions (required with --captions synthworld; None: all of a file)",
            "min": 1,
        },
    )
    seed: int = field(default=0, metadata={"help": "the converter's seed"})
    world_seed: int = field(default=0, metadata={"help": "SynthWorld world seed for --captions synthworld"})
    batch_size: int = field(default=32, metadata={"help": "captions per converter call", "min": 1})
    keep_invalid: bool = field(
        default=False, metadata={"help": "keep invalid outputs as rows with valid=False"}
    )
    sample: bool = field(default=False, metadata={"help": "sample (seeded) instead of greedy decoding"})
    device: str = device_option()
    overwrite: bool = overwrite_option("output folder")
    progress: bool = progress_option()

    def check(self) -> None:
        """The checks that need no model: the caption source and its count."""
        if self.captions == "synthworld" and self.n is None:
            raise TrustVLInputError("--captions synthworld needs --n (how many captions to convert)")
        if self.captions != "synthworld" and not Path(self.captions).is_file():
            raise TrustVLInputError(
                f"--captions {self.captions!r} is not a file; expected 'synthworld' or a .txt/.jsonl file"
            )


def build_from_config(cfg: UnsafeCaptionsConfig) -> Any:
    """Convert and write the captions of ``cfg`` into ``cfg.out_dir``; returns the build summary."""
    from trustvl.data_builders.safe_clip.unsafe_captions import build_unsafe_captions

    cfg.check()
    kwargs = None if cfg.converter == "oracle" else {"device": cfg.device, "do_sample": cfg.sample}
    return build_unsafe_captions(
        cfg.out_dir,
        converter=cfg.converter,
        captions=cfg.captions,
        n=cfg.n,
        seed=cfg.seed,
        world_seed=cfg.world_seed,
        batch_size=cfg.batch_size,
        keep_invalid=cfg.keep_invalid,
        overwrite=cfg.overwrite,
        progress=cfg.progress,
        converter_kwargs=kwargs,
    )
