"""trustvl.pipelines: diffusers-style pipelines (one ``__call__`` each), e.g. Fair Diffusion.

* :class:`FairDiffusionPipeline` - Stable Diffusion with per-image semantic guidance (SEGA) and fairness
  instructions; a drop-in successor of diffusers' deprecated ``SemanticStableDiffusionPipeline``.
* :class:`FairnessInstruction`, :func:`assign_groups` - target group proportions and their exact, seeded
  assignment to images.
* :class:`EditConcept`, :class:`SemanticGuidance` - one guidance concept and the batched SEGA maths.
"""

from trustvl.pipelines.fair_diffusion import (
    FairDiffusionPipeline,
    FairDiffusionPipelineOutput,
    concepts_from_sega_arguments,
)
from trustvl.pipelines.fairness_instruction import (
    FAIRNESS_PRESETS,
    FairnessInstruction,
    GroupAssignment,
    assign_groups,
    largest_remainder_counts,
)
from trustvl.pipelines.semantic_guidance import EditConcept, SemanticGuidance, spatial_quantile_mask

__all__ = [
    "FAIRNESS_PRESETS",
    "EditConcept",
    "FairDiffusionPipeline",
    "FairDiffusionPipelineOutput",
    "FairnessInstruction",
    "GroupAssignment",
    "SemanticGuidance",
    "assign_groups",
    "concepts_from_sega_arguments",
    "largest_remainder_counts",
    "spatial_quantile_mask",
]
