"""Safe-CLIP data (SPEC §4): the quadruplet dataset builder and its image stages.

* :func:`build_safe_clip_quadruplets` / :func:`load_quadruplets` -- (S, V, U, G) + category as a dataset
  folder (``trustvl build safe-clip-quadruplets``).
* :class:`SynthWorldRendererStage`, :class:`SynthWorldSDStage`, :class:`DiffusersQuadrupletStage` -- the
  image stage behind :class:`QuadrupletImageStage`.
"""

from trustvl.data_builders.safe_clip.image_stages import (
    UNSAFE_ELEMENTS,
    DiffusersQuadrupletStage,
    QuadrupletImageStage,
    SynthWorldRendererStage,
    SynthWorldSDStage,
    scene_with_element,
)
from trustvl.data_builders.safe_clip.quadruplets import (
    QUADRUPLET_COLUMNS,
    CaptionConverter,
    QuadrupletBuildSummary,
    QuadrupletConfig,
    build_safe_clip_quadruplets,
    load_quadruplets,
    quadruplet_features,
    unsafe_element_named,
)

__all__ = [
    "QUADRUPLET_COLUMNS",
    "UNSAFE_ELEMENTS",
    "CaptionConverter",
    "DiffusersQuadrupletStage",
    "QuadrupletBuildSummary",
    "QuadrupletConfig",
    "QuadrupletImageStage",
    "SynthWorldRendererStage",
    "SynthWorldSDStage",
    "build_safe_clip_quadruplets",
    "load_quadruplets",
    "quadruplet_features",
    "scene_with_element",
    "unsafe_element_named",
]
