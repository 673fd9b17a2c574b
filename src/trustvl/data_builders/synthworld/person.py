"""Drawing one person: appearance attributes, occupation attire and headwear, all in the person's labels.

A person is drawn in a local frame (:class:`PersonFrame`): ``x`` relative to the person's centre and
``y`` from the top of the head, both in units of the person's height. Appearance attributes set the
body geometry (:class:`BodyGeometry`) and colours (:class:`PersonColours`); the attire comes from the
occupation and its own random stream, so it stays the same when the attributes change. Everything drawn
here uses person labels (:meth:`~trustvl.data_builders.synthworld.canvas.LabelCanvas.person_colour`),
so it is exactly the person mask.

Drawing order (back to front): back hair, neck, torso and attire details, arms, front hair, head and
face, headwear. The order is part of the output: reordering steps changes pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from trustvl.data_builders.synthworld.canvas import LabelCanvas
from trustvl.data_builders.synthworld.randomness import UniformStream
from trustvl.data_builders.synthworld.specs import PersonSpec

__all__ = ["HAND_POINT", "SHAPE_ATTRIBUTES", "SKIN_TONES", "PersonFrame", "draw_person"]

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

#: Attire main colours per occupation and their jitter.
_ATTIRE_COLOURS: dict[str, tuple[tuple[tuple[int, int, int], ...], float]] = {
    "doctor": (((244, 244, 246),), 6),
    "nurse": (((40, 152, 150), (110, 170, 224), (44, 70, 140), (160, 140, 210)), 12),
    "firefighter": (((176, 146, 84), (52, 52, 58), (222, 190, 50)), 12),
    "chef": (((248, 248, 244),), 5),
    "construction worker": (((120, 124, 132), (60, 90, 150), (230, 230, 230), (150, 50, 40)), 12),
    "scientist": (((236, 240, 242),), 6),
    "pilot": (((26, 36, 74), (28, 28, 34)), 8),
    "teacher": (
        ((130, 40, 50), (200, 160, 50), (110, 120, 50), (120, 80, 50), (100, 60, 110), (170, 80, 40)),
        12,
    ),
}


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


def _person_colours(
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


def draw_person(canvas: LabelCanvas, person: PersonSpec, occupation: str, hat: bool) -> None:
    """Draw one person (every pixel in the current person's label range; see the module doc)."""
    body = BodyGeometry(person.attributes)
    frame = PersonFrame.of(person)
    appearance_rng = UniformStream(person.seed)
    attire_rng = UniformStream(person.attire_seed)
    colours = _person_colours(canvas, person, body, appearance_rng)

    if body.feminine:
        _draw_back_hair(canvas, frame, body, colours)
    _draw_neck(canvas, frame, body, colours)
    main_rgb, main = _draw_torso(canvas, frame, body, occupation, attire_rng)
    details = _ATTIRE_DETAILS.get(occupation)
    if details is not None:
        details(canvas, frame, body, attire_rng, main_rgb, colours, hat)
    _draw_arms(canvas, frame, body, occupation, attire_rng, colours, sleeve=main)
    if body.feminine:
        _draw_front_hair(canvas, frame, body, colours)
    _draw_head(canvas, frame, body, colours)
    if hat:
        headwear = _HEADWEAR.get(occupation)
        if headwear is not None:  # doctor: no headwear
            headwear(canvas, frame, body, attire_rng)


# ---------------------------------------------------------------------------------------------- body
def _draw_neck(canvas: LabelCanvas, frame: PersonFrame, body: BodyGeometry, colours: PersonColours) -> None:
    top_left = frame.at(-body.neck_half_width, body.head_y + 0.06)
    bottom_right = frame.at(body.neck_half_width, body.shoulder_y + 0.05)
    canvas.rect(*top_left, *bottom_right, colours.skin_shade)


def _draw_back_hair(
    canvas: LabelCanvas, frame: PersonFrame, body: BodyGeometry, colours: PersonColours
) -> None:
    at, height = frame.at, frame.height
    rx, head_y = body.head_rx, body.head_y
    length = 0.47 if body.age_level < 1.0 else 0.36
    if colours.long_hair_style < 0.5:
        canvas.rect(*at(-rx - 0.045, head_y - 0.06), *at(rx + 0.045, head_y + length - 0.14), colours.hair)
    else:
        canvas.ellipse(
            *at(0, head_y + 0.07), (rx + 0.055) * height, (length - 0.02) * height * 0.62, colours.hair
        )


def _draw_torso(
    canvas: LabelCanvas, frame: PersonFrame, body: BodyGeometry, occupation: str, attire_rng: UniformStream
) -> tuple[tuple[int, int, int], int]:
    """The attire's main garment; returns its colour (RGB) and label."""
    at = frame.at
    shoulder_y = body.shoulder_y
    shoulder, waist, hem = body.shoulder_half_width, body.waist_half_width, body.hem_half_width
    choices, jitter = _ATTIRE_COLOURS[occupation]
    main_rgb = attire_rng.jitter(attire_rng.pick(choices), jitter)
    main = canvas.person_colour(main_rgb)
    outline = [
        at(-shoulder + 0.06, shoulder_y), at(shoulder - 0.06, shoulder_y), at(shoulder, shoulder_y + 0.06),
        at(waist, 0.66), at(hem, 1.25), at(-hem, 1.25), at(-waist, 0.66), at(-shoulder, shoulder_y + 0.06),
    ]  # fmt: skip
    canvas.poly(outline, main)
    return main_rgb, main


def _draw_arms(
    canvas: LabelCanvas,
    frame: PersonFrame,
    body: BodyGeometry,
    occupation: str,
    attire_rng: UniformStream,
    colours: PersonColours,
    sleeve: int,
) -> None:
    """Short sleeves over bare upper arms, forearms and hands; the left hand at :data:`HAND_POINT`."""
    at, height = frame.at, frame.height
    shoulder, shoulder_y = body.shoulder_half_width, body.shoulder_y
    skin = colours.skin
    hand_x, hand_y = HAND_POINT
    shoulder_left, shoulder_right = (
        at(-shoulder + 0.04, shoulder_y + 0.07),
        at(shoulder - 0.04, shoulder_y + 0.07),
    )
    elbow_left, elbow_right = at(-shoulder - 0.035, 0.6), at(shoulder + 0.045, 0.6)
    hand_left, hand_right = at(hand_x, hand_y), at(shoulder + 0.025, 0.85)
    sleeve_width = 0.115 * height
    forearm_width = 0.088 * height
    canvas.line([shoulder_left, elbow_left], forearm_width * 1.1, skin)
    canvas.line([shoulder_right, elbow_right], forearm_width * 1.1, skin)
    sleeve_fraction = 0.55  # the sleeve covers this fraction of the upper arm
    sleeve_end_left = _along(shoulder_left, elbow_left, sleeve_fraction)
    sleeve_end_right = _along(shoulder_right, elbow_right, sleeve_fraction)
    canvas.line([shoulder_left, sleeve_end_left], sleeve_width, sleeve)
    canvas.line([shoulder_right, sleeve_end_right], sleeve_width, sleeve)
    canvas.ellipse(*shoulder_left, sleeve_width / 2, sleeve_width / 2, sleeve)
    canvas.ellipse(*shoulder_right, sleeve_width / 2, sleeve_width / 2, sleeve)
    if occupation in ("pilot", "firefighter"):  # gold cuff stripe / reflective band at the sleeve end
        band = canvas.person_colour(
            attire_rng.jitter((226, 184, 60) if occupation == "pilot" else (214, 236, 70), 10)
        )
        for elbow, shoulder_point in ((elbow_left, shoulder_left), (elbow_right, shoulder_right)):
            band_x, band_y = _along(shoulder_point, elbow, sleeve_fraction - 0.08)
            canvas.ellipse(band_x, band_y, sleeve_width * 0.55, 0.022 * height, band)
    canvas.line([elbow_left, hand_left], forearm_width, skin)
    canvas.line([elbow_right, hand_right], forearm_width, skin)
    canvas.ellipse(*elbow_left, forearm_width * 0.55, forearm_width * 0.55, skin)
    canvas.ellipse(*elbow_right, forearm_width * 0.55, forearm_width * 0.55, skin)
    canvas.ellipse(*hand_left, 0.052 * height, 0.052 * height, skin)
    canvas.ellipse(*hand_right, 0.05 * height, 0.055 * height, skin)


def _along(start: tuple[float, float], end: tuple[float, float], fraction: float) -> tuple[float, float]:
    """The point ``fraction`` of the way from ``start`` to ``end``."""
    return (start[0] + (end[0] - start[0]) * fraction, start[1] + (end[1] - start[1]) * fraction)


def _draw_front_hair(
    canvas: LabelCanvas, frame: PersonFrame, body: BodyGeometry, colours: PersonColours
) -> None:
    at = frame.at
    rx, head_y = body.head_rx, body.head_y
    length = 0.44 if body.age_level < 1.0 else 0.33
    canvas.rect(*at(-rx - 0.04, head_y - 0.04), *at(-rx + 0.03, head_y + length - 0.14), colours.hair)
    canvas.rect(*at(rx - 0.03, head_y - 0.04), *at(rx + 0.04, head_y + length - 0.14), colours.hair)


def _draw_head(canvas: LabelCanvas, frame: PersonFrame, body: BodyGeometry, colours: PersonColours) -> None:
    """Hair, face, beard, eyes and mouth."""
    at, height = frame.at, frame.height
    rx, ry, head_y = body.head_rx, body.head_ry, body.head_y
    hair, skin = colours.hair, colours.skin
    if not body.feminine and body.age_level >= 1.0:  # receding: grey at the sides only
        canvas.ellipse(*at(0, head_y - 0.005), (rx + 0.014) * height, (ry + 0.01) * height, hair)
        canvas.ellipse(*at(0, head_y), rx * height, ry * height, skin)
        canvas.rect(*at(-rx - 0.014, head_y - 0.03), *at(-rx + 0.012, head_y + 0.04), hair)
        canvas.rect(*at(rx - 0.012, head_y - 0.03), *at(rx + 0.014, head_y + 0.04), hair)
    else:
        canvas.ellipse(*at(0, head_y - 0.02), (rx + 0.016) * height, (ry + 0.008) * height, hair)
        canvas.ellipse(*at(0, head_y + 0.012), rx * height, (ry - 0.01) * height, skin)
        if body.feminine:  # fringe
            canvas.chord(*at(0, head_y - 0.03), (rx + 0.01) * height, (ry - 0.01) * height, 180, 360, hair)
        else:
            canvas.chord(*at(0, head_y - 0.04), (rx + 0.01) * height, (ry - 0.02) * height, 180, 360, hair)
    if not body.feminine and colours.has_beard:
        canvas.chord(*at(0, head_y + 0.03), rx * height, (ry - 0.02) * height, 15, 165, hair)
    eye = canvas.person_colour((28, 20, 20) if colours.eye_shade < 0.5 else (40, 30, 24))
    eye_y = head_y + 0.02
    eye_size = max(0.024 * height, 1.0 / canvas.resolution)
    for eye_x in (-0.05, 0.026):
        x0, y0 = at(eye_x, eye_y)
        canvas.rect(x0, y0, x0 + eye_size, y0 + eye_size, eye)
    if body.feminine or not colours.has_beard:
        canvas.rect(
            *at(-0.03, head_y + 0.075),
            *at(0.03, head_y + 0.075 + 0.018),
            canvas.person_colour((150, 64, 60) if body.feminine else (110, 56, 50)),
        )


# ---------------------------------------------------------------------------------------------- attire
def _darker(rgb: tuple[int, int, int], red: float, green: float, blue: float) -> tuple[int, int, int]:
    return (int(rgb[0] * red), int(rgb[1] * green), int(rgb[2] * blue))


def _doctor_coat(canvas, frame, body, attire_rng, main_rgb, colours, hat) -> None:
    """Open white coat over a shirt and tie, lapels, a breast pocket with a pen."""
    at, height, shoulder_y = frame.at, frame.height, body.shoulder_y
    shirt = canvas.person_colour(
        attire_rng.jitter(attire_rng.pick(((150, 190, 230), (236, 190, 200), (170, 214, 170))), 10)
    )
    canvas.poly([at(-0.085, shoulder_y - 0.005), at(0.085, shoulder_y - 0.005), at(0.0, 0.68)], shirt)
    tie = canvas.person_colour(
        attire_rng.jitter(attire_rng.pick(((30, 40, 90), (130, 24, 34), (40, 40, 44))), 10)
    )
    canvas.poly(
        [
            at(-0.022, shoulder_y + 0.03),
            at(0.022, shoulder_y + 0.03),
            at(0.03, 0.58),
            at(0.0, 0.63),
            at(-0.03, 0.58),
        ],
        tie,
    )
    lapel = canvas.person_colour(_darker(main_rgb, 0.8, 0.8, 0.82))
    canvas.line([at(-0.09, shoulder_y), at(-0.01, 0.7), at(-0.01, 1.2)], 0.022 * height, lapel)
    canvas.line([at(0.09, shoulder_y), at(0.01, 0.7), at(0.01, 1.2)], 0.022 * height, lapel)
    canvas.rect(*at(0.08, 0.5), *at(0.15, 0.53), lapel)  # pocket
    canvas.rect(*at(0.1, 0.45), *at(0.115, 0.51), canvas.person_colour((40, 60, 160)))


def _nurse_scrubs(canvas, frame, body, attire_rng, main_rgb, colours, hat) -> None:
    """V-neck scrubs with a pocket (and a small white badge when the cap is worn)."""
    at, height, shoulder_y = frame.at, frame.height, body.shoulder_y
    canvas.poly(
        [at(-0.07, shoulder_y - 0.005), at(0.07, shoulder_y - 0.005), at(0.0, shoulder_y + 0.12)],
        colours.skin_shade,
    )
    trim = canvas.person_colour(_darker(main_rgb, 0.78, 0.78, 0.78))
    canvas.line(
        [at(-0.075, shoulder_y), at(0.0, shoulder_y + 0.125), at(0.075, shoulder_y)], 0.02 * height, trim
    )
    canvas.rect(*at(-0.16, 0.52), *at(-0.07, 0.6), trim)
    if hat:
        canvas.rect(*at(-0.025, 0.55), *at(-0.015, 0.59), canvas.person_colour((240, 240, 240)))


def _firefighter_coat(canvas, frame, body, attire_rng, main_rgb, colours, hat) -> None:
    """Reflective stripes, a front closure and a dark collar."""
    at, shoulder_y, shoulder = frame.at, body.shoulder_y, body.shoulder_half_width
    reflective = canvas.person_colour(attire_rng.jitter((214, 236, 70), 10))
    silver = canvas.person_colour(attire_rng.jitter((214, 214, 214), 6))
    for stripe_y in (0.76, 0.98):
        canvas.rect(*at(-shoulder - 0.02, stripe_y), *at(shoulder + 0.02, stripe_y + 0.05), reflective)
        canvas.rect(*at(-shoulder - 0.02, stripe_y + 0.017), *at(shoulder + 0.02, stripe_y + 0.033), silver)
    canvas.rect(*at(-0.012, shoulder_y + 0.02), *at(0.012, 1.2), canvas.person_colour((30, 30, 30)))
    canvas.poly(
        [
            at(-0.1, shoulder_y - 0.03),
            at(0.1, shoulder_y - 0.03),
            at(0.08, shoulder_y + 0.05),
            at(-0.08, shoulder_y + 0.05),
        ],
        canvas.person_colour(_darker(main_rgb, 0.6, 0.6, 0.6)),
    )


def _chef_jacket(canvas, frame, body, attire_rng, main_rgb, colours, hat) -> None:
    """Double-breasted buttons, a diagonal fold, sometimes a neckerchief."""
    at, height, shoulder_y = frame.at, frame.height, body.shoulder_y
    button = canvas.person_colour(attire_rng.jitter(attire_rng.pick(((60, 60, 66), (170, 170, 176))), 6))
    for i in range(3):
        button_y = 0.46 + i * 0.11
        canvas.ellipse(*at(-0.065, button_y), 0.017 * height, 0.017 * height, button)
        canvas.ellipse(*at(0.065, button_y), 0.017 * height, 0.017 * height, button)
    canvas.line(
        [at(-0.12, shoulder_y + 0.02), at(0.12, 0.74)], 0.015 * height,
        canvas.person_colour(_darker(main_rgb, 0.84, 0.84, 0.86)),
    )  # fmt: skip
    if attire_rng() < 0.5:
        neckerchief = attire_rng.jitter(attire_rng.pick(((200, 30, 40), (30, 60, 160), (30, 30, 30))), 10)
        canvas.poly(
            [at(-0.08, shoulder_y - 0.01), at(0.08, shoulder_y - 0.01), at(0.0, shoulder_y + 0.07)],
            canvas.person_colour(neckerchief),
        )


def _construction_vest(canvas, frame, body, attire_rng, main_rgb, colours, hat) -> None:
    """A hi-vis vest with silver stripes over the t-shirt."""
    at, shoulder_y = frame.at, body.shoulder_y
    shoulder, waist, hem = body.shoulder_half_width, body.waist_half_width, body.hem_half_width
    vest = canvas.person_colour(attire_rng.jitter(attire_rng.pick(((250, 116, 20), (206, 240, 40))), 10))
    canvas.poly([at(-shoulder + 0.075, shoulder_y), at(-0.05, shoulder_y), at(-0.045, 1.25), at(-hem + 0.015, 1.25),
                 at(-waist + 0.01, 0.66), at(-shoulder + 0.03, shoulder_y + 0.06)], vest)  # fmt: skip
    canvas.poly([at(shoulder - 0.075, shoulder_y), at(0.05, shoulder_y), at(0.045, 1.25), at(hem - 0.015, 1.25),
                 at(waist - 0.01, 0.66), at(shoulder - 0.03, shoulder_y + 0.06)], vest)  # fmt: skip
    silver = canvas.person_colour(attire_rng.jitter((222, 222, 226), 6))
    for stripe_y in (0.66, 0.86):
        canvas.rect(*at(-waist, stripe_y), *at(-0.05, stripe_y + 0.04), silver)
        canvas.rect(*at(0.05, stripe_y), *at(waist, stripe_y + 0.04), silver)


def _lab_coat(canvas, frame, body, attire_rng, main_rgb, colours, hat) -> None:
    """A closed lab coat: collar, buttons, a pocket with pens."""
    at, height, shoulder_y = frame.at, frame.height, body.shoulder_y
    trim = canvas.person_colour(_darker(main_rgb, 0.78, 0.78, 0.8))
    collar = canvas.person_colour(
        attire_rng.jitter(attire_rng.pick(((80, 140, 80), (120, 120, 200), (200, 200, 120))), 10)
    )
    canvas.poly(
        [at(-0.05, shoulder_y - 0.005), at(0.05, shoulder_y - 0.005), at(0.0, shoulder_y + 0.06)], collar
    )
    canvas.line([at(-0.1, shoulder_y), at(0.0, shoulder_y + 0.1), at(0.1, shoulder_y)], 0.02 * height, trim)
    canvas.rect(*at(-0.008, shoulder_y + 0.1), *at(0.008, 1.2), trim)
    for i in range(3):
        canvas.ellipse(*at(0.03, 0.5 + i * 0.12), 0.013 * height, 0.013 * height, trim)
    canvas.rect(*at(0.09, 0.5), *at(0.17, 0.54), trim)
    pen = canvas.person_colour(
        attire_rng.jitter(attire_rng.pick(((200, 40, 40), (40, 80, 200), (40, 160, 60))), 10)
    )
    canvas.rect(*at(0.1, 0.44), *at(0.115, 0.51), pen)
    canvas.rect(*at(0.13, 0.45), *at(0.145, 0.51), canvas.person_colour((40, 40, 44)))


def _pilot_jacket(canvas, frame, body, attire_rng, main_rgb, colours, hat) -> None:
    """White shirt and black tie, gold epaulettes and a wings badge."""
    at, shoulder_y, shoulder = frame.at, body.shoulder_y, body.shoulder_half_width
    white = canvas.person_colour(attire_rng.jitter((240, 242, 246), 5))
    canvas.poly([at(-0.08, shoulder_y - 0.005), at(0.08, shoulder_y - 0.005), at(0.0, 0.6)], white)
    canvas.poly(
        [
            at(-0.02, shoulder_y + 0.03),
            at(0.02, shoulder_y + 0.03),
            at(0.026, 0.55),
            at(0.0, 0.59),
            at(-0.026, 0.55),
        ],
        canvas.person_colour((20, 20, 24)),
    )
    gold = canvas.person_colour(attire_rng.jitter((226, 184, 60), 10))
    canvas.rect(*at(-shoulder + 0.01, shoulder_y + 0.005), *at(-shoulder + 0.12, shoulder_y + 0.035), gold)
    canvas.rect(*at(shoulder - 0.12, shoulder_y + 0.005), *at(shoulder - 0.01, shoulder_y + 0.035), gold)
    canvas.rect(*at(0.08, 0.44), *at(0.17, 0.465), gold)  # wings badge


def _teacher_cardigan(canvas, frame, body, attire_rng, main_rgb, colours, hat) -> None:
    """A cardigan open over a collared shirt, with buttons."""
    at, height, shoulder_y = frame.at, frame.height, body.shoulder_y
    shirt = canvas.person_colour(
        attire_rng.jitter(attire_rng.pick(((244, 244, 240), (200, 220, 240), (236, 230, 210))), 6)
    )
    canvas.rect(*at(-0.055, shoulder_y), *at(0.055, 1.2), shirt)
    canvas.poly(
        [at(-0.09, shoulder_y - 0.01), at(0.0, shoulder_y + 0.03), at(-0.05, shoulder_y + 0.08)], shirt
    )
    canvas.poly([at(0.09, shoulder_y - 0.01), at(0.0, shoulder_y + 0.03), at(0.05, shoulder_y + 0.08)], shirt)
    button = canvas.person_colour(_darker(main_rgb, 0.6, 0.6, 0.6))
    for i in range(3):
        canvas.ellipse(*at(-0.07, 0.5 + i * 0.12), 0.014 * height, 0.014 * height, button)


_AttireDetails = Callable[
    [LabelCanvas, PersonFrame, BodyGeometry, UniformStream, tuple[int, int, int], PersonColours, bool], None
]
_ATTIRE_DETAILS: dict[str, _AttireDetails] = {
    "doctor": _doctor_coat,
    "nurse": _nurse_scrubs,
    "firefighter": _firefighter_coat,
    "chef": _chef_jacket,
    "construction worker": _construction_vest,
    "scientist": _lab_coat,
    "pilot": _pilot_jacket,
    "teacher": _teacher_cardigan,
}


# ---------------------------------------------------------------------------------------------- headwear
def _nurse_cap(canvas, frame, body, attire_rng) -> None:
    at, top = frame.at, body.head_y - body.head_ry
    white = canvas.person_colour((246, 246, 246))
    canvas.poly(
        [at(-0.09, top + 0.045), at(0.09, top + 0.045), at(0.07, top - 0.05), at(-0.07, top - 0.05)], white
    )
    red = canvas.person_colour((210, 30, 40))
    canvas.rect(*at(-0.012, top - 0.03), *at(0.012, top + 0.03), red)
    canvas.rect(*at(-0.03, top - 0.012), *at(0.03, top + 0.012), red)


def _firefighter_helmet(canvas, frame, body, attire_rng) -> None:
    at, height, top, rx = frame.at, frame.height, body.head_y - body.head_ry, body.head_rx
    helmet = canvas.person_colour(
        attire_rng.jitter(attire_rng.pick(((210, 30, 30), (236, 196, 30), (30, 30, 34))), 10)
    )
    canvas.ellipse(*at(0, top + 0.075), (rx + 0.075) * height, 0.035 * height, helmet)
    canvas.chord(*at(0, top + 0.06), (rx + 0.02) * height, 0.1 * height, 180, 360, helmet)
    canvas.rect(*at(-0.03, top - 0.03), *at(0.03, top + 0.03), canvas.person_colour((230, 200, 60)))


def _chef_toque(canvas, frame, body, attire_rng) -> None:
    at, height, top, rx = frame.at, frame.height, body.head_y - body.head_ry, body.head_rx
    white = canvas.person_colour(attire_rng.jitter((248, 248, 246), 4))
    canvas.rect(*at(-rx + 0.01, top - 0.2), *at(rx - 0.01, top + 0.05), white)
    canvas.ellipse(*at(-0.05, top - 0.2), 0.07 * height, 0.06 * height, white)
    canvas.ellipse(*at(0.05, top - 0.2), 0.07 * height, 0.06 * height, white)
    canvas.ellipse(*at(0, top - 0.24), 0.07 * height, 0.06 * height, white)
    canvas.rect(
        *at(-rx + 0.01, top + 0.0), *at(rx - 0.01, top + 0.012), canvas.person_colour((214, 214, 214))
    )


def _hard_hat(canvas, frame, body, attire_rng) -> None:
    at, height, top, rx = frame.at, frame.height, body.head_y - body.head_ry, body.head_rx
    hat = canvas.person_colour(
        attire_rng.jitter(attire_rng.pick(((244, 206, 20), (246, 246, 240), (250, 130, 20))), 10)
    )
    canvas.chord(*at(0, top + 0.07), (rx + 0.035) * height, 0.11 * height, 180, 360, hat)
    canvas.rect(*at(-rx - 0.06, top + 0.05), *at(rx + 0.06, top + 0.085), hat)
    canvas.rect(*at(-0.015, top - 0.035), *at(0.015, top + 0.06), canvas.person_colour((200, 160, 20)))


def _safety_goggles(canvas, frame, body, attire_rng) -> None:
    at, rx, head_y = frame.at, body.head_rx, body.head_y
    strap = canvas.person_colour((30, 30, 34))
    canvas.rect(*at(-rx - 0.01, head_y - 0.005), *at(rx + 0.01, head_y + 0.015), strap)
    lens = canvas.person_colour(attire_rng.jitter((150, 214, 236), 8))
    canvas.rect(*at(-0.085, head_y - 0.03), *at(0.085, head_y + 0.05), strap)
    canvas.rect(*at(-0.072, head_y - 0.017), *at(-0.006, head_y + 0.037), lens)
    canvas.rect(*at(0.006, head_y - 0.017), *at(0.072, head_y + 0.037), lens)


def _pilot_cap(canvas, frame, body, attire_rng) -> None:
    at, height, top, rx = frame.at, frame.height, body.head_y - body.head_ry, body.head_rx
    canvas.ellipse(
        *at(0, top + 0.02),
        (rx + 0.05) * height,
        0.055 * height,
        canvas.person_colour(attire_rng.jitter((244, 244, 246), 4)),
    )
    canvas.rect(
        *at(-rx - 0.005, top + 0.035), *at(rx + 0.005, top + 0.085), canvas.person_colour((24, 24, 30))
    )
    canvas.rect(*at(-0.02, top + 0.04), *at(0.02, top + 0.075), canvas.person_colour((226, 184, 60)))
    canvas.chord(
        *at(0, top + 0.085), (rx - 0.005) * height, 0.035 * height, 0, 180, canvas.person_colour((12, 12, 14))
    )


def _teacher_glasses(canvas, frame, body, attire_rng) -> None:
    at, height, head_y = frame.at, frame.height, body.head_y
    rim = canvas.person_colour(
        attire_rng.jitter(attire_rng.pick(((30, 30, 30), (120, 60, 30), (90, 20, 30))), 8)
    )
    rim_width = max(0.015 * height, 1.0 / canvas.resolution)
    for lens_x in (-0.045, 0.045):
        centre_x, centre_y = at(lens_x, head_y + 0.025)
        canvas.arc(centre_x, centre_y, 0.037 * height, 0.03 * height, 0, 360, rim_width, rim)
    canvas.line([at(-0.01, head_y + 0.025), at(0.01, head_y + 0.025)], rim_width, rim)


_Headwear = Callable[[LabelCanvas, PersonFrame, BodyGeometry, UniformStream], None]
_HEADWEAR: dict[str, _Headwear] = {
    "nurse": _nurse_cap,
    "firefighter": _firefighter_helmet,
    "chef": _chef_toque,
    "construction worker": _hard_hat,
    "scientist": _safety_goggles,
    "pilot": _pilot_cap,
    "teacher": _teacher_glasses,
}
