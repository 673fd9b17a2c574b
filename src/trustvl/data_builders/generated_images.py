"""The dataset folder of generated images (``trustvl generate``): one Parquet shard, an image grid and a
dataset card, written whole through the shared build (:meth:`trustvl.data_builders.sharded_build.ShardedBuild.staged`).

The images come from the generation loop one floor up (:mod:`trustvl.pipelines.generation`: image ``i`` of a
prompt uses seed ``seed + i``; with Fair Diffusion each image's groups, written in ``fair_<attribute>``
columns); this module only writes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from trustvl.data_builders.parquet_shards import DATA_DIR, shard_file_name
from trustvl.data_builders.sharded_build import ShardedBuild
from trustvl.errors import TrustVLInputError
from trustvl.hub.dataset_cards import DatasetCardMetadata, SplitMetadata


@dataclass
class GeneratedImage:
    """One generated image and how to regenerate it."""

    image: Image.Image
    prompt: str
    seed: int
    num_inference_steps: int
    guidance_scale: float
    groups: dict[str, str] | None = None  # Fair Diffusion: the group per attribute it was guided toward
    prompt_index: int = 0  # which of the job's prompts
    index: int = 0  # image i of its prompt (seed = the job's seed + i)


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
    """What :func:`write_generated_dataset` wrote."""

    out_dir: str
    n_images: int
    grid_path: str
    parquet_path: str
    classified: bool


def write_generated_dataset(
    generated: Sequence[GeneratedImage],
    out_dir: str,
    *,
    prompts: Sequence[str],
    n: int,
    seed: int,
    num_inference_steps: int,
    guidance_scale: float,
    model: str | None = None,
    text_encoder: str | None = None,
    readings: Sequence[Mapping[str, Any]] | None = None,
    fairness_description: str | None = None,
    overwrite: bool = False,
) -> GenerationRun:
    """Write generated images (``n`` per prompt, from
    :func:`trustvl.pipelines.generation.generate_images`) as a dataset folder, atomically: ``grid.png`` (one
    row per prompt), ``data/train-00000-of-00001.parquet`` (columns ``image``, ``prompt``, ``seed``,
    ``num_inference_steps``, ``guidance_scale``, a ``fair_<attribute>`` column per Fair Diffusion attribute,
    and the outcome classifier's ``readings`` as ``pred_<head>`` / ``conf_<head>``) and a ``README.md`` dataset
    card; ``datasets.load_dataset(out_dir)`` loads it.

    ``model`` / ``text_encoder`` name the generator in the card (None: the embedded SynthWorld SD);
    ``fairness_description``: the Fair Diffusion plan in Markdown, for the card.
    """
    import datasets

    if not generated:
        raise TrustVLInputError("no generated images to write; expected at least one")
    columns: dict[str, list[Any]] = {
        "image": [g.image for g in generated],
        "prompt": [g.prompt for g in generated],
        "seed": [g.seed for g in generated],
        "num_inference_steps": [g.num_inference_steps for g in generated],
        "guidance_scale": [g.guidance_scale for g in generated],
    }
    for attribute in generated[0].groups or {}:
        columns[f"fair_{attribute}"] = [g.groups[attribute] for g in generated]
    if readings is not None:
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
    with ShardedBuild.staged(
        out_dir, builder=f"{__name__}.write_generated_dataset", kind="generated images", overwrite=overwrite
    ) as build:
        build.write_shard(build.out / shard, columns, features, hub_layout=True)
        image_grid([g.image for g in generated], cols=min(n, 16)).save(build.out / "grid.png")
        model_name = model or "trustvl synthworld-sd (embedded default)"
        if text_encoder is not None:
            model_name += f" with the text encoder of {text_encoder}"
        metadata = DatasetCardMetadata(
            pretty_name=f"Images generated by {model_name}",
            features=features,
            splits=[SplitMetadata("train", len(generated), data_files=f"{DATA_DIR}/train-*.parquet")],
            tags=("trustvl", "synthetic", "text-to-image"),
        )
        build.finish(metadata, "dataset_generated_images", dict(
            model_name=model_name, n_images=len(generated), n=n, seed=seed, last_seed=seed + n - 1,
            num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
            classified=readings is not None, fairness_description=fairness_description, prompts=list(prompts),
        ))  # fmt: skip
    out = Path(out_dir).expanduser().resolve()
    return GenerationRun(
        str(out), len(generated), str(out / "grid.png"), str(out / shard),
        readings is not None,
    )  # fmt: skip


__all__ = [
    "GeneratedImage",
    "GenerationRun",
    "image_grid",
    "to_uint8",
    "write_generated_dataset",
]
