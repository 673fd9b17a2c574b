"""Checks and normal forms of a counterfactual grid's fields: prompt templates, occupations and their
settings, the attribute grid (names usable as dataset columns), and the "a"/"an" article fix."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

from trustvl.errors import TrustVLInputError

__all__ = [
    "CONTEXT_FIELDS",
    "MODEL_STAGES",
    "RESERVED_COLUMNS",
    "check_template_fields",
    "normalise_attributes",
    "normalise_occupations",
    "with_articles",
]

#: Columns of the built dataset; attribute names may not reuse them.
RESERVED_COLUMNS: tuple[str, ...] = (
    "image",
    "mask",
    "base_id",
    "variant_id",
    "cell_id",
    "prompt",
    "caption",
    "inpaint_prompt",
    "occupation",
    "setting",
    "seed",
    "base_seed",
)

#: Template fields of a context (prompt and caption templates may use only these).
CONTEXT_FIELDS = frozenset({"occupation", "setting"})
#: The stages a config's ``models`` section may configure.
MODEL_STAGES = ("text_to_image", "segmenter", "inpainter")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ARTICLE_RE = re.compile(r"\b([Aa]) (?=[AEIOaeio])")


def with_articles(text: str) -> str:
    """``text`` with "a"/"A" before a word starting with a, e, i or o turned into "an"/"An"."""
    return _ARTICLE_RE.sub(lambda m: m.group(1) + "n ", text)


def check_template_fields(name: str, template: Any, allowed: set[str] | frozenset[str]) -> None:
    """Raise unless ``template`` is a format string whose fields are named, plain and among ``allowed``."""
    if not isinstance(template, str) or not template.strip():
        raise TrustVLInputError(f"{name}={template!r}; expected a non-empty str template")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise TrustVLInputError(f"{name}={template!r} is not a valid format string: {err}") from None
    for _, fname, spec, conv in parsed:
        if fname is None:
            continue
        if fname == "" or fname.isdigit():
            raise TrustVLInputError(
                f"{name}={template!r} uses a positional field {{}}; expected named fields"
            )
        if fname not in allowed:
            raise TrustVLInputError(
                f"{name}={template!r} uses unknown field {{{fname}}}; expected some of {sorted(allowed)}"
                + (" (captions are context-only: no appearance fields)" if name == "caption_template" else "")
            )
        if spec or conv:
            raise TrustVLInputError(
                f"{name}={template!r}: field {{{fname}}} may not carry a format spec or conversion"
            )


def normalise_occupations(value: Any) -> dict[str, tuple[str, ...] | None]:
    """Occupation -> its settings (a tuple, or None: the shared ``settings``), from a list or a mapping."""
    if isinstance(value, str) or value is None:
        raise TrustVLInputError(
            f"occupations={value!r}; expected a list of occupations or a mapping occupation -> settings"
        )
    if isinstance(value, Mapping):
        items = list(value.items())
    else:
        items = [(o, None) for o in value]
    out: dict[str, tuple[str, ...] | None] = {}
    for occ, settings in items:
        if not isinstance(occ, str) or not occ.strip():
            raise TrustVLInputError(f"occupation {occ!r} must be a non-empty str")
        occ = occ.strip()
        if occ in out:
            raise TrustVLInputError(f"occupation {occ!r} is listed twice")
        if settings is None:
            out[occ] = None
            continue
        if isinstance(settings, str):
            settings = [settings]
        settings = tuple(settings)
        for s in settings:
            if not isinstance(s, str) or not s.strip():
                raise TrustVLInputError(
                    f"occupations[{occ!r}] has setting {s!r}; expected non-empty str settings"
                )
        if len(set(settings)) != len(settings):
            raise TrustVLInputError(f"occupations[{occ!r}]={list(settings)!r} contains duplicates")
        out[occ] = tuple(s.strip() for s in settings) or None
    return out


def normalise_attributes(value: Any) -> dict[str, dict[str, str]]:
    """Attribute -> {value: prompt phrase}, from mappings or lists (a bare value is its own phrase)."""
    if not isinstance(value, Mapping):
        raise TrustVLInputError(
            f"attributes={value!r}; expected a mapping attribute -> {{value: prompt phrase}}"
        )
    out: dict[str, dict[str, str]] = {}
    for name, values in value.items():
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise TrustVLInputError(
                f"attribute name {name!r} is not usable as a column name; expected letters, digits and _"
            )
        if name in RESERVED_COLUMNS:
            raise TrustVLInputError(f"attribute name {name!r} is a reserved column; expected another name")
        if isinstance(values, str) or values is None:
            raise TrustVLInputError(
                f"attributes[{name!r}]={values!r}; expected a mapping value -> phrase or a list of values"
            )
        if isinstance(values, Mapping):
            pairs = list(values.items())
        else:
            pairs = []
            for v in values:
                if isinstance(v, Mapping):
                    extra = set(v) - {"value", "phrase"}
                    if "value" not in v or extra:
                        raise TrustVLInputError(
                            f"attributes[{name!r}] item {v!r}; expected keys 'value' and 'phrase'"
                        )
                    pairs.append((v["value"], v.get("phrase")))
                else:
                    pairs.append((v, None))
        level_map: dict[str, str] = {}
        for v, phrase in pairs:
            if not isinstance(v, str) or not v.strip():
                raise TrustVLInputError(
                    f"attributes[{name!r}] has value {v!r}; expected non-empty str values (quote YAML values"
                    " such as yes/no/on/off)"
                )
            if v in level_map:
                raise TrustVLInputError(f"attributes[{name!r}] lists value {v!r} twice")
            if phrase is None:
                phrase = v
            if not isinstance(phrase, str):
                raise TrustVLInputError(f"attributes[{name!r}][{v!r}] phrase {phrase!r} must be a str")
            level_map[v] = phrase.strip()
        if not level_map:
            raise TrustVLInputError(f"attributes[{name!r}] has no values; expected at least one")
        out[name] = level_map
    return out
