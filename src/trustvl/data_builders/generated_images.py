"""Seeded batch generation with any diffusers text-to-image pipeline, written as a dataset folder
(the shared Parquet shard writer and dataset card; ``trustvl generate``).

Image ``i`` of a prompt is generated from its own ``torch.Generator`` seeded with ``seed + i``, so a
single image can be regenerated alone (same prompt, seed, steps, guidance and size) and results do not
depend on the batch size.

With fairness instructions (``trustvl generate --fair``, Fair Diffusion) the pipeline is wrapped by
:class:`~trustvl.pipelines.FairDiffusionPipeline` (``from_pipe``: the same components), the ``n`` images of a
prompt get their groups from :func:`~trustvl.pipelines.fairness_instruction.assign_groups` (exact counts,
seeded by ``(seed, prompt index)``) *before* batching, so the counts are exact whatever the batch size, and
each image's group is written in a ``fair_<attribute>`` column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from trustvl.data_builders.parquet_shards import DATA_DIR, shard_file_name, write_parquet_shard
from trustvl.errors import TrustVLInputError
from trustvl.hub.dataset_cards import DatasetCardMetadata, SplitMetadata, write_dataset_card
from trustvl.utils.io import atomic_output_dir


@dataclass
class GeneratedImage:
    """One generated image and how to regenerate it."""

    image: Image.Image
    prompt: str
    seed: int
    num_inference_steps: int
    guidance_scale: float
    groups: dict[str, str] | None = (
        None  # Fair Diffusion: the group per attribute this image was guided toward
    )


def generate_images(
    pipe: Any,
    prompt: str,
    n: int,
    seed: int = 0,
    num_inference_steps: int = 20,
    guidance_scale: float = 5.0,
    batch_size: int = 64,
    negative_prompt: str | None = None,
) -> list[GeneratedImage]:
    """``n`` images of ``prompt``; image ``i`` uses seed ``seed + i``."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise TrustVLInputError(f"prompt={prompt!r} must be a non-empty string")
    if n < 1:
        raise TrustVLInputError(f"n={n} must be >= 1")
    if batch_size < 1:
        raise TrustVLInputError(f"batch_size={batch_size} must be >= 1")
    device = getattr(pipe, "device", torch.device("cpu"))
    out: list[GeneratedImage] = []
    for start in range(0, n, batch_size):
        seeds = list(range(seed + start, seed + min(n, start + batch_size)))
        generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        result = pipe(
            prompt=[prompt] * len(seeds),
            negative_prompt=None if negative_prompt is None else [negative_prompt] * len(seeds),
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            generator=generators,
            output_type="pil",
        )
        for s, im in zip(seeds, result.images, strict=True):
            out.append(GeneratedImage(im, prompt, s, num_inference_steps, guidance_scale))
    return out


def generate_fair_images(
    pipe: Any,
    prompt: str,
    n: int,
    plan: Any,
    seed: int = 0,
    num_inference_steps: int = 20,
    guidance_scale: float = 5.0,
    batch_size: int = 64,
    prompt_index: int = 0,
) -> list[GeneratedImage]:
    """``n`` images of ``prompt`` under a Fair Diffusion plan; image ``i`` uses seed ``seed + i`` and the
    groups ``plan.assign(n, seed, prompt_index)[i]``.

    ``pipe`` is the plan's pipeline (``plan.pipeline(sd_pipe)``, a
    :class:`~trustvl.pipelines.FairDiffusionPipeline`); ``plan`` a
    :class:`~trustvl.pipelines.fair_diffusion.FairGenerationPlan` (passed in, since this layer sits below
    the pipelines).
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise TrustVLInputError(f"prompt={prompt!r} must be a non-empty string")
    if batch_size < 1:
        raise TrustVLInputError(f"batch_size={batch_size} must be >= 1")
    assignments = plan.assign(n, seed=seed, prompt_index=prompt_index)
    device = getattr(pipe, "device", torch.device("cpu"))
    out: list[GeneratedImage] = []
    for start in range(0, n, batch_size):
        chunk = assignments[start : start + batch_size]
        seeds = [seed + start + k for k in range(len(chunk))]
        result = pipe(
            prompt=[prompt] * len(seeds),
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            generator=[torch.Generator(device=device).manual_seed(s) for s in seeds],
            output_type="pil",
            **plan.call_kwargs(chunk, [prompt] * len(chunk)),
        )
        for s, im, groups in zip(seeds, result.images, chunk, strict=True):
            out.append(GeneratedImage(im, prompt, s, num_inference_steps, guidance_scale, dict(groups)))
    return out


def image_grid(images: Sequence[Image.Image], cols: int) -> Image.Image:
    """Tile equally sized images into a grid with ``cols`` columns."""
    if not images:
        raise TrustVLInputError("image_grid needs at least one image")
    w, h = images[0].size
    rows = (len(images) + cols - 1) // cols
    grid = Image.new("RGB", (cols * w, rows * h), (255, 255, 255))
    for k, im in enumerate(images):
        grid.paste(im.convert("RGB"), ((k % cols) * w, (k // cols) * h))
    return grid


def to_uint8(images: Sequence[Image.Image]) -> np.ndarray:
    """PIL images → uint8 ``[N, H, W, 3]``."""
    return np.stack([np.asarray(im.convert("RGB")) for im in images])


@dataclass
class GenerationRun:
    """What :func:`generate_dataset` wrote."""

    out_dir: str
    n_images: int
    grid_path: str
    parquet_path: str
    classified: bool


def generate_dataset(
    model: str | None,
    prompts: Sequence[str],
    n: int,
    out_dir: str,
    seed: int = 0,
    num_inference_steps: int = 20,
    guidance_scale: float = 5.0,
    batch_size: int = 64,
    classify: bool = False,
    classifier: str | None = None,
    device: str = "auto",
    dtype: Any = None,
    overwrite: bool = False,
    fairness: Any = None,
    pipeline: Any = None,
    text_encoder: str | None = None,
) -> GenerationRun:
    """Generate ``n`` images per prompt with any SD pipeline (default: the shipped SynthWorld SD) into a
    dataset folder: ``grid.png`` (one row per prompt), ``data/train-00000-of-00001.parquet`` (columns
    ``image``, ``prompt``, ``seed``, ``num_inference_steps``, ``guidance_scale`` and, with ``classify``,
    the outcome classifier's ``pred_<head>`` / ``conf_<head>``) and a ``README.md`` dataset card;
    ``datasets.load_dataset(out_dir)`` loads it.

    ``fairness``: a :class:`~trustvl.pipelines.fair_diffusion.FairGenerationPlan` (the instructions,
    one per attribute, and the SEGA momentum) for Fair Diffusion (see the module docstring); adds a
    ``fair_<attribute>`` column with each image's group.

    ``pipeline``: an already loaded pipeline to use instead of loading ``model`` (e.g. one whose text encoder
    :func:`trustvl.pipelines.safe_generation.make_safe_pipeline` replaced); ``text_encoder`` names that
    encoder in the dataset card."""
    import datasets

    from trustvl.modeling.synthworld_sd import load_sd_pipeline

    if not prompts:
        raise TrustVLInputError("prompts is empty; give at least one --prompt")
    if fairness is not None:
        fairness.check(n, prompts)  # before any model is loaded
    pipe = load_sd_pipeline(model, device=device, dtype=dtype) if pipeline is None else pipeline
    judge = None
    if classify:
        from trustvl.modeling.outcome_classifier import OutcomeClassifier

        judge = OutcomeClassifier(classifier, device=device)
    generated: list[GeneratedImage] = []
    if fairness is not None:
        pipe = fairness.pipeline(pipe)
    for p, prompt in enumerate(prompts):
        if fairness is not None:
            generated += generate_fair_images(
                pipe, prompt, n, fairness, seed, num_inference_steps, guidance_scale, batch_size, p
            )
        else:
            generated += generate_images(
                pipe, prompt, n, seed, num_inference_steps, guidance_scale, batch_size
            )
    columns: dict[str, list[Any]] = {
        "image": [g.image for g in generated],
        "prompt": [g.prompt for g in generated],
        "seed": [g.seed for g in generated],
        "num_inference_steps": [g.num_inference_steps for g in generated],
        "guidance_scale": [g.guidance_scale for g in generated],
    }
    for attribute in fairness.attributes if fairness is not None else ():
        columns[f"fair_{attribute}"] = [g.groups[attribute] for g in generated]
    if judge is not None:
        readings = [r.to_dict() for r in judge.read([g.image for g in generated])]
        for key in readings[0]:
            columns[key] = [r[key] for r in readings]
    features = datasets.Features(
        {
            k: datasets.Image() if k == "image" else datasets.Value("string" if k.startswith(("prompt", "pred_", "fair_"))
               else "int64" if k in ("seed", "num_inference_steps") else "float64")
            for k in columns
        }
    )  # fmt: skip
    shard = f"{DATA_DIR}/{shard_file_name('train', 0, 1)}"
    with atomic_output_dir(out_dir, overwrite=overwrite) as stage:
        write_parquet_shard(stage / shard, columns, features, hub_layout=True)
        image_grid([g.image for g in generated], cols=min(n, 16)).save(stage / "grid.png")
        model_name = model or "trustvl synthworld-sd (embedded default)"
        if text_encoder is not None:
            model_name += f" with the text encoder of {text_encoder}"
        body = (
            f"# Images generated by {model_name}\n\n"
            f"{len(generated)} images: {n} per prompt, seeds {seed}..{seed + n - 1} (image i of a prompt uses seed"
            f" {seed} + i), {num_inference_steps} steps, guidance scale {guidance_scale}. Written by"
            " `trustvl generate`"
            + (" with the outcome classifier's readings (`pred_*`, `conf_*`)." if judge else ".")
            + ("\n\n" + fairness.describe(n) if fairness is not None else "")
            + "\n\nPrompts:\n\n"
            + "\n".join(f"- {p}" for p in prompts)
            + "\n"
        )
        metadata = DatasetCardMetadata(
            pretty_name=f"Images generated by {model_name}",
            features=features,
            splits=[SplitMetadata("train", len(generated), data_files=f"{DATA_DIR}/train-*.parquet")],
            tags=("trustvl", "synthetic", "text-to-image"),
        )
        write_dataset_card(stage, metadata, body)
    out = Path(out_dir).expanduser().resolve()
    return GenerationRun(
        str(out), len(generated), str(out / "grid.png"), str(out / shard),
        judge is not None,
    )  # fmt: skip


__all__ = [
    "GeneratedImage",
    "GenerationRun",
    "generate_dataset",
    "generate_fair_images",
    "generate_images",
    "image_grid",
    "to_uint8",
]
