"""The label canvas SynthWorld draws on: vector primitives in unit coordinates, colours as labels.

Every primitive is drawn (PIL, at the scene's resolution) into an 8-bit *label* image whose values index
a per-scene colour table (:attr:`LabelCanvas.palette`): labels ``1 .. PERSON_BASE - 1`` are context
colours, ``PERSON_BASE + PERSON_SLOTS * k .. + PERSON_SLOTS - 1`` the colours of person ``k``. So a
pixel belongs to person ``k`` iff its final label lies in that person's range, which makes the person
mask exact for free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["PERSON_BASE", "PERSON_SLOTS", "LabelCanvas"]

#: the first person label; labels below are context colours
PERSON_BASE = 128
#: labels per person (person ``k`` owns ``PERSON_BASE + PERSON_SLOTS * k`` onwards)
PERSON_SLOTS = 32

Point = tuple[float, float]


class LabelCanvas:
    """Label-image canvas in unit coordinates; colours are allocated into a per-scene palette."""

    __slots__ = (
        "resolution",
        "image",
        "draw",
        "palette",
        "_n_context",
        "_context",
        "_person_base",
        "_n_person",
        "_person",
    )

    def __init__(self, resolution: int) -> None:
        self.resolution = resolution
        self.image = Image.new("L", (resolution, resolution), 0)
        self.draw = ImageDraw.Draw(self.image)
        self.palette = np.zeros((256, 3), np.uint8)
        self._n_context = 1
        self._context: dict[tuple[int, int, int], int] = {}
        self._person_base = PERSON_BASE
        self._n_person = 0
        self._person: dict[tuple[int, int, int], int] = {}

    def context_colour(self, rgb: tuple[int, int, int]) -> int:
        """The label of a context colour (allocated on first use)."""
        label = self._context.get(rgb)
        if label is None:
            label = self._n_context
            if label >= PERSON_BASE:  # pragma: no cover - bounded by construction
                raise RuntimeError("SynthWorld: too many context colours in one scene")
            self._n_context = label + 1
            self._context[rgb] = label
            self.palette[label] = rgb
        return label

    def begin_person(self, person_index: int) -> None:
        """Start allocating the colours of person ``person_index``."""
        self._person_base = PERSON_BASE + PERSON_SLOTS * person_index
        self._n_person = 0
        self._person = {}

    def person_colour(self, rgb: tuple[int, int, int]) -> int:
        """The label of a colour of the current person (allocated on first use)."""
        label = self._person.get(rgb)
        if label is None:
            if self._n_person >= PERSON_SLOTS:  # pragma: no cover - bounded by construction
                raise RuntimeError("SynthWorld: too many person colours")
            label = self._person_base + self._n_person
            self._n_person += 1
            self._person[rgb] = label
            self.palette[label] = rgb
        return label

    # primitives: unit coordinates, fill = label value
    def _pixel_box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        """The pixel box ``(left, top, right, bottom)`` (inclusive) of a unit-coordinate box, at least 1 px."""
        size = self.resolution
        left, right = round(x0 * size), round(x1 * size) - 1
        top, bottom = round(y0 * size), round(y1 * size) - 1
        if right < left:
            right = left
        if bottom < top:
            bottom = top
        return left, top, right, bottom

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: int) -> None:
        self.draw.rectangle(self._pixel_box(x0, y0, x1, y1), fill=fill)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: int) -> None:
        self.draw.ellipse(self._pixel_box(cx - rx, cy - ry, cx + rx, cy + ry), fill=fill)

    def chord(self, cx: float, cy: float, rx: float, ry: float, start: float, end: float, fill: int) -> None:
        self.draw.chord(self._pixel_box(cx - rx, cy - ry, cx + rx, cy + ry), start, end, fill=fill)

    def arc(
        self, cx: float, cy: float, rx: float, ry: float, start: float, end: float, width: float, fill: int
    ) -> None:
        box = self._pixel_box(cx - rx, cy - ry, cx + rx, cy + ry)
        self.draw.arc(box, start, end, fill=fill, width=max(1, round(width * self.resolution)))

    def poly(self, points: Sequence[Point], fill: int) -> None:
        size = self.resolution
        self.draw.polygon([(x * size, y * size) for x, y in points], fill=fill)

    def line(self, points: Sequence[Point], width: float, fill: int) -> None:
        size = self.resolution
        self.draw.line(
            [(x * size, y * size) for x, y in points], fill=fill, width=max(1, round(width * size))
        )
