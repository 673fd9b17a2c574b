"""Fairness instructions from a YAML or JSON file (``trustvl generate --fair-file``):
:func:`instructions_from_file`."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import yaml

from trustvl.errors import TrustVLInputError
from trustvl.pipelines.fairness_instruction.instruction import FairnessInstruction, check_instructions

__all__ = ["instructions_from_file"]

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
