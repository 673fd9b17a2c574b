"""Planted elements drawn on top of a scene: the spurious square or watermark (RaVL) and unsafe elements
(Safe-CLIP).

An element is positioned in the coordinates of the final image (after mirroring), so the caller passes
``left_x``, the element's left edge on the canvas (mirrored when the scene flips). Elements are context:
they cover the person's pixels and are never in the person mask.
"""

from __future__ import annotations

from trustvl.data_builders.synthworld.canvas import LabelCanvas
from trustvl.data_builders.synthworld.randomness import UniformStream
from trustvl.data_builders.synthworld.specs import ArtefactSpec, unsafe_subtype

__all__ = ["draw_artefact"]

#: the spurious square's colour when its spec names none
DEFAULT_SQUARE_COLOUR = (230, 20, 20)


def draw_artefact(canvas: LabelCanvas, element: ArtefactSpec, left_x: float) -> None:
    """Draw ``element`` ("square", "watermark", "weapon", "blood" or "drugs") with its left edge at ``left_x``."""
    if element.kind == "square":
        colour = tuple(element.color or DEFAULT_SQUARE_COLOUR)
        size = element.size
        canvas.rect(left_x, element.y, left_x + size, element.y + size, canvas.context_colour(colour))
    elif element.kind == "watermark":
        _draw_watermark(canvas, element, left_x)
    elif element.kind == "weapon":
        _draw_weapon(canvas, element, left_x)
    elif element.kind == "drugs":
        _draw_syringe(canvas, element, left_x)
    else:
        _draw_blood(canvas, element, left_x)


def _draw_watermark(canvas: LabelCanvas, element: ArtefactSpec, left_x: float) -> None:
    """A stock-photo-like badge: a pale square with a dark ring inside (a "©"-like logo), the same box as
    the plain square. The ring is at least one pixel wide so that it survives small resolutions."""
    size = element.size
    colour = tuple(element.color or DEFAULT_SQUARE_COLOUR)
    canvas.rect(left_x, element.y, left_x + size, element.y + size, canvas.context_colour(colour))
    centre_x, centre_y = left_x + size / 2, element.y + size / 2
    ink = canvas.context_colour((70, 72, 80))
    width = max(size * 0.14, 1.0 / canvas.resolution)
    canvas.arc(centre_x, centre_y, size * 0.32, size * 0.32, 0, 360, width, ink)


def _draw_weapon(canvas: LabelCanvas, element: ArtefactSpec, left_x: float) -> None:
    size = element.size
    rng = UniformStream(element.variant)
    dark = canvas.context_colour(rng.jitter((46, 46, 52), 6))
    x, y = left_x, element.y
    if unsafe_subtype(element) == "gun":
        canvas.rect(x, y + size * 0.2, x + size, y + size * 0.45, dark)
        canvas.poly(
            [(x + size * 0.05, y + size * 0.4), (x + size * 0.35, y + size * 0.4), (x + size * 0.3, y + size),
             (x + size * 0.02, y + size)], dark,
        )  # fmt: skip
    else:  # knife
        blade = canvas.context_colour(rng.jitter((206, 210, 218), 6))
        canvas.poly(
            [(x, y + size), (x + size * 0.7, y + size * 0.3), (x + size * 0.8, y + size * 0.42),
             (x + size * 0.12, y + size)], blade,
        )  # fmt: skip
        handle_width = max(size * 0.16, 1.5 / canvas.resolution)
        canvas.line([(x + size * 0.72, y + size * 0.34), (x + size, y)], handle_width, dark)


def _draw_syringe(canvas: LabelCanvas, element: ArtefactSpec, left_x: float) -> None:
    """A syringe lying diagonally: pale barrel with a green dose, dark plunger, thin steel needle."""
    size = element.size
    rng = UniformStream(element.variant)
    barrel = canvas.context_colour(rng.jitter((214, 232, 240), 6))
    dose = canvas.context_colour(rng.jitter((96, 190, 40), 10))
    dark = canvas.context_colour(rng.jitter((40, 40, 48), 6))
    steel = canvas.context_colour(rng.jitter((170, 176, 186), 6))
    x, y = left_x, element.y
    # barrel from (0.15, 0.85) to (0.7, 0.3) of the element box, width 0.2·size
    canvas.line([(x + size * 0.15, y + size * 0.85), (x + size * 0.7, y + size * 0.3)], size * 0.22, barrel)
    canvas.line([(x + size * 0.42, y + size * 0.58), (x + size * 0.68, y + size * 0.32)], size * 0.16, dose)
    canvas.line(
        [(x, y + size), (x + size * 0.17, y + size * 0.83)], max(size * 0.08, 1.5 / canvas.resolution), dark
    )
    canvas.line([(x, y + size * 0.88), (x + size * 0.12, y + size)], size * 0.1, dark)
    needle = max(size * 0.04, 1.0 / canvas.resolution)
    canvas.line([(x + size * 0.7, y + size * 0.3), (x + size, y)], needle, steel)


def _draw_blood(canvas: LabelCanvas, element: ArtefactSpec, left_x: float) -> None:
    size = element.size
    rng = UniformStream(element.variant)
    red = canvas.context_colour(rng.jitter((132, 8, 14), 10))
    canvas.ellipse(left_x + size * 0.5, element.y + size * 0.55, size * 0.4, size * 0.3, red)
    for _ in range(5):
        splash_x = left_x + size * rng.uniform(0.05, 0.95)
        splash_y = element.y + size * rng.uniform(0.05, 0.95)
        canvas.ellipse(splash_x, splash_y, size * 0.09, size * 0.09, red)
