"""The ``trustvl eval fair-diffusion`` job: check, generate and read (plain and guided), summarise, write
``results.json`` and the report."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.fair_diffusion.config import FairDiffusionEvalConfig, resolve_outcomes
from trustvl.evaluation.fair_diffusion.outcomes import summarise
from trustvl.evaluation.fair_diffusion.readings import generate_and_read
from trustvl.evaluation.fair_diffusion.report import build_report
from trustvl.evaluation.fair_diffusion.results import FairDiffusionEvaluation
from trustvl.evaluation.wording import attribute_name
from trustvl.pipelines.fair_diffusion import FairGenerationPlan
from trustvl.pipelines.fairness_instruction import subject_in_prompt

__all__ = ["run_fair_diffusion_eval"]


def run_fair_diffusion_eval(
    cfg: FairDiffusionEvalConfig, *, pipe: Any = None, judge: Any = None
) -> FairDiffusionEvaluation:
    """Generate, read, summarise and write ``results.json`` + the report into ``cfg.out_dir`` (atomically).

    ``pipe`` / ``judge`` (an SD or Fair Diffusion pipeline, an :class:`OutcomeClassifier`) replace loading
    ``cfg.model`` / ``cfg.classifier``. Every input is checked before any image is generated.
    """
    from trustvl.data_builders.generated_images import image_grid
    from trustvl.evaluation.plots import plot_shares_vs_target
    from trustvl.modeling.outcome_classifier import OutcomeClassifier
    from trustvl.modeling.synthworld_sd import load_sd_pipeline
    from trustvl.utils.io import atomic_output_dir, write_json

    plan, prompts = cfg.check()
    out = Path(cfg.out_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not cfg.overwrite)):
        raise TrustVLInputError(
            f"output folder {str(out)!r} exists and is not empty; choose another folder or pass overwrite"
        )
    judge = judge if judge is not None else OutcomeClassifier(cfg.classifier, device=cfg.device)
    heads = judge.heads
    plan = FairGenerationPlan(
        tuple(resolve_outcomes(plan.instructions, heads)),
        plan.momentum_scale,
        plan.momentum_beta,
        plan.subjects,
    )
    if cfg.occupations is not None:
        expected: list[str | None] = list(cfg.occupations)
        unknown = [o for o in expected if o not in heads.get("occupation", ())]
        if unknown:
            raise TrustVLInputError(
                f"occupations {unknown} are not values of the classifier's occupation head"
            )
    else:
        # the classifier's occupation value each prompt names (longest whole-word match), else None
        expected = [subject_in_prompt(p, list(heads.get("occupation", ()))) for p in prompts]
    pipe = plan.pipeline(
        pipe if pipe is not None else load_sd_pipeline(cfg.model, device=cfg.device, dtype=cfg.dtype)
    )
    common = dict(
        seed=cfg.seed, num_inference_steps=cfg.num_inference_steps, guidance_scale=cfg.guidance_scale,
        batch_size=cfg.batch_size, keep_images=cfg.grid_images, progress=cfg.progress,
    )  # fmt: skip
    plain = generate_and_read(pipe, judge, prompts, cfg.n, None, desc="plain", **common)
    fair = generate_and_read(pipe, judge, prompts, cfg.n, plan, desc="Fair Diffusion", **common)
    settings = {
        "model": cfg.model or "trustvl synthworld-sd (embedded default)",
        "classifier": cfg.classifier or "trustvl synthworld-outcome-classifier (embedded default)",
        "seed": cfg.seed, "num_inference_steps": cfg.num_inference_steps, "guidance_scale": cfg.guidance_scale,
        "momentum_scale": plan.momentum_scale, "momentum_beta": plan.momentum_beta, "batch_size": cfg.batch_size,
        "device": str(pipe.device), "dtype": str(pipe.unet.dtype),
        "instructions": [asdict(i) for i in plan.instructions],
    }  # fmt: skip
    result = summarise(
        plan, prompts, plain, fair, expected_occupations=expected, tolerance=cfg.tolerance,
        n_resamples=cfg.n_resamples, seed=cfg.seed, settings=settings,
    )  # fmt: skip
    with atomic_output_dir(out, overwrite=cfg.overwrite) as stage:
        write_json(stage / "results.json", result.to_dict())
        grids = []
        for p in range(len(prompts)):
            if plain.grid_images[p]:
                cols = len(plain.grid_images[p])
                name = f"grids/prompt_{p:03d}.png"
                (stage / "grids").mkdir(exist_ok=True)
                image_grid(plain.grid_images[p] + fair.grid_images[p], cols=cols).save(stage / name)
                grids.append(name)
        plots = []
        for a in result.attributes:
            name = f"shares_{re.sub(r'[^A-Za-z0-9_-]', '_', a.attribute)}.png"
            plot_shares_vs_target(
                stage / name, prompts, list(a.targets),
                [[g.plain for g in pp.groups] for pp in a.per_prompt],
                [[g.fair for g in pp.groups] for pp in a.per_prompt],
                list(a.targets.values()), f"{attribute_name(a.attribute)}: share per group, plain vs Fair Diffusion",
            )  # fmt: skip
            plots.append(name)
        build_report(result, plots, grids, plan).write(stage)
    return result
