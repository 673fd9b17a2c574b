"""The SynthWorld renderer: procedural scenes of one occupation with known ground truth.

A scene is a pure function of ``(seed, split, index)``: :meth:`SynthWorldRenderer.sample_scene` turns
those into a self-contained :class:`SceneSpec` (JSON-able; it carries the resolution and every random
choice as seeds/values), and :func:`render_spec` turns a spec into pixels. Nothing depends on call order,
so shards can be generated in any order, in parallel, and resumed.

How a scene is drawn
--------------------
Every primitive is drawn (PIL, vector shapes at the requested resolution) into an 8-bit *label* image
whose values index a per-scene colour table: values 1..127 are context colours, ``128 + 32k ..
128 + 32k + 31`` are the colours of person ``k``. The label image is then flipped (mirror scenes),
mapped through the colour table (numpy gather), lit (global gain + linear gradient) and given a fixed
pixel-noise texture. So the person mask is exact for free: a pixel belongs to person ``k`` iff its
final label is in person ``k``'s range (anything drawn later on top -- held object, occluder,
artefacts -- removes it from the mask).

Layers, back to front: setting (background) -> clutter and confuser object -> background people
(``n_people > 1``) -> main person -> held object -> foreground occluder -> spurious square -> unsafe
element.

Ground-truth decision (person mask)
-----------------------------------
``person_mask`` is exactly the visible pixels drawn *by the person*: skin (face, neck, forearms,
hands), hair/beard, and the worn attire (coat/uniform, hat/helmet/cap, goggles, glasses). The held
object, occluders and artefacts are context and are never in the mask. Attire identity (its colours
and style) and the held object's position are independent of the appearance attributes (the holding
hand is at a fixed point relative to the person's position/scale), so
:meth:`SynthWorldRenderer.rerender_person` changes only pixels in ``mask(old) | mask(new)``; the
union of a person's masks over every shape-affecting level (:meth:`SynthWorldRenderer.person_envelope`)
covers every pixel any appearance variant can change.

What makes occupations distinguishable (cues, each with natural variation)
-------------------------------------------------------------------------
============================  ==============================  ====================================  ==================
occupation                    setting                         attire (+ headwear)                   held object
============================  ==============================  ====================================  ==================
doctor                        pale wall, red-cross sign,      open white coat, blue shirt + tie     stethoscope
                              eye chart / cabinet / window
nurse                         ward: curtain, bed, IV stand,   coloured scrubs, V-neck (+ white      clipboard
                              heart monitor                   cap with red cross)
firefighter                   red fire truck with ladder, or  tan/dark/yellow coat with reflective  fire extinguisher
                              burning building with flames    stripes (+ helmet with brim)
chef                          tiled wall, steel hood, pots    white double-breasted jacket          frying pan
                                                              (+ tall white toque)
construction worker           sky, scaffolding, crane, cones  orange/lime hi-vis vest with silver   hammer
                                                              stripes over a t-shirt (+ hard hat)
scientist                     shelves of coloured flasks,     closed white lab coat with buttons    flask with liquid
                              dark bench                      and pens (+ safety goggles)
pilot                         cockpit: sky windows, dark      navy/black jacket, gold epaulettes    headset
                              instrument panel with dials     and cuff stripes (+ white-top cap)
teacher                       blackboard with chalk, clock    earthy cardigan over a white collar   book
                                                              (+ glasses)
============================  ==============================  ====================================  ==================

Variation: person position (x) and scale, colour jitter of every element, layout jitter of the
setting, random clutter shapes, another occupation's object in the background (``confuser_prob``),
another occupation's setting (``setting_swap_prob``), missing object/headwear, foreground occluders,
mirroring, lighting and noise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from trustvl.data_builders.synthworld.config import (
    ATTRIBUTE_NAMES,
    HELD_OBJECTS,
    KNOWN_LEVELS,
    OCCUPATIONS,
    SETTINGS,
    SPLITS,
    SynthWorldConfig,
)
from trustvl.errors import TrustVLInputError

#: Bump when the drawing changes (a dataset folder records it; resuming across versions is refused).
RENDER_VERSION = 1

PERSON_BASE = 128
PERSON_SLOTS = 32

#: RGB of each skin-tone level (before lighting/noise).
SKIN_TONES: dict[str, tuple[int, int, int]] = {
    "very light": (246, 220, 198),
    "light": (222, 174, 134),
    "medium": (186, 132, 92),
    "dark": (128, 80, 50),
    "very dark": (70, 44, 30),
}
_YOUNG_HAIR = ((22, 18, 18), (55, 36, 26), (92, 60, 38), (118, 52, 30))
_MID_HAIR = ((112, 104, 98), (128, 120, 112), (96, 90, 86))
_OLD_HAIR = ((172, 172, 174), (204, 204, 208), (232, 232, 232))

#: Shape-affecting attributes (skin tone only changes colours).
SHAPE_ATTRIBUTES: tuple[str, ...] = ("gender_presentation", "age", "body_type")

_BODY_W = {"slim": 0.0, "average": 0.5, "broad": 1.0}
_AGE_A = {"young": 0.0, "middle-aged": 0.5, "old": 1.0}

# Local person frame: x relative to the person centre, y from the head top, both in units of the
# person height S (unit image coordinates). The holding hand is at a fixed local point.
_HAND = (-0.13, 0.72)


def _mix(*parts: Any) -> int:
    """A stable 63-bit integer from the parts (seed derivation)."""
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 1


def _clip8(v: float) -> int:
    return 0 if v < 0 else (255 if v > 255 else int(v))


def _jit(u: float, u2: float, u3: float, rgb: Sequence[int], amt: float) -> tuple[int, int, int]:
    """Jitter a colour: a shared brightness shift plus a small per-channel shift (u's in [0, 1))."""
    b = (u - 0.5) * 2 * amt
    c = amt * 0.35
    return (
        _clip8(rgb[0] + b + (u2 - 0.5) * 2 * c),
        _clip8(rgb[1] + b + (u3 - 0.5) * 2 * c),
        _clip8(rgb[2] + b - (u2 + u3 - 1.0) * c),
    )


# ---------------------------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class PersonSpec:
    """One person: appearance attributes plus attribute-independent layout.

    ``x`` is the centre in unit image coordinates, ``scale`` the height multiplier, ``seed`` drives the
    appearance details (hair colour shade, beard) and ``attire_seed`` the attire variant (colours),
    which therefore stays the same when the attributes change.
    """

    attributes: Mapping[str, str]
    x: float
    scale: float
    seed: int
    attire_seed: int


@dataclass(frozen=True)
class ArtefactSpec:
    """A planted element: ``kind`` ("square", "weapon", "blood"); ``x, y`` its top-left corner and
    ``size`` its side, in unit coordinates of the final (possibly mirrored) image; ``variant`` a seed."""

    kind: str
    x: float
    y: float
    size: float
    color: tuple[int, int, int] | None = None
    variant: int = 0


@dataclass(frozen=True)
class SceneSpec:
    """Everything needed to render one scene (a pure function of it); JSON round-trips with
    :meth:`to_json` / :meth:`from_json`.

    ``index`` is the scene's index within ``split`` (the dataset's ``scene_id``). ``setting`` names the
    occupation whose background is drawn (usually ``occupation``). ``people[0]`` is the main person,
    whose attributes are the scene's labels (:attr:`attributes`).
    """

    seed: int
    split: str
    index: int
    resolution: int
    occupation: str
    setting: str
    people: tuple[PersonSpec, ...]
    layout_seed: int
    flip: bool = False
    held_object: bool = True
    hat: bool = True
    occluder: bool = False
    n_clutter: int = 0
    confuser: str | None = None
    spurious: ArtefactSpec | None = None
    unsafe: ArtefactSpec | None = None
    noise: float = 5.0
    lighting: float = 0.08

    @property
    def attributes(self) -> dict[str, str]:
        """The main person's attributes."""
        return dict(self.people[0].attributes)

    @property
    def scene_id(self) -> int:
        return self.index

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for p in d["people"]:
            p["attributes"] = dict(p["attributes"])
        for k in ("spurious", "unsafe"):
            if d[k] is not None and d[k]["color"] is not None:
                d[k]["color"] = list(d[k]["color"])
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SceneSpec:
        d = dict(d)
        d["people"] = tuple(PersonSpec(**{**p, "attributes": dict(p["attributes"])}) for p in d["people"])
        for k in ("spurious", "unsafe"):
            if d.get(k) is not None and not isinstance(d[k], ArtefactSpec):
                a = dict(d[k])
                if a.get("color") is not None:
                    a["color"] = tuple(a["color"])
                d[k] = ArtefactSpec(**a)
        return cls(**d)

    @classmethod
    def from_json(cls, s: str) -> SceneSpec:
        return cls.from_dict(json.loads(s))


Box = tuple[int, int, int, int]


@dataclass
class RenderedScene:
    """A rendered scene.

    Attributes:
        image: uint8 array (H, W, 3).
        person_mask: bool array (H, W): the visible pixels of all people (see module doc).
        person_masks: one bool (H, W) mask per person (``person_masks[0]`` is the main person).
        boxes: name -> ``(x0, y0, x1, y1)`` pixel box with exclusive ends: ``person`` (main person, from
            its mask), ``person_k`` for k >= 1, ``held_object``, ``spurious``, ``unsafe`` (present
            only when the element is in the scene; object boxes are the element's drawn extent).
        spec: the :class:`SceneSpec` it was rendered from.
    """

    image: np.ndarray
    person_mask: np.ndarray
    person_masks: list[np.ndarray]
    boxes: dict[str, Box]
    spec: SceneSpec

    def to_pil(self) -> Image.Image:
        return Image.fromarray(self.image)

    def mask_pil(self) -> Image.Image:
        return Image.fromarray(self.person_mask)


@dataclass
class RenderedBatch:
    images: np.ndarray  # (N, H, W, 3) uint8
    person_masks: np.ndarray  # (N, H, W) bool
    boxes: list[dict[str, Box]]
    specs: list[SceneSpec] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- canvas
class _Canvas:
    """Label-image canvas in unit coordinates; colours are allocated into a per-scene lookup table."""

    __slots__ = ("r", "img", "d", "lut", "_n_ctx", "_ctx", "_pbase", "_n_per", "_per")

    def __init__(self, r: int) -> None:
        self.r = r
        self.img = Image.new("L", (r, r), 0)
        self.d = ImageDraw.Draw(self.img)
        self.lut = np.zeros((256, 3), np.uint8)
        self._n_ctx = 1
        self._ctx: dict[tuple[int, int, int], int] = {}
        self._pbase = PERSON_BASE
        self._n_per = 0
        self._per: dict[tuple[int, int, int], int] = {}

    def ctx(self, rgb: tuple[int, int, int]) -> int:
        i = self._ctx.get(rgb)
        if i is None:
            i = self._n_ctx
            if i >= PERSON_BASE:  # pragma: no cover - bounded by construction
                raise RuntimeError("SynthWorld: too many context colours in one scene")
            self._n_ctx = i + 1
            self._ctx[rgb] = i
            self.lut[i] = rgb
        return i

    def begin_person(self, k: int) -> None:
        self._pbase = PERSON_BASE + PERSON_SLOTS * k
        self._n_per = 0
        self._per = {}

    def per(self, rgb: tuple[int, int, int]) -> int:
        i = self._per.get(rgb)
        if i is None:
            if self._n_per >= PERSON_SLOTS:  # pragma: no cover - bounded by construction
                raise RuntimeError("SynthWorld: too many person colours")
            i = self._pbase + self._n_per
            self._n_per += 1
            self._per[rgb] = i
            self.lut[i] = rgb
        return i

    # primitives: unit coordinates, fill = label value
    def _box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        """The pixel box ``(left, top, right, bottom)`` (inclusive) of a unit-coordinate box, at least 1 px."""
        r = self.r
        a, b = round(x0 * r), round(x1 * r) - 1
        c, e = round(y0 * r), round(y1 * r) - 1
        if b < a:
            b = a
        if e < c:
            e = c
        return a, c, b, e

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: int) -> None:
        self.d.rectangle(self._box(x0, y0, x1, y1), fill=fill)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: int) -> None:
        self.d.ellipse(self._box(cx - rx, cy - ry, cx + rx, cy + ry), fill=fill)

    def chord(self, cx: float, cy: float, rx: float, ry: float, start: float, end: float, fill: int) -> None:
        self.d.chord(self._box(cx - rx, cy - ry, cx + rx, cy + ry), start, end, fill=fill)

    def arc(
        self, cx: float, cy: float, rx: float, ry: float, start: float, end: float, w: float, fill: int
    ) -> None:
        box = self._box(cx - rx, cy - ry, cx + rx, cy + ry)
        self.d.arc(box, start, end, fill=fill, width=max(1, round(w * self.r)))

    def poly(self, pts: Sequence[tuple[float, float]], fill: int) -> None:
        r = self.r
        self.d.polygon([(x * r, y * r) for x, y in pts], fill=fill)

    def line(self, pts: Sequence[tuple[float, float]], w: float, fill: int) -> None:
        r = self.r
        self.d.line([(x * r, y * r) for x, y in pts], fill=fill, width=max(1, round(w * r)))


class _U:
    """A fixed vector of uniforms from a seed, read in order (so consumption never depends on branches
    outside the caller's control)."""

    __slots__ = ("_r",)

    def __init__(self, seed: int) -> None:
        self._r = random.Random(seed)

    def __call__(self) -> float:
        return self._r.random()

    def uni(self, a: float, b: float) -> float:
        return a + (b - a) * self._r.random()

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self._r.random() * len(seq)) % len(seq)]

    def jit(self, rgb: Sequence[int], amt: float = 14.0) -> tuple[int, int, int]:
        r = self._r.random
        return _jit(r(), r(), r(), rgb, amt)

    def randint(self, a: int, b: int) -> int:
        """Integer in [a, b]."""
        return a + int(self._r.random() * (b - a + 1)) % (b - a + 1)


# ---------------------------------------------------------------------------------------------- settings
def _floor(cv: _Canvas, u: _U, base: Sequence[int], y0: float | None = None) -> float:
    y = u.uni(0.8, 0.88) if y0 is None else y0
    cv.rect(0, y, 1, 1, cv.ctx(u.jit(base, 12)))
    return y


def _bg_hospital(cv: _Canvas, u: _U) -> None:
    wall = u.jit(u.pick(((196, 222, 234), (214, 234, 226), (232, 236, 242))), 10)
    cv.rect(0, 0, 1, 1, cv.ctx(wall))
    _floor(cv, u, (168, 178, 178))
    # red-cross sign
    left = u() < 0.5
    s = u.uni(0.17, 0.23)
    sx = u.uni(0.02, 0.14) if left else u.uni(0.64, 0.81)
    sy = u.uni(0.03, 0.22)
    cv.rect(sx, sy, sx + s, sy + s, cv.ctx(u.jit((246, 246, 246), 6)))
    red = cv.ctx(u.jit((214, 30, 40), 12))
    t = max(s * 0.12, 1.0 / cv.r)
    cv.rect(sx + s * 0.12, sy + s / 2 - t, sx + s * 0.88, sy + s / 2 + t, red)
    cv.rect(sx + s / 2 - t, sy + s * 0.12, sx + s / 2 + t, sy + s * 0.88, red)
    # second item on the other side
    ox = u.uni(0.7, 0.8) if left else u.uni(0.04, 0.14)
    kind = u()
    if kind < 0.4:  # eye chart
        oy = u.uni(0.08, 0.25)
        cv.rect(ox, oy, ox + 0.16, oy + 0.3, cv.ctx((240, 240, 236)))
        ink = cv.ctx(u.jit((25, 25, 30), 8))
        for i in range(5):
            w = 0.12 - i * 0.022
            yy = oy + 0.03 + i * 0.055
            cv.rect(ox + 0.08 - w / 2, yy, ox + 0.08 + w / 2, yy + 0.022 - i * 0.002, ink)
    elif kind < 0.7:  # cabinet
        oy = u.uni(0.35, 0.5)
        cv.rect(ox, oy, ox + 0.2, 0.86, cv.ctx(u.jit((205, 208, 212), 10)))
        cv.rect(ox + 0.015, oy + 0.02, ox + 0.185, oy + 0.2, cv.ctx(u.jit((160, 200, 215), 10)))
        cv.rect(ox + 0.09, oy + 0.28, ox + 0.11, oy + 0.33, cv.ctx((90, 90, 95)))
    else:  # window
        oy = u.uni(0.06, 0.2)
        cv.rect(ox, oy, ox + 0.2, oy + 0.26, cv.ctx(u.jit((236, 236, 236), 6)))
        cv.rect(ox + 0.02, oy + 0.02, ox + 0.18, oy + 0.24, cv.ctx(u.jit((140, 190, 235), 12)))
        cv.rect(ox + 0.095, oy + 0.02, ox + 0.105, oy + 0.24, cv.ctx((236, 236, 236)))


def _bg_ward(cv: _Canvas, u: _U) -> None:
    wall = u.jit(u.pick(((206, 230, 208), (222, 212, 236), (236, 226, 206))), 10)
    cv.rect(0, 0, 1, 1, cv.ctx(wall))
    fy = _floor(cv, u, (150, 160, 170))
    left = u() < 0.5
    # curtain
    cw = u.uni(0.16, 0.24)
    cx0 = 0.0 if left else 1 - cw
    ccol = u.jit(u.pick(((150, 200, 220), (170, 210, 170), (200, 180, 220))), 12)
    cv.rect(cx0, 0, cx0 + cw, fy - 0.02, cv.ctx(ccol))
    dark = cv.ctx((int(ccol[0] * 0.75), int(ccol[1] * 0.75), int(ccol[2] * 0.75)))
    for i in range(1, 4):
        xx = cx0 + cw * i / 4
        cv.rect(xx, 0, xx + 0.012, fy - 0.02, dark)
    # bed on the other side
    by = u.uni(0.55, 0.65)
    bx0, bx1 = (0.66, 1.05) if left else (-0.05, 0.34)
    frame = cv.ctx(u.jit((130, 135, 145), 12))
    cv.rect(bx0, by + 0.06, bx1, by + 0.1, frame)
    cv.rect(bx0 + 0.02, by + 0.1, bx0 + 0.04, fy + 0.04, frame)
    cv.rect(bx1 - 0.04, by + 0.1, bx1 - 0.02, fy + 0.04, frame)
    cv.rect(bx0, by, bx1, by + 0.07, cv.ctx(u.jit((244, 244, 246), 5)))
    cv.rect(bx0, by - 0.02, bx1, by + 0.015, cv.ctx(u.jit((120, 170, 215), 14)))  # blanket edge
    # IV stand
    ix = (bx0 + 0.05) if left else (bx1 - 0.07)
    pole = cv.ctx(u.jit((150, 150, 158), 10))
    cv.rect(ix, 0.12, ix + 0.015, fy + 0.02, pole)
    cv.rect(ix - 0.04, 0.12, ix + 0.055, 0.135, pole)
    cv.rect(ix - 0.04, 0.14, ix - 0.0, 0.24, cv.ctx(u.jit((214, 236, 244), 6)))
    # heart monitor above the bed
    if u() < 0.7:
        mx = u.uni(0.72, 0.8) if left else u.uni(0.04, 0.12)
        my = u.uni(0.08, 0.22)
        cv.rect(mx, my, mx + 0.18, my + 0.13, cv.ctx(u.jit((35, 40, 45), 6)))
        g = cv.ctx(u.jit((60, 230, 90), 10))
        cv.line(
            [(mx + 0.02, my + 0.08), (mx + 0.07, my + 0.08), (mx + 0.09, my + 0.03), (mx + 0.11, my + 0.11),
             (mx + 0.13, my + 0.07), (mx + 0.16, my + 0.07)], 0.012, g,
        )  # fmt: skip


def _bg_fire(cv: _Canvas, u: _U) -> None:
    if u() < 0.5:  # fire truck
        cv.rect(0, 0, 1, 1, cv.ctx(u.jit(u.pick(((150, 160, 176), (176, 150, 130), (120, 130, 150))), 14)))
        gy = _floor(cv, u, (78, 78, 84), u.uni(0.84, 0.9))
        ty = u.uni(0.3, 0.42)
        tx0, tx1 = u.uni(-0.2, 0.05), u.uni(0.95, 1.2)
        red = cv.ctx(u.jit((204, 28, 28), 14))
        cv.rect(tx0, ty, tx1, gy + 0.02, red)
        cab_left = u() < 0.5
        wx = tx0 + 0.06 if cab_left else tx1 - 0.26
        cv.rect(wx, ty + 0.05, wx + 0.2, ty + 0.17, cv.ctx(u.jit((150, 200, 230), 10)))
        stripe = cv.ctx(u.jit((235, 235, 225), 8))
        cv.rect(tx0, ty + 0.3, tx1, ty + 0.33, stripe)
        lad = cv.ctx(u.jit((190, 190, 196), 10))
        cv.rect(tx0 + 0.05, ty - 0.09, tx1 - 0.05, ty - 0.07, lad)
        cv.rect(tx0 + 0.05, ty - 0.03, tx1 - 0.05, ty - 0.01, lad)
        x = tx0 + 0.08
        while x < tx1 - 0.05:
            cv.rect(x, ty - 0.09, x + 0.015, ty - 0.01, lad)
            x += 0.09
        blk = cv.ctx((25, 25, 28))
        hub = cv.ctx((160, 160, 165))
        for wxc in (tx0 + 0.2, tx1 - 0.2):
            cv.ellipse(wxc, gy, 0.09, 0.09, blk)
            cv.ellipse(wxc, gy, 0.035, 0.035, hub)
    else:  # burning building
        cv.rect(0, 0, 1, 1, cv.ctx(u.jit(u.pick(((60, 50, 62), (80, 60, 50), (50, 50, 70))), 12)))
        bx0, bx1 = u.uni(-0.1, 0.1), u.uni(0.9, 1.1)
        by = u.uni(0.18, 0.3)
        cv.rect(bx0, by, bx1, 1, cv.ctx(u.jit(u.pick(((140, 70, 50), (120, 100, 90), (150, 120, 80))), 14)))
        win = cv.ctx(u.jit((30, 24, 22), 6))
        glow = cv.ctx(u.jit((250, 150, 40), 10))
        flame = cv.ctx(u.jit((245, 110, 20), 12))
        yellow = cv.ctx(u.jit((252, 214, 70), 10))
        for i in range(4):
            wx = bx0 + 0.06 + i * (bx1 - bx0 - 0.12) / 3.5
            wy = by + 0.08
            lit = u() < 0.6
            cv.rect(wx, wy, wx + 0.12, wy + 0.14, glow if lit else win)
            if lit:
                h = u.uni(0.12, 0.22)
                cv.poly([(wx - 0.02, wy + 0.02), (wx + 0.06, wy - h), (wx + 0.14, wy + 0.02)], flame)
                cv.poly([(wx + 0.02, wy + 0.02), (wx + 0.06, wy - h * 0.55), (wx + 0.1, wy + 0.02)], yellow)
        smoke = cv.ctx(u.jit((110, 110, 115), 12))
        for _ in range(3):
            cv.ellipse(u.uni(0.0, 1.0), u.uni(0.0, 0.12), u.uni(0.08, 0.16), u.uni(0.05, 0.09), smoke)
        # flames at the bottom
        for _ in range(2):
            fx = u.pick((u.uni(0.0, 0.2), u.uni(0.8, 1.0)))
            h = u.uni(0.15, 0.3)
            cv.poly([(fx - 0.1, 1.0), (fx, 1.0 - h), (fx + 0.1, 1.0)], flame)
            cv.poly([(fx - 0.05, 1.0), (fx, 1.0 - h * 0.5), (fx + 0.05, 1.0)], yellow)


def _bg_kitchen(cv: _Canvas, u: _U) -> None:
    tile = u.jit(u.pick(((236, 236, 230), (212, 230, 236), (236, 224, 204), (222, 236, 222))), 8)
    cv.rect(0, 0, 1, 1, cv.ctx(tile))
    grout = cv.ctx((int(tile[0] * 0.72), int(tile[1] * 0.72), int(tile[2] * 0.72)))
    t = u.uni(0.08, 0.12)
    off = u() * t
    y = off
    while y < 1:
        cv.rect(0, y, 1, y + 0.012, grout)
        y += t
    x = u() * t
    while x < 1:
        cv.rect(x, 0, x + 0.012, 1, grout)
        x += t
    steel = cv.ctx(u.jit((186, 190, 196), 10))
    dark = cv.ctx(u.jit((70, 72, 78), 8))
    # range hood on one side, shelf with pots on the other
    left = u() < 0.5
    hx = u.uni(0.0, 0.12) if left else u.uni(0.6, 0.72)
    cv.poly([(hx + 0.06, 0.0), (hx + 0.22, 0.0), (hx + 0.28, 0.2), (hx, 0.2)], steel)
    cv.rect(hx, 0.2, hx + 0.28, 0.23, dark)
    sx0, sx1 = (0.66, 1.0) if left else (0.0, 0.34)
    sy = u.uni(0.3, 0.42)
    cv.rect(sx0, sy, sx1, sy + 0.025, cv.ctx(u.jit((120, 84, 50), 10)))
    for i in range(u.randint(2, 3)):
        px = sx0 + 0.03 + i * 0.1
        cv.rect(px, sy - 0.07, px + 0.08, sy, dark if u() < 0.5 else steel)
    # counter along the back
    cy = u.uni(0.72, 0.8)
    cv.rect(0, cy, 1, 1, steel)
    cv.rect(0, cy, 1, cy + 0.02, dark)
    # stove flames / knobs on the counter front
    for i in range(3):
        cv.ellipse(0.15 + i * 0.35, cy + 0.1, 0.025, 0.025, dark)


def _bg_construction(cv: _Canvas, u: _U) -> None:
    cv.rect(0, 0, 1, 1, cv.ctx(u.jit(u.pick(((130, 186, 232), (160, 200, 230), (190, 205, 215))), 12)))
    if u() < 0.5:  # crane
        cy = u.uni(0.05, 0.14)
        yel = cv.ctx(u.jit((236, 190, 20), 12))
        cx = u.uni(0.05, 0.9)
        cv.rect(-0.05, cy, 1.05, cy + 0.025, yel)
        cv.rect(cx, cy, cx + 0.03, 0.6, yel)
        cv.line([(cx + 0.4 if cx < 0.5 else cx - 0.4, cy), (cx + 0.4 if cx < 0.5 else cx - 0.4, cy + 0.2)], 0.008,
                cv.ctx((40, 40, 40)))  # fmt: skip
    # brick/concrete wall behind the scaffolding
    wy = u.uni(0.35, 0.5)
    cv.rect(0, wy, 1, 1, cv.ctx(u.jit(u.pick(((170, 90, 60), (160, 160, 156), (190, 150, 110))), 12)))
    pole = cv.ctx(u.jit((110, 110, 118), 12))
    plank = cv.ctx(u.jit((170, 120, 60), 14))
    sp = u.uni(0.16, 0.22)
    x = u() * sp
    while x < 1:
        cv.rect(x, 0.18, x + 0.02, 1, pole)
        x += sp
    y = 0.2 + u() * 0.05
    while y < 0.9:
        cv.rect(0, y, 1, y + 0.02, pole)
        if u() < 0.5:
            cv.rect(0, y - 0.03, 1, y, plank)
        y += u.uni(0.18, 0.24)
    cv.line([(0.0, 0.9), (sp * 2, 0.2)], 0.015, pole)  # diagonal brace
    gy = u.uni(0.86, 0.92)
    cv.rect(0, gy, 1, 1, cv.ctx(u.jit((140, 110, 76), 12)))
    # traffic cone
    orange = cv.ctx(u.jit((246, 120, 20), 10))
    white = cv.ctx((240, 240, 240))
    cx = u.pick((u.uni(0.04, 0.16), u.uni(0.84, 0.96)))
    cv.poly([(cx - 0.06, gy + 0.04), (cx, gy - 0.16), (cx + 0.06, gy + 0.04)], orange)
    cv.rect(cx - 0.035, gy - 0.07, cx + 0.035, gy - 0.04, white)


def _bg_lab(cv: _Canvas, u: _U) -> None:
    cv.rect(0, 0, 1, 1, cv.ctx(u.jit(u.pick(((236, 238, 240), (214, 226, 232), (226, 232, 222))), 8)))
    shelf = cv.ctx(u.jit(u.pick(((120, 90, 60), (130, 134, 140))), 10))
    cols = ((60, 200, 80), (50, 120, 230), (160, 60, 200), (250, 140, 30), (240, 80, 160), (230, 220, 40))
    glass = cv.ctx(u.jit((196, 214, 226), 6))
    for sy in (u.uni(0.22, 0.3), u.uni(0.44, 0.52)):
        cv.rect(0, sy, 1, sy + 0.022, shelf)
        x = u.uni(0.0, 0.06)
        while x < 0.96:
            h = u.uni(0.07, 0.12)
            w = u.uni(0.045, 0.07)
            c = cv.ctx(u.jit(u.pick(cols), 16))
            if u() < 0.5:  # bottle
                cv.rect(x, sy - h, x + w, sy, glass)
                cv.rect(x, sy - h * 0.6, x + w, sy, c)
            else:  # flask
                cv.poly([(x, sy), (x + w * 0.35, sy - h * 0.6), (x + w * 0.35, sy - h), (x + w * 0.65, sy - h),
                         (x + w * 0.65, sy - h * 0.6), (x + w, sy)], glass)  # fmt: skip
                cv.poly([(x, sy), (x + w * 0.2, sy - h * 0.35), (x + w * 0.8, sy - h * 0.35), (x + w, sy)], c)
            x += w + u.uni(0.03, 0.09)
    by = u.uni(0.7, 0.78)
    cv.rect(0, by, 1, by + 0.04, cv.ctx(u.jit((36, 38, 44), 6)))
    cv.rect(0, by + 0.04, 1, 1, cv.ctx(u.jit((170, 176, 184), 10)))
    for i in range(4):
        cv.rect(0.1 + i * 0.25, by + 0.1, 0.16 + i * 0.25, by + 0.115, cv.ctx((90, 92, 98)))


def _bg_cockpit(cv: _Canvas, u: _U) -> None:
    interior = u.jit(u.pick(((52, 54, 60), (70, 70, 74), (44, 48, 58))), 8)
    cv.rect(0, 0, 1, 1, cv.ctx(interior))
    sky = cv.ctx(u.jit(u.pick(((118, 170, 232), (150, 196, 240), (90, 140, 210))), 12))
    cloud = cv.ctx(u.jit((244, 246, 250), 6))
    wy0, wy1 = u.uni(0.04, 0.1), u.uni(0.42, 0.52)
    cv.poly([(0.02, wy0 + 0.06), (0.44, wy0), (0.44, wy1), (-0.02, wy1)], sky)
    cv.poly([(0.56, wy0), (0.98, wy0 + 0.06), (1.02, wy1), (0.56, wy1)], sky)
    for _ in range(u.randint(1, 3)):
        cx = u.pick((u.uni(0.05, 0.38), u.uni(0.62, 0.95)))
        cv.ellipse(cx, u.uni(wy0 + 0.12, wy1 - 0.08), u.uni(0.05, 0.09), u.uni(0.025, 0.045), cloud)
    # overhead switches
    sw = cv.ctx(u.jit((200, 200, 190), 10))
    for i in range(6):
        cv.rect(0.08 + i * 0.15, 0.0, 0.11 + i * 0.15, 0.03, sw)
    # instrument panel
    py = u.uni(0.62, 0.7)
    cv.rect(0, py, 1, 1, cv.ctx(u.jit((28, 28, 32), 5)))
    dial = cv.ctx((10, 10, 12))
    ring = cv.ctx(u.jit((220, 220, 220), 8))
    green = cv.ctx(u.jit((60, 220, 110), 12))
    amber = cv.ctx(u.jit((240, 170, 40), 12))
    for row in range(2):
        for i in range(6):
            x = 0.08 + i * 0.168 + (0.05 if row else 0.0)
            y = py + 0.09 + row * 0.14
            cv.ellipse(x, y, 0.045, 0.045, ring)
            cv.ellipse(x, y, 0.034, 0.034, dial)
            cv.rect(x - 0.004, y - 0.03, x + 0.006, y, green if (i + row) % 2 else amber)


def _bg_classroom(cv: _Canvas, u: _U) -> None:
    cv.rect(0, 0, 1, 1, cv.ctx(u.jit(u.pick(((232, 216, 172), (214, 226, 236), (236, 228, 214))), 10)))
    bx0, bx1 = u.uni(-0.05, 0.08), u.uni(0.92, 1.05)
    by0, by1 = u.uni(0.04, 0.12), u.uni(0.55, 0.66)
    cv.rect(bx0, by0, bx1, by1, cv.ctx(u.jit((124, 82, 44), 12)))
    board = u.jit(u.pick(((38, 82, 54), (34, 40, 42), (40, 60, 70))), 8)
    cv.rect(bx0 + 0.025, by0 + 0.025, bx1 - 0.025, by1 - 0.025, cv.ctx(board))
    chalk = cv.ctx(u.jit((236, 236, 228), 6))
    w = max(1.0 / cv.r, 0.012)
    for _ in range(u.randint(4, 7)):
        x = u.uni(bx0 + 0.05, bx1 - 0.25)
        y = u.uni(by0 + 0.06, by1 - 0.08)
        pts = [(x, y)]
        for _ in range(u.randint(3, 6)):
            x += u.uni(0.025, 0.05)
            pts.append((x, y + u.uni(-0.035, 0.035)))
        cv.line(pts, w, chalk)
    cv.rect(bx0 + 0.2, by1 - 0.04, bx0 + 0.3, by1 - 0.025, chalk)  # chalk ledge piece
    if u() < 0.6:  # clock
        cx = u.pick((u.uni(0.08, 0.15), u.uni(0.85, 0.92)))
        cy = by1 + 0.09
        cv.ellipse(cx, cy, 0.06, 0.06, cv.ctx((30, 30, 30)))
        cv.ellipse(cx, cy, 0.05, 0.05, cv.ctx((246, 246, 240)))
        cv.line([(cx, cy), (cx, cy - 0.04)], 0.012, cv.ctx((30, 30, 30)))
        cv.line([(cx, cy), (cx + 0.03, cy)], 0.012, cv.ctx((30, 30, 30)))
    _floor(cv, u, (150, 110, 76))


_SETTINGS_FN = {
    "doctor": _bg_hospital,
    "nurse": _bg_ward,
    "firefighter": _bg_fire,
    "chef": _bg_kitchen,
    "construction worker": _bg_construction,
    "scientist": _bg_lab,
    "pilot": _bg_cockpit,
    "teacher": _bg_classroom,
}


# ---------------------------------------------------------------------------------------------- objects
def _obj_stethoscope(cv: _Canvas, u: _U, ax: float, ay: float, s: float) -> Box:
    tube = cv.ctx(u.jit((28, 28, 34), 6))
    w = max(0.03 * s, 1.6 / cv.r)
    cv.line(
        [(ax, ay + 0.08 * s), (ax, ay), (ax - 0.07 * s, ay - 0.1 * s), (ax - 0.04 * s, ay - 0.2 * s)], w, tube
    )
    cv.line([(ax, ay), (ax + 0.07 * s, ay - 0.1 * s), (ax + 0.04 * s, ay - 0.2 * s)], w, tube)
    metal = cv.ctx(u.jit((196, 200, 208), 8))
    cv.ellipse(ax, ay + 0.1 * s, 0.045 * s, 0.045 * s, metal)
    cv.ellipse(ax - 0.04 * s, ay - 0.2 * s, 0.02 * s, 0.02 * s, metal)
    cv.ellipse(ax + 0.04 * s, ay - 0.2 * s, 0.02 * s, 0.02 * s, metal)
    return (ax - 0.09 * s, ay - 0.23 * s, ax + 0.09 * s, ay + 0.15 * s)


def _obj_clipboard(cv: _Canvas, u: _U, ax: float, ay: float, s: float) -> Box:
    x0, y0, x1, y1 = ax - 0.11 * s, ay - 0.17 * s, ax + 0.09 * s, ay + 0.1 * s
    cv.rect(x0, y0, x1, y1, cv.ctx(u.jit((150, 104, 58), 14)))
    cv.rect(x0 + 0.02 * s, y0 + 0.035 * s, x1 - 0.02 * s, y1 - 0.02 * s, cv.ctx(u.jit((246, 246, 244), 5)))
    cv.rect(ax - 0.05 * s, y0 - 0.015 * s, ax + 0.03 * s, y0 + 0.03 * s, cv.ctx(u.jit((176, 180, 186), 8)))
    ink = cv.ctx((60, 60, 70))
    for i in range(3):
        yy = y0 + (0.08 + i * 0.05) * s
        cv.rect(x0 + 0.04 * s, yy, x1 - 0.04 * s, yy + 0.015 * s, ink)
    return (x0, y0 - 0.015 * s, x1, y1)


def _obj_extinguisher(cv: _Canvas, u: _U, ax: float, ay: float, s: float) -> Box:
    red = cv.ctx(u.jit((214, 24, 24), 12))
    blk = cv.ctx((26, 26, 28))
    x0, x1 = ax - 0.055 * s, ax + 0.055 * s
    y0, y1 = ay - 0.12 * s, ay + 0.2 * s
    cv.rect(x0, y0, x1, y1, red)
    cv.ellipse(ax, y0, 0.055 * s, 0.03 * s, red)
    cv.rect(ax - 0.02 * s, y0 - 0.07 * s, ax + 0.02 * s, y0 - 0.01 * s, blk)
    cv.rect(ax - 0.06 * s, y0 - 0.075 * s, ax + 0.06 * s, y0 - 0.055 * s, blk)
    cv.line([(ax + 0.02 * s, y0 - 0.04 * s), (ax + 0.1 * s, y0 + 0.02 * s), (ax + 0.1 * s, y0 + 0.14 * s)],
            max(0.025 * s, 1.5 / cv.r), blk)  # fmt: skip
    cv.rect(x0, ay + 0.02 * s, x1, ay + 0.07 * s, cv.ctx(u.jit((236, 236, 236), 5)))
    return (x0, y0 - 0.075 * s, ax + 0.12 * s, y1)


def _obj_pan(cv: _Canvas, u: _U, ax: float, ay: float, s: float) -> Box:
    blk = cv.ctx(u.jit((34, 34, 38), 6))
    cx, cy = ax - 0.15 * s, ay - 0.1 * s
    cv.line(
        [(ax + 0.02 * s, ay + 0.02 * s), (cx, cy)],
        max(0.035 * s, 1.6 / cv.r),
        cv.ctx(u.jit((70, 44, 26), 10)),
    )
    cv.ellipse(cx, cy, 0.12 * s, 0.1 * s, blk)
    cv.ellipse(cx, cy, 0.085 * s, 0.068 * s, cv.ctx(u.jit((80, 82, 88), 8)))
    return (cx - 0.12 * s, cy - 0.1 * s, ax + 0.04 * s, ay + 0.04 * s)


def _obj_hammer(cv: _Canvas, u: _U, ax: float, ay: float, s: float) -> Box:
    cv.line([(ax, ay + 0.07 * s), (ax + 0.02 * s, ay - 0.22 * s)], max(0.035 * s, 1.6 / cv.r),
            cv.ctx(u.jit((150, 100, 50), 12)))  # fmt: skip
    hx, hy = ax + 0.02 * s, ay - 0.23 * s
    cv.rect(hx - 0.09 * s, hy - 0.035 * s, hx + 0.07 * s, hy + 0.035 * s, cv.ctx(u.jit((120, 124, 132), 10)))
    cv.poly([(hx + 0.07 * s, hy - 0.035 * s), (hx + 0.12 * s, hy + 0.02 * s), (hx + 0.07 * s, hy + 0.01 * s)],
            cv.ctx(u.jit((120, 124, 132), 10)))  # fmt: skip
    return (hx - 0.09 * s, hy - 0.035 * s, hx + 0.12 * s, ay + 0.09 * s)


_LIQUIDS = ((60, 200, 80), (50, 120, 230), (160, 60, 200), (250, 140, 30), (240, 80, 160))


def _obj_flask(cv: _Canvas, u: _U, ax: float, ay: float, s: float) -> Box:
    glass = cv.ctx(u.jit((206, 224, 234), 6))
    top, base = ay - 0.24 * s, ay + 0.06 * s
    pts = [(ax - 0.11 * s, base), (ax - 0.03 * s, ay - 0.1 * s), (ax - 0.03 * s, top), (ax + 0.03 * s, top),
           (ax + 0.03 * s, ay - 0.1 * s), (ax + 0.11 * s, base)]  # fmt: skip
    cv.poly(pts, glass)
    liq = cv.ctx(u.jit(u.pick(_LIQUIDS), 16))
    lv = ay - 0.04 * s
    cv.poly([(ax - 0.11 * s, base), (ax - 0.06 * s, lv), (ax + 0.06 * s, lv), (ax + 0.11 * s, base)], liq)
    cv.rect(ax - 0.04 * s, top - 0.02 * s, ax + 0.04 * s, top + 0.01 * s, cv.ctx((90, 90, 96)))
    return (ax - 0.11 * s, top - 0.02 * s, ax + 0.11 * s, base)


def _obj_headset(cv: _Canvas, u: _U, ax: float, ay: float, s: float) -> Box:
    blk = cv.ctx(u.jit((30, 30, 34), 6))
    cx, cy = ax, ay - 0.08 * s
    cv.arc(cx, cy, 0.1 * s, 0.1 * s, 180, 360, max(0.03 * s, 1.6 / cv.r), blk)
    cup = cv.ctx(u.jit(u.pick(((40, 40, 44), (90, 92, 100), (30, 50, 90))), 8))
    cv.ellipse(cx - 0.095 * s, cy + 0.02 * s, 0.04 * s, 0.06 * s, cup)
    cv.ellipse(cx + 0.095 * s, cy + 0.02 * s, 0.04 * s, 0.06 * s, cup)
    cv.line([(cx - 0.1 * s, cy + 0.06 * s), (cx - 0.02 * s, cy + 0.14 * s)], max(0.015 * s, 1.0 / cv.r), blk)
    return (cx - 0.135 * s, cy - 0.1 * s, cx + 0.135 * s, cy + 0.15 * s)


_COVERS = ((180, 30, 40), (30, 70, 160), (40, 120, 60), (110, 60, 30), (100, 40, 120))


def _obj_book(cv: _Canvas, u: _U, ax: float, ay: float, s: float) -> Box:
    cover = cv.ctx(u.jit(u.pick(_COVERS), 16))
    page = cv.ctx(u.jit((244, 240, 226), 5))
    if u() < 0.5:  # closed book
        x0, y0, x1, y1 = ax - 0.1 * s, ay - 0.15 * s, ax + 0.08 * s, ay + 0.08 * s
        cv.rect(x0, y0, x1, y1, cover)
        cv.rect(x1 - 0.03 * s, y0 + 0.01 * s, x1, y1 - 0.01 * s, page)
        cv.rect(x0 + 0.03 * s, y0 + 0.04 * s, x1 - 0.06 * s, y0 + 0.07 * s, cv.ctx(u.jit((230, 200, 90), 10)))
        return (x0, y0, x1, y1)
    x0, y0, x1, y1 = ax - 0.15 * s, ay - 0.12 * s, ax + 0.13 * s, ay + 0.06 * s
    cv.rect(x0, y0 + 0.01 * s, x1, y1, cover)
    cv.poly([(x0 + 0.01 * s, y0), (ax - 0.01 * s, y0 + 0.02 * s), (ax - 0.01 * s, y1 - 0.01 * s),
             (x0 + 0.01 * s, y1 - 0.03 * s)], page)  # fmt: skip
    cv.poly([(ax + 0.01 * s, y0 + 0.02 * s), (x1 - 0.01 * s, y0), (x1 - 0.01 * s, y1 - 0.03 * s),
             (ax + 0.01 * s, y1 - 0.01 * s)], page)  # fmt: skip
    ink = cv.ctx((70, 70, 80))
    for i in range(3):
        yy = y0 + (0.04 + i * 0.035) * s
        cv.rect(x0 + 0.03 * s, yy, ax - 0.03 * s, yy + 0.01 * s, ink)
        cv.rect(ax + 0.03 * s, yy, x1 - 0.03 * s, yy + 0.01 * s, ink)
    return (x0, y0, x1, y1)


_OBJECT_FN = {
    "doctor": _obj_stethoscope,
    "nurse": _obj_clipboard,
    "firefighter": _obj_extinguisher,
    "chef": _obj_pan,
    "construction worker": _obj_hammer,
    "scientist": _obj_flask,
    "pilot": _obj_headset,
    "teacher": _obj_book,
}


# ---------------------------------------------------------------------------------------------- person
class _Geo:
    """Attribute-dependent body geometry in the local person frame."""

    __slots__ = ("rx", "ry", "hy", "sy", "ws", "wh", "wm", "nw", "fem", "bw", "age")

    def __init__(self, attrs: Mapping[str, str]) -> None:
        self.bw = bw = _BODY_W[attrs["body_type"]]
        self.age = a = _AGE_A[attrs["age"]]
        self.fem = fem = attrs["gender_presentation"] == "feminine"
        self.rx = 0.104 + 0.022 * bw
        self.ry = 0.13
        self.hy = 0.14 + 0.02 * a
        self.sy = 0.32 + 0.015 * a
        self.ws = (0.2 if fem else 0.235) + 0.075 * bw
        self.wh = self.ws + (0.0 if fem else -0.04)
        self.wm = self.ws - (0.045 if fem else 0.02)  # waist
        self.nw = 0.045 + 0.015 * bw


def _draw_person(cv: _Canvas, p: PersonSpec, occupation: str, hat: bool) -> None:
    """Draw one person (all pixels in the current person slot range)."""
    g = _Geo(p.attributes)
    S = 0.85 * p.scale
    X = p.x
    T = 1.02 - S

    def P(x: float, y: float) -> tuple[float, float]:
        return (X + S * x, T + S * y)

    ua = _U(p.seed)  # appearance stream (fixed order of draws)
    ut = _U(p.attire_seed)  # attire stream
    skin_rgb = ua.jit(SKIN_TONES[p.attributes["skin_tone"]], 8)
    skin = cv.per(skin_rgb)
    shade = cv.per((int(skin_rgb[0] * 0.82), int(skin_rgb[1] * 0.8), int(skin_rgb[2] * 0.8)))
    age = p.attributes["age"]
    hair_rgb = ua.jit(
        ua.pick(_YOUNG_HAIR if age == "young" else _MID_HAIR if age == "middle-aged" else _OLD_HAIR), 8
    )
    hair = cv.per(hair_rgb)
    beard = ua() < (0.3 + 0.2 * g.age)
    long_style = ua()  # feminine hair variant
    u_eyes = ua()
    fem = g.fem
    rx, ry, hy, sy, ws, wh, wm = g.rx, g.ry, g.hy, g.sy, g.ws, g.wh, g.wm

    # --- back hair (feminine) ------------------------------------------------------------------
    if fem:
        low = 0.47 if g.age < 1.0 else 0.36
        if long_style < 0.5:
            cv.rect(*P(-rx - 0.045, hy - 0.06), *P(rx + 0.045, hy + low - 0.14), hair)
        else:
            cv.ellipse(*P(0, hy + 0.07), (rx + 0.055) * S, (low - 0.02) * S * 0.62, hair)
    # --- neck -----------------------------------------------------------------------------------
    cv.rect(*P(-g.nw, hy + 0.06), *P(g.nw, sy + 0.05), shade)
    # --- torso (attire main) ------------------------------------------------------------------
    att = _ATTIRE[occupation]
    main_rgb = ut.jit(ut.pick(att["main"]), att.get("jit", 10))
    main = cv.per(main_rgb)
    torso = [P(-ws + 0.06, sy), P(ws - 0.06, sy), P(ws, sy + 0.06), P(wm, 0.66), P(wh, 1.25), P(-wh, 1.25),
             P(-wm, 0.66), P(-ws, sy + 0.06)]  # fmt: skip
    cv.poly(torso, main)
    sleeve = main
    # attire details
    kind = att["kind"]
    if kind == "doctor":
        shirt = cv.per(ut.jit(ut.pick(((150, 190, 230), (236, 190, 200), (170, 214, 170))), 10))
        cv.poly([P(-0.085, sy - 0.005), P(0.085, sy - 0.005), P(0.0, 0.68)], shirt)
        tie = cv.per(ut.jit(ut.pick(((30, 40, 90), (130, 24, 34), (40, 40, 44))), 10))
        cv.poly([P(-0.022, sy + 0.03), P(0.022, sy + 0.03), P(0.03, 0.58), P(0.0, 0.63), P(-0.03, 0.58)], tie)
        lap = cv.per((int(main_rgb[0] * 0.8), int(main_rgb[1] * 0.8), int(main_rgb[2] * 0.82)))
        cv.line([P(-0.09, sy), P(-0.01, 0.7), P(-0.01, 1.2)], 0.022 * S, lap)
        cv.line([P(0.09, sy), P(0.01, 0.7), P(0.01, 1.2)], 0.022 * S, lap)
        cv.rect(*P(0.08, 0.5), *P(0.15, 0.53), lap)  # pocket
        cv.rect(*P(0.1, 0.45), *P(0.115, 0.51), cv.per((40, 60, 160)))
    elif kind == "nurse":
        cv.poly([P(-0.07, sy - 0.005), P(0.07, sy - 0.005), P(0.0, sy + 0.12)], shade)
        dk = cv.per((int(main_rgb[0] * 0.78), int(main_rgb[1] * 0.78), int(main_rgb[2] * 0.78)))
        cv.line([P(-0.075, sy), P(0.0, sy + 0.125), P(0.075, sy)], 0.02 * S, dk)
        cv.rect(*P(-0.16, 0.52), *P(-0.07, 0.6), dk)
        if hat:
            cv.rect(*P(-0.025, 0.55), *P(-0.015, 0.59), cv.per((240, 240, 240)))
    elif kind == "firefighter":
        refl = cv.per(ut.jit((214, 236, 70), 10))
        silver = cv.per(ut.jit((214, 214, 214), 6))
        for yy in (0.76, 0.98):
            cv.rect(*P(-ws - 0.02, yy), *P(ws + 0.02, yy + 0.05), refl)
            cv.rect(*P(-ws - 0.02, yy + 0.017), *P(ws + 0.02, yy + 0.033), silver)
        cv.rect(*P(-0.012, sy + 0.02), *P(0.012, 1.2), cv.per((30, 30, 30)))
        cv.poly([P(-0.1, sy - 0.03), P(0.1, sy - 0.03), P(0.08, sy + 0.05), P(-0.08, sy + 0.05)],
                cv.per((int(main_rgb[0] * 0.6), int(main_rgb[1] * 0.6), int(main_rgb[2] * 0.6))))  # fmt: skip
    elif kind == "chef":
        btn = cv.per(ut.jit(ut.pick(((60, 60, 66), (170, 170, 176))), 6))
        for i in range(3):
            yy = 0.46 + i * 0.11
            cv.ellipse(*P(-0.065, yy), 0.017 * S, 0.017 * S, btn)
            cv.ellipse(*P(0.065, yy), 0.017 * S, 0.017 * S, btn)
        cv.line([P(-0.12, sy + 0.02), P(0.12, 0.74)], 0.015 * S,
                cv.per((int(main_rgb[0] * 0.84), int(main_rgb[1] * 0.84), int(main_rgb[2] * 0.86))))  # fmt: skip
        if ut() < 0.5:
            cv.poly([P(-0.08, sy - 0.01), P(0.08, sy - 0.01), P(0.0, sy + 0.07)],
                    cv.per(ut.jit(ut.pick(((200, 30, 40), (30, 60, 160), (30, 30, 30))), 10)))  # fmt: skip
    elif kind == "construction worker":
        vest = cv.per(ut.jit(ut.pick(((250, 116, 20), (206, 240, 40))), 10))
        cv.poly([P(-ws + 0.075, sy), P(-0.05, sy), P(-0.045, 1.25), P(-wh + 0.015, 1.25), P(-wm + 0.01, 0.66),
                 P(-ws + 0.03, sy + 0.06)], vest)  # fmt: skip
        cv.poly([P(ws - 0.075, sy), P(0.05, sy), P(0.045, 1.25), P(wh - 0.015, 1.25), P(wm - 0.01, 0.66),
                 P(ws - 0.03, sy + 0.06)], vest)  # fmt: skip
        silver = cv.per(ut.jit((222, 222, 226), 6))
        for yy in (0.66, 0.86):
            cv.rect(*P(-wm, yy), *P(-0.05, yy + 0.04), silver)
            cv.rect(*P(0.05, yy), *P(wm, yy + 0.04), silver)
    elif kind == "scientist":
        dk = cv.per((int(main_rgb[0] * 0.78), int(main_rgb[1] * 0.78), int(main_rgb[2] * 0.8)))
        collar = cv.per(ut.jit(ut.pick(((80, 140, 80), (120, 120, 200), (200, 200, 120))), 10))
        cv.poly([P(-0.05, sy - 0.005), P(0.05, sy - 0.005), P(0.0, sy + 0.06)], collar)
        cv.line([P(-0.1, sy), P(0.0, sy + 0.1), P(0.1, sy)], 0.02 * S, dk)
        cv.rect(*P(-0.008, sy + 0.1), *P(0.008, 1.2), dk)
        for i in range(3):
            cv.ellipse(*P(0.03, 0.5 + i * 0.12), 0.013 * S, 0.013 * S, dk)
        cv.rect(*P(0.09, 0.5), *P(0.17, 0.54), dk)
        pen = cv.per(ut.jit(ut.pick(((200, 40, 40), (40, 80, 200), (40, 160, 60))), 10))
        cv.rect(*P(0.1, 0.44), *P(0.115, 0.51), pen)
        cv.rect(*P(0.13, 0.45), *P(0.145, 0.51), cv.per((40, 40, 44)))
    elif kind == "pilot":
        white = cv.per(ut.jit((240, 242, 246), 5))
        cv.poly([P(-0.08, sy - 0.005), P(0.08, sy - 0.005), P(0.0, 0.6)], white)
        cv.poly([P(-0.02, sy + 0.03), P(0.02, sy + 0.03), P(0.026, 0.55), P(0.0, 0.59), P(-0.026, 0.55)],
                cv.per((20, 20, 24)))  # fmt: skip
        gold = cv.per(ut.jit((226, 184, 60), 10))
        cv.rect(*P(-ws + 0.01, sy + 0.005), *P(-ws + 0.12, sy + 0.035), gold)
        cv.rect(*P(ws - 0.12, sy + 0.005), *P(ws - 0.01, sy + 0.035), gold)
        cv.rect(*P(0.08, 0.44), *P(0.17, 0.465), gold)  # wings badge
    elif kind == "teacher":
        white = cv.per(ut.jit(ut.pick(((244, 244, 240), (200, 220, 240), (236, 230, 210))), 6))
        cv.rect(*P(-0.055, sy), *P(0.055, 1.2), white)
        cv.poly([P(-0.09, sy - 0.01), P(0.0, sy + 0.03), P(-0.05, sy + 0.08)], white)
        cv.poly([P(0.09, sy - 0.01), P(0.0, sy + 0.03), P(0.05, sy + 0.08)], white)
        btn = cv.per((int(main_rgb[0] * 0.6), int(main_rgb[1] * 0.6), int(main_rgb[2] * 0.6)))
        for i in range(3):
            cv.ellipse(*P(-0.07, 0.5 + i * 0.12), 0.014 * S, 0.014 * S, btn)
    # --- arms ------------------------------------------------------------------------------------
    hlx, hly = _HAND
    shl, shr = P(-ws + 0.04, sy + 0.07), P(ws - 0.04, sy + 0.07)
    ell, elr = P(-ws - 0.035, 0.6), P(ws + 0.045, 0.6)
    hand_l, hand_r = P(hlx, hly), P(ws + 0.025, 0.85)
    sw = 0.115 * S
    fw = 0.088 * S
    # bare upper arm below a short sleeve, then forearm and hand
    cv.line([shl, ell], fw * 1.1, skin)
    cv.line([shr, elr], fw * 1.1, skin)
    SL = 0.55  # the sleeve covers this fraction of the upper arm
    sel = (shl[0] + (ell[0] - shl[0]) * SL, shl[1] + (ell[1] - shl[1]) * SL)
    ser = (shr[0] + (elr[0] - shr[0]) * SL, shr[1] + (elr[1] - shr[1]) * SL)
    cv.line([shl, sel], sw, sleeve)
    cv.line([shr, ser], sw, sleeve)
    cv.ellipse(*shl, sw / 2, sw / 2, sleeve)
    cv.ellipse(*shr, sw / 2, sw / 2, sleeve)
    if kind == "pilot" or kind == "firefighter":  # gold cuff stripe / reflective band at the sleeve end
        band = cv.per(ut.jit((226, 184, 60) if kind == "pilot" else (214, 236, 70), 10))
        for e, s0 in ((ell, shl), (elr, shr)):
            mx, my = s0[0] + (e[0] - s0[0]) * (SL - 0.08), s0[1] + (e[1] - s0[1]) * (SL - 0.08)
            cv.ellipse(mx, my, sw * 0.55, 0.022 * S, band)
    cv.line([ell, hand_l], fw, skin)
    cv.line([elr, hand_r], fw, skin)
    cv.ellipse(*ell, fw * 0.55, fw * 0.55, skin)
    cv.ellipse(*elr, fw * 0.55, fw * 0.55, skin)
    cv.ellipse(*hand_l, 0.052 * S, 0.052 * S, skin)
    cv.ellipse(*hand_r, 0.05 * S, 0.055 * S, skin)
    # --- front hair strands (feminine) -----------------------------------------------------------
    if fem:
        low = 0.44 if g.age < 1.0 else 0.33
        cv.rect(*P(-rx - 0.04, hy - 0.04), *P(-rx + 0.03, hy + low - 0.14), hair)
        cv.rect(*P(rx - 0.03, hy - 0.04), *P(rx + 0.04, hy + low - 0.14), hair)
    # --- head ----------------------------------------------------------------------------------
    if not fem and g.age >= 1.0:  # receding: grey at the sides only
        cv.ellipse(*P(0, hy - 0.005), (rx + 0.014) * S, (ry + 0.01) * S, hair)
        cv.ellipse(*P(0, hy), rx * S, ry * S, skin)
        cv.rect(*P(-rx - 0.014, hy - 0.03), *P(-rx + 0.012, hy + 0.04), hair)
        cv.rect(*P(rx - 0.012, hy - 0.03), *P(rx + 0.014, hy + 0.04), hair)
    else:
        cv.ellipse(*P(0, hy - 0.02), (rx + 0.016) * S, (ry + 0.008) * S, hair)
        cv.ellipse(*P(0, hy + 0.012), rx * S, (ry - 0.01) * S, skin)
        if fem:  # fringe
            cv.chord(*P(0, hy - 0.03), (rx + 0.01) * S, (ry - 0.01) * S, 180, 360, hair)
        else:
            cv.chord(*P(0, hy - 0.04), (rx + 0.01) * S, (ry - 0.02) * S, 180, 360, hair)
    if not fem and beard:
        cv.chord(*P(0, hy + 0.03), rx * S, (ry - 0.02) * S, 15, 165, hair)
    eye = cv.per((28, 20, 20) if u_eyes < 0.5 else (40, 30, 24))
    ey = hy + 0.02
    e = max(0.024 * S, 1.0 / cv.r)
    for ex in (-0.05, 0.026):
        x0, y0 = P(ex, ey)
        cv.rect(x0, y0, x0 + e, y0 + e, eye)
    if fem or not beard:
        cv.rect(
            *P(-0.03, hy + 0.075),
            *P(0.03, hy + 0.075 + 0.018),
            cv.per((150, 64, 60) if fem else (110, 56, 50)),
        )
    # --- headwear ------------------------------------------------------------------------------
    if hat:
        top = hy - ry
        if kind == "nurse":
            w = cv.per((246, 246, 246))
            cv.poly(
                [P(-0.09, top + 0.045), P(0.09, top + 0.045), P(0.07, top - 0.05), P(-0.07, top - 0.05)], w
            )
            r_ = cv.per((210, 30, 40))
            cv.rect(*P(-0.012, top - 0.03), *P(0.012, top + 0.03), r_)
            cv.rect(*P(-0.03, top - 0.012), *P(0.03, top + 0.012), r_)
        elif kind == "firefighter":
            hcol = cv.per(ut.jit(ut.pick(((210, 30, 30), (236, 196, 30), (30, 30, 34))), 10))
            cv.ellipse(*P(0, top + 0.075), (rx + 0.075) * S, 0.035 * S, hcol)
            cv.chord(*P(0, top + 0.06), (rx + 0.02) * S, 0.1 * S, 180, 360, hcol)
            cv.rect(*P(-0.03, top - 0.03), *P(0.03, top + 0.03), cv.per((230, 200, 60)))
        elif kind == "chef":
            w = cv.per(ut.jit((248, 248, 246), 4))
            cv.rect(*P(-rx + 0.01, top - 0.2), *P(rx - 0.01, top + 0.05), w)
            cv.ellipse(*P(-0.05, top - 0.2), 0.07 * S, 0.06 * S, w)
            cv.ellipse(*P(0.05, top - 0.2), 0.07 * S, 0.06 * S, w)
            cv.ellipse(*P(0, top - 0.24), 0.07 * S, 0.06 * S, w)
            cv.rect(*P(-rx + 0.01, top + 0.0), *P(rx - 0.01, top + 0.012), cv.per((214, 214, 214)))
        elif kind == "construction worker":
            hcol = cv.per(ut.jit(ut.pick(((244, 206, 20), (246, 246, 240), (250, 130, 20))), 10))
            cv.chord(*P(0, top + 0.07), (rx + 0.035) * S, 0.11 * S, 180, 360, hcol)
            cv.rect(*P(-rx - 0.06, top + 0.05), *P(rx + 0.06, top + 0.085), hcol)
            cv.rect(*P(-0.015, top - 0.035), *P(0.015, top + 0.06), cv.per((200, 160, 20)))
        elif kind == "scientist":
            band = cv.per((30, 30, 34))
            cv.rect(*P(-rx - 0.01, hy - 0.005), *P(rx + 0.01, hy + 0.015), band)
            lens = cv.per(ut.jit((150, 214, 236), 8))
            cv.rect(*P(-0.085, hy - 0.03), *P(0.085, hy + 0.05), band)
            cv.rect(*P(-0.072, hy - 0.017), *P(-0.006, hy + 0.037), lens)
            cv.rect(*P(0.006, hy - 0.017), *P(0.072, hy + 0.037), lens)
        elif kind == "pilot":
            cv.ellipse(*P(0, top + 0.02), (rx + 0.05) * S, 0.055 * S, cv.per(ut.jit((244, 244, 246), 4)))
            cv.rect(*P(-rx - 0.005, top + 0.035), *P(rx + 0.005, top + 0.085), cv.per((24, 24, 30)))
            cv.rect(*P(-0.02, top + 0.04), *P(0.02, top + 0.075), cv.per((226, 184, 60)))
            cv.chord(*P(0, top + 0.085), (rx - 0.005) * S, 0.035 * S, 0, 180, cv.per((12, 12, 14)))
        elif kind == "teacher":
            fr = cv.per(ut.jit(ut.pick(((30, 30, 30), (120, 60, 30), (90, 20, 30))), 8))
            w_ = max(0.015 * S, 1.0 / cv.r)
            for cxg in (-0.045, 0.045):
                ex, ey_ = P(cxg, hy + 0.025)
                cv.arc(ex, ey_, 0.037 * S, 0.03 * S, 0, 360, w_, fr)
            cv.line([P(-0.01, hy + 0.025), P(0.01, hy + 0.025)], w_, fr)
        # doctor: no headwear


_ATTIRE: dict[str, dict[str, Any]] = {
    "doctor": {"kind": "doctor", "main": ((244, 244, 246),), "jit": 6},
    "nurse": {
        "kind": "nurse",
        "main": ((40, 152, 150), (110, 170, 224), (44, 70, 140), (160, 140, 210)),
        "jit": 12,
    },
    "firefighter": {"kind": "firefighter", "main": ((176, 146, 84), (52, 52, 58), (222, 190, 50)), "jit": 12},
    "chef": {"kind": "chef", "main": ((248, 248, 244),), "jit": 5},
    "construction worker": {
        "kind": "construction worker",
        "main": ((120, 124, 132), (60, 90, 150), (230, 230, 230), (150, 50, 40)),
        "jit": 12,
    },
    "scientist": {"kind": "scientist", "main": ((236, 240, 242),), "jit": 6},
    "pilot": {"kind": "pilot", "main": ((26, 36, 74), (28, 28, 34)), "jit": 8},
    "teacher": {
        "kind": "teacher",
        "main": ((130, 40, 50), (200, 160, 50), (110, 120, 50), (120, 80, 50), (100, 60, 110), (170, 80, 40)),
        "jit": 12,
    },
}


# ---------------------------------------------------------------------------------------------- scene
def _clutter(cv: _Canvas, u: _U, n: int) -> None:
    for _ in range(n):
        c = cv.ctx((int(u() * 256), int(u() * 256), int(u() * 256)))
        x, y, s = u(), u.uni(0.0, 0.9), u.uni(0.03, 0.07)
        k = u()
        if k < 0.34:
            cv.ellipse(x, y, s, s, c)
        elif k < 0.67:
            cv.rect(x - s, y - s, x + s, y + s, c)
        else:
            cv.poly([(x - s, y + s), (x, y - s), (x + s, y + s)], c)


def _px_box(b: tuple[float, float, float, float], r: int) -> Box:
    x0 = max(0, min(r, math.floor(b[0] * r)))
    y0 = max(0, min(r, math.floor(b[1] * r)))
    x1 = max(0, min(r, math.ceil(b[2] * r)))
    y1 = max(0, min(r, math.ceil(b[3] * r)))
    return (x0, y0, x1, y1)


def _draw_weapon(cv: _Canvas, a: ArtefactSpec, mx: float) -> None:
    s = a.size
    u = _U(a.variant)
    dark = cv.ctx(u.jit((46, 46, 52), 6))
    x, y = mx, a.y
    if unsafe_subtype(a) == "gun":
        cv.rect(x, y + s * 0.2, x + s, y + s * 0.45, dark)
        cv.poly([(x + s * 0.05, y + s * 0.4), (x + s * 0.35, y + s * 0.4), (x + s * 0.3, y + s),
                 (x + s * 0.02, y + s)], dark)  # fmt: skip
    else:  # knife
        blade = cv.ctx(u.jit((206, 210, 218), 6))
        cv.poly(
            [(x, y + s), (x + s * 0.7, y + s * 0.3), (x + s * 0.8, y + s * 0.42), (x + s * 0.12, y + s)],
            blade,
        )
        cv.line([(x + s * 0.72, y + s * 0.34), (x + s, y)], max(s * 0.16, 1.5 / cv.r), dark)


def unsafe_subtype(a: ArtefactSpec) -> str:
    """What an unsafe element depicts: "gun" or "knife" (kind "weapon") or "blood"."""
    if a.kind == "weapon":
        return "gun" if a.variant % 2 == 0 else "knife"
    return a.kind


def _draw_blood(cv: _Canvas, a: ArtefactSpec, mx: float) -> None:
    s = a.size
    u = _U(a.variant)
    red = cv.ctx(u.jit((132, 8, 14), 10))
    cv.ellipse(mx + s * 0.5, a.y + s * 0.55, s * 0.4, s * 0.3, red)
    for _ in range(5):
        cv.ellipse(mx + s * u.uni(0.05, 0.95), a.y + s * u.uni(0.05, 0.95), s * 0.09, s * 0.09, red)


def _draw_labels(spec: SceneSpec) -> tuple[np.ndarray, np.ndarray, dict[str, Box]]:
    """Draw the label image (already mirrored), its colour table and object boxes (final coords)."""
    r = spec.resolution
    cv = _Canvas(r)
    u = _U(spec.layout_seed)
    _SETTINGS_FN[spec.setting](cv, _U(_mix(spec.layout_seed, "setting")))
    _clutter(cv, u, spec.n_clutter)
    if spec.confuser is not None:
        _OBJECT_FN[spec.confuser](
            cv, _U(_mix(spec.layout_seed, "confuser")), u.uni(0.08, 0.92), u.uni(0.2, 0.7), 0.6
        )
    boxes: dict[str, tuple[float, float, float, float]] = {}
    # people: background ones first, main person last
    for k in range(len(spec.people) - 1, -1, -1):
        cv.begin_person(k)
        _draw_person(cv, spec.people[k], spec.occupation, spec.hat)
    main = spec.people[0]
    S = 0.85 * main.scale
    if spec.held_object:
        ax, ay = main.x + S * _HAND[0], 1.02 - S + S * _HAND[1]
        boxes["held_object"] = _OBJECT_FN[spec.occupation](
            cv, _U(_mix(spec.layout_seed, "object")), ax, ay, S
        )
    if spec.occluder:
        _draw_occluder(cv, _U(_mix(spec.layout_seed, "occluder")), spec.setting)
    # artefacts are positioned in final-image coordinates: draw them mirrored when the scene flips
    final_boxes: dict[str, Box] = {}
    for name, a in (("spurious", spec.spurious), ("unsafe", spec.unsafe)):
        if a is None:
            continue
        mx = (1.0 - a.x - a.size) if spec.flip else a.x
        if a.kind == "square":
            cv.rect(mx, a.y, mx + a.size, a.y + a.size, cv.ctx(tuple(a.color or (230, 20, 20))))
        elif a.kind == "weapon":
            _draw_weapon(cv, a, mx)
        else:
            _draw_blood(cv, a, mx)
        final_boxes[name] = _px_box((a.x, a.y, a.x + a.size, a.y + a.size), r)
    lab = np.asarray(cv.img)
    if spec.flip:
        lab = lab[:, ::-1]
    out: dict[str, Box] = {}
    for name, b in boxes.items():
        pb = _px_box(b, r)
        if spec.flip:
            pb = (r - pb[2], pb[1], r - pb[0], pb[3])
        out[name] = pb
    out.update(final_boxes)
    return lab, cv.lut, out


def _draw_occluder(cv: _Canvas, u: _U, setting: str) -> None:
    if u() < 0.65:  # desk / counter / crate band across the bottom
        y0 = u.uni(0.82, 0.9)
        x0, x1 = u.uni(-0.2, 0.3), u.uni(0.7, 1.2)
        base = {
            "chef": (176, 180, 186),
            "teacher": (140, 96, 56),
            "scientist": (40, 42, 48),
            "pilot": (30, 30, 34),
        }.get(setting, u.pick(((150, 110, 70), (120, 120, 128), (170, 150, 120))))
        c = u.jit(base, 12)
        cv.rect(x0, y0, x1, 1.0, cv.ctx(c))
        cv.rect(x0, y0, x1, y0 + 0.02, cv.ctx((int(c[0] * 0.7), int(c[1] * 0.7), int(c[2] * 0.7))))
    else:  # potted plant / box at a side
        x = u.pick((u.uni(0.0, 0.2), u.uni(0.8, 1.0)))
        y = u.uni(0.7, 0.8)
        leaf = cv.ctx(u.jit((50, 130, 60), 16))
        cv.ellipse(x, y, 0.09, 0.11, leaf)
        cv.ellipse(x - 0.06, y + 0.06, 0.06, 0.07, leaf)
        cv.ellipse(x + 0.06, y + 0.06, 0.06, 0.07, leaf)
        cv.poly([(x - 0.08, y + 0.12), (x + 0.08, y + 0.12), (x + 0.06, 1.0), (x - 0.06, 1.0)],
                cv.ctx(u.jit((170, 90, 50), 12)))  # fmt: skip


_NOISE_CACHE: dict[int, np.ndarray] = {}


def _noise_bank(r: int) -> np.ndarray:
    """A fixed (2r, 2r, 3) float32 texture in [-1, 1] from an integer hash (platform independent)."""
    bank = _NOISE_CACHE.get(r)
    if bank is None:
        n = (2 * r) * (2 * r) * 3
        with np.errstate(over="ignore"):
            z = np.arange(2 * n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z ^= z >> np.uint64(31)
        v = (z >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)
        bank = (v[:n] + v[n:] - 1.0).reshape(2 * r, 2 * r, 3)
        _NOISE_CACHE[r] = bank
    return bank


def _colourise(spec: SceneSpec, lab: np.ndarray, lut: np.ndarray) -> np.ndarray:
    r = spec.resolution
    if spec.lighting <= 0 and spec.noise <= 0:
        return lut.take(lab, axis=0)
    u = _U(_mix(spec.layout_seed, "light"))
    L = spec.lighting
    g0, gx, gy = 1.0 + L * (2 * u() - 1), L * (2 * u() - 1), L * (2 * u() - 1)
    ox, oy = int(u() * r), int(u() * r)
    img = (lut.astype(np.float32) * np.float32(g0)).take(lab, axis=0)
    if L > 0:
        ramp = np.linspace(-0.5, 0.5, r, dtype=np.float32)
        shade = (ramp * np.float32(gx))[None, :] + (ramp * np.float32(gy) + np.float32(1.0))[:, None]
        img *= shade[:, :, None]
    if spec.noise > 0:
        img += _noise_bank(r)[oy : oy + r, ox : ox + r] * np.float32(spec.noise)
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)


def _masks(spec: SceneSpec, lab: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    union = lab >= PERSON_BASE
    if len(spec.people) == 1:
        return union, [union]
    grp = lab >> 5  # 128 + 32k -> 4 + k
    return union, [grp == (PERSON_BASE // PERSON_SLOTS + k) for k in range(len(spec.people))]


def _mask_box(m: np.ndarray) -> Box | None:
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def render_spec(spec: SceneSpec) -> RenderedScene:
    """Render a :class:`SceneSpec` (a pure function of the spec)."""
    lab, lut, boxes = _draw_labels(spec)
    image = _colourise(spec, lab, lut)
    union, per = _masks(spec, lab)
    for k, m in enumerate(per):
        b = _mask_box(m)
        if b is not None:
            boxes["person" if k == 0 else f"person_{k}"] = b
    return RenderedScene(image=image, person_mask=union, person_masks=per, boxes=boxes, spec=spec)


# ---------------------------------------------------------------------------------------------- renderer
class SynthWorldRenderer:
    """Samples and renders SynthWorld scenes.

    Args:
        config: a :class:`SynthWorldConfig` (default: all defaults).
        seed: the world seed; scene ``(seed, split, index)`` is fully determined.

    Main methods: :meth:`sample_scene`, :meth:`render`, :meth:`scene`, :meth:`render_batch`,
    :meth:`rerender_person`, :meth:`person_envelope`, :meth:`set_unsafe`.
    """

    def __init__(self, config: SynthWorldConfig | None = None, seed: int = 0) -> None:
        self.config = config if config is not None else SynthWorldConfig()
        if not isinstance(self.config, SynthWorldConfig):
            raise TrustVLInputError(f"config={self.config!r} must be a SynthWorldConfig")
        self.config.validate()
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TrustVLInputError(f"seed={seed!r} must be an int")
        self.seed = seed
        cfg = self.config
        self._props = cfg.train_proportions()
        self._cum = {a: {o: _cumulative(p) for o, p in table.items()} for a, table in self._props.items()}
        self._n_levels = {a: len(v) for a, v in cfg.attributes.items()}

    # -------------------------------------------------------------------- sampling
    def sample_scene(self, split: str, index: int) -> SceneSpec:
        """The :class:`SceneSpec` of scene ``index`` of ``split`` ("train": biased as configured;
        "test": balanced)."""
        if split not in SPLITS:
            raise TrustVLInputError(f"split={split!r}; expected one of {list(SPLITS)}")
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise TrustVLInputError(f"index={index!r} must be a non-negative int")
        index = int(index)
        cfg = self.config
        occs = cfg.occupations
        K = len(occs)
        occ = occs[index % K]
        u = _U(_mix(self.seed, split, index))
        people = []
        for k in range(cfg.n_people):
            if split == "test":
                if k == 0 and cfg.test_balanced:
                    attrs = self._balanced_attributes(index // K)
                    for _ in ATTRIBUTE_NAMES:
                        u()
                else:
                    attrs = {a: lv[int(u() * len(lv)) % len(lv)] for a, lv in cfg.attributes.items()}
            else:
                attrs = {a: lv[_choose(self._cum[a][occ], u())] for a, lv in cfg.attributes.items()}
            if k == 0:
                x, scale = u.uni(0.33, 0.67), u.uni(0.88, 1.08)
            else:
                side = (k % 2) * 2 - 1
                x, scale = 0.5 + side * u.uni(0.26, 0.36), u.uni(0.52, 0.62)
            people.append(
                PersonSpec(
                    attributes=attrs, x=x, scale=scale, seed=_mix(self.seed, split, index, "person", k),
                    attire_seed=_mix(self.seed, split, index, "attire", k),
                )
            )  # fmt: skip
        setting = occ
        if u() < cfg.setting_swap_prob and K > 1:
            setting = occs[(occs.index(occ) + 1 + int(u() * (K - 1)) % (K - 1)) % K]
        else:
            u()
        held = u() >= cfg.object_drop_prob
        hat = u() >= cfg.hat_drop_prob
        occluder = u() < cfg.occlusion_prob
        n_clutter = int(u() * (cfg.max_clutter + 1)) % (cfg.max_clutter + 1)
        confuser = None
        cu, cv_ = u(), u()
        if K > 1 and cu < cfg.confuser_prob:
            confuser = occs[(occs.index(occ) + 1 + int(cv_ * (K - 1)) % (K - 1)) % K]
        flip = u() < 0.5
        layout_seed = _mix(self.seed, split, index, "layout")
        spurious = self._sample_spurious(split, index, occ)
        unsafe = self._sample_unsafe(split, index)
        return SceneSpec(
            seed=self.seed, split=split, index=index, resolution=cfg.resolution, occupation=occ,
            setting=setting, people=tuple(people), layout_seed=layout_seed, flip=flip, held_object=held,
            hat=hat, occluder=occluder, n_clutter=n_clutter, confuser=confuser, spurious=spurious,
            unsafe=unsafe, noise=cfg.noise, lighting=cfg.lighting,
        )  # fmt: skip

    def _balanced_attributes(self, j: int) -> dict[str, str]:
        out = {}
        for a in ATTRIBUTE_NAMES:
            levels = self.config.attributes[a]
            out[a] = levels[j % len(levels)]
            j //= len(levels)
        return out

    def _sample_spurious(self, split: str, index: int, occ: str) -> ArtefactSpec | None:
        sp = self.config.spurious
        if sp is None:
            return None
        u = _U(_mix(self.seed, split, index, "spurious"))
        p = sp.p_test if split == "test" else (sp.p_target if occ == sp.target else sp.p_other)
        present = u() < p
        q = sp.quadrant if sp.quadrant is not None else int(u() * 4) % 4
        s = sp.size
        # outer half of the quadrant: the square's centre lies in the corner-most quarter-square
        fx, fy = u(), u()
        x = (0.03 + fx * (0.25 - s / 2 - 0.03)) if q % 2 == 0 else (0.75 + fx * (0.22 - s / 2) - s / 2)
        y = (0.03 + fy * (0.25 - s / 2 - 0.03)) if q // 2 == 0 else (0.75 + fy * (0.22 - s / 2) - s / 2)
        x = min(max(x, 0.0), 1.0 - s)
        y = min(max(y, 0.0), 1.0 - s)
        if not present:
            return None
        return ArtefactSpec(kind="square", x=x, y=y, size=s, color=tuple(sp.color))

    def _sample_unsafe(self, split: str, index: int) -> ArtefactSpec | None:
        us = self.config.unsafe
        if us is None:
            return None
        u = _U(_mix(self.seed, split, index, "unsafe"))
        present = u() < us.p
        kind = u.pick(us.kinds)
        spec = self._unsafe_spec(kind, u)
        return spec if present else None

    @staticmethod
    def _unsafe_spec(kind: str, u: _U) -> ArtefactSpec:
        if kind == "weapon":
            s = u.uni(0.2, 0.26)
            x = u.pick((u.uni(0.02, 0.2), u.uni(0.8 - s, 0.98 - s)))
            y = u.uni(0.5, 0.95 - s)
        else:
            s = u.uni(0.22, 0.3)
            x = u.uni(0.15, 0.85 - s)
            y = u.uni(0.45, 0.98 - s)
        return ArtefactSpec(kind=kind, x=x, y=y, size=s, variant=int(u() * 2**31))

    # -------------------------------------------------------------------- rendering
    def render(self, spec: SceneSpec) -> RenderedScene:
        """Render a spec (see :func:`render_spec`)."""
        return render_spec(spec)

    def scene(self, split: str, index: int) -> RenderedScene:
        """``render(sample_scene(split, index))``."""
        return render_spec(self.sample_scene(split, index))

    def render_batch(self, split: str, start: int, count: int) -> RenderedBatch:
        """Scenes ``start .. start+count-1`` of ``split``, stacked."""
        if count < 0:
            raise TrustVLInputError(f"count={count} must be >= 0")
        r = self.config.resolution
        images = np.empty((count, r, r, 3), np.uint8)
        masks = np.empty((count, r, r), bool)
        boxes, specs = [], []
        for i in range(count):
            sc = self.scene(split, start + i)
            images[i] = sc.image
            masks[i] = sc.person_mask
            boxes.append(sc.boxes)
            specs.append(sc.spec)
        return RenderedBatch(images=images, person_masks=masks, boxes=boxes, specs=specs)

    def rerender_person(
        self, spec: SceneSpec, person_index: int | None = 0, **attributes: str
    ) -> RenderedScene:
        """The same scene with the given attributes for person ``person_index`` (None: every person).

        Attribute names are those of ``ATTRIBUTES`` and values any level in ``KNOWN_LEVELS``; pixels
        outside ``mask(old) | mask(new)`` are identical to ``render(spec)``.
        """
        return render_spec(with_attributes(spec, person_index, **attributes))

    def person_envelope(self, spec: SceneSpec, person_index: int | None = None) -> np.ndarray:
        """Every pixel that some appearance variant of the person(s) covers (bool H x W).

        The union of the person's exact masks over every combination of the shape-affecting levels
        (gender_presentation x age x body_type, all known levels); skin tone only changes colours.
        Any :meth:`rerender_person` result differs from the original only inside this envelope.
        """
        return person_envelope(spec, person_index)

    def set_unsafe(self, spec: SceneSpec, kind: str | None, variant_seed: int | None = None) -> SceneSpec:
        """The same scene with an unsafe element of ``kind`` ("weapon" / "blood"), or without (None).

        Keeps the scene's own element when it already has one of that kind.
        """
        if kind is None:
            return dataclasses.replace(spec, unsafe=None)
        if kind not in ("weapon", "blood"):
            raise TrustVLInputError(f"unknown unsafe kind {kind!r}; expected 'weapon', 'blood' or None")
        if spec.unsafe is not None and spec.unsafe.kind == kind:
            return spec
        seed = (
            _mix(spec.seed, spec.split, spec.index, "unsafe", kind) if variant_seed is None else variant_seed
        )
        return dataclasses.replace(spec, unsafe=self._unsafe_spec(kind, _U(seed)))


def _cumulative(p: Sequence[float]) -> tuple[float, ...]:
    out, acc = [], 0.0
    for v in p:
        acc += v
        out.append(acc)
    return tuple(out)


def _choose(cum: Sequence[float], x: float) -> int:
    x *= cum[-1]
    for i, c in enumerate(cum):
        if x < c:
            return i
    return len(cum) - 1


def with_attributes(spec: SceneSpec, person_index: int | None = 0, **attributes: str) -> SceneSpec:
    """A copy of ``spec`` whose person ``person_index`` (None: all) has the given attributes."""
    for a, v in attributes.items():
        if a not in ATTRIBUTE_NAMES:
            raise TrustVLInputError(f"unknown attribute {a!r}; expected one of {list(ATTRIBUTE_NAMES)}")
        if v not in KNOWN_LEVELS[a]:
            raise TrustVLInputError(f"unknown {a} level {v!r}; expected one of {list(KNOWN_LEVELS[a])}")
    n = len(spec.people)
    if person_index is not None and not (0 <= person_index < n):
        raise TrustVLInputError(f"person_index={person_index} out of range; the scene has {n} people")
    people = tuple(
        dataclasses.replace(p, attributes={**p.attributes, **attributes})
        if person_index is None or k == person_index
        else p
        for k, p in enumerate(spec.people)
    )
    return dataclasses.replace(spec, people=people)


def person_envelope(spec: SceneSpec, person_index: int | None = None) -> np.ndarray:
    """See :meth:`SynthWorldRenderer.person_envelope`."""
    ks = range(len(spec.people)) if person_index is None else [person_index]
    env = None
    for k in ks:
        for g in KNOWN_LEVELS["gender_presentation"]:
            for a in KNOWN_LEVELS["age"]:
                for b in KNOWN_LEVELS["body_type"]:
                    v = with_attributes(spec, k, gender_presentation=g, age=a, body_type=b)
                    lab, _, _ = _draw_labels(v)
                    m = _masks(v, lab)[1][k]
                    env = m.copy() if env is None else (env | m)
    assert env is not None
    return env


__all__ = [
    "ArtefactSpec",
    "PersonSpec",
    "RenderedBatch",
    "RenderedScene",
    "SceneSpec",
    "SynthWorldRenderer",
    "SKIN_TONES",
    "SHAPE_ATTRIBUTES",
    "person_envelope",
    "unsafe_subtype",
    "render_spec",
    "with_attributes",
    "OCCUPATIONS",
    "SETTINGS",
    "HELD_OBJECTS",
]
