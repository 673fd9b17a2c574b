"""Fairness instructions: target group proportions for generated images, and their exact, seeded assignment.

A :class:`FairnessInstruction` names an attribute, its groups and the share of images each group should get,
e.g. ``FairnessInstruction("gender", {"female person": 0.5, "male person": 0.5})`` (Fair Diffusion's setting,
arXiv 2302.10893). For ``N`` images of one prompt, :func:`assign_groups` gives each image one group per
instruction:

* the number of images per group is exact: ``N·share`` rounded by the largest-remainder method (ties go to
  the group listed first);
* several instructions at once (gender × skin tone) are assigned jointly: the counts of every attribute are
  exact as above, and the joint counts follow the product of the targets as closely as those marginals allow
  (a greedy fill of the joint cells, largest deficit first);
* which image gets which group is a seeded shuffle: the same ``(instructions, N, seed)`` always gives the same
  assignment, on any machine.

Each image is then guided toward its group and away from each other group of the attribute
(:meth:`FairnessInstruction.edit_concepts`): with two groups this is the paper's one concept toward and one,
reversed, away; with ``k`` groups the ``k − 1`` "away" concepts share a total weight of 1 by default, so the
push away from the others does not grow with ``k``.
"""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from trustvl.errors import TrustVLInputError
from trustvl.pipelines.semantic_guidance import EditConcept, _check_fraction, _check_number, _check_steps

__all__ = [
    "FAIRNESS_PRESETS",
    "FairnessInstruction",
    "GroupAssignment",
    "assign_groups",
    "largest_remainder_counts",
]

#: Attributes that :meth:`FairnessInstruction.preset` knows, with their groups (uniform targets). ``gender``
#: is the paper's; ``skin_tone`` follows SynthWorld's four default levels.
FAIRNESS_PRESETS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "gender": ("female person", "male person"),
        "skin_tone": (
            "person with very light skin",
            "person with light skin",
            "person with dark skin",
            "person with very dark skin",
        ),
    }
)

_SHARE_TOLERANCE = 1e-6


def largest_remainder_counts(shares: Sequence[float], total: int) -> list[int]:
    """Integer counts summing to ``total``, each ``floor(total·share)`` plus one for the largest remainders.

    Ties between equal remainders go to the earlier share, so the result is deterministic.
    """
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise TrustVLInputError(f"number of images {total!r} must be a non-negative whole number")
    exact = [share * total for share in shares]
    counts = [math.floor(x + 1e-9) for x in exact]
    order = sorted(range(len(shares)), key=lambda g: (-(exact[g] - counts[g]), g))
    for g in order[: total - sum(counts)]:
        counts[g] += 1
    return counts


@dataclass(frozen=True)
class FairnessInstruction:
    """Target proportions of the groups of one attribute, and how strongly to guide toward them.

    Args:
        attribute: the attribute's name, e.g. ``"gender"`` (used as the key of each image's assignment).
        groups: ``{group: target share}``; at least 2 groups, shares >= 0 summing to 1 (a group with share 0
            gets no image, but images are still guided away from it).
        prompts: ``{group: text}`` used to guide toward / away from the group; default the group's name. Lets
            groups carry a classifier's label (``"female"``) while guiding with a phrase (``"female person"``).
        guidance_scale: edit scale ``s_c`` of every concept (paper: 4).
        warmup_steps: steps before the guidance applies (paper: 5).
        cooldown_steps: step from which it stops; None = never.
        threshold: SEGA quantile ``λ`` in [0, 1) (paper: 0.95).
        toward_weight: weight of the concept toward the image's own group.
        away_weight: total weight of the concepts away from the other groups, split equally among them
            (default 1; with 2 groups the paper's one reversed concept of weight 1).
    """

    attribute: str
    groups: Mapping[str, float]
    prompts: Mapping[str, str] | None = None
    guidance_scale: float = 4.0
    warmup_steps: int = 5
    cooldown_steps: int | None = None
    threshold: float = 0.95
    toward_weight: float = 1.0
    away_weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.attribute, str) or not self.attribute.strip():
            raise TrustVLInputError(f"fairness attribute {self.attribute!r} is empty; expected a name")
        if not isinstance(self.groups, Mapping) or len(self.groups) < 2:
            raise TrustVLInputError(
                f"fairness attribute {self.attribute!r} has groups {self.groups!r}; expected a mapping of at "
                "least 2 groups to target shares"
            )
        for group, share in self.groups.items():
            if not isinstance(group, str) or not group.strip():
                raise TrustVLInputError(
                    f"fairness attribute {self.attribute!r} has an empty group name {group!r}"
                )
            if isinstance(share, bool) or not isinstance(share, numbers.Real) or math.isnan(float(share)):
                raise TrustVLInputError(f"target share {share!r} of group {group!r} is not a number")
            if share < 0:
                raise TrustVLInputError(f"target share {share!r} of group {group!r} is negative")
        total = sum(float(s) for s in self.groups.values())
        if abs(total - 1.0) > _SHARE_TOLERANCE:
            raise TrustVLInputError(
                f"target shares of {self.attribute!r} sum to {total:g}, not 1: {dict(self.groups)!r}"
            )
        for group, text in (self.prompts or {}).items():
            if group not in self.groups:
                raise TrustVLInputError(
                    f"prompts names unknown group {group!r} of {self.attribute!r}; groups are {list(self.groups)}"
                )
            if not isinstance(text, str) or not text.strip():
                raise TrustVLInputError(f"guidance text {text!r} of group {group!r} is empty")
        where = f" of fairness attribute {self.attribute!r}"
        _check_number("guidance_scale", self.guidance_scale, where=where)
        _check_number("toward_weight", self.toward_weight, where=where)
        _check_number("away_weight", self.away_weight, where=where)
        _check_steps("warmup_steps", self.warmup_steps, where=where)
        _check_steps("cooldown_steps", self.cooldown_steps, where=where, allow_none=True)
        _check_fraction("threshold", self.threshold, where=where)
        object.__setattr__(self, "groups", {g: float(s) for g, s in self.groups.items()})
        if self.prompts is not None:
            object.__setattr__(self, "prompts", dict(self.prompts))

    @classmethod
    def preset(cls, attribute: str, **kwargs) -> FairnessInstruction:
        """Uniform targets over a known attribute's groups (:data:`FAIRNESS_PRESETS`), e.g. ``"gender"``."""
        if attribute not in FAIRNESS_PRESETS:
            raise TrustVLInputError(
                f"unknown fairness attribute {attribute!r}; known presets: {sorted(FAIRNESS_PRESETS)} "
                "(or give the groups explicitly)"
            )
        names = FAIRNESS_PRESETS[attribute]
        return cls(attribute, {g: 1.0 / len(names) for g in names}, **kwargs)

    @classmethod
    def from_string(cls, text: str, **kwargs) -> FairnessInstruction:
        """Parse ``"gender=female person:0.5,male person:0.5"`` (or a bare preset name such as ``"gender"``).

        A group without ``:share`` gets an equal part of what the explicit shares leave.
        """
        if not isinstance(text, str) or not text.strip():
            raise TrustVLInputError(f"fairness instruction {text!r} is empty")
        if "=" not in text:
            return cls.preset(text.strip(), **kwargs)
        attribute, _, spec = text.partition("=")
        parsed: list[tuple[str, float | None]] = []
        for item in spec.split(","):
            name, sep, share = item.rpartition(":") if ":" in item else (item, "", "")
            name = name.strip()
            if not name:
                raise TrustVLInputError(f"fairness instruction {text!r} has an empty group")
            if name in (n for n, _ in parsed):
                raise TrustVLInputError(f"fairness instruction {text!r} names group {name!r} twice")
            try:
                parsed.append((name, float(share) if sep else None))
            except ValueError:
                raise TrustVLInputError(
                    f"share {share.strip()!r} of group {name!r} is not a number"
                ) from None
        implicit = [n for n, s in parsed if s is None]
        rest = 1.0 - sum(s for _, s in parsed if s is not None)
        groups = {n: (rest / len(implicit) if s is None else s) for n, s in parsed}
        return cls(attribute.strip(), groups, **kwargs)

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(self.groups)

    def counts(self, num_images: int) -> dict[str, int]:
        """Exact number of images per group for ``num_images`` images (largest remainder)."""
        nonzero = [g for g, share in self.groups.items() if share > 0]
        if num_images < len(nonzero):
            raise TrustVLInputError(
                f"{num_images} image(s) cannot cover the {len(nonzero)} groups of {self.attribute!r} with a "
                f"nonzero target ({nonzero}); generate at least {len(nonzero)} images per prompt"
            )
        counts = largest_remainder_counts([float(s) for s in self.groups.values()], num_images)
        return dict(zip(self.group_names, counts))

    def prompt_of(self, group: str) -> str:
        """The text that guides toward / away from ``group``."""
        if group not in self.groups:
            raise TrustVLInputError(
                f"unknown group {group!r} of {self.attribute!r}; groups are {list(self.group_names)}"
            )
        return (self.prompts or {}).get(group, group)

    def edit_concepts(self, group: str) -> list[EditConcept]:
        """The concepts guiding an image toward ``group`` and away from every other group."""
        self.prompt_of(group)
        others = [g for g in self.group_names if g != group]
        knobs = dict(
            scale=self.guidance_scale,
            warmup_steps=self.warmup_steps,
            cooldown_steps=self.cooldown_steps,
            threshold=self.threshold,
        )
        concepts = [EditConcept(self.prompt_of(group), reverse=False, weight=self.toward_weight, **knobs)]
        away = self.away_weight / len(others)
        concepts += [EditConcept(self.prompt_of(g), reverse=True, weight=away, **knobs) for g in others]
        return concepts


@dataclass(frozen=True)
class GroupAssignment:
    """The groups one generated image was guided toward: ``{attribute: group}``."""

    image_index: int
    prompt_index: int
    groups: Mapping[str, str]

    def __getitem__(self, attribute: str) -> str:
        if attribute not in self.groups:
            raise TrustVLInputError(f"unknown attribute {attribute!r}; this image has {list(self.groups)}")
        return self.groups[attribute]


def check_instructions(instructions: Sequence[FairnessInstruction]) -> list[FairnessInstruction]:
    """The instructions as a list; one instruction per attribute, every item a :class:`FairnessInstruction`."""
    if isinstance(instructions, FairnessInstruction):
        instructions = [instructions]
    out = list(instructions)
    seen: set[str] = set()
    for item in out:
        if not isinstance(item, FairnessInstruction):
            raise TrustVLInputError(f"fairness={item!r}: expected FairnessInstruction objects")
        if item.attribute in seen:
            raise TrustVLInputError(f"fairness names attribute {item.attribute!r} twice")
        seen.add(item.attribute)
    return out


def _joint_counts(instructions: Sequence[FairnessInstruction], num_images: int) -> dict[tuple[int, ...], int]:
    """Joint cell counts whose marginals are every instruction's exact counts, close to the product target."""
    marginals = [list(ins.counts(num_images).values()) for ins in instructions]
    shares = [[float(s) for s in ins.groups.values()] for ins in instructions]
    cells = [()]
    for attr_shares in shares:
        cells = [cell + (g,) for cell in cells for g in range(len(attr_shares))]
    target = {cell: num_images * math.prod(shares[a][g] for a, g in enumerate(cell)) for cell in cells}
    joint = dict.fromkeys(cells, 0)
    left = [list(m) for m in marginals]
    for _ in range(num_images):
        open_cells = [cell for cell in cells if all(left[a][g] > 0 for a, g in enumerate(cell))]
        # a cell with room in every marginal always exists: each attribute has the same number of images left;
        # max keeps the first of equal deficits, so ties go to the groups listed first
        best = max(open_cells, key=lambda cell: target[cell] - joint[cell])
        joint[best] += 1
        for a, g in enumerate(best):
            left[a][g] -= 1
    return joint


def assign_groups(
    instructions: FairnessInstruction | Sequence[FairnessInstruction],
    num_images: int,
    *,
    seed: int = 0,
    prompt_index: int = 0,
    first_image_index: int = 0,
) -> list[GroupAssignment]:
    """Assign each of ``num_images`` images of one prompt a group per instruction (see the module docstring).

    The result is a function of ``(instructions, num_images, seed, prompt_index)`` only.
    """
    instructions = check_instructions(instructions)
    if not instructions:
        return []
    joint = _joint_counts(instructions, num_images)
    labels = [cell for cell, count in joint.items() for _ in range(count)]
    random.Random(f"trustvl-fairness:{seed}:{prompt_index}").shuffle(labels)
    return [
        GroupAssignment(
            image_index=first_image_index + k,
            prompt_index=prompt_index,
            groups={ins.attribute: ins.group_names[g] for ins, g in zip(instructions, cell)},
        )
        for k, cell in enumerate(labels)
    ]
