"""Known attributes and their words: the preset groups (:data:`FAIRNESS_PRESETS`), the SynthWorld phrases,
heads and levels that :meth:`~trustvl.pipelines.fairness_instruction.FairnessInstruction.synthworld` uses,
:func:`synthworld_outcome_value` (which classifier value a phrase names), and the paper's SEGA momentum."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "FAIRNESS_PRESETS",
    "FAIR_DIFFUSION_MOMENTUM",
    "SYNTHWORLD_FAIRNESS_HEADS",
    "SYNTHWORLD_SKIN_LEVELS",
    "synthworld_outcome_value",
    "synthworld_phrases",
]

#: Attributes that :meth:`FairnessInstruction.preset` knows, with their groups (uniform targets). ``gender``
#: is the paper's; ``skin_tone`` follows SynthWorld's four default levels.
FAIRNESS_PRESETS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "gender": ("female person", "male person"),
        "skin_tone": (
            "person with very light skin",
            "person with light skin",
            "person with dark skin",
            "person with very dark skin",
        ),
    }
)

#: SynthWorld attribute name -> the outcome classifier head that reads it.
SYNTHWORLD_FAIRNESS_HEADS: Mapping[str, str] = MappingProxyType(
    {"gender": "gender_presentation", "gender_presentation": "gender_presentation", "skin_tone": "skin_tone",
     "skin": "skin_tone"}
)  # fmt: skip

#: The default 4 skin-tone levels of :meth:`FairnessInstruction.synthworld` (``medium`` left out).
SYNTHWORLD_SKIN_LEVELS: tuple[str, ...] = ("very light", "light", "dark", "very dark")


def synthworld_phrases() -> dict[str, dict[str, str]]:
    """head -> {head value: the guidance phrase}, from SynthWorld's caption grammar."""
    from trustvl.data_builders.synthworld.captions import GENDER_ADJ
    from trustvl.data_builders.synthworld.generation_captions import SKIN_NOUN_PHRASES

    return {
        "gender_presentation": {value: f"{adjective} person" for value, adjective in GENDER_ADJ.items()},
        "skin_tone": {value: f"person with {noun}" for value, noun in SKIN_NOUN_PHRASES.items()},
    }


def _normalise_phrase(text: str) -> str:
    words = text.lower().replace("-", " ").split()
    if words and words[0] in ("a", "an", "the"):
        words = words[1:]
    return " ".join(words)


def synthworld_outcome_value(head: str, phrase: str) -> str | None:
    """The SynthWorld outcome classifier's value of ``head`` that ``phrase`` names, or None.

    Accepts the value itself (``"feminine"``), the guidance phrase (``"female person"``) and the caption
    grammar's other words for it (``"female"``, ``"woman"``, ``"a female person"``; ``"very dark skin"``,
    ``"very dark-skinned"``, ``"a person with very dark skin"``, ``"very dark-skinned person"``).
    """
    from trustvl.data_builders.synthworld.captions import GENDER_ADJ, GENDER_NOUN, SKIN_PHRASES
    from trustvl.data_builders.synthworld.generation_captions import SKIN_NOUN_PHRASES

    key = _normalise_phrase(phrase)
    names: dict[str, list[str]] = {}
    if head == "gender_presentation":
        for value in GENDER_ADJ:
            adjective, noun = GENDER_ADJ[value], GENDER_NOUN[value]
            names[value] = [value, adjective, noun, f"{adjective} person", f"{adjective} {noun}"]
    elif head == "skin_tone":
        for value in SKIN_PHRASES:
            skinned, noun = SKIN_PHRASES[value], SKIN_NOUN_PHRASES[value]
            names[value] = [value, skinned, noun, f"person with {noun}", f"{skinned} person"]
    for value, options in names.items():
        if key in {_normalise_phrase(o) for o in options}:
            return value
    return None


#: SEGA momentum scale and β of the Fair Diffusion paper.
FAIR_DIFFUSION_MOMENTUM = (0.5, 0.6)
