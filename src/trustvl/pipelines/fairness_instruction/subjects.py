"""The subject of each prompt for guidance texts in context: named explicitly or found in the prompt
(:func:`subject_in_prompt`, SynthWorld's occupations by default), resolved per prompt by
:func:`resolve_subjects`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from trustvl.errors import TrustVLInputError
from trustvl.pipelines.fairness_instruction.instruction import FairnessInstruction, check_instructions

__all__ = ["resolve_subjects", "subject_in_prompt"]


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
