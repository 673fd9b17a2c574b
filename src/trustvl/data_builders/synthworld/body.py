"""A person's body in SynthWorld: the local frame, the attribute-dependent geometry and the colours.

A person is drawn in a local frame (:class:`PersonFrame`): ``x`` relative to the person's centre and
``y`` from the top of the head, both in units of the person's height. The appearance attributes set the
body geometry (:class:`BodyGeometry`: gender presentation, age and body type change shapes) and the
colours (:class:`PersonColours`: skin tone, hair by age), drawn from the person's appearance stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from trustvl.data_builders.synthworld.canvas import LabelCanvas
from trustvl.data_builders.synthworld.randomness import UniformStream
from trustvl.data_builders.synthworld.specs import PersonSpec

__all__ = [
    "HAND_POINT",
    "SHAPE_ATTRIBUTES",
    "SKIN_TONES",
    "BodyGeometry",
    "PersonColours",
    "PersonFrame",
    "person_colours",
]

#: RGB of each skin-tone level (before lighting/noise).
SKIN_TONES: dict[str, tuple[int, int, int]] = {
    "very light": (246, 220, 198),
    "light": (222, 174, 134),
    "medium": (186, 132, 92),
    "dark": (128, 80, 50),
    "very dark": (70, 44, 30),
}
_YOUNG_HAIR = ((22, 18, 18), (55, 36, 26), (92, 60, 38), (118, 52, 30))
_MIDDLE_AGED_HAIR = ((112, 104, 98), (128, 120, 112), (96, 90, 86))
_OLD_HAIR = ((172, 172, 174), (204, 204, 208), (232, 232, 232))

#: Shape-affecting attributes (skin tone only changes colours).
SHAPE_ATTRIBUTES: tuple[str, ...] = ("gender_presentation", "age", "body_type")

_BODY_WIDTH = {"slim": 0.0, "average": 0.5, "broad": 1.0}
_AGE_LEVEL = {"young": 0.0, "middle-aged": 0.5, "old": 1.0}

#: The holding hand, a fixed point of the local person frame (so the held object does not move when
#: the appearance changes).
HAND_POINT = (-0.13, 0.72)


@dataclass(frozen=True)
class PersonFrame:
    """The local person frame: ``at(x, y)`` is the unit image point of local point ``(x, y)``."""

    center_x: float
    top: float
    height: float

    @classmethod
    def of(cls, person: PersonSpec) -> PersonFrame:
        height = 0.85 * person.scale
        return cls(center_x=person.x, top=1.02 - height, height=height)

    def at(self, x: float, y: float) -> tuple[float, float]:
        return (self.center_x + self.height * x, self.top + self.height * y)


class BodyGeometry:
    """Attribute-dependent body geometry, in the local person frame."""

    __slots__ = (
        "head_rx",
        "head_ry",
        "head_y",
        "shoulder_y",
        "shoulder_half_width",
        "hem_half_width",
        "waist_half_width",
        "neck_half_width",
        "feminine",
        "body_width",
        "age_level",
    )

    def __init__(self, attributes: Mapping[str, str]) -> None:
        self.body_width = body_width = _BODY_WIDTH[attributes["body_type"]]
        self.age_level = age_level = _AGE_LEVEL[attributes["age"]]
        self.feminine = feminine = attributes["gender_presentation"] == "feminine"
        self.head_rx = 0.104 + 0.022 * body_width
        self.head_ry = 0.13
        self.head_y = 0.14 + 0.02 * age_level
        self.shoulder_y = 0.32 + 0.015 * age_level
        self.shoulder_half_width = (0.2 if feminine else 0.235) + 0.075 * body_width
        self.hem_half_width = self.shoulder_half_width + (0.0 if feminine else -0.04)
        self.waist_half_width = self.shoulder_half_width - (0.045 if feminine else 0.02)
        self.neck_half_width = 0.045 + 0.015 * body_width


@dataclass(frozen=True)
class PersonColours:
    """The person's appearance colours (labels) and appearance details, drawn from the appearance stream."""

    skin: int
    skin_shade: int
    hair: int
    has_beard: bool
    long_hair_style: float  # < 0.5: straight long hair, else a rounded bob (feminine)
    eye_shade: float  # < 0.5: darker eyes


def person_colours(
    canvas: LabelCanvas, person: PersonSpec, body: BodyGeometry, appearance_rng: UniformStream
) -> PersonColours:
    skin_rgb = appearance_rng.jitter(SKIN_TONES[person.attributes["skin_tone"]], 8)
    skin = canvas.person_colour(skin_rgb)
    skin_shade = canvas.person_colour(
        (int(skin_rgb[0] * 0.82), int(skin_rgb[1] * 0.8), int(skin_rgb[2] * 0.8))
    )
    age = person.attributes["age"]
    hair_choices = _YOUNG_HAIR if age == "young" else _MIDDLE_AGED_HAIR if age == "middle-aged" else _OLD_HAIR
    hair_rgb = appearance_rng.jitter(appearance_rng.pick(hair_choices), 8)
    hair = canvas.person_colour(hair_rgb)
    has_beard = appearance_rng() < (0.3 + 0.2 * body.age_level)
    long_hair_style = appearance_rng()
    eye_shade = appearance_rng()
    return PersonColours(skin, skin_shade, hair, has_beard, long_hair_style, eye_shade)
