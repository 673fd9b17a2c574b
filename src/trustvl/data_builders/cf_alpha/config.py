"""Configuration of a CF_α counterfactual build (SPEC §2): contexts, attribute grid, build knobs.

A build makes, for every *context prompt* (an occupation in one of its settings, e.g. "a photo of a doctor
in a hospital"), ``n_base_per_prompt`` base images with a text-to-image model, masks the person in each,
and re-paints the person once per chosen *grid cell* (one value of every appearance attribute, e.g.
``age=old, body_type=slim, skin_tone=dark, gender_presentation=feminine``). The variants of one base image
share every pixel outside the mask.

Definitions (trustvl's choices, all configurable)
-------------------------------------------------
* **Base index.** Base images are numbered ``b = 0 .. n_prompts * n_base_per_prompt - 1``; base ``b`` uses
  context ``b % n_prompts`` and is its ``b // n_prompts``-th repetition (round robin, so every shard covers
  the prompts evenly). Everything about base ``b`` is a function of ``(seed, b)`` only.
* **Seeds.** ``base_seed(b)`` and ``variant_seed(b, cell)`` are 31-bit integers derived from
  ``numpy.random.SeedSequence([seed, b, ...])``; a variant's seed depends on its grid cell, not on its
  position, so the same cell of the same base always gets the same noise.
* **Variants per base.** ``variants_per_base = None`` uses every grid cell. Otherwise the ``n`` cells of a
  base are a deterministic *balanced* sample (design ``"balanced-v1"``): inside one set every attribute's
  levels appear as evenly as possible (counts differ by at most one, e.g. with 8 of the 4x2x2x2 SynthWorld
  cells each skin tone twice and each binary attribute 4/4), so the set's mean embedding is
  appearance-neutral and the cohesion loss pulls every attribute towards it, and within a context the
  cells are used about equally often. The cells are picked greedily (fewest level repeats inside the set,
  then least-used cell in the context, then a seeded order), with up to 16 seeded restarts when a set
  would come out unbalanced; repetition ``r`` of a context depends on repetitions ``0 .. r-1`` (the
  usage counts), which are replayed and cached. Cells are listed in grid order.
* **Appearance phrase.** The phrases of the cell's values joined with spaces in attribute order (empty
  phrases dropped), e.g. "elderly slim dark-skinned female".
* **Articles.** With ``fix_articles`` an "a"/"A" followed by a word starting with a, e, i or o becomes
  "an"/"An" after formatting (so templates can always write "a"). Words such as "European" or "hour"
  are not handled; turn it off and write the article in the phrases instead.

YAML
----
:meth:`CounterfactualConfig.from_yaml` reads a file with the field names below as keys (unknown keys are
an error). ``extends: default`` (or a path) first loads that base file, then merges this one into it:
mappings key by key (so an occupation or an attribute value can be added or overridden), lists and
scalars replaced. The packaged default is ``trustvl/assets/counterfactual/default_grid.yaml``
(:data:`DEFAULT_GRID_PATH`); ``CounterfactualConfig()`` equals it.

The YAML reading lives in :mod:`.grid_yaml`, the field checks in :mod:`.grid_fields` and the cell design in
:mod:`.variant_design`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trustvl.data_builders.cf_alpha.grid_fields import (
    CONTEXT_FIELDS,
    MODEL_STAGES,
    RESERVED_COLUMNS,
    check_template_fields,
    normalise_attributes,
    normalise_occupations,
    with_articles,
)
from trustvl.data_builders.cf_alpha.grid_yaml import DEFAULT_GRID_PATH, default_grid_value, resolve_grid_yaml
from trustvl.data_builders.cf_alpha.variant_design import VARIANT_DESIGN, balanced_design
from trustvl.errors import TrustVLInputError
from trustvl.utils.checks import check_int, check_number

__all__ = [
    "DEFAULT_GRID_PATH",
    "RESERVED_COLUMNS",
    "Context",
    "CounterfactualConfig",
    "load_counterfactual_config",
]


@dataclass(frozen=True)
class Context:
    """One context prompt: ``prompt`` for the text-to-image model, ``caption`` stored with the images."""

    index: int
    occupation: str
    setting: str
    prompt: str
    caption: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class CounterfactualConfig:
    """Everything that decides the content of a counterfactual build. Validated in ``__post_init__``
    (bad values raise :class:`~trustvl.errors.TrustVLInputError` naming the value). Defaults are the
    packaged ``default_grid.yaml``.

    Attributes:
        occupations: occupation -> its settings (phrases such as "in a hospital"), or a list of occupations
            (each then uses ``settings``). A ``None`` / empty settings list also means ``settings``.
        settings: settings for occupations without their own.
        prompt_template: context prompt; fields ``{occupation}``, ``{setting}``.
        caption_template: the stored caption (context only, no appearance words); fields ``{occupation}``,
            ``{setting}``; ``None`` uses the context prompt.
        inpaint_template: inpainting prompt; fields ``{occupation}``, ``{setting}``, ``{prompt}``,
            ``{appearance}`` and every attribute name (its phrase).
        fix_articles: turn "a" into "an" before a, e, i, o after formatting (see the module doc).
        attributes: attribute -> {value: prompt phrase}, in order (a list of values means phrase = value).
            Names become ``ClassLabel`` columns with the values as names.
        use_attributes: the attributes varied (subset, in this order); ``None`` = all of ``attributes``.
        variants_per_base: grid cells inpainted per base image, 2 .. number of cells; ``None`` = all.
        n_base_per_prompt: base images generated per context prompt.
        seed: master seed (>= 0); the whole build is a function of it.
        shard_size: base images per Parquet shard; shard ``i`` holds bases ``[i*shard_size, (i+1)*shard_size)``
            and is the unit of resume and of multi-GPU work.
        image_size: side of the dataset images; base images of another size are resized (bicubic) to
            ``image_size x image_size``. ``None`` keeps the text-to-image output size.
        mask_threshold: a segmenter's soft mask (probabilities) is binarised at ``>= mask_threshold``
            (binary masks are unaffected for any threshold in (0, 1]).
        mask_dilation: pixels the binary person mask is grown by (square max filter of side
            ``2 * mask_dilation + 1``), so hair and outline are repainted too.
        min_mask_fraction: a mask covering less than this fraction of the image counts as "no person":
            the base image is skipped (and counted).
        paste_back: composite every variant with its base so pixels outside the (dilated) mask are exactly
            the base's (the SPEC's "share every context pixel"); recommended.
        batch_size: images per model call. Not part of the fingerprint: on the CPU it does not change the
            output; on a GPU the batch composition may change the last bits of an image.
        models: per stage (``text_to_image``, ``segmenter``, ``inpainter``) the keyword arguments of the
            real stage (``model`` = Hub id or folder) used by :func:`~.stages.build_stages`. Not part of
            the content fingerprint (the stages describe themselves instead).
    """

    occupations: Mapping[str, Sequence[str] | None] | Sequence[str] = field(
        default_factory=lambda: default_grid_value("occupations")
    )
    settings: Sequence[str] = field(default_factory=lambda: default_grid_value("settings"))
    prompt_template: str = "a photo of a {occupation} {setting}"
    caption_template: str | None = None
    inpaint_template: str = "a photo of a {appearance} {occupation}"
    fix_articles: bool = True
    attributes: Mapping[str, Any] = field(default_factory=lambda: default_grid_value("attributes"))
    use_attributes: Sequence[str] | None = None
    variants_per_base: int | None = 8
    n_base_per_prompt: int = 4
    seed: int = 0
    shard_size: int = 16
    image_size: int | None = 512
    mask_threshold: float = 0.5
    mask_dilation: int = 8
    min_mask_fraction: float = 0.01
    paste_back: bool = True
    batch_size: int = 4
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: default_grid_value("models"))

    def __post_init__(self) -> None:
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        self.occupations = normalise_occupations(self.occupations)
        if isinstance(self.settings, str):
            self.settings = [self.settings]
        if self.settings is None:
            self.settings = ()
        settings = tuple(self.settings)
        for s in settings:
            if not isinstance(s, str) or not s.strip():
                raise TrustVLInputError(f"settings has {s!r}; expected non-empty str settings")
        self.settings = tuple(s.strip() for s in settings)
        if not self.occupations:
            raise TrustVLInputError(
                "the prompt grid is empty: occupations has no entries; expected at least one occupation"
            )
        without = [o for o, s in self.occupations.items() if s is None]
        if without and not self.settings:
            raise TrustVLInputError(
                f"the prompt grid is empty for occupations {without}: they have no settings of their own and"
                " settings=[] ; expected settings for them"
            )

        check_template_fields("prompt_template", self.prompt_template, CONTEXT_FIELDS)
        if self.caption_template is not None:
            check_template_fields("caption_template", self.caption_template, CONTEXT_FIELDS)
        self.fix_articles = bool(self.fix_articles)

        attrs = normalise_attributes(self.attributes)
        if self.use_attributes is not None:
            if isinstance(self.use_attributes, str):
                self.use_attributes = [self.use_attributes]
            use = tuple(self.use_attributes)
            unknown = [a for a in use if a not in attrs]
            if unknown:
                raise TrustVLInputError(
                    f"use_attributes names unknown attribute(s) {unknown}; expected some of {list(attrs)}"
                )
            if len(set(use)) != len(use):
                raise TrustVLInputError(f"use_attributes={list(use)!r} contains duplicates")
            if not use:
                raise TrustVLInputError(
                    "use_attributes=[] is empty; expected at least one attribute (or null for all)"
                )
            self.use_attributes = use
            attrs = {a: attrs[a] for a in use}
        self.attributes = attrs
        if not attrs:
            raise TrustVLInputError("attributes is empty; expected an attribute grid with at least two cells")
        n_cells = math.prod(len(v) for v in attrs.values())
        if n_cells < 2:
            raise TrustVLInputError(
                f"the attribute grid {{{', '.join(f'{a}: {list(v)}' for a, v in attrs.items())}}} has a single"
                " cell: no counterfactual variants are possible; expected at least two values in total"
            )
        check_template_fields(
            "inpaint_template", self.inpaint_template, CONTEXT_FIELDS | {"prompt", "appearance"} | set(attrs)
        )
        self.variants_per_base = check_int(
            "variants_per_base", self.variants_per_base, 2, n_cells, allow_none=True
        )
        self.n_base_per_prompt = check_int("n_base_per_prompt", self.n_base_per_prompt, 1)
        self.seed = check_int("seed", self.seed, 0, 2**63 - 1)
        self.shard_size = check_int("shard_size", self.shard_size, 1)
        self.image_size = check_int("image_size", self.image_size, 8, 8192, allow_none=True)
        self.mask_threshold = check_number("mask_threshold", self.mask_threshold, 0.0, 1.0)
        self.mask_dilation = check_int("mask_dilation", self.mask_dilation, 0, 4096)
        self.min_mask_fraction = check_number(
            "min_mask_fraction", self.min_mask_fraction, 0.0, 1.0, max_open=True
        )
        self.paste_back = bool(self.paste_back)
        self.batch_size = check_int("batch_size", self.batch_size, 1)

        models = {} if self.models is None else self.models
        if not isinstance(models, Mapping):
            raise TrustVLInputError(f"models={models!r}; expected a mapping stage -> keyword arguments")
        for stage, kwargs in models.items():
            if stage not in MODEL_STAGES:
                raise TrustVLInputError(
                    f"models has unknown stage {stage!r}; expected some of {list(MODEL_STAGES)}"
                )
            if not isinstance(kwargs, Mapping):
                raise TrustVLInputError(
                    f"models[{stage!r}]={kwargs!r}; expected a mapping of keyword arguments"
                )
        self.models = {k: dict(v) for k, v in models.items()}

    # ------------------------------------------------------------------ contexts
    def _fmt(self, template: str, **fields: str) -> str:
        text = template.format(**fields)
        text = " ".join(text.split())
        return with_articles(text) if self.fix_articles else text

    def contexts(self) -> list[Context]:
        """The context prompts, occupations in order and each occupation's settings in order."""
        out: list[Context] = []
        for occ, settings in self.occupations.items():
            for setting in settings if settings is not None else self.settings:
                prompt = self._fmt(self.prompt_template, occupation=occ, setting=setting)
                caption = (
                    prompt
                    if self.caption_template is None
                    else self._fmt(self.caption_template, occupation=occ, setting=setting)
                )
                out.append(Context(len(out), occ, setting, prompt, caption))
        return out

    @property
    def n_prompts(self) -> int:
        return sum(len(s) if s is not None else len(self.settings) for s in self.occupations.values())

    @property
    def n_bases(self) -> int:
        """Base images the build tries."""
        return self.n_prompts * self.n_base_per_prompt

    @property
    def n_shards(self) -> int:
        return -(-self.n_bases // self.shard_size)

    def context_of(self, base_index: int) -> Context:
        """The context of base image ``base_index`` (round robin over the contexts)."""
        return self.contexts()[base_index % self.n_prompts]

    # ------------------------------------------------------------------ grid
    @property
    def attribute_names(self) -> tuple[str, ...]:
        return tuple(self.attributes)

    @property
    def n_cells(self) -> int:
        return math.prod(len(v) for v in self.attributes.values())

    @property
    def n_variants(self) -> int:
        """Variants per base image."""
        return self.n_cells if self.variants_per_base is None else self.variants_per_base

    def cell(self, cell_id: int) -> dict[str, str]:
        """Attribute -> value of grid cell ``cell_id`` (row-major over the attributes, last fastest)."""
        if not 0 <= cell_id < self.n_cells:
            raise TrustVLInputError(
                f"cell_id={cell_id} is out of range; expected 0 <= cell_id < {self.n_cells}"
            )
        out: dict[str, str] = {}
        rest = cell_id
        for name in reversed(self.attribute_names):
            values = list(self.attributes[name])
            rest, i = divmod(rest, len(values))
            out[name] = values[i]
        return {a: out[a] for a in self.attribute_names}

    def cells(self) -> list[dict[str, str]]:
        """Every grid cell, in ``cell_id`` order."""
        names = self.attribute_names
        return [
            dict(zip(names, combo))
            for combo in itertools.product(*(list(v) for v in self.attributes.values()))
        ]

    def _seq(self, *parts: int) -> int:
        return int(np.random.SeedSequence([self.seed, *parts]).generate_state(1, dtype=np.uint32)[0] >> 1)

    def base_seed(self, base_index: int) -> int:
        """Seed of the text-to-image generation of base ``base_index``."""
        return self._seq(int(base_index), 0)

    def variant_seed(self, base_index: int, cell_id: int) -> int:
        """Seed of the inpainting of grid cell ``cell_id`` for base ``base_index``."""
        return self._seq(int(base_index), 1, int(cell_id))

    def variant_cells(self, base_index: int) -> list[int]:
        """The grid cells (ids, ascending) inpainted for base ``base_index`` (see the module doc)."""
        n_cells, n = self.n_cells, self.n_variants
        if n >= n_cells:
            return list(range(n_cells))
        ctx, rep = base_index % self.n_prompts, base_index // self.n_prompts
        levels = tuple(len(v) for v in self.attributes.values())
        return list(balanced_design(levels, n, self.seed, ctx, rep + 1)[rep])

    def appearance(self, cell: Mapping[str, str]) -> str:
        """The appearance phrase of a cell (phrases in attribute order, empty ones dropped)."""
        return " ".join(p for p in (self.attributes[a][cell[a]] for a in self.attribute_names) if p)

    def inpaint_prompt(self, context: Context, cell: Mapping[str, str]) -> str:
        phrases = {a: self.attributes[a][cell[a]] for a in self.attribute_names}
        return self._fmt(
            self.inpaint_template,
            occupation=context.occupation,
            setting=context.setting,
            prompt=context.prompt,
            appearance=self.appearance(cell),
            **phrases,
        )

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-able dict of every field (:meth:`from_dict` inverts it)."""
        return {
            "occupations": {o: (list(s) if s is not None else None) for o, s in self.occupations.items()},
            "settings": list(self.settings),
            "prompt_template": self.prompt_template,
            "caption_template": self.caption_template,
            "inpaint_template": self.inpaint_template,
            "fix_articles": self.fix_articles,
            "attributes": {a: dict(v) for a, v in self.attributes.items()},
            "use_attributes": None,  # already applied to ``attributes``
            "variants_per_base": self.variants_per_base,
            "n_base_per_prompt": self.n_base_per_prompt,
            "seed": self.seed,
            "shard_size": self.shard_size,
            "image_size": self.image_size,
            "mask_threshold": self.mask_threshold,
            "mask_dilation": self.mask_dilation,
            "min_mask_fraction": self.min_mask_fraction,
            "paste_back": self.paste_back,
            "batch_size": self.batch_size,
            "models": copy.deepcopy(self.models),
        }

    def content_dict(self) -> dict[str, Any]:
        """The fields that decide the dataset's content and layout (no ``batch_size``, no ``models``)."""
        d = self.to_dict()
        d.pop("batch_size")
        d.pop("models")
        d["variant_design"] = VARIANT_DESIGN
        return d

    def fingerprint(self, extra: Any = None) -> str:
        """sha256 of :meth:`content_dict` (and ``extra``, e.g. the stage descriptions)."""
        payload = json.dumps({"config": self.content_dict(), "extra": extra}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CounterfactualConfig:
        """Build from a dict of fields; unknown keys raise :class:`~trustvl.errors.TrustVLInputError`."""
        if not isinstance(d, Mapping):
            raise TrustVLInputError(f"config {d!r}; expected a mapping of fields")
        d = dict(d)
        d.pop("extends", None)
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise TrustVLInputError(
                f"unknown counterfactual config key(s) {unknown}; expected some of {known}"
            )
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides: Any) -> CounterfactualConfig:
        """Load a YAML file (``extends`` resolved, see the module doc); ``overrides`` replace fields."""
        data = resolve_grid_yaml(Path(path).expanduser())
        data.update(overrides)
        try:
            return cls.from_dict(data)
        except TrustVLInputError as err:
            raise TrustVLInputError(f"{err} (in {str(path)!r})") from None

    def to_yaml(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as YAML atomically (temp file, then ``os.replace``)."""
        import yaml

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")
        os.replace(tmp, path)
        return path


def load_counterfactual_config(
    path: str | os.PathLike | CounterfactualConfig | None = None, **overrides: Any
) -> CounterfactualConfig:
    """A config from a YAML file, an existing config (copied with ``overrides``) or the default."""
    if isinstance(path, CounterfactualConfig):
        return CounterfactualConfig.from_dict({**path.to_dict(), **overrides})
    return CounterfactualConfig.from_yaml(DEFAULT_GRID_PATH if path is None else path, **overrides)
