"""Drawing one person in SynthWorld: body, attire, hair, face and headwear, all in the person's labels.

Everything drawn here uses person labels (:meth:`~trustvl.data_builders.synthworld.canvas.LabelCanvas.
person_colour`), so it is exactly the person mask: skin, hair/beard and the worn attire. The body
(:mod:`.body`) follows the appearance attributes; the attire (:mod:`.attire`) follows the occupation.

Drawing order (back to front): back hair, neck, main garment and its details, arms, front hair, head
and face, headwear. The order is part of the output: reordering steps changes pixels.
"""

from __future__ import annotations

from trustvl.data_builders.synthworld.attire import ATTIRE_DETAILS, HEADWEAR, draw_main_garment
from trustvl.data_builders.synthworld.body import (
    HAND_POINT,
    BodyGeometry,
    PersonColours,
    PersonFrame,
    person_colours,
)
from trustvl.data_builders.synthworld.canvas import LabelCanvas
from trustvl.data_builders.synthworld.randomness import UniformStream
from trustvl.data_builders.synthworld.specs import PersonSpec

__all__ = ["draw_person"]


def draw_person(
    canvas: LabelCanvas, person: PersonSpec, occupation: str, hat: bool, plain: bool = False
) -> None:
    """Draw one person (every pixel in the current person's label range; see the module doc).

    ``plain``: everyday clothes instead of the occupation's attire (no details, no headwear; a cue-poor
    scene). The appearance is drawn exactly as otherwise.
    """
    body = BodyGeometry(person.attributes)
    frame = PersonFrame.of(person)
    appearance_rng = UniformStream(person.seed)
    attire_rng = UniformStream(person.attire_seed)
    colours = person_colours(canvas, person, body, appearance_rng)

    if body.feminine:
        _draw_back_hair(canvas, frame, body, colours)
    _draw_neck(canvas, frame, body, colours)
    attire = None if plain else occupation
    main_rgb, main = draw_main_garment(canvas, frame, body, attire, attire_rng)
    details = None if attire is None else ATTIRE_DETAILS.get(attire)
    if details is not None:
        details(canvas, frame, body, attire_rng, main_rgb, colours, hat)
    _draw_arms(canvas, frame, body, attire, attire_rng, colours, sleeve=main)
    if body.feminine:
        _draw_front_hair(canvas, frame, body, colours)
    _draw_head(canvas, frame, body, colours)
    if hat and attire is not None:
        headwear = HEADWEAR.get(attire)
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


def _draw_arms(
    canvas: LabelCanvas,
    frame: PersonFrame,
    body: BodyGeometry,
    occupation: str | None,
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
