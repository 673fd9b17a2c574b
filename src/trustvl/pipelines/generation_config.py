"""Settings of ``trustvl generate`` (:func:`trustvl.pipelines.generation.generate_from_config`): each field is a
flag with its default and help; light to import (no torch, no diffusers), so that parsing stays fast."""

from __future__ import annotations

from dataclasses import dataclass, field

from trustvl.pipelines.fair_guidance_config import FAIR_FLAGS, FairGuidanceConfig
from trustvl.utils.options import device_option, dtype_option, overwrite_option

__all__ = ["GenerateConfig"]


@dataclass
class GenerateConfig:
    """N images per prompt (image i uses seed SEED+i) from an SD pipeline into a dataset folder, plain or with
    Fair Diffusion (``guidance``: ``--fair``/``--fair-file`` and their knobs)."""

    out_dir: str = field(
        metadata={"help": "output folder (must be empty unless --overwrite)", "aliases": ["--out"]}
    )
    prompts: list[str] = field(
        metadata={
            "help": "one or more prompts",
            "aliases": ["--prompt"],
            "action": "extend",
            "metavar": "TEXT",
        }
    )
    model: str | None = field(
        default=None, metadata={"help": "SD pipeline Hub id or folder; None: the embedded SynthWorld SD"}
    )
    n: int = field(default=8, metadata={"help": "images per prompt", "min": 1})
    seed: int = field(
        default=0, metadata={"help": "image i of a prompt uses seed SEED+i", "min": 0, "max": None}
    )
    num_inference_steps: int = field(
        default=20, metadata={"help": "inference steps", "aliases": ["--steps"], "min": 1, "max": 10_000}
    )
    guidance_scale: float = field(default=8.0, metadata={"help": "guidance scale", "aliases": ["--guidance"]})
    batch_size: int = field(default=64, metadata={"help": "images per pipeline call", "min": 1})
    classify: bool = field(
        default=False, metadata={"help": "add the outcome classifier's reading of each image"}
    )
    classifier: str | None = field(
        default=None, metadata={"help": "image-classification model; None: the embedded outcome classifier"}
    )
    text_encoder: str | None = field(
        default=None,
        metadata={
            "help": "replace the pipeline's text encoder with this CLIP's text tower (e.g. a Safe-CLIP folder, a "
            "merged CLIPModel or a peft adapter over a CLIP)"
        },
    )
    guidance: FairGuidanceConfig = field(default_factory=FairGuidanceConfig, metadata={"flags": FAIR_FLAGS})
    subjects: list[str] | None = field(
        default=None,
        metadata={
            "help": "what each prompt shows, one per prompt, for Fair Diffusion guidance in context; None: the "
            "SynthWorld occupation the prompt names",
            "aliases": ["--fair-subject"],
            "action": "extend",
            "metavar": "TEXT",
        },
    )
    device: str = device_option()
    dtype: str | None = dtype_option()
    overwrite: bool = overwrite_option("output folder")
