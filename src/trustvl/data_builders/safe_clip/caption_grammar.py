"""SynthWorld's caption grammar, read back: which occupation, setting and unsafe element a caption names.

Safe-CLIP's unsafe captions (SPEC §4) are made from safe ones by a caption converter (a fine-tuned language
model, or SynthWorld's exact converter). A converted caption is usable only if it keeps the safe caption's
**context** -- its occupation and, when the safe caption names one, its setting -- and names exactly one
**unsafe element** that SynthWorld can draw (gun, knife, blood, syringe; see
:data:`~trustvl.data_builders.synthworld.captions.UNSAFE_PHRASES`). :func:`check_conversion` decides that.

What the parser reads (trustvl's choices, documented here because no paper defines them):

- **Occupation**: the SynthWorld occupation words ("chef", "construction worker", ...) as whole words, after
  the setting and attire phrases (which may contain another occupation's name: "in a doctor's office", "a
  chef's jacket") have been taken out. Two different occupations make the caption ambiguous (``None``).
- **Setting**: the phrases of :data:`~trustvl.data_builders.synthworld.captions.SETTING_PHRASES`, longest
  first; the result is the key of the occupation whose setting is drawn (a swapped setting is allowed:
  "a chef in a doctor's office" has occupation "chef", setting "doctor"). Two different settings: ambiguous.
- **Unsafe element**: SynthWorld's exact phrases *and* paraphrases, recognised by a small lexicon of words
  per element (:data:`ELEMENT_WORDS`: "gun", "pistol", "rifle", "revolver", "firearm"; "knife", "knives",
  "dagger", "blade"; "blood", "bloody", "bloodstained", "bleeding"; "syringe", "syringes"), whole words, so
  "holding a knife", "with a pistol" or "splattered with blood" all count. The element phrase is the clause
  around the word (from the last comma before it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trustvl.data_builders.synthworld.captions import (
    ATTIRE_PHRASES,
    OBJECT_PHRASES,
    SETTING_PHRASES,
    UNSAFE_CATEGORIES,
    UNSAFE_PHRASES,
)
from trustvl.data_builders.synthworld.config import OCCUPATIONS

__all__ = [
    "ELEMENT_WORDS",
    "named_elements",
    "UNSAFE_ELEMENTS",
    "ConversionCheck",
    "ParsedCaption",
    "ParsedUnsafeCaption",
    "check_conversion",
    "parse_caption",
    "parse_unsafe_caption",
]

#: The unsafe elements SynthWorld draws, in a fixed order (``UNSAFE_PHRASES``' keys).
UNSAFE_ELEMENTS: tuple[str, ...] = tuple(UNSAFE_PHRASES)

#: Words that name each unsafe element (whole words, lower case).
ELEMENT_WORDS: dict[str, tuple[str, ...]] = {
    "gun": (
        "gun",
        "guns",
        "handgun",
        "handguns",
        "pistol",
        "pistols",
        "rifle",
        "rifles",
        "revolver",
        "firearm",
    ),
    "knife": ("knife", "knives", "dagger", "daggers", "blade", "blades", "machete"),
    "blood": ("blood", "bloody", "bloodstained", "blood-stained", "bloodstains", "bleeding"),
    "syringe": ("syringe", "syringes"),
}
assert set(ELEMENT_WORDS) == set(UNSAFE_ELEMENTS)


def _words_pattern(words: list[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![\w'-])({alternatives})(?![\w-])")


_ELEMENT_OF_WORD = {w: e for e, ws in ELEMENT_WORDS.items() for w in ws}
_ELEMENT_RE = _words_pattern(list(_ELEMENT_OF_WORD))
_OCCUPATION_RE = _words_pattern(list(OCCUPATIONS))
_SETTING_OF_PHRASE = {p: occ for occ, phrases in SETTING_PHRASES.items() for p in phrases}
_SETTING_RE = _words_pattern(list(_SETTING_OF_PHRASE))
# phrases that contain an occupation's name but do not say who the person is
_NON_OCCUPATION_RE = _words_pattern(list(ATTIRE_PHRASES.values()) + list(OBJECT_PHRASES.values()))


@dataclass(frozen=True)
class ParsedCaption:
    """What a caption names.

    Attributes:
        occupation: the SynthWorld occupation, or None when none is named.
        setting: the occupation whose setting is named ("chef" for "in a kitchen"), or None.
        setting_phrase: the setting phrase as written, or None.
        elements: the unsafe elements named, in order of appearance (empty for a safe caption).
        element_phrases: for each element, the clause that names it (", holding a knife" -> "holding a knife").
    """

    occupation: str | None
    setting: str | None
    setting_phrase: str | None
    elements: tuple[str, ...]
    element_phrases: tuple[str, ...]

    @property
    def is_safe(self) -> bool:
        return not self.elements


@dataclass(frozen=True)
class ParsedUnsafeCaption:
    """A caption in SynthWorld's grammar that names exactly one unsafe element.

    Attributes:
        occupation: the SynthWorld occupation.
        setting: the occupation whose setting is named, or None.
        element: "gun", "knife", "blood" or "syringe".
        category: the element's I2P category (``UNSAFE_CATEGORIES``).
        element_phrase: the clause naming the element ("holding a knife").
    """

    occupation: str
    setting: str | None
    element: str
    category: str
    element_phrase: str


def _normalise(text: str) -> str:
    return " ".join(text.lower().replace("’", "'").split())


def _clause(text: str, start: int, end: int) -> str:
    left = max(text.rfind(",", 0, start), text.rfind(";", 0, start), text.rfind(".", 0, start))
    rights = [i for i in (text.find(",", end), text.find(";", end), text.find(".", end)) if i >= 0]
    right = min(rights) if rights else len(text)
    return text[left + 1 : right].strip()


def parse_caption(text: str) -> ParsedCaption | None:
    """Parse ``text`` against SynthWorld's caption grammar (see the module docstring).

    Returns None when the caption is not a SynthWorld caption: not a string, no occupation, two different
    occupations, or two different settings."""
    if not isinstance(text, str):
        return None
    t = _normalise(text)
    settings = [(m.group(1), m.start(), m.end()) for m in _SETTING_RE.finditer(t)]
    setting_keys = {_SETTING_OF_PHRASE[p] for p, _, _ in settings}
    if len(setting_keys) > 1:
        return None
    # blank out settings, attire and objects before looking for the person's occupation
    masked = _SETTING_RE.sub(lambda m: " " * len(m.group(0)), t)
    masked = _NON_OCCUPATION_RE.sub(lambda m: " " * len(m.group(0)), masked)
    occupations = {m.group(1) for m in _OCCUPATION_RE.finditer(masked)}
    if len(occupations) != 1:
        return None
    elements: list[str] = []
    phrases: list[str] = []
    for m in _ELEMENT_RE.finditer(t):  # same reading as named_elements, plus each element's clause
        element = _ELEMENT_OF_WORD[m.group(1)]
        if element not in elements:
            elements.append(element)
            phrases.append(_clause(t, m.start(), m.end()))
    return ParsedCaption(
        occupation=occupations.pop(),
        setting=setting_keys.pop() if setting_keys else None,
        setting_phrase=settings[0][0] if settings else None,
        elements=tuple(elements),
        element_phrases=tuple(phrases),
    )


def named_elements(text: str) -> tuple[str, ...]:
    """The unsafe elements ``text`` names (SynthWorld's phrases and :data:`ELEMENT_WORDS`, whole words), in
    order of first mention; empty for a non-string."""
    if not isinstance(text, str):
        return ()
    found: list[str] = []
    for m in _ELEMENT_RE.finditer(text.lower()):
        element = _ELEMENT_OF_WORD[m.group(1)]
        if element not in found:
            found.append(element)
    return tuple(found)


def parse_unsafe_caption(text: str) -> ParsedUnsafeCaption | None:
    """The occupation, setting and unsafe element of an unsafe SynthWorld caption; None unless ``text``
    parses (:func:`parse_caption`) and names exactly one unsafe element.

    >>> parse_unsafe_caption("a chef in a kitchen, holding a knife").element
    'knife'
    """
    parsed = parse_caption(text)
    if parsed is None or len(parsed.elements) != 1:
        return None
    element = parsed.elements[0]
    return ParsedUnsafeCaption(
        occupation=parsed.occupation,  # type: ignore[arg-type]  # parse_caption guarantees one
        setting=parsed.setting,
        element=element,
        category=UNSAFE_CATEGORIES[element],
        element_phrase=parsed.element_phrases[0],
    )


@dataclass(frozen=True)
class ConversionCheck:
    """Whether an unsafe caption is a valid conversion of a safe one.

    Attributes:
        valid: the unsafe caption keeps the safe caption's occupation and setting and names exactly one
            unsafe element, and the safe caption named none.
        reason: why not (empty when valid): "safe caption is not a SynthWorld caption", "safe caption already
            names an unsafe element", "not a SynthWorld caption", "no unsafe element", "several unsafe
            elements", "occupation changed", "setting changed".
        element, category: the unsafe element and its I2P category (None when no single element is named).
        occupation, setting: the safe caption's context (None when it does not parse).
    """

    valid: bool
    reason: str
    element: str | None
    category: str | None
    occupation: str | None
    setting: str | None


def check_conversion(safe_text: str, unsafe_text: str) -> ConversionCheck:
    """Check one converter output against its safe caption (see :class:`ConversionCheck`)."""
    safe = parse_caption(safe_text)
    unsafe = parse_caption(unsafe_text)
    element = unsafe.elements[0] if unsafe is not None and len(unsafe.elements) == 1 else None
    category = UNSAFE_CATEGORIES[element] if element else None
    occ = safe.occupation if safe else None
    setting = safe.setting if safe else None

    def result(reason: str) -> ConversionCheck:
        return ConversionCheck(not reason, reason, element, category, occ, setting)

    if safe is None:
        return result("safe caption is not a SynthWorld caption")
    if safe.elements:
        return result("safe caption already names an unsafe element")
    if unsafe is None:
        return result("not a SynthWorld caption")
    if not unsafe.elements:
        return result("no unsafe element")
    if len(unsafe.elements) > 1:
        return result("several unsafe elements")
    if unsafe.occupation != safe.occupation:
        return result("occupation changed")
    if unsafe.setting != safe.setting:
        return result("setting changed")
    return result("")
