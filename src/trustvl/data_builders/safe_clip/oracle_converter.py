"""SynthWorld's exact safe→unsafe caption converter (the oracle), and the converter protocol.

An unsafe SynthWorld caption is its safe caption followed by ``", "`` and one phrase of the element
(:data:`~trustvl.data_builders.synthworld.captions.UNSAFE_PHRASES`: ", holding a gun"-style phrases such as
", next to a knife", ", covered in blood"). :class:`OracleCaptionConverter` does exactly that, so it is the
upper bound a learned converter (:class:`~trustvl.modeling.caption_converter.CaptionConverter`) is
measured against. Both satisfy :class:`UnsafeCaptionConverter`: ``converter(safe_captions, seed=0)`` returns
one unsafe caption per safe caption, in order, and the same seed gives the same captions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from trustvl.data_builders.synthworld.captions import UNSAFE_PHRASES
from trustvl.errors import TrustVLInputError

__all__ = ["OracleCaptionConverter", "UnsafeCaptionConverter", "check_safe_captions"]


@runtime_checkable
class UnsafeCaptionConverter(Protocol):
    """Turns safe captions into unsafe ones: one output per input, in order, deterministic given ``seed``.

    Outputs are not guaranteed to be valid (a language model may drop the context or name no element):
    callers check them with :func:`~trustvl.data_builders.safe_clip.caption_grammar.check_conversion`.
    """

    def __call__(self, safe_captions: Sequence[str], seed: int = 0) -> list[str]: ...


def check_safe_captions(safe_captions: Sequence[str]) -> list[str]:
    """``safe_captions`` as a list of non-empty strings, or :class:`~trustvl.errors.TrustVLInputError`."""
    if isinstance(safe_captions, str) or not isinstance(safe_captions, Sequence):
        raise TrustVLInputError(
            f"safe_captions must be a list of strings; got {type(safe_captions).__name__}"
        )
    out = list(safe_captions)
    for i, caption in enumerate(out):
        if not isinstance(caption, str) or not caption.strip():
            raise TrustVLInputError(f"safe_captions[{i}]={caption!r}; expected a non-empty string")
    return out


def _hash(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little")


class OracleCaptionConverter:
    """SynthWorld's exact converter: ``safe caption + ", " + a phrase of the element``.

    The element of caption ``i`` is ``elements[i]`` when given to the call, else drawn uniformly from
    ``self.elements`` by a hash of ``(seed, i)``; the phrase is drawn from the element's phrases by a hash of
    ``(seed, i, "phrase")``. A trailing period or comma of the safe caption is dropped first.

    Args:
        elements: the unsafe elements to draw from (default: all of "gun", "knife", "blood", "syringe").
    """

    def __init__(self, elements: Sequence[str] | None = None) -> None:
        chosen = tuple(UNSAFE_PHRASES) if elements is None else tuple(elements)
        unknown = [e for e in chosen if e not in UNSAFE_PHRASES]
        if not chosen or unknown:
            raise TrustVLInputError(
                f"elements={list(chosen)!r}; expected a non-empty subset of {list(UNSAFE_PHRASES)}"
            )
        self.elements = chosen

    @staticmethod
    def convert(safe_caption: str, element: str, phrase_index: int = 0) -> str:
        """``safe_caption`` with phrase ``phrase_index`` of ``element`` appended (", next to a knife")."""
        if element not in UNSAFE_PHRASES:
            raise TrustVLInputError(f"element={element!r}; expected one of {list(UNSAFE_PHRASES)}")
        phrases = UNSAFE_PHRASES[element]
        return safe_caption.strip().rstrip(".,;") + ", " + phrases[phrase_index % len(phrases)]

    def __call__(
        self, safe_captions: Sequence[str], seed: int = 0, elements: Sequence[str] | None = None
    ) -> list[str]:
        captions = check_safe_captions(safe_captions)
        if elements is not None and len(elements) != len(captions):
            raise TrustVLInputError(
                f"elements has {len(elements)} entries for {len(captions)} captions; expected one per caption"
            )
        out = []
        for i, caption in enumerate(captions):
            element = (
                elements[i] if elements is not None else self.elements[_hash(seed, i) % len(self.elements)]
            )
            out.append(self.convert(caption, element, _hash(seed, i, "phrase")))
        return out

    def __repr__(self) -> str:
        return f"OracleCaptionConverter(elements={list(self.elements)})"
