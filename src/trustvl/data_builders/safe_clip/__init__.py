"""Safe-CLIP's data (SPEC §4): safe→unsafe caption conversion and its checks.

- :mod:`.caption_grammar`: reads occupation, setting and unsafe element out of a SynthWorld caption and
  checks a conversion (:func:`check_conversion`).
- :mod:`.oracle_converter`: SynthWorld's exact converter and the :class:`UnsafeCaptionConverter` protocol
  that it and :class:`~trustvl.modeling.caption_converter.CaptionConverter` satisfy.
- :mod:`.unsafe_captions`: ``trustvl build unsafe-captions`` (a dataset folder of converted captions).
"""

from trustvl.data_builders.safe_clip.caption_grammar import (
    ConversionCheck,
    ParsedCaption,
    ParsedUnsafeCaption,
    check_conversion,
    parse_caption,
    parse_unsafe_caption,
)
from trustvl.data_builders.safe_clip.oracle_converter import OracleCaptionConverter, UnsafeCaptionConverter

__all__ = [
    "ConversionCheck",
    "OracleCaptionConverter",
    "ParsedCaption",
    "ParsedUnsafeCaption",
    "UnsafeCaptionConverter",
    "check_conversion",
    "parse_caption",
    "parse_unsafe_caption",
]
