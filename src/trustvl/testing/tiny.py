"""Tiny random models written to folders, for plumbing tests and offline demos.

Every builder writes with ``save_pretrained`` (safetensors only) to a folder and returns its
:class:`~pathlib.Path`, so every code path loads them with ``from_pretrained(path)`` exactly as it would
load a Hub id. Weights are a deterministic function of ``seed`` (two builds give identical bytes) and the
global torch RNG is left untouched.

* :func:`build_tiny_clip` - a ``CLIPModel`` + ``CLIPProcessor`` (32x32 images, short captions).
* :func:`build_tiny_sd_pipeline` - a ``StableDiffusionPipeline`` that runs at 32x32 in about a second.
* :func:`build_tiny_inpaint_pipeline` - the same for ``StableDiffusionInpaintPipeline`` (9-channel UNet).
* :func:`build_tiny_fixtures` - all three under one root, built once, atomically.

diffusers is imported only inside the functions that need it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTextConfig, CLIPTextModel

from trustvl.errors import TrustVLInputError
from trustvl.modeling.clip_components import clip_image_processor, clip_text_config
from trustvl.modeling.tokenization import build_byte_level_bpe
from trustvl.utils.options import overwrite_option

__all__ = [
    "TINY_FIXTURE_NAMES",
    "build_tiny_clip",
    "build_tiny_fixtures",
    "build_tiny_inpaint_pipeline",
    "build_tiny_sd_pipeline",
]

#: Marker file written last into a folder built by :func:`build_tiny_fixtures`.
MARKER = "trustvl_tiny.json"
#: key in the dict returned by :func:`build_tiny_fixtures` -> folder name under its root.
TINY_FIXTURE_NAMES = {"clip": "tiny-clip", "sd": "tiny-sd", "inpaint": "tiny-sd-inpaint"}

_MAX_SANE_LENGTH = 4096  # tokenizers without a real limit report ~1e30 as model_max_length


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch for the block without disturbing the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """Hide transformers' "Writing model shards" bars while saving; restores the previous setting."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _as_dir(save_dir: str | os.PathLike) -> Path:
    path = Path(save_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise TrustVLInputError(f"save_dir {str(path)!r} exists and is not a folder")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _resolve_tokenizer(tokenizer: Any, max_length: int | None) -> tuple[Any, int]:
    """(tokenizer, max positions): the given tokenizer / folder, or a fresh built-in byte-level BPE."""
    if tokenizer is None:
        length = 32 if max_length is None else max_length
        return build_byte_level_bpe(model_max_length=length), length
    if isinstance(tokenizer, (str, os.PathLike)):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
    if max_length is None:
        tok_len = int(getattr(tokenizer, "model_max_length", 77) or 77)
        max_length = tok_len if tok_len <= _MAX_SANE_LENGTH else 77
    if getattr(tokenizer, "model_max_length", 0) > max_length:
        # a fresh copy with the shorter limit; never change the caller's object (and copy.deepcopy of a
        # CLIPTokenizer loses its "</w>"-stripping decode wrapper, so round-trip through a folder)
        with tempfile.TemporaryDirectory() as tmp:
            tokenizer.save_pretrained(tmp)
            tokenizer = type(tokenizer).from_pretrained(tmp, model_max_length=max_length)
    return tokenizer, max_length


def build_tiny_clip(
    save_dir: str | os.PathLike,
    *,
    seed: int = 0,
    image_size: int = 32,
    patch_size: int = 8,
    hidden_size: int = 32,
    intermediate_size: int = 64,
    projection_dim: int = 32,
    num_layers: int = 2,
    num_heads: int = 4,
    max_length: int | None = None,
    tokenizer: Any = None,
) -> Path:
    """Write a random ``CLIPModel`` and its ``CLIPProcessor`` to ``save_dir`` and return the folder.

    The folder loads with ``CLIPModel`` / ``AutoModel`` / ``CLIPProcessor`` / ``AutoProcessor``
    ``.from_pretrained(path)``. Text and vision towers share ``hidden_size`` and ``num_layers``.

    Args:
        tokenizer: a CLIP tokenizer object or folder (e.g. from
            :func:`~trustvl.modeling.tokenization.train_clip_tokenizer`); default: the built-in byte-level BPE.
        max_length: text positions; default the tokenizer's ``model_max_length`` (32 for the built-in one).
    """
    if image_size % patch_size:
        raise TrustVLInputError(f"image_size={image_size} must be a multiple of patch_size={patch_size}")
    path = _as_dir(save_dir)
    tokenizer, max_length = _resolve_tokenizer(tokenizer, max_length)
    text_config = clip_text_config(
        tokenizer,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_layers=num_layers,
        num_heads=num_heads,
        max_length=max_length,
        projection_dim=projection_dim,
    )
    vision_config = dict(
        image_size=image_size,
        patch_size=patch_size,
        num_channels=3,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        projection_dim=projection_dim,
    )
    config = CLIPConfig(text_config=text_config, vision_config=vision_config, projection_dim=projection_dim)
    with _seeded(seed):
        model = CLIPModel(config).eval()
    processor = CLIPProcessor(image_processor=clip_image_processor(image_size), tokenizer=tokenizer)
    with _quiet_progress():
        model.save_pretrained(path)
        processor.save_pretrained(path)
        # also the classic preprocessor_config.json, for loaders that look for the image processor alone
        processor.image_processor.save_pretrained(path)
    return path


def _sd_components(
    *,
    seed: int,
    in_channels: int,
    sample_size: int,
    block_out_channels: tuple[int, ...],
    cross_attention_dim: int,
    layers_per_block: int,
    max_length: int | None,
    tokenizer: Any,
    scheduler: str,
) -> dict[str, Any]:
    from diffusers import AutoencoderKL, DDIMScheduler, PNDMScheduler, UNet2DConditionModel

    if sample_size % 2 ** (len(block_out_channels) - 1):
        raise TrustVLInputError(
            f"sample_size={sample_size} must be divisible by 2**{len(block_out_channels) - 1} "
            f"for block_out_channels={block_out_channels}"
        )
    if any(c % 8 for c in block_out_channels) or cross_attention_dim % 4:
        raise TrustVLInputError(
            f"block_out_channels={block_out_channels} must be multiples of 8 and cross_attention_dim="
            f"{cross_attention_dim} a multiple of 4"
        )
    tokenizer, max_length = _resolve_tokenizer(tokenizer, max_length)
    n_blocks = len(block_out_channels)
    groups = 8
    sched_kwargs = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
    if scheduler == "ddim":
        sched = DDIMScheduler(**sched_kwargs, clip_sample=False, set_alpha_to_one=False)
    elif scheduler == "pndm":
        sched = PNDMScheduler(**sched_kwargs, skip_prk_steps=True, set_alpha_to_one=False)
    else:
        raise TrustVLInputError(f"scheduler={scheduler!r}: expected 'ddim' or 'pndm'")
    with _seeded(seed):
        unet = UNet2DConditionModel(
            sample_size=sample_size,
            in_channels=in_channels,
            out_channels=4,
            down_block_types=("CrossAttnDownBlock2D",) + ("DownBlock2D",) * (n_blocks - 1),
            up_block_types=("UpBlock2D",) * (n_blocks - 1) + ("CrossAttnUpBlock2D",),
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            cross_attention_dim=cross_attention_dim,
            attention_head_dim=4,
            norm_num_groups=groups,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * n_blocks,
            up_block_types=("UpDecoderBlock2D",) * n_blocks,
            block_out_channels=block_out_channels,
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=groups,
            sample_size=sample_size * 2 ** (n_blocks - 1),
        )
        text_config = CLIPTextConfig(
            **clip_text_config(
                tokenizer,
                hidden_size=cross_attention_dim,
                intermediate_size=2 * cross_attention_dim,
                num_layers=2,
                num_heads=4,
                max_length=max_length,
                projection_dim=cross_attention_dim,
            )
        )
        text_encoder = CLIPTextModel(text_config).eval()
    return dict(
        unet=unet.eval(),
        vae=vae.eval(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=sched,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _save_sd_pipeline(pipeline_cls: type, save_dir: str | os.PathLike, **components: Any) -> Path:
    """Create ``save_dir``, build ``pipeline_cls(**_sd_components(**components))`` and save it there."""
    path = _as_dir(save_dir)
    parts = _sd_components(**components)
    with _quiet_progress():
        pipeline_cls(**parts).save_pretrained(path, safe_serialization=True)
    return path


def build_tiny_sd_pipeline(
    save_dir: str | os.PathLike,
    *,
    seed: int = 0,
    sample_size: int = 16,
    block_out_channels: tuple[int, ...] = (16, 32),
    cross_attention_dim: int = 32,
    layers_per_block: int = 1,
    max_length: int | None = None,
    tokenizer: Any = None,
    scheduler: str = "ddim",
) -> Path:
    """Write a tiny random ``StableDiffusionPipeline`` to ``save_dir`` and return the folder.

    ``StableDiffusionPipeline.from_pretrained(path)(prompt, num_inference_steps=2, height=32, width=32)``
    runs offline on CPU in about a second. The VAE downsamples by ``2**(len(block_out_channels)-1)``
    (2 by default), so the default image size is ``sample_size * 2`` = 32. No safety checker.

    Args:
        sample_size: latent size of the UNet (image size / VAE factor).
        cross_attention_dim: width of the CLIP text encoder (and of the UNet's cross-attention).
        tokenizer: a CLIP tokenizer object or folder; default the built-in byte-level BPE (32 tokens).
        scheduler: ``"ddim"`` or ``"pndm"``.
    """
    from diffusers import StableDiffusionPipeline

    return _save_sd_pipeline(
        StableDiffusionPipeline,
        save_dir,
        seed=seed,
        in_channels=4,
        sample_size=sample_size,
        block_out_channels=tuple(block_out_channels),
        cross_attention_dim=cross_attention_dim,
        layers_per_block=layers_per_block,
        max_length=max_length,
        tokenizer=tokenizer,
        scheduler=scheduler,
    )


def build_tiny_inpaint_pipeline(
    save_dir: str | os.PathLike,
    *,
    seed: int = 0,
    sample_size: int = 16,
    block_out_channels: tuple[int, ...] = (16, 32),
    cross_attention_dim: int = 32,
    layers_per_block: int = 1,
    max_length: int | None = None,
    tokenizer: Any = None,
    scheduler: str = "ddim",
) -> Path:
    """Write a tiny random ``StableDiffusionInpaintPipeline`` (9-channel UNet) and return the folder.

    Runs with ``image=`` and ``mask_image=`` at 32x32 (``sample_size * 2``) in about a second on CPU.
    Arguments as for :func:`build_tiny_sd_pipeline`.
    """
    from diffusers import StableDiffusionInpaintPipeline

    return _save_sd_pipeline(
        StableDiffusionInpaintPipeline,
        save_dir,
        seed=seed,
        in_channels=9,  # 4 noisy latents + 1 mask + 4 masked-image latents
        sample_size=sample_size,
        block_out_channels=tuple(block_out_channels),
        cross_attention_dim=cross_attention_dim,
        layers_per_block=layers_per_block,
        max_length=max_length,
        tokenizer=tokenizer,
        scheduler=scheduler,
    )


_BUILDERS: dict[str, Callable[..., Path]] = {
    "clip": build_tiny_clip,
    "sd": build_tiny_sd_pipeline,
    "inpaint": build_tiny_inpaint_pipeline,
}


def _marker_payload(key: str, seed: int) -> dict[str, Any]:
    from trustvl import __version__

    return {"builder": _BUILDERS[key].__name__, "seed": seed, "trustvl_version": __version__}


def _is_complete(path: Path, payload: dict[str, Any]) -> bool:
    try:
        return json.loads((path / MARKER).read_text(encoding="utf-8")) == payload
    except (OSError, ValueError):
        return False


@dataclass
class TinyFixturesConfig:
    """``trustvl fixtures``: where to write the tiny random models of :func:`build_tiny_fixtures`."""

    out_dir: str = field(
        metadata={"help": "output folder (must be empty or absent unless --overwrite)", "aliases": ["--out"]}
    )
    seed: int = field(default=0, metadata={"help": "seed of the random weights", "min": 0, "max": None})
    overwrite: bool = overwrite_option()


def build_tiny_fixtures(root: str | os.PathLike, *, seed: int = 0) -> dict[str, Path]:
    """Build the tiny CLIP, SD and inpainting folders under ``root`` once; return ``{key: folder}``.

    Keys are ``"clip"``, ``"sd"`` and ``"inpaint"`` (folders ``tiny-clip``, ``tiny-sd``,
    ``tiny-sd-inpaint``). A folder that is already complete (its marker file names the same builder, seed
    and trustvl version) is reused. Each folder is written to a temporary sibling and renamed into
    place, so a reader never sees a half-written model, and concurrent callers are safe.
    """
    root_path = _as_dir(root)
    out: dict[str, Path] = {}
    for key, name in TINY_FIXTURE_NAMES.items():
        target = root_path / name
        payload = _marker_payload(key, seed)
        if not _is_complete(target, payload):
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root_path))
            try:
                _BUILDERS[key](tmp, seed=seed)
                (tmp / MARKER).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
                if target.exists() and not _is_complete(target, payload):  # stale or partial: set it aside
                    stale = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=root_path))
                    with contextlib.suppress(OSError):
                        os.replace(target, stale / name)
                    shutil.rmtree(stale, ignore_errors=True)
                try:
                    os.rename(tmp, target)
                except OSError:
                    if not _is_complete(target, payload):  # not a concurrent builder winning the race
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        out[key] = target
    return out
