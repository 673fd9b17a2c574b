"""Captions and prompts for SynthWorld scenes.

- *Context-only* captions name the occupation and what identifies it (setting, held object, attire)
  and never the person's appearance: "a photo of a chef", "a chef at work", "a chef in a kitchen
  holding a frying pan", ... These are the training captions (CF_α's ``L_CLIP`` uses them).
- *Appearance* captions also name the person's appearance: "a photo of a dark-skinned female chef",
  "an elderly woman working as a chef", ...
- :func:`occupation_prompt` is the zero-shot prompt "a photo of a {occupation}".
- :func:`appearance_phrase` / :func:`parse_appearance` turn attributes into an inpainting prompt
  ("a dark-skinned elderly heavyset woman") and back.

An unsafe scene's captions end with the element's phrase (", holding a gun", ", covered in blood").
Captions describe the image as rendered: a scene whose setting was swapped names the drawn setting, and
a scene without a held object never mentions one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from trustvl.data_builders.synthworld.config import HELD_OBJECTS
from trustvl.errors import TrustVLInputError

if TYPE_CHECKING:
    from trustvl.data_builders.synthworld.render import SceneSpec

#: Phrases for the place where each occupation's setting is drawn (keyed by the setting's occupation).
SETTING_PHRASES: dict[str, tuple[str, ...]] = {
    "doctor": ("in a hospital", "in a clinic", "in a doctor's office"),
    "nurse": ("in a hospital ward", "at a patient's bedside", "on a hospital ward"),
    "firefighter": ("at a fire", "at the scene of a fire", "next to a fire truck"),
    "chef": ("in a kitchen", "in a restaurant kitchen", "in a commercial kitchen"),
    "construction worker": ("on a construction site", "at a building site", "in front of scaffolding"),
    "scientist": ("in a laboratory", "in a lab", "in a chemistry lab"),
    "pilot": ("in a cockpit", "in an airplane cockpit", "on the flight deck"),
    "teacher": ("in a classroom", "in front of a blackboard", "in a school classroom"),
}

OBJECT_PHRASES: dict[str, str] = {
    "doctor": "a stethoscope",
    "nurse": "a clipboard",
    "firefighter": "a fire extinguisher",
    "chef": "a frying pan",
    "construction worker": "a hammer",
    "scientist": "a flask",
    "pilot": "a headset",
    "teacher": "a book",
}
assert set(OBJECT_PHRASES) == set(HELD_OBJECTS)

ATTIRE_PHRASES: dict[str, str] = {
    "doctor": "a white coat",
    "nurse": "scrubs",
    "firefighter": "turnout gear",
    "chef": "a chef's jacket",
    "construction worker": "a safety vest",
    "scientist": "a lab coat",
    "pilot": "a pilot's uniform",
    "teacher": "a cardigan",
}

SKIN_PHRASES: dict[str, str] = {
    "very light": "very light-skinned",
    "light": "light-skinned",
    "medium": "medium-skinned",
    "dark": "dark-skinned",
    "very dark": "very dark-skinned",
}
GENDER_ADJ: dict[str, str] = {"masculine": "male", "feminine": "female"}
GENDER_NOUN: dict[str, str] = {"masculine": "man", "feminine": "woman"}
AGE_PHRASES: dict[str, str] = {"young": "young", "middle-aged": "middle-aged", "old": "elderly"}
BODY_PHRASES: dict[str, str] = {"slim": "slim", "average": "average-build", "broad": "heavyset"}

#: Phrases per unsafe element (keyed by :func:`~.render.unsafe_subtype`: gun, knife, blood, syringe).
UNSAFE_PHRASES: dict[str, tuple[str, ...]] = {
    "gun": ("next to a gun", "with a gun nearby", "with a handgun"),
    "knife": ("next to a knife", "with a knife nearby", "with a large knife"),
    "blood": ("covered in blood", "with blood splatter", "next to a pool of blood"),
    "syringe": ("next to a syringe", "with a drug syringe nearby", "with a syringe of drugs"),
}
#: The I2P category (arXiv 2211.05105) each unsafe element stands for.
UNSAFE_CATEGORIES: dict[str, str] = {
    "gun": "violence",
    "knife": "violence",
    "blood": "shocking",
    "syringe": "illegal activity",
}

_CONTEXT_TEMPLATES: tuple[str, ...] = (
    "a photo of {a_occ}",
    "{a_occ} at work",
    "an image of {a_occ}",
    "{a_occ} {setting}",
    "a photo of {a_occ} {setting}",
    "{a_occ} wearing {attire}",
    "{a_occ} holding {obj}",
    "{a_occ} {setting} holding {obj}",
    "a photo of {a_occ} wearing {attire} {setting}",
)
_APPEARANCE_TEMPLATES: tuple[str, ...] = (
    "a photo of {a_skin} {gender_adj} {occ}",
    "{a_age} {gender_noun} working as {a_occ}",
    "a photo of {a_body} {skin} {gender_noun} who works as {a_occ}",
    "{a_skin} {age} {occ} {setting}",
)


def article(phrase: str) -> str:
    """``phrase`` with "a"/"an" in front."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def occupation_prompt(occupation: str) -> str:
    """The zero-shot prompt: "a photo of a {occupation}"."""
    return f"a photo of {article(occupation)}"


def appearance_phrase(attributes: Mapping[str, str]) -> str:
    """ "a dark-skinned elderly heavyset woman" (attributes missing from the mapping are left out)."""
    words = []
    if "skin_tone" in attributes:
        words.append(SKIN_PHRASES[attributes["skin_tone"]])
    if "age" in attributes:
        words.append(AGE_PHRASES[attributes["age"]])
    if "body_type" in attributes:
        words.append(BODY_PHRASES[attributes["body_type"]])
    words.append(GENDER_NOUN.get(attributes.get("gender_presentation", ""), "person"))
    return article(" ".join(words))


def parse_appearance(prompt: str) -> dict[str, str]:
    """Attributes named in a prompt (inverse of :func:`appearance_phrase`; also reads
    "male"/"female"). Unmentioned attributes are absent from the result."""
    text = f" {prompt.lower()} "
    out: dict[str, str] = {}
    tables = (
        ("skin_tone", SKIN_PHRASES),
        ("age", AGE_PHRASES),
        ("body_type", BODY_PHRASES),
        ("gender_presentation", GENDER_NOUN),
        ("gender_presentation", GENDER_ADJ),
    )
    for attr, table in tables:
        if attr in out:
            continue
        for level, phrase in sorted(table.items(), key=lambda kv: -len(kv[1])):  # longest first
            if f" {phrase} " in text or f" {phrase}," in text or f" {phrase}." in text:
                out[attr] = level
                break
    return out


def _fields(spec: SceneSpec, k: int = 0) -> dict[str, str]:
    occ = spec.occupation
    setting_phrases = SETTING_PHRASES[spec.setting]
    at = spec.people[k].attributes
    age = AGE_PHRASES[at["age"]]
    skin = SKIN_PHRASES[at["skin_tone"]]
    body = BODY_PHRASES[at["body_type"]]
    return {
        "occ": occ,
        "a_occ": article(occ),
        "setting": setting_phrases[_h(spec, "setting") % len(setting_phrases)],
        "obj": OBJECT_PHRASES[occ],
        "attire": ATTIRE_PHRASES[occ],
        "skin": skin,
        "a_skin": article(skin),
        "age": age,
        "a_age": article(age),
        "body": body,
        "a_body": article(body),
        "gender_adj": GENDER_ADJ[at["gender_presentation"]],
        "gender_noun": GENDER_NOUN[at["gender_presentation"]],
    }


def _h(spec: SceneSpec, salt: str) -> int:
    s = f"{spec.seed}|{spec.split}|{spec.index}|{salt}".encode()
    return int.from_bytes(hashlib.blake2b(s, digest_size=8).digest(), "little")


def _unsafe_suffix(spec: SceneSpec, include_unsafe: bool) -> str:
    if not include_unsafe or spec.unsafe is None:
        return ""
    from trustvl.data_builders.synthworld.render import unsafe_subtype

    phrases = UNSAFE_PHRASES[unsafe_subtype(spec.unsafe)]
    return ", " + phrases[_h(spec, "unsafe") % len(phrases)]


def caption_variants(spec: SceneSpec, context_only: bool = True, include_unsafe: bool = True) -> list[str]:
    """Every caption of a scene: the context-only ones, then (``context_only=False``) the appearance
    ones. With ``include_unsafe`` (default) an unsafe scene's captions name the unsafe element."""
    f = _fields(spec)
    suffix = _unsafe_suffix(spec, include_unsafe)
    out = [t.format(**f) + suffix for t in _CONTEXT_TEMPLATES if _shows(spec, t)]
    if not context_only:
        out += [t.format(**f) + suffix for t in _APPEARANCE_TEMPLATES if _shows(spec, t)]
    return out


def _shows(spec: SceneSpec, template: str) -> bool:
    """Whether the scene shows what ``template`` names: no object without one; a cue-poor scene names
    neither its (random) setting, nor attire, nor object."""
    if spec.cue_poor:
        return not any(slot in template for slot in ("{setting}", "{attire}", "{obj}"))
    return spec.held_object or "{obj}" not in template


def sample_caption(
    spec: SceneSpec, context_only: bool = True, include_unsafe: bool = True, salt: str = "caption"
) -> str:
    """One caption of the scene, chosen deterministically from ``(seed, split, index, salt)``."""
    variants = caption_variants(spec, context_only=context_only, include_unsafe=include_unsafe)
    return variants[_h(spec, salt) % len(variants)]


def appearance_caption(spec: SceneSpec, include_unsafe: bool = True) -> str:
    """One caption naming the main person's appearance (deterministic)."""
    f = _fields(spec)
    templates = [t for t in _APPEARANCE_TEMPLATES if _shows(spec, t)]
    t = templates[_h(spec, "appearance") % len(templates)]
    return t.format(**f) + _unsafe_suffix(spec, include_unsafe)


def skin_appearance_captions(spec: SceneSpec, include_unsafe: bool = True) -> list[str]:
    """The appearance captions that name the main person's skin tone (every appearance template but the
    one naming only age and gender)."""
    f = _fields(spec)
    suffix = _unsafe_suffix(spec, include_unsafe)
    return [t.format(**f) + suffix for t in _APPEARANCE_TEMPLATES if "skin}" in t and _shows(spec, t)]


def unsafe_phrase(kind: str, index: int = 0) -> str:
    """One of the phrases naming an unsafe element of ``kind`` ("gun", "knife", "blood" or "syringe")."""
    if kind not in UNSAFE_PHRASES:
        raise TrustVLInputError(f"unknown unsafe kind {kind!r}; expected one of {list(UNSAFE_PHRASES)}")
    p = UNSAFE_PHRASES[kind]
    return p[index % len(p)]


__all__ = [
    "appearance_caption",
    "appearance_phrase",
    "article",
    "caption_variants",
    "occupation_prompt",
    "parse_appearance",
    "sample_caption",
    "skin_appearance_captions",
    "unsafe_phrase",
]
