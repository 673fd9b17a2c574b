"""The :class:`FairnessInstruction` dataclass (target shares of one attribute's groups and the guidance
knobs), its constructors from presets, SynthWorld levels and ``--fair`` strings, and
:func:`check_instructions`."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trustvl.errors import TrustVLInputError
from trustvl.pipelines.fairness_instruction.context import SUBJECT_FIELD, context_texts, template_fields
from trustvl.pipelines.fairness_instruction.counts import largest_remainder_counts
from trustvl.pipelines.fairness_instruction.presets import (
    FAIRNESS_PRESETS,
    SYNTHWORLD_FAIRNESS_HEADS,
    SYNTHWORLD_SKIN_LEVELS,
    synthworld_outcome_value,
    synthworld_phrases,
)
from trustvl.pipelines.semantic_guidance import EditConcept
from trustvl.utils.checks import check_int, check_number

__all__ = ["FairnessInstruction", "check_instructions"]

_SHARE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class FairnessInstruction:
    """Target proportions of the groups of one attribute, and how strongly to guide toward them.

    Args:
        attribute: the attribute's name, e.g. ``"gender"`` (used as the key of each image's assignment).
        groups: ``{group: target share}``; at least 2 groups, shares >= 0 summing to 1 (a group with share 0
            gets no image, but images are still guided away from it).
        prompts: ``{group: text}`` used to guide toward / away from the group; default the group's name. Lets
            groups carry a classifier's label (``"female"``) while guiding with a phrase (``"female person"``).
            A text may hold one field, ``{subject}``, filled per prompt (guidance in context, see the package
            docstring): ``"a photo of a female {subject}"``.
        guidance_scale: edit scale ``s_c`` of every concept (paper: 4).
        warmup_steps: steps before the guidance applies (paper: 5).
        cooldown_steps: step from which it stops; None = never.
        threshold: SEGA quantile ``λ`` in [0, 1) (paper: 0.95).
        toward_weight: weight of the concept toward the image's own group.
        away_weight: total weight of the concepts away from the other groups, split equally among them
            (default 1; with 2 groups the paper's one reversed concept of weight 1).
        outcome_head: the outcome classifier head that reads this attribute (default: the attribute's name).
        outcome_values: ``{group: value of that head}`` (default: the group's name), so that an evaluation
            can compare the classifier's readings with the targets; two groups cannot share a value.
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
    outcome_head: str | None = None
    outcome_values: Mapping[str, str] | None = None

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
            unknown = sorted(template_fields(text) - {SUBJECT_FIELD})
            if unknown:
                raise TrustVLInputError(
                    f"guidance text {text!r} of group {group!r} has the field(s) {unknown}; the only field is "
                    "{subject}"
                )
        where = f" of fairness attribute {self.attribute!r}"
        check_number("guidance_scale", self.guidance_scale, 0, where=where)
        check_number("toward_weight", self.toward_weight, 0, where=where)
        check_number("away_weight", self.away_weight, 0, where=where)
        check_int("warmup_steps", self.warmup_steps, 0, where=where)
        check_int("cooldown_steps", self.cooldown_steps, 0, where=where, allow_none=True)
        check_number("threshold", self.threshold, 0, 1, max_open=True, where=where)
        if self.outcome_head is not None and (
            not isinstance(self.outcome_head, str) or not self.outcome_head.strip()
        ):
            raise TrustVLInputError(
                f"outcome_head={self.outcome_head!r}{where} is empty; expected a head name"
            )
        for group, value in (self.outcome_values or {}).items():
            if group not in self.groups:
                raise TrustVLInputError(
                    f"outcome_values names unknown group {group!r} of {self.attribute!r}; groups are "
                    f"{list(self.groups)}"
                )
            if not isinstance(value, str) or not value.strip():
                raise TrustVLInputError(f"outcome value {value!r} of group {group!r} is empty")
        object.__setattr__(self, "groups", {g: float(s) for g, s in self.groups.items()})
        if self.prompts is not None:
            object.__setattr__(self, "prompts", dict(self.prompts))
        if self.outcome_values is not None:
            object.__setattr__(self, "outcome_values", dict(self.outcome_values))
        values = [self.outcome_of(g) for g in self.groups]
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise TrustVLInputError(
                f"groups of {self.attribute!r} share the outcome value(s) {repeated}; each group needs its own"
            )

    @classmethod
    def preset(cls, attribute: str, *, contextual: bool = False, **kwargs) -> FairnessInstruction:
        """Uniform targets over a known attribute's groups (:data:`FAIRNESS_PRESETS`), e.g. ``"gender"``;
        ``contextual``: guide with "a photo of a female {subject}" instead of "female person"."""
        if attribute not in FAIRNESS_PRESETS:
            raise TrustVLInputError(
                f"unknown fairness attribute {attribute!r}; known presets: {sorted(FAIRNESS_PRESETS)} "
                "(or give the groups explicitly)"
            )
        names = FAIRNESS_PRESETS[attribute]
        if contextual:
            kwargs["prompts"] = context_texts(SYNTHWORLD_FAIRNESS_HEADS[attribute], names)
        return cls(attribute, {g: 1.0 / len(names) for g in names}, **kwargs)

    @classmethod
    def synthworld(
        cls,
        attribute: str,
        shares: Mapping[str, float] | Sequence[float] | None = None,
        *,
        levels: Sequence[str] | None = None,
        contextual: bool = False,
        **kwargs,
    ) -> FairnessInstruction:
        """An instruction ready for the SynthWorld SD and outcome classifier (see the package docstring).

        Args:
            attribute: ``"gender"`` or ``"skin_tone"``.
            shares: target shares, by classifier value (``{"feminine": 0.3, "masculine": 0.7}``) or by phrase,
                or a list in the order of ``levels``; default uniform.
            levels: the classifier values to use as groups (default: both genders; 4 skin tones, no medium).
            contextual: guide in context, "a photo of a very dark-skinned {subject}" (the grammar's appearance
                caption), instead of the bare phrase "person with very dark skin".
            kwargs: the guidance knobs (``guidance_scale``, ``warmup_steps``, ...).
        """
        head = SYNTHWORLD_FAIRNESS_HEADS.get(attribute)
        if head is None:
            raise TrustVLInputError(
                f"unknown SynthWorld fairness attribute {attribute!r}; expected one of "
                f"{sorted(SYNTHWORLD_FAIRNESS_HEADS)}"
            )
        phrases = synthworld_phrases()[head]
        default_levels = SYNTHWORLD_SKIN_LEVELS if head == "skin_tone" else ("feminine", "masculine")
        levels = list(default_levels if levels is None else levels)
        unknown = [v for v in levels if v not in phrases]
        if unknown:
            raise TrustVLInputError(f"unknown {head} level(s) {unknown}; SynthWorld's are {list(phrases)}")
        if shares is None:
            targets = [1.0 / max(len(levels), 1)] * len(levels)
        elif isinstance(shares, Mapping):
            by_value = {synthworld_outcome_value(head, k) or k: v for k, v in shares.items()}
            extra = [k for k in by_value if k not in levels]
            if extra:
                raise TrustVLInputError(f"shares name {extra}, which are not among the levels {levels}")
            targets = [by_value.get(v, 0.0) for v in levels]
        else:
            targets = list(shares)
            if len(targets) != len(levels):
                raise TrustVLInputError(f"{len(targets)} shares for the {len(levels)} levels {levels}")
        groups = {phrases[v]: t for v, t in zip(levels, targets)}
        if contextual:
            kwargs["prompts"] = context_texts(head, list(groups))
        return cls(
            "gender" if head == "gender_presentation" else "skin_tone",
            groups,
            outcome_head=head,
            outcome_values={phrases[v]: v for v in levels},
            **kwargs,
        )

    @classmethod
    def from_string(cls, text: str, *, contextual: bool = False, **kwargs) -> FairnessInstruction:
        """Parse ``"gender=female person:0.5,male person:0.5"`` (or a bare preset name such as ``"gender"``).

        A group without ``:share`` gets an equal part of what the explicit shares leave. ``contextual``: guide
        in context (presets and SynthWorld phrases only, see :meth:`preset`).
        """
        if not isinstance(text, str) or not text.strip():
            raise TrustVLInputError(f"fairness instruction {text!r} is empty")
        if "=" not in text:
            return cls.preset(text.strip(), contextual=contextual, **kwargs)
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
        attribute = attribute.strip()
        if contextual:
            head = SYNTHWORLD_FAIRNESS_HEADS.get(attribute)
            if head is None:
                raise TrustVLInputError(
                    f"guidance in context knows the attributes {sorted(SYNTHWORLD_FAIRNESS_HEADS)}, not "
                    f"{attribute!r}; give guidance texts with a {{subject}} field in a --fair-file instead"
                )
            kwargs["prompts"] = context_texts(head, list(groups))
        return cls(attribute, groups, **kwargs)

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(self.groups)

    @property
    def head(self) -> str:
        """The outcome classifier head that reads this attribute."""
        return self.outcome_head or self.attribute

    def outcome_of(self, group: str) -> str:
        """The outcome classifier's value for ``group``."""
        self.check_group(group)
        return (self.outcome_values or {}).get(group, group)

    def with_outcomes(self, head: str, values: Mapping[str, str]) -> FairnessInstruction:
        """This instruction with its outcome head and ``{group: value}`` set (other fields unchanged)."""
        return dataclasses.replace(self, outcome_head=head, outcome_values=dict(values))

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

    def check_group(self, group: str) -> None:
        if group not in self.groups:
            raise TrustVLInputError(
                f"unknown group {group!r} of {self.attribute!r}; groups are {list(self.group_names)}"
            )

    @property
    def needs_subject(self) -> bool:
        """Whether a guidance text has the ``{subject}`` field (guidance in context)."""
        return any(SUBJECT_FIELD in template_fields(t) for t in (self.prompts or {}).values())

    def prompt_of(self, group: str, subject: str | None = None) -> str:
        """The text that guides toward / away from ``group`` (``subject`` fills a ``{subject}`` field)."""
        self.check_group(group)
        if self.prompts is None or group not in self.prompts:
            return group
        text = self.prompts[group]
        if SUBJECT_FIELD not in template_fields(text):
            return text
        if not isinstance(subject, str) or not subject.strip():
            raise TrustVLInputError(
                f"guidance text {text!r} of group {group!r} needs a subject (what the prompt shows, e.g. "
                f"'nurse'), got {subject!r}"
            )
        return text.format(subject=subject.strip())

    def edit_concepts(self, group: str, subject: str | None = None) -> list[EditConcept]:
        """The concepts guiding an image toward ``group`` and away from every other group (``subject``: the
        prompt's subject, for guidance texts in context)."""
        self.check_group(group)
        others = [g for g in self.group_names if g != group]
        knobs = dict(
            scale=self.guidance_scale,
            warmup_steps=self.warmup_steps,
            cooldown_steps=self.cooldown_steps,
            threshold=self.threshold,
        )
        concepts = [
            EditConcept(self.prompt_of(group, subject), reverse=False, weight=self.toward_weight, **knobs)
        ]
        away = self.away_weight / len(others)
        concepts += [
            EditConcept(self.prompt_of(g, subject), reverse=True, weight=away, **knobs) for g in others
        ]
        return concepts


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
