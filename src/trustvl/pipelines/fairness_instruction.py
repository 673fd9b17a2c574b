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

**Guidance in context (an extension; documented choice).** The paper guides with bare phrases ("female
person"). A guidance text may instead name the group in the prompt's own context, with a ``{subject}`` field
filled per prompt: ``"a photo of a female {subject}"`` with subject ``"firefighter"``. Since the toward and
away concepts then share everything but the group's words, their SEGA directions differ mainly in the
attribute, not in the subject. ``contextual=True`` (``preset``/``synthworld``; ``--fair-context``) uses
:data:`FAIRNESS_CONTEXT_TEMPLATE`. On the SynthWorld SD it is what makes a 4-level skin-tone target reachable
(README, "Fair Diffusion"); the subject of a prompt is given explicitly or, by default, the SynthWorld
occupation the prompt names (:func:`subject_in_prompt`).

Reading the outcome: an instruction can say which head of an outcome classifier reads its attribute
(``outcome_head``) and which of that head's values each group is (``outcome_values``), so an evaluation can
compare the shares per group with the targets. :meth:`FairnessInstruction.synthworld` gives instructions
ready for the embedded SynthWorld text-to-image model and outcome classifier:

=============  ==============================================  ========================================
attribute      concept phrase (guidance text)                  outcome classifier head = value
=============  ==============================================  ========================================
``gender``     ``"female person"`` / ``"male person"``         ``gender_presentation`` = ``feminine`` /
                                                               ``masculine``
``skin_tone``  ``"person with very light skin"`` ...            ``skin_tone`` = ``very light``, ``light``,
               ``"person with very dark skin"``                ``medium``, ``dark``, ``very dark``
=============  ==============================================  ========================================

The phrases are built from SynthWorld's caption grammar (``GENDER_ADJ``: "a photo of a female nurse";
``SKIN_NOUN_PHRASES``: "a person with very dark skin working as a chef"), so every word is one the SynthWorld
text encoder was trained on; the gender phrase follows the paper's ``"female person"``. The default skin-tone
instruction uses 4 of SynthWorld's 5 levels (very light, light, dark, very dark; ``medium`` left out because
it sits between its neighbours and is the level the classifier confuses most), as the issue's 4-level test
asks; pass ``levels=`` for others. :func:`synthworld_outcome_value` maps other phrasings ("woman",
"dark-skinned", "a person with dark skin") to the classifier's values.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import random
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from trustvl.errors import TrustVLInputError
from trustvl.pipelines.semantic_guidance import EditConcept
from trustvl.utils.checks import check_int, check_number

__all__ = [
    "FAIRNESS_CONTEXT_TEMPLATE",
    "FAIRNESS_PRESETS",
    "FAIR_DIFFUSION_MOMENTUM",
    "SYNTHWORLD_FAIRNESS_HEADS",
    "FairnessInstruction",
    "GroupAssignment",
    "assign_groups",
    "given_assignments",
    "instructions_from_file",
    "largest_remainder_counts",
    "resolve_subjects",
    "subject_in_prompt",
    "synthworld_outcome_value",
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

#: The guidance text of a group in context (``contextual=True``): ``{group}`` is the group's adjective in
#: SynthWorld's caption grammar ("female", "very dark-skinned"), ``{{subject}}`` what the prompt shows. It is
#: the grammar's appearance caption "a photo of a female nurse".
FAIRNESS_CONTEXT_TEMPLATE = "a photo of a {group} {{subject}}"

#: The one field a guidance text may hold.
SUBJECT_FIELD = "subject"

#: SynthWorld attribute name -> the outcome classifier head that reads it.
SYNTHWORLD_FAIRNESS_HEADS: Mapping[str, str] = MappingProxyType(
    {"gender": "gender_presentation", "gender_presentation": "gender_presentation", "skin_tone": "skin_tone",
     "skin": "skin_tone"}
)  # fmt: skip

#: The default 4 skin-tone levels of :meth:`FairnessInstruction.synthworld` (``medium`` left out).
SYNTHWORLD_SKIN_LEVELS: tuple[str, ...] = ("very light", "light", "dark", "very dark")


def _synthworld_phrases() -> dict[str, dict[str, str]]:
    """head -> {head value: the guidance phrase}, from SynthWorld's caption grammar."""
    from trustvl.data_builders.synthworld.captions import GENDER_ADJ
    from trustvl.data_builders.synthworld.generation_captions import SKIN_NOUN_PHRASES

    return {
        "gender_presentation": {value: f"{adjective} person" for value, adjective in GENDER_ADJ.items()},
        "skin_tone": {value: f"person with {noun}" for value, noun in SKIN_NOUN_PHRASES.items()},
    }


def _context_texts(head: str, groups: Sequence[str]) -> dict[str, str]:
    """``{group: contextual guidance text}`` for SynthWorld phrases of ``head`` (see FAIRNESS_CONTEXT_TEMPLATE)."""
    from trustvl.data_builders.synthworld.captions import GENDER_ADJ, SKIN_PHRASES

    adjectives = GENDER_ADJ if head == "gender_presentation" else SKIN_PHRASES
    out = {}
    for group in groups:
        value = synthworld_outcome_value(head, group)
        if value is None:
            raise TrustVLInputError(
                f"contextual guidance knows no adjective for group {group!r}; give the guidance texts with a "
                "{subject} field yourself (prompts=...)"
            )
        out[group] = FAIRNESS_CONTEXT_TEMPLATE.format(group=adjectives[value])
    return out


def _template_fields(text: str) -> set[str]:
    """The ``{field}`` names of a guidance text (raises on unbalanced braces)."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as e:
        raise TrustVLInputError(
            f"guidance text {text!r} is not a valid template ({e}); write braces as {{{{ }}}}"
        ) from None


def subject_in_prompt(prompt: str, vocabulary: Sequence[str] | None = None) -> str | None:
    """The longest entry of ``vocabulary`` (default: SynthWorld's occupations) that ``prompt`` names as whole
    words (case-insensitive), else None."""
    if vocabulary is None:
        from trustvl.data_builders.synthworld import OCCUPATIONS

        vocabulary = OCCUPATIONS
    text = f" {str(prompt).lower()} "
    found = [v for v in vocabulary if re.search(rf"(?<![a-z]){re.escape(v.lower())}(?![a-z])", text)]
    return max(found, key=len) if found else None


def resolve_subjects(
    instructions: Sequence[FairnessInstruction],
    prompts: Sequence[str],
    subjects: Mapping[str, str] | Sequence[str] | str | None = None,
) -> list[str | None]:
    """One subject per prompt for guidance texts with a ``{subject}`` field (None where none is needed).

    ``subjects``: one text for every prompt, one per prompt (a list), or ``{prompt: subject}``; a prompt without
    one gets the SynthWorld occupation it names (:func:`subject_in_prompt`). Raises when a needed subject is
    missing or empty.
    """
    prompts = list(prompts)
    if not any(ins.needs_subject for ins in check_instructions(instructions)):
        return [None] * len(prompts)
    if isinstance(subjects, str):
        given: list[str | None] = [subjects] * len(prompts)
    elif isinstance(subjects, Mapping):
        given = [subjects.get(p) for p in prompts]
    elif subjects is None:
        given = [None] * len(prompts)
    else:
        given = list(subjects)
        if len(given) != len(prompts):
            raise TrustVLInputError(
                f"{len(given)} fairness subjects for {len(prompts)} prompts; expected one each"
            )
    out = []
    for prompt, subject in zip(prompts, given):
        if subject is None:
            subject = subject_in_prompt(prompt)
        if subject is None:
            raise TrustVLInputError(
                f"prompt {prompt!r} needs a subject for the guidance texts in context ('{{subject}}'), and it names "
                "no SynthWorld occupation; pass one per prompt (fairness_subjects=, --fair-subject)"
            )
        if not isinstance(subject, str) or not subject.strip():
            raise TrustVLInputError(f"fairness subject {subject!r} of prompt {prompt!r} is empty")
        out.append(subject.strip())
    return out


def _normalise_phrase(text: str) -> str:
    words = text.lower().replace("-", " ").split()
    if words and words[0] in ("a", "an", "the"):
        words = words[1:]
    return " ".join(words)


def synthworld_outcome_value(head: str, phrase: str) -> str | None:
    """The SynthWorld outcome classifier's value of ``head`` that ``phrase`` names, or None.

    Accepts the value itself (``"feminine"``), the guidance phrase (``"female person"``) and the caption
    grammar's other words for it (``"female"``, ``"woman"``, ``"a female person"``; ``"very dark skin"``,
    ``"very dark-skinned"``, ``"a person with very dark skin"``, ``"very dark-skinned person"``).
    """
    from trustvl.data_builders.synthworld.captions import GENDER_ADJ, GENDER_NOUN, SKIN_PHRASES
    from trustvl.data_builders.synthworld.generation_captions import SKIN_NOUN_PHRASES

    key = _normalise_phrase(phrase)
    names: dict[str, list[str]] = {}
    if head == "gender_presentation":
        for value in GENDER_ADJ:
            adjective, noun = GENDER_ADJ[value], GENDER_NOUN[value]
            names[value] = [value, adjective, noun, f"{adjective} person", f"{adjective} {noun}"]
    elif head == "skin_tone":
        for value in SKIN_PHRASES:
            skinned, noun = SKIN_PHRASES[value], SKIN_NOUN_PHRASES[value]
            names[value] = [value, skinned, noun, f"person with {noun}", f"{skinned} person"]
    for value, options in names.items():
        if key in {_normalise_phrase(o) for o in options}:
            return value
    return None


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
            A text may hold one field, ``{subject}``, filled per prompt (guidance in context, see the module
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
            unknown = sorted(_template_fields(text) - {SUBJECT_FIELD})
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
            kwargs["prompts"] = _context_texts(SYNTHWORLD_FAIRNESS_HEADS[attribute], names)
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
        """An instruction ready for the SynthWorld SD and outcome classifier (see the module docstring).

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
        phrases = _synthworld_phrases()[head]
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
            kwargs["prompts"] = _context_texts(head, list(groups))
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
            kwargs["prompts"] = _context_texts(head, list(groups))
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
        self._check_group(group)
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

    def _check_group(self, group: str) -> None:
        if group not in self.groups:
            raise TrustVLInputError(
                f"unknown group {group!r} of {self.attribute!r}; groups are {list(self.group_names)}"
            )

    @property
    def needs_subject(self) -> bool:
        """Whether a guidance text has the ``{subject}`` field (guidance in context)."""
        return any(SUBJECT_FIELD in _template_fields(t) for t in (self.prompts or {}).values())

    def prompt_of(self, group: str, subject: str | None = None) -> str:
        """The text that guides toward / away from ``group`` (``subject`` fills a ``{subject}`` field)."""
        self._check_group(group)
        if self.prompts is None or group not in self.prompts:
            return group
        text = self.prompts[group]
        if SUBJECT_FIELD not in _template_fields(text):
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
        self._check_group(group)
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
            ins._check_group(groups[ins.attribute])
        out.append(GroupAssignment(k, k // num_images_per_prompt, dict(groups)))
    return out


_INSTRUCTION_FIELDS = {f.name for f in dataclasses.fields(FairnessInstruction)}


def instructions_from_file(path: str, **defaults) -> list[FairnessInstruction]:
    """Fairness instructions from a YAML or JSON file (``trustvl generate --fair-file``).

    The file holds a list (or ``{"fairness": [...]}``) whose items are either strings in the ``--fair`` syntax
    (``"gender=female person:0.5,male person:0.5"``) or mappings of :class:`FairnessInstruction` fields::

        fairness:
          - attribute: gender
            groups: {female person: 0.3, male person: 0.7}
            outcome_head: gender_presentation
            outcome_values: {female person: feminine, male person: masculine}
            guidance_scale: 5
          - skin_tone            # a preset name

    ``defaults`` (e.g. the command line's guidance knobs) apply where an item does not set the field.
    """
    import os

    import yaml

    if not os.path.isfile(path):
        raise TrustVLInputError(f"fairness file {path!r} does not exist; expected a YAML or JSON file")
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as e:
        raise TrustVLInputError(f"fairness file {path!r} is not valid YAML/JSON: {e}") from None
    if isinstance(data, Mapping) and set(data) == {"fairness"}:
        data = data["fairness"]
    if not isinstance(data, list) or not data:
        raise TrustVLInputError(
            f"fairness file {path!r} holds {type(data).__name__}; expected a non-empty list of instructions "
            "(or a mapping with the one key 'fairness')"
        )
    out = []
    for item in data:
        if isinstance(item, str):
            out.append(FairnessInstruction.from_string(item, **defaults))
        elif isinstance(item, Mapping):
            unknown = sorted(set(item) - _INSTRUCTION_FIELDS)
            if unknown:
                raise TrustVLInputError(
                    f"fairness file {path!r}: unknown field(s) {unknown}; expected {sorted(_INSTRUCTION_FIELDS)}"
                )
            if "attribute" not in item or "groups" not in item:
                raise TrustVLInputError(
                    f"fairness file {path!r}: item {dict(item)!r} needs 'attribute' and 'groups'"
                )
            out.append(FairnessInstruction(**{**defaults, **item}))
        else:
            raise TrustVLInputError(
                f"fairness file {path!r}: item {item!r} is neither a string nor a mapping"
            )
    return check_instructions(out)


#: SEGA momentum scale and β of the Fair Diffusion paper.
FAIR_DIFFUSION_MOMENTUM = (0.5, 0.6)
