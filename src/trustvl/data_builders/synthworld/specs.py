"""SynthWorld's scene description: what a scene holds (:class:`SceneSpec`) and what rendering returns.

A :class:`SceneSpec` is self-contained and JSON-able: it carries the resolution and every random choice as
seeds or values, so rendering is a pure function of it (:func:`~trustvl.data_builders.synthworld.render.render_spec`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from trustvl.data_builders.synthworld.config import ATTRIBUTE_NAMES, KNOWN_LEVELS
from trustvl.errors import TrustVLInputError

__all__ = [
    "ArtefactSpec",
    "Box",
    "PersonSpec",
    "RenderedBatch",
    "RenderedScene",
    "SceneSpec",
    "unsafe_subtype",
    "with_attributes",
]


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
    """A planted element: ``kind`` ("square", "weapon", "blood", "drugs"); ``x, y`` its top-left corner and
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
    whose attributes are the scene's labels (:attr:`attributes`). ``cue_poor`` scenes do not show the
    occupation (plain clothes, no object, hat or confuser; ``SynthWorldConfig.cue_poor_prob``).
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
    cue_poor: bool = False
    attire: str | None = None

    @property
    def attributes(self) -> dict[str, str]:
        """The main person's attributes."""
        return dict(self.people[0].attributes)

    @property
    def scene_id(self) -> int:
        return self.index

    def to_dict(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        for person in fields["people"]:
            person["attributes"] = dict(person["attributes"])
        for name in ("spurious", "unsafe"):
            if fields[name] is not None and fields[name]["color"] is not None:
                fields[name]["color"] = list(fields[name]["color"])
        if not fields["cue_poor"]:  # left out when False: specs written before the field stay byte-identical
            del fields["cue_poor"]
        if fields["attire"] is None:  # likewise
            del fields["attire"]
        return fields

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SceneSpec:
        fields = dict(d)
        fields["people"] = tuple(
            PersonSpec(**{**person, "attributes": dict(person["attributes"])}) for person in fields["people"]
        )
        for name in ("spurious", "unsafe"):
            if fields.get(name) is not None and not isinstance(fields[name], ArtefactSpec):
                element = dict(fields[name])
                if element.get("color") is not None:
                    element["color"] = tuple(element["color"])
                fields[name] = ArtefactSpec(**element)
        return cls(**fields)

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


def unsafe_subtype(element: ArtefactSpec) -> str:
    """What an unsafe element depicts: "gun" or "knife" (kind "weapon"), "blood", or "syringe" (kind
    "drugs")."""
    if element.kind == "weapon":
        return "gun" if element.variant % 2 == 0 else "knife"
    if element.kind == "drugs":
        return "syringe"
    return element.kind


def with_attributes(spec: SceneSpec, person_index: int | None = 0, **attributes: str) -> SceneSpec:
    """A copy of ``spec`` whose person ``person_index`` (None: all) has the given attributes."""
    for name, level in attributes.items():
        if name not in ATTRIBUTE_NAMES:
            raise TrustVLInputError(f"unknown attribute {name!r}; expected one of {list(ATTRIBUTE_NAMES)}")
        if level not in KNOWN_LEVELS[name]:
            raise TrustVLInputError(
                f"unknown {name} level {level!r}; expected one of {list(KNOWN_LEVELS[name])}"
            )
    n_people = len(spec.people)
    if person_index is not None and not (0 <= person_index < n_people):
        raise TrustVLInputError(f"person_index={person_index} out of range; the scene has {n_people} people")
    people = tuple(
        dataclasses.replace(person, attributes={**person.attributes, **attributes})
        if person_index is None or k == person_index
        else person
        for k, person in enumerate(spec.people)
    )
    return dataclasses.replace(spec, people=people)
