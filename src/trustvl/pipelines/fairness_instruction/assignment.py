"""Group assignment: which group of each instruction every image of a prompt is guided toward. Exact counts
per group, joint counts for several attributes, a seeded shuffle (:func:`assign_groups`), or assignments given
beforehand and checked (:func:`given_assignments`); one image's groups are a :class:`GroupAssignment`."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trustvl.errors import TrustVLInputError
from trustvl.pipelines.fairness_instruction.instruction import FairnessInstruction, check_instructions

__all__ = ["GroupAssignment", "assign_groups", "given_assignments"]


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
    """Assign each of ``num_images`` images of one prompt a group per instruction (see the package docstring).

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


def given_assignments(
    instructions: Sequence[FairnessInstruction],
    assignments: Sequence[Mapping[str, str] | GroupAssignment],
    num_images_per_prompt: int,
    num_images: int,
) -> list[GroupAssignment]:
    """Groups assigned beforehand (one ``{attribute: group}`` or :class:`GroupAssignment` per image of a
    batch, prompt-major), checked against ``instructions`` and numbered by their place in the batch."""
    items = list(assignments)
    if len(items) != num_images:
        raise TrustVLInputError(f"fairness_assignments has {len(items)} entries for {num_images} images")
    attributes = {ins.attribute for ins in instructions}
    out = []
    for k, item in enumerate(items):
        groups = item.groups if isinstance(item, GroupAssignment) else item
        if not isinstance(groups, Mapping) or set(groups) != attributes:
            raise TrustVLInputError(
                f"fairness_assignments[{k}]={item!r}; expected one group for each of {sorted(attributes)}"
            )
        for ins in instructions:
            ins.check_group(groups[ins.attribute])
        out.append(GroupAssignment(k, k // num_images_per_prompt, dict(groups)))
    return out
