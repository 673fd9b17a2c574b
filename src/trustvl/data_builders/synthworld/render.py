"""The SynthWorld renderer: procedural scenes of one occupation with known ground truth.

A scene is a pure function of ``(seed, split, index)``: :meth:`SynthWorldRenderer.sample_scene` turns
those into a self-contained :class:`SceneSpec` (JSON-able; it carries the resolution and every random
choice as seeds/values), and :func:`render_spec` turns a spec into pixels. Nothing depends on call order,
so shards can be generated in any order, in parallel, and resumed.

Where each part lives (all in :mod:`trustvl.data_builders.synthworld`):

* :mod:`.specs` -- :class:`SceneSpec`, :class:`PersonSpec`, :class:`ArtefactSpec`, the rendered results;
* :mod:`.sampling` -- sampling a spec from the config (the train-split bias, the balanced test split);
* :mod:`.compose` -- the layers of a scene, colours, lighting, noise and the exact person masks;
* :mod:`.canvas` -- the label canvas and its primitives; :mod:`.randomness` -- seeds and uniform streams;
* :mod:`.scenery` (settings, clutter, occluders), :mod:`.held_objects`, :mod:`.person` (appearance,
  attire, headwear) and :mod:`.artefacts` (spurious square, unsafe elements) -- what is drawn.

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

import numpy as np

from trustvl.data_builders.synthworld.body import SHAPE_ATTRIBUTES, SKIN_TONES
from trustvl.data_builders.synthworld.canvas import PERSON_BASE, PERSON_SLOTS
from trustvl.data_builders.synthworld.compose import person_envelope, render_spec
from trustvl.data_builders.synthworld.config import (
    HELD_OBJECTS,
    OCCUPATIONS,
    SETTINGS,
    UNSAFE_KINDS,
    SynthWorldConfig,
)
from trustvl.data_builders.synthworld.randomness import UniformStream, derive_seed
from trustvl.data_builders.synthworld.sampling import SceneSampler, unsafe_element
from trustvl.data_builders.synthworld.specs import (
    ArtefactSpec,
    Box,
    PersonSpec,
    RenderedBatch,
    RenderedScene,
    SceneSpec,
    unsafe_subtype,
    with_attributes,
)
from trustvl.errors import TrustVLInputError

#: Bump when the drawing changes (a dataset folder records it; resuming across versions is refused).
RENDER_VERSION = 1


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
        self._sampler = SceneSampler(self.config, seed)

    # -------------------------------------------------------------------- sampling
    def sample_scene(self, split: str, index: int) -> SceneSpec:
        """The :class:`SceneSpec` of scene ``index`` of ``split`` ("train": biased as configured;
        "test": balanced)."""
        return self._sampler.sample(split, index)

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
        resolution = self.config.resolution
        images = np.empty((count, resolution, resolution, 3), np.uint8)
        masks = np.empty((count, resolution, resolution), bool)
        boxes, specs = [], []
        for i in range(count):
            scene = self.scene(split, start + i)
            images[i] = scene.image
            masks[i] = scene.person_mask
            boxes.append(scene.boxes)
            specs.append(scene.spec)
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
        """The same scene with an unsafe element of ``kind`` ("weapon" / "blood" / "drugs"), or without (None).

        Keeps the scene's own element when it already has one of that kind.
        """
        if kind is None:
            return dataclasses.replace(spec, unsafe=None)
        if kind not in UNSAFE_KINDS:
            raise TrustVLInputError(
                f"unknown unsafe kind {kind!r}; expected one of {list(UNSAFE_KINDS)} or None"
            )
        if spec.unsafe is not None and spec.unsafe.kind == kind:
            return spec
        seed = (
            derive_seed(spec.seed, spec.split, spec.index, "unsafe", kind)
            if variant_seed is None
            else variant_seed
        )
        return dataclasses.replace(spec, unsafe=unsafe_element(kind, UniformStream(seed)))


__all__ = [
    "HELD_OBJECTS",
    "OCCUPATIONS",
    "PERSON_BASE",
    "PERSON_SLOTS",
    "RENDER_VERSION",
    "SETTINGS",
    "SHAPE_ATTRIBUTES",
    "SKIN_TONES",
    "ArtefactSpec",
    "Box",
    "PersonSpec",
    "RenderedBatch",
    "RenderedScene",
    "SceneSpec",
    "SynthWorldRenderer",
    "person_envelope",
    "render_spec",
    "unsafe_subtype",
    "with_attributes",
]
