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
  tokenizer (32 positions), a fp16 ``CLIPTextModel``. The package stores that tower once, inside the
  SynthWorld CLIP: the shipped SD folder has no ``text_encoder/`` but a record of which CLIP's text tower it
  was trained on and its fingerprint (:data:`TEXT_TOWER_RECORD`), and :func:`default_sd_path` returns a
  complete folder, written once into trustvl's cache from that CLIP (:func:`complete_sd_folder`) and
  checked against the fingerprint, so ``StableDiffusionPipeline.from_pretrained(default_sd_path())`` works
  without trustvl.
* ``scheduler``: DPM-Solver++ (multistep) for inference over the training noise schedule (DDPM, SD's
  ``scaled_linear`` betas, 1,000 steps, epsilon prediction).

A finer latent grid for thin elements (a knife's blade is 1–2 px at 64 px, thinner than a 16 × 16 latent
cell): a VAE with two blocks (2× down, 4 × 32 × 32 latents) and a UNet with one more level outside, without
attention (:attr:`SynthWorldSDArchitecture.unet_plain_levels`), whose inner levels can start from the 4×-down
UNet (:func:`grow_unet_weights`). The pipeline is the same ``StableDiffusionPipeline``: it takes its image size
from the UNet's ``sample_size`` times the VAE's factor.

:func:`load_default_sd` loads the shipped pipeline from ``trustvl/assets/models/synthworld-sd``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trustvl.errors import TrustVLInputError
from trustvl.utils.assets import embedded_model_dir
from trustvl.utils.io import sha256_files, sha256_text
from trustvl.utils.tensor_cache import cache_dir

#: In an SD folder without ``text_encoder/``: which CLIP's text tower completes it and that tower's
#: fingerprint (:func:`text_tower_fingerprint`), ``{"clip": <path relative to the SD folder, or absolute>,
#: "sha256": ...}``.
TEXT_TOWER_RECORD = "trustvl_text_encoder.json"

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
    """Sizes of the SynthWorld SD's trained parts. The defaults are the shipped SD's (2× down: 4 × 32 × 32
    latents at 64 px, 13 MB in fp16); ``vae_channels=(32, 48, 64), unet_channels=(64, 96, 128),
    unet_plain_levels=0`` is the earlier 4×-down SD, whose UNet became the shipped one's inner levels.

    Attributes:
        image_size: image side in pixels (the VAE down-samples by ``2 ** (len(vae_channels) - 1)``).
        vae_channels: ``AutoencoderKL`` block widths.
        latent_channels: latent channels.
        unet_channels: ``UNet2DConditionModel`` block widths (every block has cross-attention).
        unet_layers_per_block: ResNet layers per down block (up blocks get one more).
        attention_head_dim: width of one attention head.
        mid_block: whether the UNet has a mid block (dropped by default: the 4×4 blocks and the pooled text
            embedding already see the whole image, and it would cost ~1 M parameters).
        unet_plain_levels: how many of the UNet's outermost levels have no attention (ResNet blocks only).
            With a 2×-down VAE (32 × 32 latents) a plain outer level keeps attention off the 1,024-cell grid,
            where it would cost most, and leaves the inner levels shaped as the 4×-down SD's UNet, so they can
            start from its weights (:func:`grow_unet_weights`).
    """

    image_size: int = 64
    vae_channels: tuple[int, ...] = (32, 64)
    latent_channels: int = 4
    unet_channels: tuple[int, ...] = (64, 64, 96, 128)
    unet_layers_per_block: int = 1
    attention_head_dim: int = 32
    mid_block: bool = False
    unet_plain_levels: int = 1

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
        if not 0 <= self.unet_plain_levels < len(self.unet_channels):
            raise TrustVLInputError(
                f"unet_plain_levels={self.unet_plain_levels} must be between 0 and {len(self.unet_channels) - 1}"
                f" (one less than the {len(self.unet_channels)} levels of unet_channels={self.unet_channels})"
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
    n, plain = len(a.unet_channels), a.unet_plain_levels
    return UNet2DConditionModel(
        sample_size=a.latent_size,
        in_channels=a.latent_channels,
        out_channels=a.latent_channels,
        layers_per_block=a.unet_layers_per_block,
        block_out_channels=tuple(a.unet_channels),
        # down blocks run outer to inner, up blocks inner to outer
        down_block_types=("DownBlock2D",) * plain + ("CrossAttnDownBlock2D",) * (n - plain),
        up_block_types=("CrossAttnUpBlock2D",) * (n - plain) + ("UpBlock2D",) * plain,
        mid_block_type="UNetMidBlock2DCrossAttn" if a.mid_block else None,
        cross_attention_dim=text_hidden_size,
        attention_head_dim=a.attention_head_dim,
        norm_num_groups=32,
        addition_embed_type="text",
        addition_embed_type_num_heads=4,
    )


def grow_unet_weights(unet: Any, source: Any) -> list[str]:
    """Copy a trained UNet's weights into ``unet``, which has the same levels plus ``k >= 0`` new outer ones.

    How a UNet for a finer latent grid starts from a coarser one's training (the 2×-down SynthWorld SD from
    the 4×-down one): ``source``'s down block ``i`` becomes ``unet``'s down block ``i + k`` and its up block
    ``i`` stays up block ``i`` (up blocks run inner to outer), so each trained level keeps the grid it was
    trained on relative to the innermost one; the time and pooled-text embeddings and ``conv_in`` /
    ``conv_out`` are copied by name. Convolution and attention weights do not depend on the grid size, so
    every shape matches; what has no counterpart (the new levels, the up-sampler the formerly outermost up
    block now needs) keeps its fresh initialisation.

    Returns:
        the names of ``unet``'s parameters and buffers left as initialised, sorted.

    Raises:
        TrustVLInputError: ``source`` has more levels than ``unet``, or a tensor it maps has another shape
            (the architectures differ in more than added outer levels).
    """
    k = len(unet.down_blocks) - len(source.down_blocks)
    if k < 0 or len(unet.up_blocks) - len(source.up_blocks) != k:
        raise TrustVLInputError(
            f"source UNet has {len(source.down_blocks)} levels and the grown one {len(unet.down_blocks)}; expected"
            " a source with at most as many levels"
        )
    target = unet.state_dict()
    copied: dict[str, torch.Tensor] = {}
    for name, tensor in source.state_dict().items():
        mapped = name
        if name.startswith("down_blocks."):
            level, rest = name[len("down_blocks.") :].split(".", 1)
            mapped = f"down_blocks.{int(level) + k}.{rest}"
        if mapped not in target or target[mapped].shape != tensor.shape:
            found = tuple(target[mapped].shape) if mapped in target else "absent"
            raise TrustVLInputError(
                f"source UNet tensor {name!r} {tuple(tensor.shape)} has no counterpart {mapped!r} ({found}) in the"
                " grown UNet; expected the same architecture plus outer levels"
            )
        copied[mapped] = tensor
    unet.load_state_dict(copied, strict=False)
    return sorted(set(target) - set(copied))


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


def load_clip_text_tower(clip_dir: str | os.PathLike) -> tuple[Any, Any]:
    """The text tower of the CLIP checkpoint ``clip_dir`` as a float32 ``CLIPTextModel``, and its tokenizer."""
    from transformers import CLIPTextModel, CLIPTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the CLIP checkpoint's vision tower is "unexpected" for a text model
    try:
        text_encoder = CLIPTextModel.from_pretrained(clip_dir, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
    return text_encoder, CLIPTokenizer.from_pretrained(clip_dir)


def text_tower_fingerprint(text_encoder: Any) -> str:
    """SHA-256 of a text encoder's weights as shipped (fp16), tensor by tensor in name order: equal for the
    same tower whether it was read from a pipeline's ``text_encoder/`` or from the whole CLIP checkpoint."""
    digest = hashlib.sha256()
    for name, tensor in sorted(text_encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float16).contiguous().numpy().tobytes())
    return digest.hexdigest()


def detach_text_encoder(
    sd_dir: str | os.PathLike, clip_dir: str | os.PathLike, reference: str | None = None
) -> Path:
    """Drop ``sd_dir/text_encoder`` (a copy of ``clip_dir``'s text tower) and write :data:`TEXT_TOWER_RECORD`.

    How the shipped folder is made from a ``trustvl train synthworld-sd`` pipeline. The record names the CLIP
    as ``reference`` when given (e.g. ``"../synthworld-clip"``, where the folder will sit beside it), else
    relative to ``sd_dir`` when the two share a parent, else by absolute path.

    Raises:
        TrustVLInputError: the pipeline's text encoder is not ``clip_dir``'s text tower (compared in fp16).
    """
    from transformers import CLIPTextModel

    sd, clip = Path(sd_dir), Path(clip_dir)
    shipped = CLIPTextModel.from_pretrained(sd / "text_encoder", dtype=torch.float32)
    fingerprint = text_tower_fingerprint(shipped)
    if text_tower_fingerprint(load_clip_text_tower(clip)[0]) != fingerprint:
        raise TrustVLInputError(
            f"clip_dir={str(clip)!r}: its text tower is not the text encoder of {str(sd)!r}; expected the CLIP"
            " the pipeline was trained with"
        )
    if reference is None:
        same_parent = clip.resolve().parent == sd.resolve().parent
        reference = os.path.relpath(clip.resolve(), sd.resolve()) if same_parent else str(clip.resolve())
    (sd / TEXT_TOWER_RECORD).write_text(
        json.dumps({"clip": reference, "sha256": fingerprint}, indent=2) + "\n"
    )
    shutil.rmtree(sd / "text_encoder")
    return sd


def complete_sd_folder(sd_dir: str | os.PathLike) -> Path:
    """``sd_dir`` itself when it holds a ``text_encoder/``; else a complete copy in trustvl's cache
    (``sd-pipelines/<name>-<fingerprint>``), its text encoder rebuilt from the CLIP :data:`TEXT_TOWER_RECORD`
    names, written once (atomically) and checked against the recorded fingerprint. The cache key covers the
    folder's own files as well as the text tower, so a retrained UNet or VAE beside the same CLIP (a new
    trustvl release) gets a new copy instead of the cached old one.

    Raises:
        TrustVLInputError: the folder has neither a text encoder nor a record, or the named CLIP's text tower
            is not the one the pipeline was trained with.
    """
    sd = Path(sd_dir)
    record_file = sd / TEXT_TOWER_RECORD
    if (sd / "text_encoder").is_dir() or not record_file.is_file():
        return sd
    record = json.loads(record_file.read_text())
    clip = Path(record["clip"]).expanduser()
    clip = clip if clip.is_absolute() else (sd / clip).resolve()
    files = sorted(p for p in sd.rglob("*") if p.is_file())
    key = sha256_text(record["sha256"], sha256_files(files))
    target = cache_dir("sd-pipelines") / f"{sd.name}-{key[:16]}"
    if (target / "text_encoder" / "model.safetensors").is_file():
        return target
    if not (clip / "config.json").is_file():
        raise TrustVLInputError(
            f"{str(sd)!r} takes its text encoder from the CLIP at {str(clip)!r} ({TEXT_TOWER_RECORD}), which is"
            " missing; expected that CLIP folder next to the pipeline"
        )
    text_encoder, _ = load_clip_text_tower(clip)
    found = text_tower_fingerprint(text_encoder)
    if found != record["sha256"]:
        raise TrustVLInputError(
            f"the text tower of {str(clip)!r} (sha256 {found[:16]}…) is not the one {str(sd)!r} was trained with"
            f" (sha256 {record['sha256'][:16]}…); expected the CLIP its {TEXT_TOWER_RECORD} names"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        shutil.copytree(sd, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(TEXT_TOWER_RECORD))
        text_encoder.to(torch.float16).save_pretrained(staging / "text_encoder", safe_serialization=True)
        mark_loads_in_float32(staging / "text_encoder")
        try:
            staging.rename(target)
        except OSError:  # another process completed it first: theirs is the same
            if not (target / "text_encoder" / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def default_sd_path() -> Path:
    """Folder of the shipped SynthWorld SD, complete (``TRUSTVL_DEFAULT_SD`` overrides it): the package
    stores its text encoder once, in the SynthWorld CLIP (:func:`complete_sd_folder`)."""
    return complete_sd_folder(
        embedded_model_dir(
            "synthworld-sd",
            env="TRUSTVL_DEFAULT_SD",
            marker="model_index.json",
            what="SynthWorld SD pipeline",
            made_by="trustvl train synthworld-sd",
        )
    )


def load_sd_pipeline(model: str | os.PathLike | None = None, device: str = "auto", dtype: Any = None) -> Any:
    """Load any Stable Diffusion pipeline (Hub id or folder; default: the shipped SynthWorld SD) with
    ``DiffusionPipeline.from_pretrained``, on ``device`` in ``dtype`` (None: float32; "auto": fp16 on CUDA)."""
    from diffusers import DiffusionPipeline

    from trustvl.utils.devices import resolve_device, resolve_dtype

    path = default_sd_path() if model is None else model
    if not isinstance(path, str) or Path(path).is_dir():
        path = complete_sd_folder(path)
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
    "TEXT_TOWER_RECORD",
    "SynthWorldSDArchitecture",
    "assemble_pipeline",
    "build_unet",
    "build_vae",
    "complete_sd_folder",
    "default_sd_path",
    "detach_text_encoder",
    "grow_unet_weights",
    "inference_scheduler",
    "load_clip_text_tower",
    "load_default_sd",
    "load_sd_pipeline",
    "mark_loads_in_float32",
    "save_pipeline_fp16",
    "text_tower_fingerprint",
    "training_scheduler",
]
