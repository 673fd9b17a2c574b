"""The one seeded, batched text-to-image generation loop (plain or Fair Diffusion), used by ``trustvl generate``,
``trustvl eval fair-diffusion``, Safe-CLIP's safe generation and the benchmarks.

Image ``i`` of a prompt is generated from its own ``torch.Generator`` seeded with ``seed + i``, so a single image
can be regenerated alone (same prompt, seed, steps, guidance and size) and which batch an image falls in does
not choose its noise.

With a :class:`~trustvl.pipelines.fair_diffusion.FairGenerationPlan` (Fair Diffusion) the ``n`` images of prompt
``p`` get their groups from ``plan.assign(n, seed=seed, prompt_index=p)`` (exact counts, seeded by ``(seed,
p)``) *before* batching, so the counts are exact whatever the batch size; each batch hands its images' groups to
the :class:`~trustvl.pipelines.FairDiffusionPipeline` (``fairness_assignments``), which turns them into guidance.

:func:`generate_dataset` is the ``trustvl generate`` job: load, generate, optionally read with the outcome
classifier, and hand the images to the dataset writer
(:func:`trustvl.data_builders.generated_images.write_generated_dataset`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from trustvl.data_builders.generated_images import GeneratedImage, GenerationRun, write_generated_dataset
from trustvl.errors import TrustVLInputError
from trustvl.pipelines.fair_diffusion import FairGenerationPlan
from trustvl.pipelines.generation_config import GenerateConfig
from trustvl.utils.checks import check_int

__all__ = ["generate_dataset", "generate_from_config", "generate_images", "iter_generated_batches"]


def _batches(n_prompts: int, n: int, batch_size: int, mix_prompts: bool) -> list[list[tuple[int, int]]]:
    """``(prompt index, image index)`` per image, in batches: prompt-major, ``batch_size`` at most each."""
    if mix_prompts:
        jobs = [(p, i) for p in range(n_prompts) for i in range(n)]
        return [jobs[b : b + batch_size] for b in range(0, len(jobs), batch_size)]
    return [
        [(p, i) for i in range(start, min(n, start + batch_size))]
        for p in range(n_prompts)
        for start in range(0, n, batch_size)
    ]


def iter_generated_batches(
    pipe: Any,
    prompts: str | Sequence[str],
    n: int,
    seed: int = 0,
    num_inference_steps: int = 20,
    guidance_scale: float = 5.0,
    batch_size: int = 64,
    negative_prompt: str | None = None,
    *,
    plan: FairGenerationPlan | None = None,
    mix_prompts: bool = False,
    progress: bool = False,
    desc: str = "generating",
) -> Iterator[list[GeneratedImage]]:
    """``n`` images of each prompt, one pipeline call per batch (yielded as it is done); image ``i`` of a prompt
    uses seed ``seed + i``.

    Args:
        pipe: any diffusers text-to-image pipeline; with ``plan``, the plan's pipeline (``plan.pipeline(sd)``).
        plan: Fair Diffusion (instructions and momentum); None generates plainly.
        mix_prompts: batches hold images of several prompts (fills large batches: the evaluation); otherwise a
            batch holds one prompt's images (as ``trustvl generate`` always did, so that its images stay the
            same bit for bit: a batch's composition can change the last bits of a CPU result).
        progress: a progress bar over the batches, named ``desc``.
    """
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    for prompt in prompts:
        if not isinstance(prompt, str) or not prompt.strip():
            raise TrustVLInputError(f"prompt={prompt!r} must be a non-empty string")
    if not prompts:
        raise TrustVLInputError("prompts is empty; give at least one prompt")
    check_int("n", n, 1)
    check_int("batch_size", batch_size, 1)
    assignments = None
    if plan is not None:
        assignments = [plan.assign(n, seed=seed, prompt_index=p) for p in range(len(prompts))]
    device = getattr(pipe, "device", torch.device("cpu"))
    for chunk in tqdm(_batches(len(prompts), n, batch_size, mix_prompts), desc=desc, unit="batch",
                      disable=not progress):  # fmt: skip
        groups = None if assignments is None else [assignments[p][i] for p, i in chunk]
        images = pipe(
            prompt=[prompts[p] for p, _ in chunk],
            negative_prompt=None if negative_prompt is None else [negative_prompt] * len(chunk),
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            generator=[torch.Generator(device=device).manual_seed(seed + i) for _, i in chunk],
            output_type="pil",
            **({} if plan is None else plan.call_kwargs(groups)),
        ).images
        yield [
            GeneratedImage(
                image, prompts[p], seed + i, num_inference_steps, guidance_scale,
                None if groups is None else dict(groups[k]), prompt_index=p, index=i,
            )
            for k, ((p, i), image) in enumerate(zip(chunk, images, strict=True))
        ]  # fmt: skip


def generate_images(
    pipe: Any,
    prompts: str | Sequence[str],
    n: int,
    seed: int = 0,
    num_inference_steps: int = 20,
    guidance_scale: float = 5.0,
    batch_size: int = 64,
    negative_prompt: str | None = None,
    *,
    plan: FairGenerationPlan | None = None,
    mix_prompts: bool = False,
    progress: bool = False,
    desc: str = "generating",
) -> list[GeneratedImage]:
    """Every image of :func:`iter_generated_batches` in one list (prompt-major; image ``i`` uses seed
    ``seed + i``)."""
    batches = iter_generated_batches(
        pipe, prompts, n, seed, num_inference_steps, guidance_scale, batch_size, negative_prompt,
        plan=plan, mix_prompts=mix_prompts, progress=progress, desc=desc,
    )  # fmt: skip
    return [image for batch in batches for image in batch]


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
    fairness: FairGenerationPlan | None = None,
    pipeline: Any = None,
    text_encoder: str | None = None,
) -> GenerationRun:
    """Generate ``n`` images per prompt with any SD pipeline (default: the shipped SynthWorld SD) into a
    dataset folder (:func:`~trustvl.data_builders.generated_images.write_generated_dataset`: ``grid.png``, one
    Parquet shard, a dataset card); ``datasets.load_dataset(out_dir)`` loads it.

    ``classify``: read every image with the outcome classifier (``classifier``, default the embedded one) into
    ``pred_<head>`` / ``conf_<head>`` columns. ``fairness``: Fair Diffusion (see the module docstring); adds a
    ``fair_<attribute>`` column with each image's group. ``pipeline``: an already loaded pipeline to use
    instead of loading ``model`` (e.g. one whose text encoder
    :func:`trustvl.pipelines.safe_generation.make_safe_pipeline` replaced); ``text_encoder`` names that encoder
    in the dataset card.
    """
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
    if fairness is not None:
        pipe = fairness.pipeline(pipe)
    generated = generate_images(
        pipe, prompts, n, seed, num_inference_steps, guidance_scale, batch_size, plan=fairness
    )
    readings = None if judge is None else [r.to_dict() for r in judge.read([g.image for g in generated])]
    return write_generated_dataset(
        generated, out_dir, prompts=prompts, n=n, seed=seed, num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale, model=model, text_encoder=text_encoder, readings=readings,
        fairness_description=None if fairness is None else fairness.describe(n), overwrite=overwrite,
    )  # fmt: skip


def generate_from_config(cfg: GenerateConfig) -> GenerationRun:
    """The ``trustvl generate`` job of ``cfg``: its Fair Diffusion plan (checked before any model loads), the
    pipeline (with ``cfg.text_encoder``'s text tower when given) and :func:`generate_dataset`."""
    plan = cfg.guidance.plan(cfg.prompts, cfg.subjects)
    pipeline = None
    if cfg.text_encoder is not None:
        from trustvl.modeling.synthworld_sd import load_sd_pipeline
        from trustvl.pipelines.safe_generation import make_safe_pipeline

        pipeline = make_safe_pipeline(load_sd_pipeline(cfg.model, cfg.device, cfg.dtype), cfg.text_encoder)
    return generate_dataset(
        cfg.model, cfg.prompts, cfg.n, cfg.out_dir, seed=cfg.seed, num_inference_steps=cfg.num_inference_steps,
        guidance_scale=cfg.guidance_scale, batch_size=cfg.batch_size, classify=cfg.classify,
        classifier=cfg.classifier, device=cfg.device, dtype=cfg.dtype, overwrite=cfg.overwrite, fairness=plan,
        pipeline=pipeline, text_encoder=cfg.text_encoder,
    )  # fmt: skip
