"""Guidance in context (an extension, see the package docstring): the template that names a group in the
prompt's own context (:data:`FAIRNESS_CONTEXT_TEMPLATE`), its one field ``{subject}``, and the contextual
guidance texts of SynthWorld's groups (:func:`context_texts`)."""

from __future__ import annotations

import string
from collections.abc import Sequence

from trustvl.errors import TrustVLInputError
from trustvl.pipelines.fairness_instruction.presets import synthworld_outcome_value

__all__ = ["FAIRNESS_CONTEXT_TEMPLATE", "SUBJECT_FIELD", "context_texts", "template_fields"]

#: The guidance text of a group in context (``contextual=True``): ``{group}`` is the group's adjective in
#: SynthWorld's caption grammar ("female", "very dark-skinned"), ``{{subject}}`` what the prompt shows. It is
#: the grammar's appearance caption "a photo of a female nurse".
FAIRNESS_CONTEXT_TEMPLATE = "a photo of a {group} {{subject}}"

#: The one field a guidance text may hold.
SUBJECT_FIELD = "subject"


def context_texts(head: str, groups: Sequence[str]) -> dict[str, str]:
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


def template_fields(text: str) -> set[str]:
    """The ``{field}`` names of a guidance text (raises on unbalanced braces)."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as e:
        raise TrustVLInputError(
            f"guidance text {text!r} is not a valid template ({e}); write braces as {{{{ }}}}"
        ) from None
