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
    canvas: LabelCanvas, rng: UniformStream, base: Sequence[int], floor_top: float | None = None
) -> float:
    floor_y = rng.uniform(0.8, 0.88) if floor_top is None else floor_top
    canvas.rect(0, floor_y, 1, 1, canvas.context_colour(rng.jitter(base, 12)))
    return floor_y


def _draw_hospital_setting(canvas: LabelCanvas, rng: UniformStream) -> None:
    wall = rng.jitter(rng.pick(((196, 222, 234), (214, 234, 226), (232, 236, 242))), 10)
    canvas.rect(0, 0, 1, 1, canvas.context_colour(wall))
    _draw_floor(canvas, rng, (168, 178, 178))
    # red-cross sign
    left = rng() < 0.5
    sign_size = rng.uniform(0.17, 0.23)
    sign_x = rng.uniform(0.02, 0.14) if left else rng.uniform(0.64, 0.81)
    sign_y = rng.uniform(0.03, 0.22)
    canvas.rect(
        sign_x,
        sign_y,
        sign_x + sign_size,
        sign_y + sign_size,
        canvas.context_colour(rng.jitter((246, 246, 246), 6)),
    )
    red = canvas.context_colour(rng.jitter((214, 30, 40), 12))
    bar_half_width = max(sign_size * 0.12, 1.0 / canvas.resolution)
    canvas.rect(
        sign_x + sign_size * 0.12,
        sign_y + sign_size / 2 - bar_half_width,
        sign_x + sign_size * 0.88,
        sign_y + sign_size / 2 + bar_half_width,
        red,
    )
    canvas.rect(
        sign_x + sign_size / 2 - bar_half_width,
        sign_y + sign_size * 0.12,
        sign_x + sign_size / 2 + bar_half_width,
        sign_y + sign_size * 0.88,
        red,
    )
    # second item on the other side
    item_x = rng.uniform(0.7, 0.8) if left else rng.uniform(0.04, 0.14)
    kind = rng()
    if kind < 0.4:  # eye chart
        item_y = rng.uniform(0.08, 0.25)
        canvas.rect(item_x, item_y, item_x + 0.16, item_y + 0.3, canvas.context_colour((240, 240, 236)))
        ink = canvas.context_colour(rng.jitter((25, 25, 30), 8))
        for i in range(5):
            row_width = 0.12 - i * 0.022
            row_y = item_y + 0.03 + i * 0.055
            canvas.rect(
                item_x + 0.08 - row_width / 2,
                row_y,
                item_x + 0.08 + row_width / 2,
                row_y + 0.022 - i * 0.002,
                ink,
            )
    elif kind < 0.7:  # cabinet
        item_y = rng.uniform(0.35, 0.5)
        canvas.rect(
            item_x, item_y, item_x + 0.2, 0.86, canvas.context_colour(rng.jitter((205, 208, 212), 10))
        )
        canvas.rect(
            item_x + 0.015,
            item_y + 0.02,
            item_x + 0.185,
            item_y + 0.2,
            canvas.context_colour(rng.jitter((160, 200, 215), 10)),
        )
        canvas.rect(
            item_x + 0.09, item_y + 0.28, item_x + 0.11, item_y + 0.33, canvas.context_colour((90, 90, 95))
        )
    else:  # window
        item_y = rng.uniform(0.06, 0.2)
        canvas.rect(
            item_x, item_y, item_x + 0.2, item_y + 0.26, canvas.context_colour(rng.jitter((236, 236, 236), 6))
        )
        canvas.rect(
            item_x + 0.02,
            item_y + 0.02,
            item_x + 0.18,
            item_y + 0.24,
            canvas.context_colour(rng.jitter((140, 190, 235), 12)),
        )
        canvas.rect(
            item_x + 0.095,
            item_y + 0.02,
            item_x + 0.105,
            item_y + 0.24,
            canvas.context_colour((236, 236, 236)),
        )


def _draw_ward_setting(canvas: LabelCanvas, rng: UniformStream) -> None:
    wall = rng.jitter(rng.pick(((206, 230, 208), (222, 212, 236), (236, 226, 206))), 10)
    canvas.rect(0, 0, 1, 1, canvas.context_colour(wall))
    floor_y = _draw_floor(canvas, rng, (150, 160, 170))
    left = rng() < 0.5
    # curtain
    curtain_width = rng.uniform(0.16, 0.24)
    curtain_x = 0.0 if left else 1 - curtain_width
    curtain_rgb = rng.jitter(rng.pick(((150, 200, 220), (170, 210, 170), (200, 180, 220))), 12)
    canvas.rect(curtain_x, 0, curtain_x + curtain_width, floor_y - 0.02, canvas.context_colour(curtain_rgb))
    dark = canvas.context_colour(
        (int(curtain_rgb[0] * 0.75), int(curtain_rgb[1] * 0.75), int(curtain_rgb[2] * 0.75))
    )
    for i in range(1, 4):
        fold_x = curtain_x + curtain_width * i / 4
        canvas.rect(fold_x, 0, fold_x + 0.012, floor_y - 0.02, dark)
    # bed on the other side
    bed_y = rng.uniform(0.55, 0.65)
    bed_x0, bed_x1 = (0.66, 1.05) if left else (-0.05, 0.34)
    frame = canvas.context_colour(rng.jitter((130, 135, 145), 12))
    canvas.rect(bed_x0, bed_y + 0.06, bed_x1, bed_y + 0.1, frame)
    canvas.rect(bed_x0 + 0.02, bed_y + 0.1, bed_x0 + 0.04, floor_y + 0.04, frame)
    canvas.rect(bed_x1 - 0.04, bed_y + 0.1, bed_x1 - 0.02, floor_y + 0.04, frame)
    canvas.rect(bed_x0, bed_y, bed_x1, bed_y + 0.07, canvas.context_colour(rng.jitter((244, 244, 246), 5)))
    canvas.rect(
        bed_x0, bed_y - 0.02, bed_x1, bed_y + 0.015, canvas.context_colour(rng.jitter((120, 170, 215), 14))
    )  # blanket edge
    # IV stand
    stand_x = (bed_x0 + 0.05) if left else (bed_x1 - 0.07)
    pole = canvas.context_colour(rng.jitter((150, 150, 158), 10))
    canvas.rect(stand_x, 0.12, stand_x + 0.015, floor_y + 0.02, pole)
    canvas.rect(stand_x - 0.04, 0.12, stand_x + 0.055, 0.135, pole)
    canvas.rect(
        stand_x - 0.04, 0.14, stand_x - 0.0, 0.24, canvas.context_colour(rng.jitter((214, 236, 244), 6))
    )
    # heart monitor above the bed
    if rng() < 0.7:
        monitor_x = rng.uniform(0.72, 0.8) if left else rng.uniform(0.04, 0.12)
        monitor_y = rng.uniform(0.08, 0.22)
        canvas.rect(
            monitor_x,
            monitor_y,
            monitor_x + 0.18,
            monitor_y + 0.13,
            canvas.context_colour(rng.jitter((35, 40, 45), 6)),
        )
        trace = canvas.context_colour(rng.jitter((60, 230, 90), 10))
        canvas.line(
            [
                (monitor_x + 0.02, monitor_y + 0.08),
                (monitor_x + 0.07, monitor_y + 0.08),
                (monitor_x + 0.09, monitor_y + 0.03),
                (monitor_x + 0.11, monitor_y + 0.11),
                (monitor_x + 0.13, monitor_y + 0.07),
                (monitor_x + 0.16, monitor_y + 0.07),
            ],
            0.012,
            trace,
        )


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
        ground_y = _draw_floor(canvas, rng, (78, 78, 84), rng.uniform(0.84, 0.9))
        truck_y = rng.uniform(0.3, 0.42)
        truck_x0, truck_x1 = rng.uniform(-0.2, 0.05), rng.uniform(0.95, 1.2)
        red = canvas.context_colour(rng.jitter((204, 28, 28), 14))
        canvas.rect(truck_x0, truck_y, truck_x1, ground_y + 0.02, red)
        cab_left = rng() < 0.5
        window_x = truck_x0 + 0.06 if cab_left else truck_x1 - 0.26
        canvas.rect(
            window_x,
            truck_y + 0.05,
            window_x + 0.2,
            truck_y + 0.17,
            canvas.context_colour(rng.jitter((150, 200, 230), 10)),
        )
        stripe = canvas.context_colour(rng.jitter((235, 235, 225), 8))
        canvas.rect(truck_x0, truck_y + 0.3, truck_x1, truck_y + 0.33, stripe)
        ladder = canvas.context_colour(rng.jitter((190, 190, 196), 10))
        canvas.rect(truck_x0 + 0.05, truck_y - 0.09, truck_x1 - 0.05, truck_y - 0.07, ladder)
        canvas.rect(truck_x0 + 0.05, truck_y - 0.03, truck_x1 - 0.05, truck_y - 0.01, ladder)
        x = truck_x0 + 0.08
        while x < truck_x1 - 0.05:
            canvas.rect(x, truck_y - 0.09, x + 0.015, truck_y - 0.01, ladder)
            x += 0.09
        tyre = canvas.context_colour((25, 25, 28))
        hub = canvas.context_colour((160, 160, 165))
        for wheel_x in (truck_x0 + 0.2, truck_x1 - 0.2):
            canvas.ellipse(wheel_x, ground_y, 0.09, 0.09, tyre)
            canvas.ellipse(wheel_x, ground_y, 0.035, 0.035, hub)
    else:  # burning building
        canvas.rect(
            0,
            0,
            1,
            1,
            canvas.context_colour(rng.jitter(rng.pick(((60, 50, 62), (80, 60, 50), (50, 50, 70))), 12)),
        )
        building_x0, building_x1 = rng.uniform(-0.1, 0.1), rng.uniform(0.9, 1.1)
        building_y = rng.uniform(0.18, 0.3)
        canvas.rect(
            building_x0,
            building_y,
            building_x1,
            1,
            canvas.context_colour(rng.jitter(rng.pick(((140, 70, 50), (120, 100, 90), (150, 120, 80))), 14)),
        )
        win = canvas.context_colour(rng.jitter((30, 24, 22), 6))
        glow = canvas.context_colour(rng.jitter((250, 150, 40), 10))
        flame = canvas.context_colour(rng.jitter((245, 110, 20), 12))
        yellow = canvas.context_colour(rng.jitter((252, 214, 70), 10))
        for i in range(4):
            window_x = building_x0 + 0.06 + i * (building_x1 - building_x0 - 0.12) / 3.5
            window_y = building_y + 0.08
            lit = rng() < 0.6
            canvas.rect(window_x, window_y, window_x + 0.12, window_y + 0.14, glow if lit else win)
            if lit:
                flame_height = rng.uniform(0.12, 0.22)
                canvas.poly(
                    [
                        (window_x - 0.02, window_y + 0.02),
                        (window_x + 0.06, window_y - flame_height),
                        (window_x + 0.14, window_y + 0.02),
                    ],
                    flame,
                )
                canvas.poly(
                    [
                        (window_x + 0.02, window_y + 0.02),
                        (window_x + 0.06, window_y - flame_height * 0.55),
                        (window_x + 0.1, window_y + 0.02),
                    ],
                    yellow,
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
            flame_x = rng.pick((rng.uniform(0.0, 0.2), rng.uniform(0.8, 1.0)))
            flame_height = rng.uniform(0.15, 0.3)
            canvas.poly([(flame_x - 0.1, 1.0), (flame_x, 1.0 - flame_height), (flame_x + 0.1, 1.0)], flame)
            canvas.poly(
                [(flame_x - 0.05, 1.0), (flame_x, 1.0 - flame_height * 0.5), (flame_x + 0.05, 1.0)], yellow
            )


def _draw_kitchen_setting(canvas: LabelCanvas, rng: UniformStream) -> None:
    tile = rng.jitter(rng.pick(((236, 236, 230), (212, 230, 236), (236, 224, 204), (222, 236, 222))), 8)
    canvas.rect(0, 0, 1, 1, canvas.context_colour(tile))
    grout = canvas.context_colour((int(tile[0] * 0.72), int(tile[1] * 0.72), int(tile[2] * 0.72)))
    tile_size = rng.uniform(0.08, 0.12)
    offset = rng() * tile_size
    y = offset
    while y < 1:
        canvas.rect(0, y, 1, y + 0.012, grout)
        y += tile_size
    x = rng() * tile_size
    while x < 1:
        canvas.rect(x, 0, x + 0.012, 1, grout)
        x += tile_size
    steel = canvas.context_colour(rng.jitter((186, 190, 196), 10))
    dark = canvas.context_colour(rng.jitter((70, 72, 78), 8))
    # range hood on one side, shelf with pots on the other
    left = rng() < 0.5
    hood_x = rng.uniform(0.0, 0.12) if left else rng.uniform(0.6, 0.72)
    canvas.poly([(hood_x + 0.06, 0.0), (hood_x + 0.22, 0.0), (hood_x + 0.28, 0.2), (hood_x, 0.2)], steel)
    canvas.rect(hood_x, 0.2, hood_x + 0.28, 0.23, dark)
    shelf_x0, shelf_x1 = (0.66, 1.0) if left else (0.0, 0.34)
    shelf_y = rng.uniform(0.3, 0.42)
    canvas.rect(
        shelf_x0, shelf_y, shelf_x1, shelf_y + 0.025, canvas.context_colour(rng.jitter((120, 84, 50), 10))
    )
    for i in range(rng.randint(2, 3)):
        pot_x = shelf_x0 + 0.03 + i * 0.1
        canvas.rect(pot_x, shelf_y - 0.07, pot_x + 0.08, shelf_y, dark if rng() < 0.5 else steel)
    # counter along the back
    counter_y = rng.uniform(0.72, 0.8)
    canvas.rect(0, counter_y, 1, 1, steel)
    canvas.rect(0, counter_y, 1, counter_y + 0.02, dark)
    # stove flames / knobs on the counter front
    for i in range(3):
        canvas.ellipse(0.15 + i * 0.35, counter_y + 0.1, 0.025, 0.025, dark)


def _draw_construction_setting(canvas: LabelCanvas, rng: UniformStream) -> None:
    canvas.rect(
        0,
        0,
        1,
        1,
        canvas.context_colour(rng.jitter(rng.pick(((130, 186, 232), (160, 200, 230), (190, 205, 215))), 12)),
    )
    if rng() < 0.5:  # crane
        crane_y = rng.uniform(0.05, 0.14)
        yellow = canvas.context_colour(rng.jitter((236, 190, 20), 12))
        cone_x = rng.uniform(0.05, 0.9)
        canvas.rect(-0.05, crane_y, 1.05, crane_y + 0.025, yellow)
        canvas.rect(cone_x, crane_y, cone_x + 0.03, 0.6, yellow)
        canvas.line(
            [
                (cone_x + 0.4 if cone_x < 0.5 else cone_x - 0.4, crane_y),
                (cone_x + 0.4 if cone_x < 0.5 else cone_x - 0.4, crane_y + 0.2),
            ],
            0.008,
            canvas.context_colour((40, 40, 40)),
        )
    # brick/concrete wall behind the scaffolding
    wall_y = rng.uniform(0.35, 0.5)
    canvas.rect(
        0,
        wall_y,
        1,
        1,
        canvas.context_colour(rng.jitter(rng.pick(((170, 90, 60), (160, 160, 156), (190, 150, 110))), 12)),
    )
    pole = canvas.context_colour(rng.jitter((110, 110, 118), 12))
    plank = canvas.context_colour(rng.jitter((170, 120, 60), 14))
    pole_spacing = rng.uniform(0.16, 0.22)
    x = rng() * pole_spacing
    while x < 1:
        canvas.rect(x, 0.18, x + 0.02, 1, pole)
        x += pole_spacing
    y = 0.2 + rng() * 0.05
    while y < 0.9:
        canvas.rect(0, y, 1, y + 0.02, pole)
        if rng() < 0.5:
            canvas.rect(0, y - 0.03, 1, y, plank)
        y += rng.uniform(0.18, 0.24)
    canvas.line([(0.0, 0.9), (pole_spacing * 2, 0.2)], 0.015, pole)  # diagonal brace
    ground_y = rng.uniform(0.86, 0.92)
    canvas.rect(0, ground_y, 1, 1, canvas.context_colour(rng.jitter((140, 110, 76), 12)))
    # traffic cone
    orange = canvas.context_colour(rng.jitter((246, 120, 20), 10))
    white = canvas.context_colour((240, 240, 240))
    cone_x = rng.pick((rng.uniform(0.04, 0.16), rng.uniform(0.84, 0.96)))
    canvas.poly(
        [(cone_x - 0.06, ground_y + 0.04), (cone_x, ground_y - 0.16), (cone_x + 0.06, ground_y + 0.04)],
        orange,
    )
    canvas.rect(cone_x - 0.035, ground_y - 0.07, cone_x + 0.035, ground_y - 0.04, white)


def _draw_lab_setting(canvas: LabelCanvas, rng: UniformStream) -> None:
    canvas.rect(
        0,
        0,
        1,
        1,
        canvas.context_colour(rng.jitter(rng.pick(((236, 238, 240), (214, 226, 232), (226, 232, 222))), 8)),
    )
    shelf = canvas.context_colour(rng.jitter(rng.pick(((120, 90, 60), (130, 134, 140))), 10))
    liquids = ((60, 200, 80), (50, 120, 230), (160, 60, 200), (250, 140, 30), (240, 80, 160), (230, 220, 40))
    glass = canvas.context_colour(rng.jitter((196, 214, 226), 6))
    for shelf_y in (rng.uniform(0.22, 0.3), rng.uniform(0.44, 0.52)):
        canvas.rect(0, shelf_y, 1, shelf_y + 0.022, shelf)
        x = rng.uniform(0.0, 0.06)
        while x < 0.96:
            height = rng.uniform(0.07, 0.12)
            width = rng.uniform(0.045, 0.07)
            liquid = canvas.context_colour(rng.jitter(rng.pick(liquids), 16))
            if rng() < 0.5:  # bottle
                canvas.rect(x, shelf_y - height, x + width, shelf_y, glass)
                canvas.rect(x, shelf_y - height * 0.6, x + width, shelf_y, liquid)
            else:  # flask
                canvas.poly(
                    [
                        (x, shelf_y),
                        (x + width * 0.35, shelf_y - height * 0.6),
                        (x + width * 0.35, shelf_y - height),
                        (x + width * 0.65, shelf_y - height),
                        (x + width * 0.65, shelf_y - height * 0.6),
                        (x + width, shelf_y),
                    ],
                    glass,
                )
                canvas.poly(
                    [
                        (x, shelf_y),
                        (x + width * 0.2, shelf_y - height * 0.35),
                        (x + width * 0.8, shelf_y - height * 0.35),
                        (x + width, shelf_y),
                    ],
                    liquid,
                )
            x += width + rng.uniform(0.03, 0.09)
    bench_y = rng.uniform(0.7, 0.78)
    canvas.rect(0, bench_y, 1, bench_y + 0.04, canvas.context_colour(rng.jitter((36, 38, 44), 6)))
    canvas.rect(0, bench_y + 0.04, 1, 1, canvas.context_colour(rng.jitter((170, 176, 184), 10)))
    for i in range(4):
        canvas.rect(
            0.1 + i * 0.25,
            bench_y + 0.1,
            0.16 + i * 0.25,
            bench_y + 0.115,
            canvas.context_colour((90, 92, 98)),
        )


def _draw_cockpit_setting(canvas: LabelCanvas, rng: UniformStream) -> None:
    interior = rng.jitter(rng.pick(((52, 54, 60), (70, 70, 74), (44, 48, 58))), 8)
    canvas.rect(0, 0, 1, 1, canvas.context_colour(interior))
    sky = canvas.context_colour(rng.jitter(rng.pick(((118, 170, 232), (150, 196, 240), (90, 140, 210))), 12))
    cloud = canvas.context_colour(rng.jitter((244, 246, 250), 6))
    window_top, window_bottom = rng.uniform(0.04, 0.1), rng.uniform(0.42, 0.52)
    canvas.poly(
        [(0.02, window_top + 0.06), (0.44, window_top), (0.44, window_bottom), (-0.02, window_bottom)], sky
    )
    canvas.poly(
        [(0.56, window_top), (0.98, window_top + 0.06), (1.02, window_bottom), (0.56, window_bottom)], sky
    )
    for _ in range(rng.randint(1, 3)):
        cloud_x = rng.pick((rng.uniform(0.05, 0.38), rng.uniform(0.62, 0.95)))
        canvas.ellipse(
            cloud_x,
            rng.uniform(window_top + 0.12, window_bottom - 0.08),
            rng.uniform(0.05, 0.09),
            rng.uniform(0.025, 0.045),
            cloud,
        )
    # overhead switches
    switch = canvas.context_colour(rng.jitter((200, 200, 190), 10))
    for i in range(6):
        canvas.rect(0.08 + i * 0.15, 0.0, 0.11 + i * 0.15, 0.03, switch)
    # instrument panel
    panel_y = rng.uniform(0.62, 0.7)
    canvas.rect(0, panel_y, 1, 1, canvas.context_colour(rng.jitter((28, 28, 32), 5)))
    dial = canvas.context_colour((10, 10, 12))
    ring = canvas.context_colour(rng.jitter((220, 220, 220), 8))
    green = canvas.context_colour(rng.jitter((60, 220, 110), 12))
    amber = canvas.context_colour(rng.jitter((240, 170, 40), 12))
    for row in range(2):
        for i in range(6):
            x = 0.08 + i * 0.168 + (0.05 if row else 0.0)
            y = panel_y + 0.09 + row * 0.14
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
    board_x0, board_x1 = rng.uniform(-0.05, 0.08), rng.uniform(0.92, 1.05)
    board_y0, board_y1 = rng.uniform(0.04, 0.12), rng.uniform(0.55, 0.66)
    canvas.rect(board_x0, board_y0, board_x1, board_y1, canvas.context_colour(rng.jitter((124, 82, 44), 12)))
    board = rng.jitter(rng.pick(((38, 82, 54), (34, 40, 42), (40, 60, 70))), 8)
    canvas.rect(
        board_x0 + 0.025, board_y0 + 0.025, board_x1 - 0.025, board_y1 - 0.025, canvas.context_colour(board)
    )
    chalk = canvas.context_colour(rng.jitter((236, 236, 228), 6))
    chalk_width = max(1.0 / canvas.resolution, 0.012)
    for _ in range(rng.randint(4, 7)):
        x = rng.uniform(board_x0 + 0.05, board_x1 - 0.25)
        y = rng.uniform(board_y0 + 0.06, board_y1 - 0.08)
        stroke = [(x, y)]
        for _ in range(rng.randint(3, 6)):
            x += rng.uniform(0.025, 0.05)
            stroke.append((x, y + rng.uniform(-0.035, 0.035)))
        canvas.line(stroke, chalk_width, chalk)
    canvas.rect(board_x0 + 0.2, board_y1 - 0.04, board_x0 + 0.3, board_y1 - 0.025, chalk)  # chalk ledge piece
    if rng() < 0.6:  # clock
        clock_x = rng.pick((rng.uniform(0.08, 0.15), rng.uniform(0.85, 0.92)))
        clock_y = board_y1 + 0.09
        canvas.ellipse(clock_x, clock_y, 0.06, 0.06, canvas.context_colour((30, 30, 30)))
        canvas.ellipse(clock_x, clock_y, 0.05, 0.05, canvas.context_colour((246, 246, 240)))
        canvas.line(
            [(clock_x, clock_y), (clock_x, clock_y - 0.04)], 0.012, canvas.context_colour((30, 30, 30))
        )
        canvas.line(
            [(clock_x, clock_y), (clock_x + 0.03, clock_y)], 0.012, canvas.context_colour((30, 30, 30))
        )
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


def draw_clutter(canvas: LabelCanvas, rng: UniformStream, n_shapes: int) -> None:
    for _ in range(n_shapes):
        colour = canvas.context_colour((int(rng() * 256), int(rng() * 256), int(rng() * 256)))
        x, y, half_size = rng(), rng.uniform(0.0, 0.9), rng.uniform(0.03, 0.07)
        shape = rng()
        if shape < 0.34:
            canvas.ellipse(x, y, half_size, half_size, colour)
        elif shape < 0.67:
            canvas.rect(x - half_size, y - half_size, x + half_size, y + half_size, colour)
        else:
            canvas.poly(
                [(x - half_size, y + half_size), (x, y - half_size), (x + half_size, y + half_size)], colour
            )


def draw_occluder(canvas: LabelCanvas, rng: UniformStream, setting: str) -> None:
    if rng() < 0.65:  # desk / counter / crate band across the bottom
        band_top = rng.uniform(0.82, 0.9)
        band_x0, band_x1 = rng.uniform(-0.2, 0.3), rng.uniform(0.7, 1.2)
        base = {
            "chef": (176, 180, 186),
            "teacher": (140, 96, 56),
            "scientist": (40, 42, 48),
            "pilot": (30, 30, 34),
        }.get(setting, rng.pick(((150, 110, 70), (120, 120, 128), (170, 150, 120))))
        band_rgb = rng.jitter(base, 12)
        canvas.rect(band_x0, band_top, band_x1, 1.0, canvas.context_colour(band_rgb))
        canvas.rect(
            band_x0,
            band_top,
            band_x1,
            band_top + 0.02,
            canvas.context_colour((int(band_rgb[0] * 0.7), int(band_rgb[1] * 0.7), int(band_rgb[2] * 0.7))),
        )
    else:  # potted plant / box at a side
        plant_x = rng.pick((rng.uniform(0.0, 0.2), rng.uniform(0.8, 1.0)))
        plant_y = rng.uniform(0.7, 0.8)
        leaf = canvas.context_colour(rng.jitter((50, 130, 60), 16))
        canvas.ellipse(plant_x, plant_y, 0.09, 0.11, leaf)
        canvas.ellipse(plant_x - 0.06, plant_y + 0.06, 0.06, 0.07, leaf)
        canvas.ellipse(plant_x + 0.06, plant_y + 0.06, 0.06, 0.07, leaf)
        canvas.poly(
            [
                (plant_x - 0.08, plant_y + 0.12),
                (plant_x + 0.08, plant_y + 0.12),
                (plant_x + 0.06, 1.0),
                (plant_x - 0.06, 1.0),
            ],
            canvas.context_colour(rng.jitter((170, 90, 50), 12)),
        )
