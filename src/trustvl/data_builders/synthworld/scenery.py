"""SynthWorld's scenery: the setting (background) of each occupation, clutter and foreground occluders.

Each ``_draw_<setting>_setting(canvas, rng)`` paints a whole background from its own stream of uniforms;
:data:`SETTING_PAINTERS` maps an occupation to the setting it works in. Clutter (random shapes) and the
occluder (a desk or plant in front of the person) are context too: they are never in the person mask.
"""

from __future__ import annotations

from collections.abc import Sequence

from trustvl.data_builders.synthworld.canvas import LabelCanvas
from trustvl.data_builders.synthworld.randomness import UniformStream

__all__ = ["SETTING_PAINTERS", "draw_clutter", "draw_occluder"]


def _draw_floor(
    canvas: LabelCanvas, rng: UniformStream, base: Sequence[int], y0: float | None = None
) -> float:
    y = rng.uniform(0.8, 0.88) if y0 is None else y0
    canvas.rect(0, y, 1, 1, canvas.context_colour(rng.jitter(base, 12)))
    return y


def _draw_hospital_setting(canvas: LabelCanvas, rng: UniformStream) -> None:
    wall = rng.jitter(rng.pick(((196, 222, 234), (214, 234, 226), (232, 236, 242))), 10)
    canvas.rect(0, 0, 1, 1, canvas.context_colour(wall))
    _draw_floor(canvas, rng, (168, 178, 178))
    # red-cross sign
    left = rng() < 0.5
    s = rng.uniform(0.17, 0.23)
    sx = rng.uniform(0.02, 0.14) if left else rng.uniform(0.64, 0.81)
    sy = rng.uniform(0.03, 0.22)
    canvas.rect(sx, sy, sx + s, sy + s, canvas.context_colour(rng.jitter((246, 246, 246), 6)))
    red = canvas.context_colour(rng.jitter((214, 30, 40), 12))
    t = max(s * 0.12, 1.0 / canvas.resolution)
    canvas.rect(sx + s * 0.12, sy + s / 2 - t, sx + s * 0.88, sy + s / 2 + t, red)
    canvas.rect(sx + s / 2 - t, sy + s * 0.12, sx + s / 2 + t, sy + s * 0.88, red)
    # second item on the other side
    ox = rng.uniform(0.7, 0.8) if left else rng.uniform(0.04, 0.14)
    kind = rng()
    if kind < 0.4:  # eye chart
        oy = rng.uniform(0.08, 0.25)
        canvas.rect(ox, oy, ox + 0.16, oy + 0.3, canvas.context_colour((240, 240, 236)))
        ink = canvas.context_colour(rng.jitter((25, 25, 30), 8))
        for i in range(5):
            w = 0.12 - i * 0.022
            yy = oy + 0.03 + i * 0.055
            canvas.rect(ox + 0.08 - w / 2, yy, ox + 0.08 + w / 2, yy + 0.022 - i * 0.002, ink)
    elif kind < 0.7:  # cabinet
        oy = rng.uniform(0.35, 0.5)
        canvas.rect(ox, oy, ox + 0.2, 0.86, canvas.context_colour(rng.jitter((205, 208, 212), 10)))
        canvas.rect(
            ox + 0.015,
            oy + 0.02,
            ox + 0.185,
            oy + 0.2,
            canvas.context_colour(rng.jitter((160, 200, 215), 10)),
        )
        canvas.rect(ox + 0.09, oy + 0.28, ox + 0.11, oy + 0.33, canvas.context_colour((90, 90, 95)))
    else:  # window
        oy = rng.uniform(0.06, 0.2)
        canvas.rect(ox, oy, ox + 0.2, oy + 0.26, canvas.context_colour(rng.jitter((236, 236, 236), 6)))
        canvas.rect(
            ox + 0.02, oy + 0.02, ox + 0.18, oy + 0.24, canvas.context_colour(rng.jitter((140, 190, 235), 12))
        )
        canvas.rect(ox + 0.095, oy + 0.02, ox + 0.105, oy + 0.24, canvas.context_colour((236, 236, 236)))


def _draw_ward_setting(canvas: LabelCanvas, rng: UniformStream) -> None:
    wall = rng.jitter(rng.pick(((206, 230, 208), (222, 212, 236), (236, 226, 206))), 10)
    canvas.rect(0, 0, 1, 1, canvas.context_colour(wall))
    fy = _draw_floor(canvas, rng, (150, 160, 170))
    left = rng() < 0.5
    # curtain
    cw = rng.uniform(0.16, 0.24)
    cx0 = 0.0 if left else 1 - cw
    ccol = rng.jitter(rng.pick(((150, 200, 220), (170, 210, 170), (200, 180, 220))), 12)
    canvas.rect(cx0, 0, cx0 + cw, fy - 0.02, canvas.context_colour(ccol))
    dark = canvas.context_colour((int(ccol[0] * 0.75), int(ccol[1] * 0.75), int(ccol[2] * 0.75)))
    for i in range(1, 4):
        xx = cx0 + cw * i / 4
        canvas.rect(xx, 0, xx + 0.012, fy - 0.02, dark)
    # bed on the other side
    by = rng.uniform(0.55, 0.65)
    bx0, bx1 = (0.66, 1.05) if left else (-0.05, 0.34)
    frame = canvas.context_colour(rng.jitter((130, 135, 145), 12))
    canvas.rect(bx0, by + 0.06, bx1, by + 0.1, frame)
    canvas.rect(bx0 + 0.02, by + 0.1, bx0 + 0.04, fy + 0.04, frame)
    canvas.rect(bx1 - 0.04, by + 0.1, bx1 - 0.02, fy + 0.04, frame)
    canvas.rect(bx0, by, bx1, by + 0.07, canvas.context_colour(rng.jitter((244, 244, 246), 5)))
    canvas.rect(
        bx0, by - 0.02, bx1, by + 0.015, canvas.context_colour(rng.jitter((120, 170, 215), 14))
    )  # blanket edge
    # IV stand
    ix = (bx0 + 0.05) if left else (bx1 - 0.07)
    pole = canvas.context_colour(rng.jitter((150, 150, 158), 10))
    canvas.rect(ix, 0.12, ix + 0.015, fy + 0.02, pole)
    canvas.rect(ix - 0.04, 0.12, ix + 0.055, 0.135, pole)
    canvas.rect(ix - 0.04, 0.14, ix - 0.0, 0.24, canvas.context_colour(rng.jitter((214, 236, 244), 6)))
    # heart monitor above the bed
    if rng() < 0.7:
        mx = rng.uniform(0.72, 0.8) if left else rng.uniform(0.04, 0.12)
        my = rng.uniform(0.08, 0.22)
        canvas.rect(mx, my, mx + 0.18, my + 0.13, canvas.context_colour(rng.jitter((35, 40, 45), 6)))
        g = canvas.context_colour(rng.jitter((60, 230, 90), 10))
        canvas.line(
            [(mx + 0.02, my + 0.08), (mx + 0.07, my + 0.08), (mx + 0.09, my + 0.03), (mx + 0.11, my + 0.11),
             (mx + 0.13, my + 0.07), (mx + 0.16, my + 0.07)], 0.012, g,
        )  # fmt: skip


def _draw_fire_setting(canvas: LabelCanvas, rng: UniformStream) -> None:
    if rng() < 0.5:  # fire truck
        canvas.rect(
            0,
            0,
            1,
            1,
            canvas.context_colour(
                rng.jitter(rng.pick(((150, 160, 176), (176, 150, 130), (120, 130, 150))), 14)
            ),
        )
        gy = _draw_floor(canvas, rng, (78, 78, 84), rng.uniform(0.84, 0.9))
        ty = rng.uniform(0.3, 0.42)
        tx0, tx1 = rng.uniform(-0.2, 0.05), rng.uniform(0.95, 1.2)
        red = canvas.context_colour(rng.jitter((204, 28, 28), 14))
        canvas.rect(tx0, ty, tx1, gy + 0.02, red)
        cab_left = rng() < 0.5
        wx = tx0 + 0.06 if cab_left else tx1 - 0.26
        canvas.rect(
            wx, ty + 0.05, wx + 0.2, ty + 0.17, canvas.context_colour(rng.jitter((150, 200, 230), 10))
        )
        stripe = canvas.context_colour(rng.jitter((235, 235, 225), 8))
        canvas.rect(tx0, ty + 0.3, tx1, ty + 0.33, stripe)
        lad = canvas.context_colour(rng.jitter((190, 190, 196), 10))
        canvas.rect(tx0 + 0.05, ty - 0.09, tx1 - 0.05, ty - 0.07, lad)
        canvas.rect(tx0 + 0.05, ty - 0.03, tx1 - 0.05, ty - 0.01, lad)
        x = tx0 + 0.08
        while x < tx1 - 0.05:
            canvas.rect(x, ty - 0.09, x + 0.015, ty - 0.01, lad)
            x += 0.09
        blk = canvas.context_colour((25, 25, 28))
        hub = canvas.context_colour((160, 160, 165))
        for wxc in (tx0 + 0.2, tx1 - 0.2):
            canvas.ellipse(wxc, gy, 0.09, 0.09, blk)
            canvas.ellipse(wxc, gy, 0.035, 0.035, hub)
    else:  # burning building
        canvas.rect(
            0,
            0,
            1,
            1,
            canvas.context_colour(rng.jitter(rng.pick(((60, 50, 62), (80, 60, 50), (50, 50, 70))), 12)),
        )
        bx0, bx1 = rng.uniform(-0.1, 0.1), rng.uniform(0.9, 1.1)
        by = rng.uniform(0.18, 0.3)
        canvas.rect(
            bx0,
            by,
            bx1,
            1,
            canvas.context_colour(rng.jitter(rng.pick(((140, 70, 50), (120, 100, 90), (150, 120, 80))), 14)),
        )
        win = canvas.context_colour(rng.jitter((30, 24, 22), 6))
        glow = canvas.context_colour(rng.jitter((250, 150, 40), 10))
        flame = canvas.context_colour(rng.jitter((245, 110, 20), 12))
        yellow = canvas.context_colour(rng.jitter((252, 214, 70), 10))
        for i in range(4):
            wx = bx0 + 0.06 + i * (bx1 - bx0 - 0.12) / 3.5
            wy = by + 0.08
            lit = rng() < 0.6
            canvas.rect(wx, wy, wx + 0.12, wy + 0.14, glow if lit else win)
            if lit:
                h = rng.uniform(0.12, 0.22)
                canvas.poly([(wx - 0.02, wy + 0.02), (wx + 0.06, wy - h), (wx + 0.14, wy + 0.02)], flame)
                canvas.poly(
                    [(wx + 0.02, wy + 0.02), (wx + 0.06, wy - h * 0.55), (wx + 0.1, wy + 0.02)], yellow
                )
        smoke = canvas.context_colour(rng.jitter((110, 110, 115), 12))
        for _ in range(3):
            canvas.ellipse(
                rng.uniform(0.0, 1.0),
                rng.uniform(0.0, 0.12),
                rng.uniform(0.08, 0.16),
                rng.uniform(0.05, 0.09),
                smoke,
            )
        # flames at the bottom
        for _ in range(2):
            fx = rng.pick((rng.uniform(0.0, 0.2), rng.uniform(0.8, 1.0)))
            h = rng.uniform(0.15, 0.3)
            canvas.poly([(fx - 0.1, 1.0), (fx, 1.0 - h), (fx + 0.1, 1.0)], flame)
            canvas.poly([(fx - 0.05, 1.0), (fx, 1.0 - h * 0.5), (fx + 0.05, 1.0)], yellow)


def _draw_kitchen_setting(canvas: LabelCanvas, rng: UniformStream) -> None:
    tile = rng.jitter(rng.pick(((236, 236, 230), (212, 230, 236), (236, 224, 204), (222, 236, 222))), 8)
    canvas.rect(0, 0, 1, 1, canvas.context_colour(tile))
    grout = canvas.context_colour((int(tile[0] * 0.72), int(tile[1] * 0.72), int(tile[2] * 0.72)))
    t = rng.uniform(0.08, 0.12)
    off = rng() * t
    y = off
    while y < 1:
        canvas.rect(0, y, 1, y + 0.012, grout)
        y += t
    x = rng() * t
    while x < 1:
        canvas.rect(x, 0, x + 0.012, 1, grout)
        x += t
    steel = canvas.context_colour(rng.jitter((186, 190, 196), 10))
    dark = canvas.context_colour(rng.jitter((70, 72, 78), 8))
    # range hood on one side, shelf with pots on the other
    left = rng() < 0.5
    hx = rng.uniform(0.0, 0.12) if left else rng.uniform(0.6, 0.72)
    canvas.poly([(hx + 0.06, 0.0), (hx + 0.22, 0.0), (hx + 0.28, 0.2), (hx, 0.2)], steel)
    canvas.rect(hx, 0.2, hx + 0.28, 0.23, dark)
    sx0, sx1 = (0.66, 1.0) if left else (0.0, 0.34)
    sy = rng.uniform(0.3, 0.42)
    canvas.rect(sx0, sy, sx1, sy + 0.025, canvas.context_colour(rng.jitter((120, 84, 50), 10)))
    for i in range(rng.randint(2, 3)):
        px = sx0 + 0.03 + i * 0.1
        canvas.rect(px, sy - 0.07, px + 0.08, sy, dark if rng() < 0.5 else steel)
    # counter along the back
    cy = rng.uniform(0.72, 0.8)
    canvas.rect(0, cy, 1, 1, steel)
    canvas.rect(0, cy, 1, cy + 0.02, dark)
    # stove flames / knobs on the counter front
    for i in range(3):
        canvas.ellipse(0.15 + i * 0.35, cy + 0.1, 0.025, 0.025, dark)


def _draw_construction_setting(canvas: LabelCanvas, rng: UniformStream) -> None:
    canvas.rect(
        0,
        0,
        1,
        1,
        canvas.context_colour(rng.jitter(rng.pick(((130, 186, 232), (160, 200, 230), (190, 205, 215))), 12)),
    )
    if rng() < 0.5:  # crane
        cy = rng.uniform(0.05, 0.14)
        yel = canvas.context_colour(rng.jitter((236, 190, 20), 12))
        cx = rng.uniform(0.05, 0.9)
        canvas.rect(-0.05, cy, 1.05, cy + 0.025, yel)
        canvas.rect(cx, cy, cx + 0.03, 0.6, yel)
        canvas.line([(cx + 0.4 if cx < 0.5 else cx - 0.4, cy), (cx + 0.4 if cx < 0.5 else cx - 0.4, cy + 0.2)], 0.008,
                canvas.context_colour((40, 40, 40)))  # fmt: skip
    # brick/concrete wall behind the scaffolding
    wy = rng.uniform(0.35, 0.5)
    canvas.rect(
        0,
        wy,
        1,
        1,
        canvas.context_colour(rng.jitter(rng.pick(((170, 90, 60), (160, 160, 156), (190, 150, 110))), 12)),
    )
    pole = canvas.context_colour(rng.jitter((110, 110, 118), 12))
    plank = canvas.context_colour(rng.jitter((170, 120, 60), 14))
    sp = rng.uniform(0.16, 0.22)
    x = rng() * sp
    while x < 1:
        canvas.rect(x, 0.18, x + 0.02, 1, pole)
        x += sp
    y = 0.2 + rng() * 0.05
    while y < 0.9:
        canvas.rect(0, y, 1, y + 0.02, pole)
        if rng() < 0.5:
            canvas.rect(0, y - 0.03, 1, y, plank)
        y += rng.uniform(0.18, 0.24)
    canvas.line([(0.0, 0.9), (sp * 2, 0.2)], 0.015, pole)  # diagonal brace
    gy = rng.uniform(0.86, 0.92)
    canvas.rect(0, gy, 1, 1, canvas.context_colour(rng.jitter((140, 110, 76), 12)))
    # traffic cone
    orange = canvas.context_colour(rng.jitter((246, 120, 20), 10))
    white = canvas.context_colour((240, 240, 240))
    cx = rng.pick((rng.uniform(0.04, 0.16), rng.uniform(0.84, 0.96)))
    canvas.poly([(cx - 0.06, gy + 0.04), (cx, gy - 0.16), (cx + 0.06, gy + 0.04)], orange)
    canvas.rect(cx - 0.035, gy - 0.07, cx + 0.035, gy - 0.04, white)


def _draw_lab_setting(canvas: LabelCanvas, rng: UniformStream) -> None:
    canvas.rect(
        0,
        0,
        1,
        1,
        canvas.context_colour(rng.jitter(rng.pick(((236, 238, 240), (214, 226, 232), (226, 232, 222))), 8)),
    )
    shelf = canvas.context_colour(rng.jitter(rng.pick(((120, 90, 60), (130, 134, 140))), 10))
    cols = ((60, 200, 80), (50, 120, 230), (160, 60, 200), (250, 140, 30), (240, 80, 160), (230, 220, 40))
    glass = canvas.context_colour(rng.jitter((196, 214, 226), 6))
    for sy in (rng.uniform(0.22, 0.3), rng.uniform(0.44, 0.52)):
        canvas.rect(0, sy, 1, sy + 0.022, shelf)
        x = rng.uniform(0.0, 0.06)
        while x < 0.96:
            h = rng.uniform(0.07, 0.12)
            w = rng.uniform(0.045, 0.07)
            c = canvas.context_colour(rng.jitter(rng.pick(cols), 16))
            if rng() < 0.5:  # bottle
                canvas.rect(x, sy - h, x + w, sy, glass)
                canvas.rect(x, sy - h * 0.6, x + w, sy, c)
            else:  # flask
                canvas.poly([(x, sy), (x + w * 0.35, sy - h * 0.6), (x + w * 0.35, sy - h), (x + w * 0.65, sy - h),
                         (x + w * 0.65, sy - h * 0.6), (x + w, sy)], glass)  # fmt: skip
                canvas.poly(
                    [(x, sy), (x + w * 0.2, sy - h * 0.35), (x + w * 0.8, sy - h * 0.35), (x + w, sy)], c
                )
            x += w + rng.uniform(0.03, 0.09)
    by = rng.uniform(0.7, 0.78)
    canvas.rect(0, by, 1, by + 0.04, canvas.context_colour(rng.jitter((36, 38, 44), 6)))
    canvas.rect(0, by + 0.04, 1, 1, canvas.context_colour(rng.jitter((170, 176, 184), 10)))
    for i in range(4):
        canvas.rect(
            0.1 + i * 0.25, by + 0.1, 0.16 + i * 0.25, by + 0.115, canvas.context_colour((90, 92, 98))
        )


def _draw_cockpit_setting(canvas: LabelCanvas, rng: UniformStream) -> None:
    interior = rng.jitter(rng.pick(((52, 54, 60), (70, 70, 74), (44, 48, 58))), 8)
    canvas.rect(0, 0, 1, 1, canvas.context_colour(interior))
    sky = canvas.context_colour(rng.jitter(rng.pick(((118, 170, 232), (150, 196, 240), (90, 140, 210))), 12))
    cloud = canvas.context_colour(rng.jitter((244, 246, 250), 6))
    wy0, wy1 = rng.uniform(0.04, 0.1), rng.uniform(0.42, 0.52)
    canvas.poly([(0.02, wy0 + 0.06), (0.44, wy0), (0.44, wy1), (-0.02, wy1)], sky)
    canvas.poly([(0.56, wy0), (0.98, wy0 + 0.06), (1.02, wy1), (0.56, wy1)], sky)
    for _ in range(rng.randint(1, 3)):
        cx = rng.pick((rng.uniform(0.05, 0.38), rng.uniform(0.62, 0.95)))
        canvas.ellipse(
            cx, rng.uniform(wy0 + 0.12, wy1 - 0.08), rng.uniform(0.05, 0.09), rng.uniform(0.025, 0.045), cloud
        )
    # overhead switches
    sw = canvas.context_colour(rng.jitter((200, 200, 190), 10))
    for i in range(6):
        canvas.rect(0.08 + i * 0.15, 0.0, 0.11 + i * 0.15, 0.03, sw)
    # instrument panel
    py = rng.uniform(0.62, 0.7)
    canvas.rect(0, py, 1, 1, canvas.context_colour(rng.jitter((28, 28, 32), 5)))
    dial = canvas.context_colour((10, 10, 12))
    ring = canvas.context_colour(rng.jitter((220, 220, 220), 8))
    green = canvas.context_colour(rng.jitter((60, 220, 110), 12))
    amber = canvas.context_colour(rng.jitter((240, 170, 40), 12))
    for row in range(2):
        for i in range(6):
            x = 0.08 + i * 0.168 + (0.05 if row else 0.0)
            y = py + 0.09 + row * 0.14
            canvas.ellipse(x, y, 0.045, 0.045, ring)
            canvas.ellipse(x, y, 0.034, 0.034, dial)
            canvas.rect(x - 0.004, y - 0.03, x + 0.006, y, green if (i + row) % 2 else amber)


def _draw_classroom_setting(canvas: LabelCanvas, rng: UniformStream) -> None:
    canvas.rect(
        0,
        0,
        1,
        1,
        canvas.context_colour(rng.jitter(rng.pick(((232, 216, 172), (214, 226, 236), (236, 228, 214))), 10)),
    )
    bx0, bx1 = rng.uniform(-0.05, 0.08), rng.uniform(0.92, 1.05)
    by0, by1 = rng.uniform(0.04, 0.12), rng.uniform(0.55, 0.66)
    canvas.rect(bx0, by0, bx1, by1, canvas.context_colour(rng.jitter((124, 82, 44), 12)))
    board = rng.jitter(rng.pick(((38, 82, 54), (34, 40, 42), (40, 60, 70))), 8)
    canvas.rect(bx0 + 0.025, by0 + 0.025, bx1 - 0.025, by1 - 0.025, canvas.context_colour(board))
    chalk = canvas.context_colour(rng.jitter((236, 236, 228), 6))
    w = max(1.0 / canvas.resolution, 0.012)
    for _ in range(rng.randint(4, 7)):
        x = rng.uniform(bx0 + 0.05, bx1 - 0.25)
        y = rng.uniform(by0 + 0.06, by1 - 0.08)
        pts = [(x, y)]
        for _ in range(rng.randint(3, 6)):
            x += rng.uniform(0.025, 0.05)
            pts.append((x, y + rng.uniform(-0.035, 0.035)))
        canvas.line(pts, w, chalk)
    canvas.rect(bx0 + 0.2, by1 - 0.04, bx0 + 0.3, by1 - 0.025, chalk)  # chalk ledge piece
    if rng() < 0.6:  # clock
        cx = rng.pick((rng.uniform(0.08, 0.15), rng.uniform(0.85, 0.92)))
        cy = by1 + 0.09
        canvas.ellipse(cx, cy, 0.06, 0.06, canvas.context_colour((30, 30, 30)))
        canvas.ellipse(cx, cy, 0.05, 0.05, canvas.context_colour((246, 246, 240)))
        canvas.line([(cx, cy), (cx, cy - 0.04)], 0.012, canvas.context_colour((30, 30, 30)))
        canvas.line([(cx, cy), (cx + 0.03, cy)], 0.012, canvas.context_colour((30, 30, 30)))
    _draw_floor(canvas, rng, (150, 110, 76))


SETTING_PAINTERS = {
    "doctor": _draw_hospital_setting,
    "nurse": _draw_ward_setting,
    "firefighter": _draw_fire_setting,
    "chef": _draw_kitchen_setting,
    "construction worker": _draw_construction_setting,
    "scientist": _draw_lab_setting,
    "pilot": _draw_cockpit_setting,
    "teacher": _draw_classroom_setting,
}


def draw_clutter(canvas: LabelCanvas, rng: UniformStream, n: int) -> None:
    for _ in range(n):
        c = canvas.context_colour((int(rng() * 256), int(rng() * 256), int(rng() * 256)))
        x, y, s = rng(), rng.uniform(0.0, 0.9), rng.uniform(0.03, 0.07)
        k = rng()
        if k < 0.34:
            canvas.ellipse(x, y, s, s, c)
        elif k < 0.67:
            canvas.rect(x - s, y - s, x + s, y + s, c)
        else:
            canvas.poly([(x - s, y + s), (x, y - s), (x + s, y + s)], c)


def draw_occluder(canvas: LabelCanvas, rng: UniformStream, setting: str) -> None:
    if rng() < 0.65:  # desk / counter / crate band across the bottom
        y0 = rng.uniform(0.82, 0.9)
        x0, x1 = rng.uniform(-0.2, 0.3), rng.uniform(0.7, 1.2)
        base = {
            "chef": (176, 180, 186),
            "teacher": (140, 96, 56),
            "scientist": (40, 42, 48),
            "pilot": (30, 30, 34),
        }.get(setting, rng.pick(((150, 110, 70), (120, 120, 128), (170, 150, 120))))
        c = rng.jitter(base, 12)
        canvas.rect(x0, y0, x1, 1.0, canvas.context_colour(c))
        canvas.rect(
            x0, y0, x1, y0 + 0.02, canvas.context_colour((int(c[0] * 0.7), int(c[1] * 0.7), int(c[2] * 0.7)))
        )
    else:  # potted plant / box at a side
        x = rng.pick((rng.uniform(0.0, 0.2), rng.uniform(0.8, 1.0)))
        y = rng.uniform(0.7, 0.8)
        leaf = canvas.context_colour(rng.jitter((50, 130, 60), 16))
        canvas.ellipse(x, y, 0.09, 0.11, leaf)
        canvas.ellipse(x - 0.06, y + 0.06, 0.06, 0.07, leaf)
        canvas.ellipse(x + 0.06, y + 0.06, 0.06, 0.07, leaf)
        canvas.poly([(x - 0.08, y + 0.12), (x + 0.08, y + 0.12), (x + 0.06, 1.0), (x - 0.06, 1.0)],
                canvas.context_colour(rng.jitter((170, 90, 50), 12)))  # fmt: skip
