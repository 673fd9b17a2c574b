"""Composing a scene: the layers on the label canvas, then colours, lighting, noise and masks.

Layers, back to front: setting (background) -> clutter and confuser object -> background people
(``n_people > 1``) -> main person -> held object -> foreground occluder -> spurious square -> unsafe
element. The label image is then mirrored (``flip``), mapped through the palette (numpy gather), lit
(global gain + linear gradient) and given a fixed pixel-noise texture. A pixel is in person ``k``'s mask
iff its final label is in that person's range (anything drawn later on top removes it from the mask).
"""

from __future__ import annotations

import math

import numpy as np

from trustvl.data_builders.synthworld.artefacts import draw_artefact
from trustvl.data_builders.synthworld.body import HAND_POINT
from trustvl.data_builders.synthworld.canvas import PERSON_BASE, PERSON_SLOTS, LabelCanvas
from trustvl.data_builders.synthworld.config import KNOWN_LEVELS
from trustvl.data_builders.synthworld.held_objects import HELD_OBJECT_PAINTERS, UnitBox
from trustvl.data_builders.synthworld.person import draw_person
from trustvl.data_builders.synthworld.randomness import UniformStream, derive_seed
from trustvl.data_builders.synthworld.scenery import SETTING_PAINTERS, draw_clutter, draw_occluder
from trustvl.data_builders.synthworld.specs import Box, RenderedScene, SceneSpec, with_attributes

__all__ = ["draw_label_image", "person_envelope", "person_label_masks", "render_spec"]


def unit_box_to_pixels(box: UnitBox, resolution: int) -> Box:
    """A unit-coordinate box as the pixel box covering it, clipped to the image (exclusive ends)."""
    x0 = max(0, min(resolution, math.floor(box[0] * resolution)))
    y0 = max(0, min(resolution, math.floor(box[1] * resolution)))
    x1 = max(0, min(resolution, math.ceil(box[2] * resolution)))
    y1 = max(0, min(resolution, math.ceil(box[3] * resolution)))
    return (x0, y0, x1, y1)


def draw_label_image(spec: SceneSpec) -> tuple[np.ndarray, np.ndarray, dict[str, Box]]:
    """The label image (already mirrored), its palette and the object boxes (final pixel coordinates)."""
    resolution = spec.resolution
    canvas = LabelCanvas(resolution)
    layout_rng = UniformStream(spec.layout_seed)
    SETTING_PAINTERS[spec.setting](canvas, UniformStream(derive_seed(spec.layout_seed, "setting")))
    draw_clutter(canvas, layout_rng, spec.n_clutter)
    if spec.confuser is not None:
        HELD_OBJECT_PAINTERS[spec.confuser](
            canvas,
            UniformStream(derive_seed(spec.layout_seed, "confuser")),
            layout_rng.uniform(0.08, 0.92),
            layout_rng.uniform(0.2, 0.7),
            0.6,
        )
    unit_boxes: dict[str, UnitBox] = {}
    # people: background ones first, main person last
    for k in range(len(spec.people) - 1, -1, -1):
        canvas.begin_person(k)
        draw_person(canvas, spec.people[k], spec.attire or spec.occupation, spec.hat, plain=spec.cue_poor)
    main = spec.people[0]
    height = 0.85 * main.scale
    if spec.held_object:
        hand_x, hand_y = main.x + height * HAND_POINT[0], 1.02 - height + height * HAND_POINT[1]
        unit_boxes["held_object"] = HELD_OBJECT_PAINTERS[spec.occupation](
            canvas, UniformStream(derive_seed(spec.layout_seed, "object")), hand_x, hand_y, height
        )
    if spec.occluder:
        draw_occluder(canvas, UniformStream(derive_seed(spec.layout_seed, "occluder")), spec.setting)
    # artefacts are positioned in final-image coordinates: draw them mirrored when the scene flips
    artefact_boxes: dict[str, Box] = {}
    for name, element in (("spurious", spec.spurious), ("unsafe", spec.unsafe)):
        if element is None:
            continue
        left_x = (1.0 - element.x - element.size) if spec.flip else element.x
        draw_artefact(canvas, element, left_x)
        extent = (element.x, element.y, element.x + element.size, element.y + element.size)
        artefact_boxes[name] = unit_box_to_pixels(extent, resolution)
    labels = np.asarray(canvas.image)
    if spec.flip:
        labels = labels[:, ::-1]
    boxes: dict[str, Box] = {}
    for name, unit_box in unit_boxes.items():
        pixel_box = unit_box_to_pixels(unit_box, resolution)
        if spec.flip:
            pixel_box = (resolution - pixel_box[2], pixel_box[1], resolution - pixel_box[0], pixel_box[3])
        boxes[name] = pixel_box
    boxes.update(artefact_boxes)
    return labels, canvas.palette, boxes


_NOISE_CACHE: dict[int, np.ndarray] = {}


def _noise_bank(resolution: int) -> np.ndarray:
    """A fixed (2r, 2r, 3) float32 texture in [-1, 1] from an integer hash (platform independent)."""
    bank = _NOISE_CACHE.get(resolution)
    if bank is None:
        n = (2 * resolution) * (2 * resolution) * 3
        with np.errstate(over="ignore"):  # splitmix64: wrapping uint64 arithmetic is intended
            z = np.arange(2 * n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z ^= z >> np.uint64(31)
        uniforms = (z >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)
        bank = (uniforms[:n] + uniforms[n:] - 1.0).reshape(2 * resolution, 2 * resolution, 3)
        _NOISE_CACHE[resolution] = bank
    return bank


def colourise(spec: SceneSpec, labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """The RGB image of a label image: palette colours, lighting (gain + gradient) and noise."""
    resolution = spec.resolution
    if spec.lighting <= 0 and spec.noise <= 0:
        return palette.take(labels, axis=0)
    rng = UniformStream(derive_seed(spec.layout_seed, "light"))
    lighting = spec.lighting
    gain = 1.0 + lighting * (2 * rng() - 1)
    gradient_x, gradient_y = lighting * (2 * rng() - 1), lighting * (2 * rng() - 1)
    noise_x, noise_y = int(rng() * resolution), int(rng() * resolution)
    image = (palette.astype(np.float32) * np.float32(gain)).take(labels, axis=0)
    if lighting > 0:
        ramp = np.linspace(-0.5, 0.5, resolution, dtype=np.float32)
        shade = (ramp * np.float32(gradient_x))[None, :] + (ramp * np.float32(gradient_y) + np.float32(1.0))[
            :, None
        ]
        image *= shade[:, :, None]
    if spec.noise > 0:
        noise = _noise_bank(resolution)[noise_y : noise_y + resolution, noise_x : noise_x + resolution]
        image += noise * np.float32(spec.noise)
    np.clip(image, 0, 255, out=image)
    return image.astype(np.uint8)


def person_label_masks(spec: SceneSpec, labels: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """(mask of every person, one mask per person) of a label image."""
    union = labels >= PERSON_BASE
    if len(spec.people) == 1:
        return union, [union]
    person_group = labels >> 5  # PERSON_BASE + PERSON_SLOTS * k -> 4 + k
    return union, [person_group == (PERSON_BASE // PERSON_SLOTS + k) for k in range(len(spec.people))]


def _mask_box(mask: np.ndarray) -> Box | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def render_spec(spec: SceneSpec) -> RenderedScene:
    """Render a :class:`SceneSpec` (a pure function of the spec)."""
    labels, palette, boxes = draw_label_image(spec)
    image = colourise(spec, labels, palette)
    union, per_person = person_label_masks(spec, labels)
    for k, mask in enumerate(per_person):
        box = _mask_box(mask)
        if box is not None:
            boxes["person" if k == 0 else f"person_{k}"] = box
    return RenderedScene(image=image, person_mask=union, person_masks=per_person, boxes=boxes, spec=spec)


def person_envelope(spec: SceneSpec, person_index: int | None = None) -> np.ndarray:
    """Every pixel that some appearance variant of the person(s) covers (bool H x W).

    The union of the person's exact masks over every combination of the shape-affecting levels
    (gender_presentation x age x body_type, all known levels); skin tone only changes colours.
    """
    people = range(len(spec.people)) if person_index is None else [person_index]
    envelope = None
    for k in people:
        for gender in KNOWN_LEVELS["gender_presentation"]:
            for age in KNOWN_LEVELS["age"]:
                for body_type in KNOWN_LEVELS["body_type"]:
                    variant = with_attributes(
                        spec, k, gender_presentation=gender, age=age, body_type=body_type
                    )
                    labels, _, _ = draw_label_image(variant)
                    mask = person_label_masks(variant, labels)[1][k]
                    envelope = mask.copy() if envelope is None else (envelope | mask)
    assert envelope is not None
    return envelope
