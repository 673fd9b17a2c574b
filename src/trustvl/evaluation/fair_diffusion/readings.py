"""Generate and read: one plain or guided run of the prompts through the shared generation loop
(:mod:`trustvl.pipelines.generation`), every image read by the outcome classifier."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from trustvl.pipelines.fair_diffusion import FairGenerationPlan
from trustvl.pipelines.generation import iter_generated_batches

__all__ = ["OutcomeReadings", "generate_and_read"]


@dataclass
class OutcomeReadings:
    """Classifier readings of one run (plain or guided): ``values[head]`` is ``[prompts, n]`` strings."""

    values: dict[str, np.ndarray]
    assignments: list[list[dict[str, str]]] | None
    grid_images: list[list[Any]]
    seconds: float


def generate_and_read(
    pipe: Any,
    judge: Any,
    prompts: Sequence[str],
    n: int,
    plan: FairGenerationPlan | None,
    *,
    seed: int = 0,
    num_inference_steps: int = 20,
    guidance_scale: float = 8.0,
    batch_size: int = 512,
    keep_images: int = 0,
    progress: bool = True,
    desc: str = "generating",
) -> OutcomeReadings:
    """Generate ``n`` images per prompt (``plan=None``: plainly) and read them with ``judge``.

    ``pipe`` is a :class:`~trustvl.pipelines.FairDiffusionPipeline`; batches mix prompts (the shared loop,
    :func:`~trustvl.pipelines.generation.iter_generated_batches`: image ``i`` of every prompt uses seed
    ``seed + i``, groups from ``plan.assign(n, seed=seed, prompt_index=p)``). The first ``keep_images`` images
    of each prompt are kept for the report; ``seconds`` times generating and reading.
    """
    values: dict[str, list[str]] = {}
    kept: list[list[Any]] = [[] for _ in prompts]
    groups: list[list[dict[str, str]]] = [[] for _ in prompts]
    start = time.perf_counter()
    batches = iter_generated_batches(
        pipe, prompts, n, seed, num_inference_steps, guidance_scale, batch_size,
        plan=plan, mix_prompts=True, progress=progress, desc=desc,
    )  # fmt: skip
    for batch in batches:
        for reading in judge.read([g.image for g in batch]):
            for head, value in reading.values.items():
                values.setdefault(head, []).append(value)
        for g in batch:
            if g.index < keep_images:
                kept[g.prompt_index].append(g.image)
            if g.groups is not None:
                groups[g.prompt_index].append(g.groups)
    device = getattr(pipe, "device", torch.device("cpu"))
    if "cuda" in str(device):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    shaped = {h: np.asarray(v, dtype=object).reshape(len(prompts), n) for h, v in values.items()}
    return OutcomeReadings(shaped, groups if plan is not None else None, kept, seconds)
