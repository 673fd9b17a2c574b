"""CF_α counterfactual data (SPEC §2): base images -> person masks -> inpainted appearance variants.

* :class:`CounterfactualConfig` -- context prompts, attribute grid and build knobs (YAML).
* :class:`DiffusersTextToImage`, :class:`TransformersPersonSegmenter`, :class:`DiffusersInpainter` -- the
  real model stages (any Hub id or folder); :func:`build_stages` makes them from a config.
* :func:`build_counterfactuals` -- the resumable, multi-GPU builder writing a Hugging Face dataset folder.
* :mod:`.synthworld_stages` -- the same stages in SynthWorld, with the truth known (offline).
"""

from trustvl.data_builders.cf_alpha.builder import (
    BuildSummary,
    build_counterfactuals,
    counterfactual_features,
)
from trustvl.data_builders.cf_alpha.config import (
    DEFAULT_GRID_PATH,
    Context,
    CounterfactualConfig,
    load_counterfactual_config,
)
from trustvl.data_builders.cf_alpha.stages import (
    DiffusersInpainter,
    DiffusersTextToImage,
    TransformersPersonSegmenter,
    build_stages,
    dilate_mask,
    paste_back,
)

__all__ = [
    "DEFAULT_GRID_PATH",
    "BuildSummary",
    "Context",
    "CounterfactualConfig",
    "DiffusersInpainter",
    "DiffusersTextToImage",
    "TransformersPersonSegmenter",
    "build_counterfactuals",
    "build_stages",
    "counterfactual_features",
    "dilate_mask",
    "load_counterfactual_config",
    "paste_back",
]
