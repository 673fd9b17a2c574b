"""Settings of ``trustvl build safe-clip-quadruplets`` (:func:`build_from_config`): the
:class:`~trustvl.data_builders.safe_clip.quadruplets.QuadrupletConfig` of what is built (its fields keep their
flags: ``--n-train``...) and how the images and unsafe captions are made."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from trustvl.data_builders.safe_clip.quadruplets import QuadrupletConfig
from trustvl.errors import TrustVLInputError
from trustvl.utils.options import device_option, num_proc_option, overwrite_option, progress_option

__all__ = ["QuadrupletBuildConfig", "build_from_config"]

#: QuadrupletConfig fields with a flag of their own, with their help and bounds
_QUADRUPLET_FLAGS = {
    "n_train": {"help": "rows tried in the train split", "min": 0},
    "n_validation": {"help": "rows tried in the validation split", "min": 0},
    "n_test": {"help": "rows tried in the test split", "min": 0},
    "seed": {"help": "seeds the world, element order, image seeds and the converter"},
    "resolution": {"help": "SynthWorld render size (renderer stage)", "min": 8, "max": 4096},
    "elements": {"help": "unsafe elements to balance over"},
    "shard_size": {"help": "rows per Parquet shard", "min": 1},
    "batch_size": {"help": "rows per converter / image-stage call", "min": 1},
}


@dataclass
class QuadrupletBuildConfig:
    """Build (or resume) a Safe-CLIP quadruplet dataset folder with splits train/validation/test."""

    out_dir: str = field(
        metadata={
            "help": "output folder (must be empty unless --overwrite or --resume)",
            "aliases": ["--out"],
        }
    )
    quadruplets: QuadrupletConfig = field(
        default_factory=QuadrupletConfig, metadata={"flags": _QUADRUPLET_FLAGS}
    )
    image_stage: Literal["synthworld", "synthworld-sd", "diffusers"] = field(
        default="synthworld", metadata={"help": "how the safe and unsafe images V and G are made"}
    )
    model: str | None = field(
        default=None, metadata={"help": "diffusers pipeline id/folder (synthworld-sd: its folder)"}
    )
    allow_unsafe_generation: bool = field(
        default=False,
        metadata={
            "help": "confirm that a real text-to-image model may generate unsafe images (needed for "
            "--image-stage diffusers)"
        },
    )
    converter: str | None = field(
        default=None,
        metadata={
            "help": "caption-converter folder (trustvl train caption-converter); None: SynthWorld's exact "
            "conversion"
        },
    )
    num_inference_steps: int = field(
        default=20,
        metadata={
            "help": "inference steps of a diffusion stage",
            "aliases": ["--steps"],
            "min": 1,
            "max": 10_000,
        },
    )
    guidance_scale: float = field(
        default=8.0, metadata={"help": "guidance scale of a diffusion stage", "aliases": ["--guidance"]}
    )
    device: str = device_option()
    overwrite: bool = overwrite_option("output folder")
    resume: bool = field(
        default=False, metadata={"help": "continue an unfinished build in the output folder"}
    )
    progress: bool = progress_option()
    num_proc: int | None = num_proc_option("quadruplet shards (renderer stage; model stages: 1)")

    def image_stage_object(self) -> Any:
        """The image stage (None: SynthWorld's renderer, exact); checked before any model loads."""
        from trustvl.data_builders.safe_clip.image_stages import DiffusersQuadrupletStage, SynthWorldSDStage

        if self.image_stage == "diffusers":
            if self.model is None:
                raise TrustVLInputError(
                    "--image-stage diffusers needs --model (a diffusers pipeline id or folder)"
                )
            return DiffusersQuadrupletStage(
                self.model,
                allow_unsafe_generation=self.allow_unsafe_generation,
                device=self.device,
                num_inference_steps=self.num_inference_steps,
                guidance_scale=self.guidance_scale,
            )
        if self.image_stage == "synthworld-sd":
            return SynthWorldSDStage(
                self.model,
                device=self.device,
                num_inference_steps=self.num_inference_steps,
                guidance_scale=self.guidance_scale,
            )
        return None


def build_from_config(cfg: QuadrupletBuildConfig) -> Any:
    """Build the quadruplets of ``cfg`` into ``cfg.out_dir``; returns the build summary."""
    from trustvl.data_builders.safe_clip.quadruplets import build_safe_clip_quadruplets

    stage = cfg.image_stage_object()
    converter = None
    if cfg.converter is not None:
        from trustvl.modeling.caption_converter import CaptionConverter

        converter = CaptionConverter.from_pretrained(cfg.converter)
    return build_safe_clip_quadruplets(
        cfg.out_dir,
        cfg.quadruplets,
        stage,
        converter,
        allow_unsafe_generation=cfg.allow_unsafe_generation,
        progress=cfg.progress,
        overwrite=cfg.overwrite,
        num_proc=cfg.num_proc,
    )
