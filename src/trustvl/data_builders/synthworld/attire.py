"""What each occupation wears: the main garment, its details and the headwear (SynthWorld).

The attire is drawn from the person's *attire* stream (``PersonSpec.attire_seed``), never from the
appearance stream, so its colours and style stay the same when the appearance attributes change; it is
worn, so it is part of the person mask. :data:`ATTIRE_DETAILS` and :data:`HEADWEAR` map an occupation to
its drawing step (a doctor wears no headwear).
"""

from __future__ import annotations

from collections.abc import Callable

from trustvl.data_builders.synthworld.body import BodyGeometry, PersonColours, PersonFrame
from trustvl.data_builders.synthworld.canvas import LabelCanvas
from trustvl.data_builders.synthworld.randomness import UniformStream

__all__ = ["ATTIRE_COLOURS", "ATTIRE_DETAILS", "HEADWEAR", "PLAIN_COLOURS", "draw_main_garment"]

RGB = tuple[int, int, int]

#: Attire main colours per occupation and their jitter.
ATTIRE_COLOURS: dict[str, tuple[tuple[tuple[int, int, int], ...], float]] = {
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


#: Plain clothes of a cue-poor scene (``SynthWorldConfig.cue_poor_prob``): everyday colours that are no
#: occupation's main attire colour (no white, navy, teal or hi-vis), and their jitter.
PLAIN_COLOURS: tuple[tuple[tuple[int, int, int], ...], float] = (
    ((128, 128, 124), (96, 112, 96), (170, 150, 120), (120, 96, 130), (90, 110, 120), (150, 110, 100)),
    12,
)


def draw_main_garment(
    canvas: LabelCanvas,
    frame: PersonFrame,
    body: BodyGeometry,
    occupation: str | None,
    attire_rng: UniformStream,
) -> tuple[tuple[int, int, int], int]:
    """The attire's main garment (``occupation`` None: plain clothes); returns its colour (RGB) and label."""
    at = frame.at
    shoulder_y = body.shoulder_y
    shoulder, waist, hem = body.shoulder_half_width, body.waist_half_width, body.hem_half_width
    choices, jitter = PLAIN_COLOURS if occupation is None else ATTIRE_COLOURS[occupation]
    main_rgb = attire_rng.jitter(attire_rng.pick(choices), jitter)
    main = canvas.person_colour(main_rgb)
    outline = [
        at(-shoulder + 0.06, shoulder_y), at(shoulder - 0.06, shoulder_y), at(shoulder, shoulder_y + 0.06),
        at(waist, 0.66), at(hem, 1.25), at(-hem, 1.25), at(-waist, 0.66), at(-shoulder, shoulder_y + 0.06),
    ]  # fmt: skip
    canvas.poly(outline, main)
    return main_rgb, main


def _darker(rgb: tuple[int, int, int], red: float, green: float, blue: float) -> tuple[int, int, int]:
    return (int(rgb[0] * red), int(rgb[1] * green), int(rgb[2] * blue))


def _doctor_coat(
    canvas: LabelCanvas,
    frame: PersonFrame,
    body: BodyGeometry,
    attire_rng: UniformStream,
    main_rgb: RGB,
    colours: PersonColours,
    hat: bool,
) -> None:
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


def _nurse_scrubs(
    canvas: LabelCanvas,
    frame: PersonFrame,
    body: BodyGeometry,
    attire_rng: UniformStream,
    main_rgb: RGB,
    colours: PersonColours,
    hat: bool,
) -> None:
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


def _firefighter_coat(
    canvas: LabelCanvas,
    frame: PersonFrame,
    body: BodyGeometry,
    attire_rng: UniformStream,
    main_rgb: RGB,
    colours: PersonColours,
    hat: bool,
) -> None:
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


def _chef_jacket(
    canvas: LabelCanvas,
    frame: PersonFrame,
    body: BodyGeometry,
    attire_rng: UniformStream,
    main_rgb: RGB,
    colours: PersonColours,
    hat: bool,
) -> None:
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


def _construction_vest(
    canvas: LabelCanvas,
    frame: PersonFrame,
    body: BodyGeometry,
    attire_rng: UniformStream,
    main_rgb: RGB,
    colours: PersonColours,
    hat: bool,
) -> None:
    """A hi-vis vest with silver stripes over the t-shirt."""
    at, shoulder_y = frame.at, body.shoulder_y
    shoulder, waist, hem = body.shoulder_half_width, body.waist_half_width, body.hem_half_width
    vest = canvas.person_colour(attire_rng.jitter(attire_rng.pick(((250, 116, 20), (206, 240, 40))), 10))
    canvas.poly(
        [
            at(-shoulder + 0.075, shoulder_y),
            at(-0.05, shoulder_y),
            at(-0.045, 1.25),
            at(-hem + 0.015, 1.25),
            at(-waist + 0.01, 0.66),
            at(-shoulder + 0.03, shoulder_y + 0.06),
        ],
        vest,
    )
    canvas.poly(
        [
            at(shoulder - 0.075, shoulder_y),
            at(0.05, shoulder_y),
            at(0.045, 1.25),
            at(hem - 0.015, 1.25),
            at(waist - 0.01, 0.66),
            at(shoulder - 0.03, shoulder_y + 0.06),
        ],
        vest,
    )
    silver = canvas.person_colour(attire_rng.jitter((222, 222, 226), 6))
    for stripe_y in (0.66, 0.86):
        canvas.rect(*at(-waist, stripe_y), *at(-0.05, stripe_y + 0.04), silver)
        canvas.rect(*at(0.05, stripe_y), *at(waist, stripe_y + 0.04), silver)


def _lab_coat(
    canvas: LabelCanvas,
    frame: PersonFrame,
    body: BodyGeometry,
    attire_rng: UniformStream,
    main_rgb: RGB,
    colours: PersonColours,
    hat: bool,
) -> None:
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


def _pilot_jacket(
    canvas: LabelCanvas,
    frame: PersonFrame,
    body: BodyGeometry,
    attire_rng: UniformStream,
    main_rgb: RGB,
    colours: PersonColours,
    hat: bool,
) -> None:
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


def _teacher_cardigan(
    canvas: LabelCanvas,
    frame: PersonFrame,
    body: BodyGeometry,
    attire_rng: UniformStream,
    main_rgb: RGB,
    colours: PersonColours,
    hat: bool,
) -> None:
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


AttireDetails = Callable[
    [LabelCanvas, PersonFrame, BodyGeometry, UniformStream, RGB, PersonColours, bool], None
]
ATTIRE_DETAILS: dict[str, AttireDetails] = {
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
def _nurse_cap(
    canvas: LabelCanvas, frame: PersonFrame, body: BodyGeometry, attire_rng: UniformStream
) -> None:
    at, top = frame.at, body.head_y - body.head_ry
    white = canvas.person_colour((246, 246, 246))
    canvas.poly(
        [at(-0.09, top + 0.045), at(0.09, top + 0.045), at(0.07, top - 0.05), at(-0.07, top - 0.05)], white
    )
    red = canvas.person_colour((210, 30, 40))
    canvas.rect(*at(-0.012, top - 0.03), *at(0.012, top + 0.03), red)
    canvas.rect(*at(-0.03, top - 0.012), *at(0.03, top + 0.012), red)


def _firefighter_helmet(
    canvas: LabelCanvas, frame: PersonFrame, body: BodyGeometry, attire_rng: UniformStream
) -> None:
    at, height, top, rx = frame.at, frame.height, body.head_y - body.head_ry, body.head_rx
    helmet = canvas.person_colour(
        attire_rng.jitter(attire_rng.pick(((210, 30, 30), (236, 196, 30), (30, 30, 34))), 10)
    )
    canvas.ellipse(*at(0, top + 0.075), (rx + 0.075) * height, 0.035 * height, helmet)
    canvas.chord(*at(0, top + 0.06), (rx + 0.02) * height, 0.1 * height, 180, 360, helmet)
    canvas.rect(*at(-0.03, top - 0.03), *at(0.03, top + 0.03), canvas.person_colour((230, 200, 60)))


def _chef_toque(
    canvas: LabelCanvas, frame: PersonFrame, body: BodyGeometry, attire_rng: UniformStream
) -> None:
    at, height, top, rx = frame.at, frame.height, body.head_y - body.head_ry, body.head_rx
    white = canvas.person_colour(attire_rng.jitter((248, 248, 246), 4))
    canvas.rect(*at(-rx + 0.01, top - 0.2), *at(rx - 0.01, top + 0.05), white)
    canvas.ellipse(*at(-0.05, top - 0.2), 0.07 * height, 0.06 * height, white)
    canvas.ellipse(*at(0.05, top - 0.2), 0.07 * height, 0.06 * height, white)
    canvas.ellipse(*at(0, top - 0.24), 0.07 * height, 0.06 * height, white)
    canvas.rect(
        *at(-rx + 0.01, top + 0.0), *at(rx - 0.01, top + 0.012), canvas.person_colour((214, 214, 214))
    )


def _hard_hat(canvas: LabelCanvas, frame: PersonFrame, body: BodyGeometry, attire_rng: UniformStream) -> None:
    at, height, top, rx = frame.at, frame.height, body.head_y - body.head_ry, body.head_rx
    hat = canvas.person_colour(
        attire_rng.jitter(attire_rng.pick(((244, 206, 20), (246, 246, 240), (250, 130, 20))), 10)
    )
    canvas.chord(*at(0, top + 0.07), (rx + 0.035) * height, 0.11 * height, 180, 360, hat)
    canvas.rect(*at(-rx - 0.06, top + 0.05), *at(rx + 0.06, top + 0.085), hat)
    canvas.rect(*at(-0.015, top - 0.035), *at(0.015, top + 0.06), canvas.person_colour((200, 160, 20)))


def _safety_goggles(
    canvas: LabelCanvas, frame: PersonFrame, body: BodyGeometry, attire_rng: UniformStream
) -> None:
    at, rx, head_y = frame.at, body.head_rx, body.head_y
    strap = canvas.person_colour((30, 30, 34))
    canvas.rect(*at(-rx - 0.01, head_y - 0.005), *at(rx + 0.01, head_y + 0.015), strap)
    lens = canvas.person_colour(attire_rng.jitter((150, 214, 236), 8))
    canvas.rect(*at(-0.085, head_y - 0.03), *at(0.085, head_y + 0.05), strap)
    canvas.rect(*at(-0.072, head_y - 0.017), *at(-0.006, head_y + 0.037), lens)
    canvas.rect(*at(0.006, head_y - 0.017), *at(0.072, head_y + 0.037), lens)


def _pilot_cap(
    canvas: LabelCanvas, frame: PersonFrame, body: BodyGeometry, attire_rng: UniformStream
) -> None:
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


def _teacher_glasses(
    canvas: LabelCanvas, frame: PersonFrame, body: BodyGeometry, attire_rng: UniformStream
) -> None:
    at, height, head_y = frame.at, frame.height, body.head_y
    rim = canvas.person_colour(
        attire_rng.jitter(attire_rng.pick(((30, 30, 30), (120, 60, 30), (90, 20, 30))), 8)
    )
    rim_width = max(0.015 * height, 1.0 / canvas.resolution)
    for lens_x in (-0.045, 0.045):
        centre_x, centre_y = at(lens_x, head_y + 0.025)
        canvas.arc(centre_x, centre_y, 0.037 * height, 0.03 * height, 0, 360, rim_width, rim)
    canvas.line([at(-0.01, head_y + 0.025), at(0.01, head_y + 0.025)], rim_width, rim)


Headwear = Callable[[LabelCanvas, PersonFrame, BodyGeometry, UniformStream], None]
HEADWEAR: dict[str, Headwear] = {
    "nurse": _nurse_cap,
    "firefighter": _firefighter_helmet,
    "chef": _chef_toque,
    "construction worker": _hard_hat,
    "scientist": _safety_goggles,
    "pilot": _pilot_cap,
    "teacher": _teacher_glasses,
}
