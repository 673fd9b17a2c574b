"""Safe-CLIP data (SPEC §4): safe→unsafe caption conversion and the quadruplet dataset.

* :mod:`.caption_grammar`: reads occupation, setting and unsafe element out of a SynthWorld caption and
  checks a conversion (:func:`check_conversion`).
* :mod:`.oracle_converter`: SynthWorld's exact converter and the :class:`UnsafeCaptionConverter` protocol
  that it and :class:`~trustvl.modeling.caption_converter.CaptionConverter` satisfy.
* :mod:`.unsafe_captions`: ``trustvl build unsafe-captions`` (a dataset folder of converted captions).
* :func:`build_safe_clip_quadruplets` / :func:`load_quadruplets`: (S, V, U, G) + category as a dataset
  folder (``trustvl build safe-clip-quadruplets``).
* :func:`split_non_twin_pool`: the query rows and the non-twin unsafe pool of a held-out split, for the
  NSFW rate of ``trustvl eval safe-clip``.
* :class:`SynthWorldRendererStage`, :class:`SynthWorldSDStage`, :class:`DiffusersQuadrupletStage`: the
  image stage behind :class:`QuadrupletImageStage`.
"""

from trustvl.data_builders.safe_clip.caption_grammar import (
    ConversionCheck,
    ParsedCaption,
    ParsedUnsafeCaption,
    check_conversion,
    parse_caption,
    parse_unsafe_caption,
)
from trustvl.data_builders.safe_clip.image_stages import (
    UNSAFE_ELEMENTS,
    DiffusersQuadrupletStage,
    QuadrupletImageStage,
    SynthWorldRendererStage,
    SynthWorldSDStage,
    scene_with_element,
)
from trustvl.data_builders.safe_clip.oracle_converter import OracleCaptionConverter, UnsafeCaptionConverter
from trustvl.data_builders.safe_clip.quadruplets import (
    QUADRUPLET_COLUMNS,
    QuadrupletBuildSummary,
    QuadrupletConfig,
    build_safe_clip_quadruplets,
    load_quadruplets,
    quadruplet_features,
    unsafe_element_named,
)
from trustvl.data_builders.safe_clip.unsafe_pool import NonTwinPool, non_twin_pool_of, split_non_twin_pool

__all__ = [
    "QUADRUPLET_COLUMNS",
    "UNSAFE_ELEMENTS",
    "ConversionCheck",
    "DiffusersQuadrupletStage",
    "NonTwinPool",
    "non_twin_pool_of",
    "OracleCaptionConverter",
    "ParsedCaption",
    "ParsedUnsafeCaption",
    "QuadrupletBuildSummary",
    "QuadrupletConfig",
    "QuadrupletImageStage",
    "SynthWorldRendererStage",
    "SynthWorldSDStage",
    "UnsafeCaptionConverter",
    "build_safe_clip_quadruplets",
    "check_conversion",
    "load_quadruplets",
    "parse_caption",
    "parse_unsafe_caption",
    "quadruplet_features",
    "scene_with_element",
    "split_non_twin_pool",
    "unsafe_element_named",
]
