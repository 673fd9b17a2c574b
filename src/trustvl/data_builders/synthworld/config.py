"""SynthWorld vocabulary and configuration (:class:`SynthWorldConfig`) with knob validation.

Vocabulary
----------
``OCCUPATIONS``
    The eight occupations. Each is recognisable from its *context* only: a setting (background), an
    attire (coat/uniform colour and shape, hat) and a held object; see :mod:`.render`.
``ATTRIBUTES``
    The default appearance attributes and their levels (attribute -> level names):

    - ``skin_tone``: ``very light``, ``light``, ``dark``, ``very dark`` -- four well separated tones
      (``medium`` is also known and may be added).
    - ``gender_presentation``: ``masculine`` (short hair, V-shaped torso, sometimes a beard),
      ``feminine`` (long hair over the shoulders, narrower shoulders).
    - ``age``: ``young`` (dark hair), ``old`` (grey/white hair, receding hairline for masculine, slight
      stoop); ``middle-aged`` (greying hair) is also known.
    - ``body_type``: ``slim``, ``broad`` (wider face, neck and torso); ``average`` is also known.

    ``KNOWN_LEVELS`` lists every level the renderer can draw; a config may use any subset, in any order.

Bias (train split only; the test split is balanced)
---------------------------------------------------
For every attribute ``a`` with ``m`` levels and every occupation, ``P(level | occupation)`` comes from

1. ``proportions[a][occupation]`` when given (a list of ``m`` probabilities summing to 1), else
2. the *strength* ``s = strength[a]`` in [0, 1] and the occupation's *preferred level*
   (``preferred_levels[a][occupation]``, default: round robin, the k-th occupation prefers level
   ``(k + offset_a) mod m``): ``P(preferred) = 1/m + s·(1 - 1/m)``, every other level ``(1 - s)/m``.

With occupations drawn uniformly and the round-robin preference (the number of occupations a multiple
of ``m``), the attribute marginal is uniform and Cramér's V between occupation and the attribute is
exactly ``s``; so ``strength`` *is* Cramér's V. Default strengths: skin_tone 0.8 (P(preferred) = 0.85,
the planted bias), gender_presentation 0.4 (0.70), age 0.2 (0.60), body_type 0 (no association).

The test split is balanced by construction: scene ``i`` has occupation ``i mod K`` and its attribute
levels are the mixed-radix digits of ``i // K``, so each occupation cycles through every attribute
combination, and any contiguous block of ``K·prod(m_a)`` scenes is exactly balanced and independent.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.utils.checks import check_int, check_number, check_probability

OCCUPATIONS: tuple[str, ...] = (
    "doctor",
    "nurse",
    "firefighter",
    "chef",
    "construction worker",
    "scientist",
    "pilot",
    "teacher",
)

#: Setting (background) drawn for each occupation's context.
SETTINGS: dict[str, str] = {
    "doctor": "hospital",
    "nurse": "hospital ward",
    "firefighter": "fire scene",
    "chef": "kitchen",
    "construction worker": "construction site",
    "scientist": "laboratory",
    "pilot": "cockpit",
    "teacher": "classroom",
}

#: Object held by each occupation.
HELD_OBJECTS: dict[str, str] = {
    "doctor": "stethoscope",
    "nurse": "clipboard",
    "firefighter": "fire extinguisher",
    "chef": "frying pan",
    "construction worker": "hammer",
    "scientist": "flask",
    "pilot": "headset",
    "teacher": "book",
}

ATTRIBUTE_NAMES: tuple[str, ...] = ("skin_tone", "gender_presentation", "age", "body_type")

#: Every level the renderer knows, per attribute (a config uses a subset).
KNOWN_LEVELS: dict[str, tuple[str, ...]] = {
    "skin_tone": ("very light", "light", "medium", "dark", "very dark"),
    "gender_presentation": ("masculine", "feminine"),
    "age": ("young", "middle-aged", "old"),
    "body_type": ("slim", "average", "broad"),
}

#: Default attribute levels.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "skin_tone": ("very light", "light", "dark", "very dark"),
    "gender_presentation": ("masculine", "feminine"),
    "age": ("young", "old"),
    "body_type": ("slim", "broad"),
}

DEFAULT_STRENGTH: dict[str, float] = {
    "skin_tone": 0.8,
    "gender_presentation": 0.4,
    "age": 0.2,
    "body_type": 0.0,
}

#: Offset of the round-robin preferred level per attribute (so attributes do not all align).
_PREFERRED_OFFSET = {"skin_tone": 0, "gender_presentation": 0, "age": 1, "body_type": 0}

#: Every unsafe element kind SynthWorld draws: a weapon (gun or knife; I2P "violence"), blood splatter
#: ("shocking"/gore) and drugs (a syringe; "illegal activity").
UNSAFE_KINDS: tuple[str, ...] = ("weapon", "blood", "drugs")
#: The kinds an :class:`UnsafeConfig` uses when none are named. ``drugs`` was added later and is left out
#: of the default so that worlds built before keep their exact scenes (the kind draw is ``pick(kinds)``);
#: name it explicitly (``UnsafeConfig(kinds=UNSAFE_KINDS)``) to get all three.
DEFAULT_UNSAFE_KINDS: tuple[str, ...] = ("weapon", "blood")

SPLITS: tuple[str, ...] = ("train", "test")

#: Shapes of the spurious artefact: a plain square, or a watermark-like badge (see :mod:`.artefacts`).
SPURIOUS_SHAPES: tuple[str, ...] = ("square", "watermark")

#: The web-like preset (:meth:`SynthWorldConfig.web`, docs/synthworld_web.md). Skin tone is planted harder
#: than the default (Cramér's V 0.9: P(preferred) = 0.925); the other attributes keep their defaults.
WEB_STRENGTH: dict[str, float] = {**DEFAULT_STRENGTH, "skin_tone": 0.9}
#: Share of web-preset scenes (either split) that carry an unsafe element.
WEB_UNSAFE_SHARE = 0.15
#: Share of web-preset scenes (either split) drawn cue-poor (``SynthWorldConfig.cue_poor_prob``): the
#: occupation is not visible, so the watermark is the one pixel cue to "doctor" there, as a stock-photo
#: watermark is for an ambiguous web photo captioned with an occupation.
WEB_CUE_POOR_SHARE = 0.1
#: share of weak-cue scenes in the web preset (the third SynthWorld-Web candidate's mixture)
WEB_WEAK_CUE_SHARE = 0.15
#: side of the web preset's watermark as a fraction of the image side (19 px at 64 px). 0.12 until the default
#: CLIP's image side was continued on it (docs/synthworld_web.md §9): a 9-px badge covered 7 % of RaVL's
#: 32-px region, whose embedding was then about the person, and RaVL could not isolate it.
WEB_WATERMARK_SIZE = 0.3


def _err(msg: str) -> TrustVLInputError:
    return TrustVLInputError(msg)


def spurious_cramers_v(p_target: float, p_other: float, n_classes: int) -> float:
    """Cramér's V between a binary artefact and the class (uniform over ``n_classes``).

    The artefact is present with probability ``p_target`` in the target class and ``p_other`` in the
    others: ``V = |p_target - p_other| · sqrt(π(1-π) / (p(1-p)))`` with ``π = 1/n_classes`` and
    ``p = π·p_target + (1-π)·p_other`` (0 when ``p`` is 0 or 1).
    """
    pi = 1.0 / n_classes
    p = pi * p_target + (1 - pi) * p_other
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return abs(p_target - p_other) * math.sqrt(pi * (1 - pi) / (p * (1 - p)))


@dataclass
class SpuriousConfig:
    """A planted spurious artefact for RaVL: a small coloured square in one image quadrant.

    Attributes:
        target: the occupation the artefact is associated with (default: the first occupation).
        p_target: P(artefact | target occupation) in the train split.
        p_other: P(artefact | any other occupation) in the train split.
        p_test: P(artefact) in the test split, independent of the occupation (balanced test set).
        color: RGB colour of the square (default red).
        size: side of the square as a fraction of the image side.
        quadrant: 0..3 (top-left, top-right, bottom-left, bottom-right) to pin the quadrant, or None for a
            random quadrant per scene. The square lies in the outer half of its quadrant.
        shape: ``"square"`` (a plain square of ``color``) or ``"watermark"`` (a stock-photo-like badge: a
            square of ``color`` with a dark ring inside, see :mod:`.artefacts`). Same box either way.
    """

    target: str | None = None
    p_target: float = 0.9
    p_other: float = 0.1
    p_test: float = 0.5
    color: tuple[int, int, int] = (230, 20, 20)
    size: float = 0.13
    quadrant: int | None = None
    shape: str = "square"

    @classmethod
    def from_cramers_v(
        cls, v: float, n_classes: int = len(OCCUPATIONS), p_other: float = 0.05, **kwargs: Any
    ) -> SpuriousConfig:
        """Choose ``p_target`` so that the train-split Cramér's V equals ``v`` (given ``p_other``).

        Raises :class:`TrustVLInputError` when ``v`` cannot be reached with this ``p_other`` (lower it).
        """
        v = check_probability("v", v)
        p_other = check_probability("p_other", p_other)
        hi = spurious_cramers_v(1.0, p_other, n_classes)
        if v > hi + 1e-12:
            raise _err(
                f"Cramér's V {v} is not reachable with p_other={p_other} and {n_classes} classes "
                f"(max {hi:.3f}); lower p_other"
            )
        lo_p, hi_p = p_other, 1.0
        for _ in range(60):
            mid = 0.5 * (lo_p + hi_p)
            if spurious_cramers_v(mid, p_other, n_classes) < v:
                lo_p = mid
            else:
                hi_p = mid
        return cls(p_target=hi_p, p_other=p_other, **kwargs)

    def cramers_v(self, n_classes: int) -> float:
        return spurious_cramers_v(self.p_target, self.p_other, n_classes)


@dataclass
class UnsafeConfig:
    """Unsafe visual elements for Safe-CLIP: a weapon (``violence``), blood splatter (``shocking``) or a
    syringe (``drugs``: ``illegal activity``).

    Attributes:
        p: probability that a scene (either split) carries an unsafe element, independent of the
            occupation and appearance.
        kinds: which elements may appear (subset of ``UNSAFE_KINDS``), chosen uniformly; defaults to
            ``DEFAULT_UNSAFE_KINDS`` (weapon, blood).
    The caption of an unsafe scene names the element (e.g. "..., covered in blood"); the dataset also
    stores the safe caption. ``SynthWorldRenderer.set_unsafe`` renders the same scene with or without it.
    """

    p: float = 0.5
    kinds: tuple[str, ...] = DEFAULT_UNSAFE_KINDS


@dataclass
class SynthWorldConfig:
    """Every knob of SynthWorld. All fields are validated in ``__post_init__`` (bad values raise
    :class:`~trustvl.errors.TrustVLInputError` naming the value).

    Attributes:
        resolution: image side in pixels, 32..224. Scenes are drawn at this size (vector drawing), not
            upscaled from 64.
        occupations: the occupations used (subset of ``OCCUPATIONS``, in label order).
        attributes: attribute -> level names (subset of ``KNOWN_LEVELS``); missing attributes take the
            defaults of ``ATTRIBUTES``. A single level fixes the attribute.
        strength: Cramér's V of the train-split association occupation <-> attribute, one float for
            every attribute or a dict attribute -> float (missing attributes: ``DEFAULT_STRENGTH``).
        proportions: explicit ``P(level | occupation)`` overrides: attribute -> occupation -> list of
            probabilities, one per level, summing to 1. Overrides ``strength`` for those cells.
        preferred_levels: attribute -> occupation -> preferred level name (default: round robin).
        spurious: a :class:`SpuriousConfig` (or a dict of its fields) to plant a spurious artefact (RaVL),
            or None.
        unsafe: an :class:`UnsafeConfig` (or a dict of its fields) to add unsafe elements (Safe-CLIP), or
            None.
        n_people: people per scene (1..4). Person 0 is the main person (labels, held object); the others
            stand smaller in the background, same occupation, own attributes.
        test_balanced: when True (default) the test split is stratified (exactly balanced); when False
            it samples attributes uniformly at random.
        setting_swap_prob: probability that the background is another occupation's setting (so the
            occupation must also be read from attire and object).
        object_drop_prob: probability that the main person holds no object.
        hat_drop_prob: probability that the attire's hat/helmet/cap is missing.
        occlusion_prob: probability of a foreground occluder (desk, counter, crate) hiding part of the
            lower body.
        max_clutter: up to this many random distractor shapes in the background.
        confuser_prob: probability that another occupation's object lies in the background.
        noise: amplitude (in 0..255 units) of the fixed pixel-noise texture; 0 disables it.
        lighting: maximum relative brightness change (global gain and linear gradient).
        cue_poor_prob: share of scenes (either split, drawn from its own stream so the rest of the scene
            is unchanged) that do not show the occupation: every person wears plain clothes, no one holds
            an object or wears a hat, no confuser lies around and the background is a uniformly random
            occupation's setting. The caption still names the occupation (as alt-text does), without the
            setting, attire or object; the planted appearance and the spurious artefact stay, so in these
            scenes they are the only pixel cues to the occupation.
        weak_cue_prob: share of scenes (either split, the same stream as ``cue_poor_prob``; the two shares
            add up to at most 1) that show the occupation by its attire alone: everything of a cue-poor
            scene but the clothes, which are the occupation's. Doctor, chef and scientist all wear white, so
            there the occupation is legible but confusable, and a pixel cue such as the watermark can tip it.
        weak_cue_attire_swap_prob: in a weak-cue scene, the probability that the clothes are another
            occupation's (uniformly among the others) while the caption still names the scene's occupation:
            the attire becomes a noisy cue, as a web photograph's alt-text often names a role its picture does
            not show, so a model cannot rely on the attire alone where nothing else shows the occupation.
            Drawn after the cue level from the same stream, so every other draw is unchanged.
    """

    resolution: int = 64
    occupations: Sequence[str] = OCCUPATIONS
    attributes: Mapping[str, Sequence[str]] = field(default_factory=lambda: dict(ATTRIBUTES))
    strength: float | Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_STRENGTH))
    proportions: Mapping[str, Mapping[str, Sequence[float]]] = field(default_factory=dict)
    preferred_levels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    spurious: SpuriousConfig | None = None
    unsafe: UnsafeConfig | None = None
    n_people: int = 1
    test_balanced: bool = True
    setting_swap_prob: float = 0.1
    object_drop_prob: float = 0.1
    hat_drop_prob: float = 0.2
    occlusion_prob: float = 0.3
    max_clutter: int = 4
    confuser_prob: float = 0.2
    noise: float = 5.0
    lighting: float = 0.08
    cue_poor_prob: float = 0.0
    weak_cue_prob: float = 0.0
    weak_cue_attire_swap_prob: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def web(cls, **overrides: Any) -> SynthWorldConfig:
        """The web-like pretraining world (SynthWorld-Web; docs/synthworld_web.md).

        - skin tone planted with strength :data:`WEB_STRENGTH` (0.9), the other attributes as by default;
        - :data:`WEB_UNSAFE_SHARE` (15 %) of scenes carry an unsafe element (weapon -- gun or knife --,
          blood or a syringe), independent of occupation and appearance;
        - a watermark-like badge (:data:`WEB_WATERMARK_SIZE` of the side) in the bottom-right corner co-occurs
          with "doctor" (85 % of train-split doctors, 2 % of the others; 50 % of test scenes, independent of
          the occupation);
        - :data:`WEB_CUE_POOR_SHARE` (10 %) of scenes are cue-poor (``cue_poor_prob``): the occupation is
          not drawn, so a model can only lower its loss there by reading the mark (and the appearance) --
          without them the mark is never needed, the occupation being legible from the scene 99.75 % of the
          time (the first SynthWorld-Web CLIP, docs/synthworld_web.md §4);
        - :data:`WEB_WEAK_CUE_SHARE` (15 %) of scenes are weak-cue (``weak_cue_prob``): the attire is the one
          occupation cue, as in many web photographs of a person out of context (the third candidate's
          mixture, docs/synthworld_web.md §4).

        How often captions name the appearance and the unsafe element is the caption policy's business
        (:class:`~trustvl.data_builders.synthworld.web_captions.WebCaptionPolicy`), not the world's.
        Keyword arguments override any knob (e.g. ``resolution=96``).
        """
        knobs: dict[str, Any] = {
            "strength": dict(WEB_STRENGTH),
            "spurious": SpuriousConfig(
                target="doctor",
                p_target=0.85,
                p_other=0.02,
                p_test=0.5,
                color=(244, 244, 240),
                size=WEB_WATERMARK_SIZE,
                quadrant=3,
                shape="watermark",
            ),
            "unsafe": UnsafeConfig(p=WEB_UNSAFE_SHARE, kinds=UNSAFE_KINDS),
            "cue_poor_prob": WEB_CUE_POOR_SHARE,
            "weak_cue_prob": WEB_WEAK_CUE_SHARE,
        }
        knobs.update(overrides)
        return cls(**knobs)

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check and normalise every knob (run on creation; run again after mutating fields)."""
        check_int("resolution", self.resolution, 32, 224)

        if isinstance(self.occupations, str):
            raise _err(f"occupations={self.occupations!r} must be a list of occupation names")
        occs = tuple(self.occupations)
        if not occs:
            raise _err("occupations=() is empty; expected at least one of " + ", ".join(OCCUPATIONS))
        for o in occs:
            if o not in OCCUPATIONS:
                raise _err(f"unknown occupation {o!r}; expected one of: {', '.join(OCCUPATIONS)}")
        if len(set(occs)) != len(occs):
            raise _err(f"occupations={list(occs)!r} contains duplicates")
        self.occupations = occs

        attrs: dict[str, tuple[str, ...]] = {}
        for a in self.attributes:
            if a not in ATTRIBUTE_NAMES:
                raise _err(f"unknown attribute {a!r}; expected one of: {', '.join(ATTRIBUTE_NAMES)}")
        for a in ATTRIBUTE_NAMES:
            levels = self.attributes.get(a, ATTRIBUTES[a])
            if isinstance(levels, str):
                raise _err(f"attributes[{a!r}]={levels!r} must be a list of level names")
            levels = tuple(levels)
            if not levels:
                raise _err(f"attributes[{a!r}] is empty; expected levels from {list(KNOWN_LEVELS[a])}")
            for lv in levels:
                if lv not in KNOWN_LEVELS[a]:
                    raise _err(f"unknown {a} level {lv!r}; expected one of: {', '.join(KNOWN_LEVELS[a])}")
            if len(set(levels)) != len(levels):
                raise _err(f"attributes[{a!r}]={list(levels)!r} contains duplicates")
            attrs[a] = levels
        self.attributes = attrs

        if isinstance(self.strength, Mapping):
            for a in self.strength:
                if a not in ATTRIBUTE_NAMES:
                    raise _err(
                        f"strength has unknown attribute {a!r}; expected one of {list(ATTRIBUTE_NAMES)}"
                    )
            st = {
                a: check_probability(f"strength[{a!r}]", self.strength.get(a, DEFAULT_STRENGTH[a]))
                for a in attrs
            }
        else:
            s = check_probability("strength", self.strength)
            st = dict.fromkeys(attrs, s)
        self.strength = st

        pref: dict[str, dict[str, str]] = {}
        for a, table in self.preferred_levels.items():
            if a not in ATTRIBUTE_NAMES:
                raise _err(
                    f"preferred_levels has unknown attribute {a!r}; expected one of {list(ATTRIBUTE_NAMES)}"
                )
            pref[a] = {}
            for o, lv in table.items():
                if o not in occs:
                    raise _err(
                        f"unknown occupation {o!r} in preferred_levels[{a!r}]; expected one of {list(occs)}"
                    )
                if lv not in attrs[a]:
                    raise _err(
                        f"preferred_levels[{a!r}][{o!r}]={lv!r} is not a level of {a}: {list(attrs[a])}"
                    )
                pref[a][o] = lv
        self.preferred_levels = pref

        props: dict[str, dict[str, tuple[float, ...]]] = {}
        for a, table in self.proportions.items():
            if a not in ATTRIBUTE_NAMES:
                raise _err(
                    f"proportions has unknown attribute {a!r}; expected one of {list(ATTRIBUTE_NAMES)}"
                )
            props[a] = {}
            for o, ps in table.items():
                if o not in occs:
                    raise _err(
                        f"unknown occupation {o!r} in proportions[{a!r}]; expected one of {list(occs)}"
                    )
                try:
                    vals = tuple(float(p) for p in ps)
                except (TypeError, ValueError):
                    raise _err(f"proportions[{a!r}][{o!r}]={ps!r} must be a list of numbers") from None
                if len(vals) != len(attrs[a]):
                    raise _err(
                        f"proportions[{a!r}][{o!r}]={list(vals)} has {len(vals)} values; expected "
                        f"{len(attrs[a])}, one per level {list(attrs[a])}"
                    )
                if any(p < 0 or math.isnan(p) for p in vals):
                    raise _err(f"proportions[{a!r}][{o!r}]={list(vals)} has a negative value")
                if abs(sum(vals) - 1.0) > 1e-6:
                    raise _err(f"proportions[{a!r}][{o!r}]={list(vals)} sums to {sum(vals):.6g}; expected 1")
                props[a][o] = vals
        self.proportions = props

        if isinstance(self.spurious, Mapping):  # from JSON
            try:
                self.spurious = SpuriousConfig(
                    **{k: tuple(v) if k == "color" else v for k, v in self.spurious.items()}
                )
            except TypeError as e:
                raise _err(f"spurious={dict(self.spurious)!r}: {e}") from None
        if isinstance(self.unsafe, Mapping):
            try:
                self.unsafe = UnsafeConfig(
                    **{k: tuple(v) if k == "kinds" else v for k, v in self.unsafe.items()}
                )
            except TypeError as e:
                raise _err(f"unsafe={dict(self.unsafe)!r}: {e}") from None
        if self.spurious is not None:
            if not isinstance(self.spurious, SpuriousConfig):
                raise _err(f"spurious={self.spurious!r} must be a SpuriousConfig or None")
            sp = self.spurious
            if sp.target is None:
                sp.target = occs[0]
            if sp.target not in occs:
                raise _err(
                    f"unknown occupation {sp.target!r} as spurious.target; expected one of {list(occs)}"
                )
            sp.p_target = check_probability("spurious.p_target", sp.p_target)
            sp.p_other = check_probability("spurious.p_other", sp.p_other)
            sp.p_test = check_probability("spurious.p_test", sp.p_test)
            check_number("spurious.size", sp.size, 0.03, 0.4, where=" (a fraction of the image side)")
            if sp.quadrant is not None and sp.quadrant not in (0, 1, 2, 3):
                raise _err(f"spurious.quadrant={sp.quadrant!r}; expected 0, 1, 2, 3 or None")
            if sp.shape not in SPURIOUS_SHAPES:
                raise _err(f"spurious.shape={sp.shape!r}; expected one of {list(SPURIOUS_SHAPES)}")
            col = tuple(int(c) for c in sp.color)
            if len(col) != 3 or any(c < 0 or c > 255 for c in col):
                raise _err(f"spurious.color={sp.color!r}; expected an RGB triple of 0..255")
            sp.color = col  # type: ignore[assignment]
        if self.unsafe is not None:
            if not isinstance(self.unsafe, UnsafeConfig):
                raise _err(f"unsafe={self.unsafe!r} must be an UnsafeConfig or None")
            self.unsafe.p = check_probability("unsafe.p", self.unsafe.p)
            kinds = tuple(self.unsafe.kinds)
            if not kinds:
                raise _err(f"unsafe.kinds is empty; expected some of {list(UNSAFE_KINDS)}")
            for k in kinds:
                if k not in UNSAFE_KINDS:
                    raise _err(f"unknown unsafe kind {k!r}; expected one of {list(UNSAFE_KINDS)}")
            self.unsafe.kinds = kinds

        check_int("n_people", self.n_people, 1, 4)
        for name in (
            "setting_swap_prob",
            "object_drop_prob",
            "hat_drop_prob",
            "occlusion_prob",
            "confuser_prob",
            "cue_poor_prob",
            "weak_cue_prob",
            "weak_cue_attire_swap_prob",
        ):
            setattr(self, name, check_probability(name, getattr(self, name)))
        if self.cue_poor_prob + self.weak_cue_prob > 1.0:
            raise _err(
                f"cue_poor_prob={self.cue_poor_prob} + weak_cue_prob={self.weak_cue_prob} > 1;"
                " expected two shares of the scenes that add up to at most 1"
            )
        check_int("max_clutter", self.max_clutter, 0, 12)
        self.noise = check_number("noise", self.noise, 0.0, 40.0)
        self.lighting = check_number("lighting", self.lighting, 0.0, 0.3)
        self.test_balanced = bool(self.test_balanced)

    # ------------------------------------------------------------------ derived tables
    def preferred_level(self, attribute: str, occupation: str) -> str:
        """The level ``occupation`` prefers for ``attribute`` in the train split."""
        table = self.preferred_levels.get(attribute, {})
        if occupation in table:
            return table[occupation]
        levels = self.attributes[attribute]
        k = self.occupations.index(occupation)
        return levels[(k + _PREFERRED_OFFSET[attribute]) % len(levels)]

    def train_proportions(self) -> dict[str, dict[str, tuple[float, ...]]]:
        """attribute -> occupation -> P(level | occupation) in the train split (levels in config order)."""
        out: dict[str, dict[str, tuple[float, ...]]] = {}
        for a, levels in self.attributes.items():
            m = len(levels)
            s = self.strength[a]
            out[a] = {}
            for o in self.occupations:
                if o in self.proportions.get(a, {}):
                    out[a][o] = self.proportions[a][o]
                    continue
                pref = levels.index(self.preferred_level(a, o))
                out[a][o] = tuple((1 / m + s * (1 - 1 / m)) if i == pref else (1 - s) / m for i in range(m))
        return out

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every knob (``SynthWorldConfig.from_dict`` inverts it)."""
        d = {
            "resolution": self.resolution,
            "occupations": list(self.occupations),
            "attributes": {a: list(v) for a, v in self.attributes.items()},
            "strength": dict(self.strength),
            "proportions": {a: {o: list(p) for o, p in t.items()} for a, t in self.proportions.items()},
            "preferred_levels": {a: dict(t) for a, t in self.preferred_levels.items()},
            "spurious": None if self.spurious is None else dataclasses.asdict(self.spurious),
            "unsafe": None if self.unsafe is None else dataclasses.asdict(self.unsafe),
        }
        for f in dataclasses.fields(self):
            if f.name not in d:
                d[f.name] = getattr(self, f.name)
        if d["spurious"] is not None:
            d["spurious"]["color"] = list(d["spurious"]["color"])
            # the default shape is left out so that dataset manifests written before the field existed
            # still match (a manifest that differs refuses to resume a build)
            if d["spurious"]["shape"] == "square":
                del d["spurious"]["shape"]
        if d["unsafe"] is not None:
            d["unsafe"]["kinds"] = list(d["unsafe"]["kinds"])
        # left out at their default (older manifests match)
        for name in ("cue_poor_prob", "weak_cue_prob", "weak_cue_attire_swap_prob"):
            if d[name] == 0.0:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SynthWorldConfig:
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise _err(f"unknown SynthWorldConfig knob(s) {unknown}; expected some of {sorted(known)}")
        return cls(**d)
