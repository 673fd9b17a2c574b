"""trustvl.pipelines: diffusers-style pipelines (one ``__call__`` each), e.g. Fair Diffusion.

* :class:`FairDiffusionPipeline` - Stable Diffusion with per-image semantic guidance (SEGA) and fairness
  instructions; a drop-in successor of diffusers' deprecated ``SemanticStableDiffusionPipeline``.
* :class:`FairnessInstruction`, :func:`assign_groups` - target group proportions and their exact, seeded
  assignment to images.
* :func:`make_safe_pipeline` - a Stable Diffusion pipeline with Safe-CLIP's text tower as its text encoder.
* :func:`generate_images`, :func:`iter_generated_batches`, :func:`generate_dataset` - the one seeded, batched
  generation loop (image ``i`` of a prompt uses seed ``seed + i``; plain or Fair Diffusion) and the
  ``trustvl generate`` job built on it.
* :class:`EditConcept`, :class:`SemanticGuidance` - one guidance concept and the batched SEGA maths.

Names are resolved on first use, so that the instructions (e.g. parsing ``--fair`` options) do not import
diffusers; only :class:`FairDiffusionPipeline` does.
"""

import importlib
from typing import Any

_EXPORTS = {
    "FairDiffusionPipeline": "fair_diffusion",
    "FairDiffusionPipelineOutput": "fair_diffusion",
    "concepts_from_sega_arguments": "fair_diffusion",
    "FAIRNESS_PRESETS": "fairness_instruction",
    "FairGenerationPlan": "fair_diffusion",
    "instructions_from_file": "fairness_instruction",
    "synthworld_outcome_value": "fairness_instruction",
    "FairnessInstruction": "fairness_instruction",
    "GroupAssignment": "fairness_instruction",
    "assign_groups": "fairness_instruction",
    "largest_remainder_counts": "fairness_instruction",
    "EditConcept": "semantic_guidance",
    "SemanticGuidance": "semantic_guidance",
    "spatial_quantile_mask": "semantic_guidance",
    "load_safe_text_encoder": "safe_generation",
    "make_safe_pipeline": "safe_generation",
    "generate_dataset": "generation",
    "generate_from_config": "generation",
    "GenerateConfig": "generation_config",
    "FairGuidanceConfig": "fair_guidance_config",
    "generate_images": "generation",
    "iter_generated_batches": "generation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
