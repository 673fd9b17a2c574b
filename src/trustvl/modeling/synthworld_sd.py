"""SynthWorld SD: the small Stable-Diffusion-architecture text-to-image model trustvl trains and ships.

Components (a plain :class:`diffusers.StableDiffusionPipeline`; no trustvl code is needed to load it):

* ``vae``: an :class:`~diffusers.AutoencoderKL` with three blocks (4× down-sampling, 4 latent channels,
  ~0.8 M parameters), trained on SynthWorld renders: 64×64 images become 4×16×16 latents. SynthWorld's
  flat colours compress well, and a latent 16× smaller than the image lets the UNet take many more steps
  in the same GPU time than a pixel-space UNet.
* ``unet``: a :class:`~diffusers.UNet2DConditionModel` on 16×16 latents (~5.4 M parameters), cross-attention
  in every block on the text tower's hidden states, and ``addition_embed_type="text"``: an attention-pooled
  summary of the same hidden states is added to the time embedding, a *global* signal (occupation, skin
  tone) next to the spatial cross-attention. It lives inside the UNet, so the standard pipeline uses it.
* ``text_encoder`` / ``tokenizer``: the SynthWorld CLIP's text tower (frozen during training) and its
  tokenizer (32 positions), stored as a fp16 ``CLIPTextModel``.
* ``scheduler``: DPM-Solver++ (multistep) for inference over the training noise schedule (DDPM, SD's
  ``scaled_linear`` betas, 1,000 steps, epsilon prediction).

:func:`load_default_sd` loads the shipped pipeline from ``trustvl/assets/models/synthworld-sd``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trustvl.errors import TrustVLInputError
from trustvl.utils.assets import embedded_model_dir

#: The training noise schedule (Stable Diffusion's).
NOISE_SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
}


@dataclass
class SynthWorldSDArchitecture:
    """Sizes of the SynthWorld SD's trained parts (the defaults fit the 20 MB fp16 asset budget).

    Attributes:
        image_size: image side in pixels (the VAE down-samples by ``2 ** (len(vae_channels) - 1)``).
        vae_channels: ``AutoencoderKL`` block widths.
        latent_channels: latent channels.
        unet_channels: ``UNet2DConditionModel`` block widths (every block has cross-attention).
        unet_layers_per_block: ResNet layers per down block (up blocks get one more).
        attention_head_dim: width of one attention head.
        mid_block: whether the UNet has a mid block (dropped by default: the 4×4 blocks and the pooled text
            embedding already see the whole image, and it would cost ~1 M parameters).
    """

    image_size: int = 64
    vae_channels: tuple[int, ...] = (32, 48, 64)
    latent_channels: int = 4
    unet_channels: tuple[int, ...] = (64, 96, 128)
    unet_layers_per_block: int = 1
    attention_head_dim: int = 32
    mid_block: bool = False

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae_channels) - 1)

    @property
    def latent_size(self) -> int:
        return self.image_size // self.vae_scale_factor

    def validate(self) -> None:
        if self.image_size % self.vae_scale_factor:
            raise TrustVLInputError(
                f"image_size={self.image_size} must be a multiple of the VAE factor {self.vae_scale_factor}"
            )
        if self.latent_size % 2 ** (len(self.unet_channels) - 1):
            raise TrustVLInputError(
                f"latent size {self.latent_size} must be divisible by 2**{len(self.unet_channels) - 1}"
                f" (unet_channels={self.unet_channels})"
            )


def build_vae(arch: SynthWorldSDArchitecture | None = None) -> Any:
    """A randomly initialised ``AutoencoderKL`` of the given sizes."""
    from diffusers import AutoencoderKL

    a = arch or SynthWorldSDArchitecture()
    a.validate()
    n = len(a.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(a.vae_channels),
        layers_per_block=1,
        latent_channels=a.latent_channels,
        norm_num_groups=16,
        sample_size=a.image_size,
    )


def build_unet(text_hidden_size: int, arch: SynthWorldSDArchitecture | None = None) -> Any:
    """A randomly initialised ``UNet2DConditionModel`` for text hidden states of width ``text_hidden_size``."""
    from diffusers import UNet2DConditionModel

    a = arch or SynthWorldSDArchitecture()
    a.validate()
    n = len(a.unet_channels)
    return UNet2DConditionModel(
        sample_size=a.latent_size,
        in_channels=a.latent_channels,
        out_channels=a.latent_channels,
        layers_per_block=a.unet_layers_per_block,
        block_out_channels=tuple(a.unet_channels),
        down_block_types=("CrossAttnDownBlock2D",) * n,
        up_block_types=("CrossAttnUpBlock2D",) * n,
        mid_block_type="UNetMidBlock2DCrossAttn" if a.mid_block else None,
        cross_attention_dim=text_hidden_size,
        attention_head_dim=a.attention_head_dim,
        norm_num_groups=32,
        addition_embed_type="text",
        addition_embed_type_num_heads=4,
    )


def training_scheduler() -> Any:
    """The DDPM noise scheduler used in training."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(**NOISE_SCHEDULE, clip_sample=False)


def inference_scheduler() -> Any:
    """DPM-Solver++ (2nd order, multistep) over the training schedule: good images in ~20 steps."""
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler(**NOISE_SCHEDULE, algorithm_type="dpmsolver++", solver_order=2)


def assemble_pipeline(vae: Any, unet: Any, text_encoder: Any, tokenizer: Any) -> Any:
    """A ``StableDiffusionPipeline`` of the given parts (no safety checker) with the inference scheduler."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=inference_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def save_pipeline_fp16(pipe: Any, out_dir: str | os.PathLike) -> Path:
    """Save ``pipe`` with every weight in fp16 safetensors (the shipped format)."""
    out = Path(out_dir)
    for module in (pipe.vae, pipe.unet, pipe.text_encoder):
        module.to(torch.float16)
    pipe.save_pretrained(out, safe_serialization=True)
    for module in (pipe.vae, pipe.unet, pipe.text_encoder):
        module.to(torch.float32)
    # diffusers loads the UNet and VAE in float32, transformers the text encoder in its config's dtype
    mark_loads_in_float32(out / "text_encoder")
    return out


def mark_loads_in_float32(model_dir: str | os.PathLike) -> None:
    """Make a transformers model saved with fp16 weights load in float32 by default.

    transformers loads a model in the dtype its ``config.json`` names, which ``save_pretrained`` sets to
    the dtype of the saved weights. A plain ``from_pretrained(dir)`` then gives an fp16 model that fails
    on float32 inputs on CPU (and, in a pipeline, beside the float32 UNet and VAE). The weights stay fp16
    on disk and are upcast on load; an explicit ``dtype=`` still wins.
    """
    config_file = Path(model_dir) / "config.json"
    config = json.loads(config_file.read_text())
    config["dtype"] = "float32"
    config_file.write_text(json.dumps(config, indent=2) + "\n")  # key order as saved


def default_sd_path() -> Path:
    """Folder of the shipped SynthWorld SD (``TRUSTVL_DEFAULT_SD`` overrides it)."""
    return embedded_model_dir(
        "synthworld-sd",
        env="TRUSTVL_DEFAULT_SD",
        marker="model_index.json",
        what="SynthWorld SD pipeline",
        made_by="trustvl train synthworld-sd",
    )


def load_sd_pipeline(model: str | os.PathLike | None = None, device: str = "auto", dtype: Any = None) -> Any:
    """Load any Stable Diffusion pipeline (Hub id or folder; default: the shipped SynthWorld SD) with
    ``DiffusionPipeline.from_pretrained``, on ``device`` in ``dtype`` (None: float32; "auto": fp16 on CUDA)."""
    from diffusers import DiffusionPipeline

    from trustvl.utils.devices import resolve_device, resolve_dtype

    path = default_sd_path() if model is None else model
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    try:
        pipe = DiffusionPipeline.from_pretrained(path, dtype=torch_dtype)
    except (OSError, ValueError) as e:
        raise TrustVLInputError(f"model={str(path)!r} is not a diffusers pipeline: {e}") from e
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(dev)


def load_default_sd(device: str = "auto", dtype: Any = None) -> Any:
    """The embedded SynthWorld SD pipeline (a ``StableDiffusionPipeline``)."""
    return load_sd_pipeline(None, device=device, dtype=dtype)


__all__ = [
    "NOISE_SCHEDULE",
    "SynthWorldSDArchitecture",
    "assemble_pipeline",
    "build_unet",
    "build_vae",
    "default_sd_path",
    "inference_scheduler",
    "load_default_sd",
    "load_sd_pipeline",
    "mark_loads_in_float32",
    "save_pipeline_fp16",
    "training_scheduler",
]
