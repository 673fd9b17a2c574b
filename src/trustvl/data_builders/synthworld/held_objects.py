"""The object each occupation holds (stethoscope, clipboard, ...), drawn at the person's holding hand.

``_draw_<object>(canvas, rng, hand_x, hand_y, size)`` draws the object around the hand point (unit
coordinates) at the person's ``size`` and returns its extent ``(x0, y0, x1, y1)`` in unit coordinates;
:data:`HELD_OBJECT_PAINTERS` maps an occupation to its object. The same painters draw the "confuser", another
occupation's object lying in the background.
"""

from __future__ import annotations

from trustvl.data_builders.synthworld.canvas import LabelCanvas
from trustvl.data_builders.synthworld.randomness import UniformStream

__all__ = ["HELD_OBJECT_PAINTERS", "UnitBox"]

#: ``(x0, y0, x1, y1)`` in unit image coordinates
UnitBox = tuple[float, float, float, float]


def _draw_stethoscope(
    canvas: LabelCanvas, rng: UniformStream, hand_x: float, hand_y: float, size: float
) -> UnitBox:
    tube = canvas.context_colour(rng.jitter((28, 28, 34), 6))
    tube_width = max(0.03 * size, 1.6 / canvas.resolution)
    canvas.line(
        [
            (hand_x, hand_y + 0.08 * size),
            (hand_x, hand_y),
            (hand_x - 0.07 * size, hand_y - 0.1 * size),
            (hand_x - 0.04 * size, hand_y - 0.2 * size),
        ],
        tube_width,
        tube,
    )
    canvas.line(
        [
            (hand_x, hand_y),
            (hand_x + 0.07 * size, hand_y - 0.1 * size),
            (hand_x + 0.04 * size, hand_y - 0.2 * size),
        ],
        tube_width,
        tube,
    )
    metal = canvas.context_colour(rng.jitter((196, 200, 208), 8))
    canvas.ellipse(hand_x, hand_y + 0.1 * size, 0.045 * size, 0.045 * size, metal)
    canvas.ellipse(hand_x - 0.04 * size, hand_y - 0.2 * size, 0.02 * size, 0.02 * size, metal)
    canvas.ellipse(hand_x + 0.04 * size, hand_y - 0.2 * size, 0.02 * size, 0.02 * size, metal)
    return (hand_x - 0.09 * size, hand_y - 0.23 * size, hand_x + 0.09 * size, hand_y + 0.15 * size)


def _draw_clipboard(
    canvas: LabelCanvas, rng: UniformStream, hand_x: float, hand_y: float, size: float
) -> UnitBox:
    x0, y0, x1, y1 = hand_x - 0.11 * size, hand_y - 0.17 * size, hand_x + 0.09 * size, hand_y + 0.1 * size
    canvas.rect(x0, y0, x1, y1, canvas.context_colour(rng.jitter((150, 104, 58), 14)))
    canvas.rect(
        x0 + 0.02 * size,
        y0 + 0.035 * size,
        x1 - 0.02 * size,
        y1 - 0.02 * size,
        canvas.context_colour(rng.jitter((246, 246, 244), 5)),
    )
    canvas.rect(
        hand_x - 0.05 * size,
        y0 - 0.015 * size,
        hand_x + 0.03 * size,
        y0 + 0.03 * size,
        canvas.context_colour(rng.jitter((176, 180, 186), 8)),
    )
    ink = canvas.context_colour((60, 60, 70))
    for i in range(3):
        yy = y0 + (0.08 + i * 0.05) * size
        canvas.rect(x0 + 0.04 * size, yy, x1 - 0.04 * size, yy + 0.015 * size, ink)
    return (x0, y0 - 0.015 * size, x1, y1)


def _draw_extinguisher(
    canvas: LabelCanvas, rng: UniformStream, hand_x: float, hand_y: float, size: float
) -> UnitBox:
    red = canvas.context_colour(rng.jitter((214, 24, 24), 12))
    black = canvas.context_colour((26, 26, 28))
    x0, x1 = hand_x - 0.055 * size, hand_x + 0.055 * size
    y0, y1 = hand_y - 0.12 * size, hand_y + 0.2 * size
    canvas.rect(x0, y0, x1, y1, red)
    canvas.ellipse(hand_x, y0, 0.055 * size, 0.03 * size, red)
    canvas.rect(hand_x - 0.02 * size, y0 - 0.07 * size, hand_x + 0.02 * size, y0 - 0.01 * size, black)
    canvas.rect(hand_x - 0.06 * size, y0 - 0.075 * size, hand_x + 0.06 * size, y0 - 0.055 * size, black)
    canvas.line(
        [
            (hand_x + 0.02 * size, y0 - 0.04 * size),
            (hand_x + 0.1 * size, y0 + 0.02 * size),
            (hand_x + 0.1 * size, y0 + 0.14 * size),
        ],
        max(0.025 * size, 1.5 / canvas.resolution),
        black,
    )
    canvas.rect(
        x0,
        hand_y + 0.02 * size,
        x1,
        hand_y + 0.07 * size,
        canvas.context_colour(rng.jitter((236, 236, 236), 5)),
    )
    return (x0, y0 - 0.075 * size, hand_x + 0.12 * size, y1)


def _draw_pan(canvas: LabelCanvas, rng: UniformStream, hand_x: float, hand_y: float, size: float) -> UnitBox:
    black = canvas.context_colour(rng.jitter((34, 34, 38), 6))
    pan_x, pan_y = hand_x - 0.15 * size, hand_y - 0.1 * size
    canvas.line(
        [(hand_x + 0.02 * size, hand_y + 0.02 * size), (pan_x, pan_y)],
        max(0.035 * size, 1.6 / canvas.resolution),
        canvas.context_colour(rng.jitter((70, 44, 26), 10)),
    )
    canvas.ellipse(pan_x, pan_y, 0.12 * size, 0.1 * size, black)
    canvas.ellipse(
        pan_x, pan_y, 0.085 * size, 0.068 * size, canvas.context_colour(rng.jitter((80, 82, 88), 8))
    )
    return (pan_x - 0.12 * size, pan_y - 0.1 * size, hand_x + 0.04 * size, hand_y + 0.04 * size)


def _draw_hammer(
    canvas: LabelCanvas, rng: UniformStream, hand_x: float, hand_y: float, size: float
) -> UnitBox:
    canvas.line(
        [(hand_x, hand_y + 0.07 * size), (hand_x + 0.02 * size, hand_y - 0.22 * size)],
        max(0.035 * size, 1.6 / canvas.resolution),
        canvas.context_colour(rng.jitter((150, 100, 50), 12)),
    )
    head_x, head_y = hand_x + 0.02 * size, hand_y - 0.23 * size
    canvas.rect(
        head_x - 0.09 * size,
        head_y - 0.035 * size,
        head_x + 0.07 * size,
        head_y + 0.035 * size,
        canvas.context_colour(rng.jitter((120, 124, 132), 10)),
    )
    canvas.poly(
        [
            (head_x + 0.07 * size, head_y - 0.035 * size),
            (head_x + 0.12 * size, head_y + 0.02 * size),
            (head_x + 0.07 * size, head_y + 0.01 * size),
        ],
        canvas.context_colour(rng.jitter((120, 124, 132), 10)),
    )
    return (head_x - 0.09 * size, head_y - 0.035 * size, head_x + 0.12 * size, hand_y + 0.09 * size)


_LIQUIDS = ((60, 200, 80), (50, 120, 230), (160, 60, 200), (250, 140, 30), (240, 80, 160))


def _draw_flask(
    canvas: LabelCanvas, rng: UniformStream, hand_x: float, hand_y: float, size: float
) -> UnitBox:
    glass = canvas.context_colour(rng.jitter((206, 224, 234), 6))
    top, base = hand_y - 0.24 * size, hand_y + 0.06 * size
    outline = [
        (hand_x - 0.11 * size, base),
        (hand_x - 0.03 * size, hand_y - 0.1 * size),
        (hand_x - 0.03 * size, top),
        (hand_x + 0.03 * size, top),
        (hand_x + 0.03 * size, hand_y - 0.1 * size),
        (hand_x + 0.11 * size, base),
    ]
    canvas.poly(outline, glass)
    liquid = canvas.context_colour(rng.jitter(rng.pick(_LIQUIDS), 16))
    liquid_top = hand_y - 0.04 * size
    canvas.poly(
        [
            (hand_x - 0.11 * size, base),
            (hand_x - 0.06 * size, liquid_top),
            (hand_x + 0.06 * size, liquid_top),
            (hand_x + 0.11 * size, base),
        ],
        liquid,
    )
    canvas.rect(
        hand_x - 0.04 * size,
        top - 0.02 * size,
        hand_x + 0.04 * size,
        top + 0.01 * size,
        canvas.context_colour((90, 90, 96)),
    )
    return (hand_x - 0.11 * size, top - 0.02 * size, hand_x + 0.11 * size, base)


def _draw_headset(
    canvas: LabelCanvas, rng: UniformStream, hand_x: float, hand_y: float, size: float
) -> UnitBox:
    black = canvas.context_colour(rng.jitter((30, 30, 34), 6))
    band_x, band_y = hand_x, hand_y - 0.08 * size
    canvas.arc(
        band_x, band_y, 0.1 * size, 0.1 * size, 180, 360, max(0.03 * size, 1.6 / canvas.resolution), black
    )
    cup = canvas.context_colour(rng.jitter(rng.pick(((40, 40, 44), (90, 92, 100), (30, 50, 90))), 8))
    canvas.ellipse(band_x - 0.095 * size, band_y + 0.02 * size, 0.04 * size, 0.06 * size, cup)
    canvas.ellipse(band_x + 0.095 * size, band_y + 0.02 * size, 0.04 * size, 0.06 * size, cup)
    canvas.line(
        [(band_x - 0.1 * size, band_y + 0.06 * size), (band_x - 0.02 * size, band_y + 0.14 * size)],
        max(0.015 * size, 1.0 / canvas.resolution),
        black,
    )
    return (band_x - 0.135 * size, band_y - 0.1 * size, band_x + 0.135 * size, band_y + 0.15 * size)


_COVERS = ((180, 30, 40), (30, 70, 160), (40, 120, 60), (110, 60, 30), (100, 40, 120))


def _draw_book(canvas: LabelCanvas, rng: UniformStream, hand_x: float, hand_y: float, size: float) -> UnitBox:
    cover = canvas.context_colour(rng.jitter(rng.pick(_COVERS), 16))
    page = canvas.context_colour(rng.jitter((244, 240, 226), 5))
    if rng() < 0.5:  # closed book
        x0, y0, x1, y1 = hand_x - 0.1 * size, hand_y - 0.15 * size, hand_x + 0.08 * size, hand_y + 0.08 * size
        canvas.rect(x0, y0, x1, y1, cover)
        canvas.rect(x1 - 0.03 * size, y0 + 0.01 * size, x1, y1 - 0.01 * size, page)
        canvas.rect(
            x0 + 0.03 * size,
            y0 + 0.04 * size,
            x1 - 0.06 * size,
            y0 + 0.07 * size,
            canvas.context_colour(rng.jitter((230, 200, 90), 10)),
        )
        return (x0, y0, x1, y1)
    x0, y0, x1, y1 = hand_x - 0.15 * size, hand_y - 0.12 * size, hand_x + 0.13 * size, hand_y + 0.06 * size
    canvas.rect(x0, y0 + 0.01 * size, x1, y1, cover)
    canvas.poly(
        [
            (x0 + 0.01 * size, y0),
            (hand_x - 0.01 * size, y0 + 0.02 * size),
            (hand_x - 0.01 * size, y1 - 0.01 * size),
            (x0 + 0.01 * size, y1 - 0.03 * size),
        ],
        page,
    )
    canvas.poly(
        [
            (hand_x + 0.01 * size, y0 + 0.02 * size),
            (x1 - 0.01 * size, y0),
            (x1 - 0.01 * size, y1 - 0.03 * size),
            (hand_x + 0.01 * size, y1 - 0.01 * size),
        ],
        page,
    )
    ink = canvas.context_colour((70, 70, 80))
    for i in range(3):
        yy = y0 + (0.04 + i * 0.035) * size
        canvas.rect(x0 + 0.03 * size, yy, hand_x - 0.03 * size, yy + 0.01 * size, ink)
        canvas.rect(hand_x + 0.03 * size, yy, x1 - 0.03 * size, yy + 0.01 * size, ink)
    return (x0, y0, x1, y1)


HELD_OBJECT_PAINTERS = {
    "doctor": _draw_stethoscope,
    "nurse": _draw_clipboard,
    "firefighter": _draw_extinguisher,
    "chef": _draw_pan,
    "construction worker": _draw_hammer,
    "scientist": _draw_flask,
    "pilot": _draw_headset,
    "teacher": _draw_book,
}
