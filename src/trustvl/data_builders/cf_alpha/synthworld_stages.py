"""The CF_α counterfactual build in SynthWorld (SPEC §6): the same builder, with the truth known.

* :class:`SynthWorldTextToImage` -- the text-to-image stage: renders a SynthWorld base scene for each
  context prompt (the occupation of the context, drawn in the context's setting).
* :class:`~trustvl.data_builders.synthworld.oracle.OracleSegmenter` (``mode="envelope"``: every pixel any
  appearance variant can cover) and :class:`~trustvl.data_builders.synthworld.oracle.OracleInpainter`
  (re-renders the person with the requested attributes) are used unchanged.
* :func:`synthworld_counterfactual_config` -- a :class:`~.config.CounterfactualConfig` matched to a
  renderer: its occupations, one setting phrase each, its attributes and levels with English phrases,
  its resolution.
* :func:`synthworld_stages` / :func:`build_synthworld_counterfactuals` -- the wiring.

Because the oracle inpainter re-renders the scene exactly and copies every pixel outside the mask, the
variants of one base image are SynthWorld scenes that differ only in the person's attributes: pixels
outside the mask are identical across variants and the attributes are exactly the requested ones (the
row's attribute columns equal the variant's scene spec).
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image

from trustvl.data_builders.cf_alpha.builder import BuildSummary, build_counterfactuals
from trustvl.data_builders.cf_alpha.config import CounterfactualConfig
from trustvl.data_builders.synthworld.captions import (
    AGE_PHRASES,
    BODY_PHRASES,
    GENDER_ADJ,
    SETTING_PHRASES,
    SKIN_PHRASES,
)
from trustvl.data_builders.synthworld.config import ATTRIBUTE_NAMES, KNOWN_LEVELS
from trustvl.data_builders.synthworld.oracle import (
    SPEC_KEY,
    OracleInpainter,
    OracleSegmenter,
    occupation_in_prompt,
)
from trustvl.data_builders.synthworld.render import SynthWorldRenderer, render_spec
from trustvl.errors import TrustVLInputError

__all__ = [
    "SYNTHWORLD_PHRASES",
    "SynthWorldTextToImage",
    "build_synthworld_counterfactuals",
    "check_synthworld_config",
    "synthworld_counterfactual_config",
    "synthworld_stages",
]

#: attribute -> level -> prompt phrase, in the order the phrases read in an appearance ("elderly slim
#: dark-skinned female"); SynthWorld's own caption vocabulary.
SYNTHWORLD_PHRASES: dict[str, dict[str, str]] = {
    "age": dict(AGE_PHRASES),
    "body_type": dict(BODY_PHRASES),
    "skin_tone": dict(SKIN_PHRASES),
    "gender_presentation": dict(GENDER_ADJ),
}
_PHRASE_ORDER = ("age", "body_type", "skin_tone", "gender_presentation")
#: setting phrase (lower case) -> the occupation whose background is drawn for it
_SETTING_OF_PHRASE = {p.lower(): occ for occ, phrases in SETTING_PHRASES.items() for p in phrases}


def _renderer(renderer: SynthWorldRenderer | None) -> SynthWorldRenderer:
    if renderer is None:
        return SynthWorldRenderer()
    if not isinstance(renderer, SynthWorldRenderer):
        raise TrustVLInputError(f"renderer={renderer!r}; expected a SynthWorldRenderer")
    return renderer


class SynthWorldTextToImage:
    """``TextToImage`` stage: one SynthWorld base scene per context prompt.

    The occupation is ``metadata[i]["occupation"]`` (else the longest SynthWorld occupation named in the
    prompt). Which scene: ``sample_scene(split, n * K + k)`` (``K`` occupations, ``k`` = the occupation's
    position, so the scene has that occupation) with ``n = metadata[i]["seed"]`` (the builder's base seed,
    so scenes follow the build's seed), else ``metadata[i]["base_id"]``, else a per-prompt counter. With
    ``force_setting`` (default) the background is the context's setting: a phrase SynthWorld knows
    (:data:`~trustvl.data_builders.synthworld.captions.SETTING_PHRASES`, e.g. "in a kitchen") draws that
    setting, any other phrase the occupation's own one (so the renderer's setting swaps never contradict
    the prompt). Each image carries its spec as JSON in ``info["scene_spec"]`` for the oracle stages.
    With ``scene_captions`` each base also gets its own context-only SynthWorld caption (varied templates,
    e.g. "a chef at work holding a pan") instead of the config's caption.
    """

    def __init__(
        self,
        renderer: SynthWorldRenderer | None = None,
        split: str = "train",
        force_setting: bool = True,
        scene_captions: bool = False,
    ):
        if split not in ("train", "test"):
            raise TrustVLInputError(f"split={split!r}; expected 'train' or 'test'")
        self.renderer = _renderer(renderer)
        self.split = split
        self.force_setting = bool(force_setting)
        self.scene_captions = bool(scene_captions)
        self._seen: Counter[str] = Counter()

    def describe(self) -> dict[str, Any]:
        return {
            "class": "SynthWorldTextToImage",
            "split": self.split,
            "renderer_seed": self.renderer.seed,
            "synthworld_config": self.renderer.config.to_dict(),
            "force_setting": self.force_setting,
            "scene_captions": self.scene_captions,
        }

    def _occupation(self, prompt: str, meta: Mapping[str, Any]) -> str:
        occs = self.renderer.config.occupations
        occ = meta.get("occupation")
        if occ is not None:
            if occ not in occs:
                raise TrustVLInputError(
                    f"occupation {occ!r} is not in SynthWorld; expected one of {list(occs)}"
                )
            return occ
        return occupation_in_prompt(prompt, occs)

    def __call__(
        self, prompts: Sequence[str], metadata: Sequence[Mapping[str, Any]] | None = None
    ) -> list[Image.Image]:
        if metadata is not None and len(metadata) != len(prompts):
            raise TrustVLInputError(
                f"metadata has {len(metadata)} entries; expected {len(prompts)}, one per prompt"
            )
        occs = self.renderer.config.occupations
        out = []
        for i, prompt in enumerate(prompts):
            meta = metadata[i] if metadata is not None else {}
            occ = self._occupation(prompt, meta)
            if meta.get("seed") is not None:
                n = int(meta["seed"])
            elif meta.get("base_id") is not None:
                n = int(meta["base_id"])
            else:
                n = self._seen[prompt]
                self._seen[prompt] += 1
            spec = self.renderer.sample_scene(self.split, n * len(occs) + occs.index(occ))
            if self.force_setting:
                setting = _SETTING_OF_PHRASE.get(str(meta.get("setting", "")).strip().lower(), occ)
                spec = dataclasses.replace(spec, setting=setting)
            img = Image.fromarray(render_spec(spec).image)
            img.info[SPEC_KEY] = spec.to_json()
            if self.scene_captions:
                from trustvl.data_builders.cf_alpha.builder import CAPTION_INFO_KEY
                from trustvl.data_builders.synthworld import sample_caption

                img.info[CAPTION_INFO_KEY] = sample_caption(spec, context_only=True)
            out.append(img)
        return out


def check_synthworld_config(config: CounterfactualConfig, renderer: SynthWorldRenderer | None = None) -> None:
    """Raise :class:`~trustvl.errors.TrustVLInputError` unless SynthWorld can draw every context and cell."""
    r = _renderer(renderer)
    occs = r.config.occupations
    bad = [o for o in config.occupations if o not in occs]
    if bad:
        raise TrustVLInputError(
            f"occupations {bad} are not in this SynthWorld; expected some of {list(occs)}"
        )
    for a, values in config.attributes.items():
        if a not in ATTRIBUTE_NAMES:
            raise TrustVLInputError(
                f"unknown attribute {a!r} for SynthWorld; expected some of {list(ATTRIBUTE_NAMES)}"
            )
        unknown = [v for v in values if v not in KNOWN_LEVELS[a]]
        if unknown:
            raise TrustVLInputError(
                f"unknown {a} level(s) {unknown} for SynthWorld; expected some of {list(KNOWN_LEVELS[a])}"
            )
    res = r.config.resolution
    if config.image_size not in (None, res):
        raise TrustVLInputError(
            f"image_size={config.image_size} differs from the SynthWorld resolution {res}; expected {res} or None"
        )


def synthworld_counterfactual_config(
    renderer: SynthWorldRenderer | None = None,
    *,
    attributes: Mapping[str, Sequence[str]] | None = None,
    settings_per_occupation: int = 1,
    **overrides: Any,
) -> CounterfactualConfig:
    """A :class:`~.config.CounterfactualConfig` for ``renderer``'s world.

    Occupations: the renderer's, each with its first ``settings_per_occupation`` setting phrases
    ("a photo of a chef in a kitchen"). Attributes: ``attributes`` (attribute -> levels; default the
    renderer's levels) with SynthWorld's phrases, in the reading order age, body type, skin tone, gender
    presentation; attributes with a single level are left out of the grid. ``image_size`` = the
    resolution, no mask dilation (the oracle's envelope mask is exact), ``min_mask_fraction=0``.
    ``overrides`` replace any field (e.g. ``variants_per_base``, ``n_base_per_prompt``, ``seed``).
    """
    r = _renderer(renderer)
    if not isinstance(settings_per_occupation, int) or settings_per_occupation < 1:
        raise TrustVLInputError(f"settings_per_occupation={settings_per_occupation!r}; expected an int >= 1")
    levels = dict(r.config.attributes if attributes is None else attributes)
    for a in levels:
        if a not in ATTRIBUTE_NAMES:
            raise TrustVLInputError(
                f"unknown attribute {a!r} for SynthWorld; expected some of {list(ATTRIBUTE_NAMES)}"
            )
    grid: dict[str, dict[str, str]] = {}
    for a in _PHRASE_ORDER:
        if a not in levels or len(levels[a]) < 2:
            continue
        values = list(levels[a])
        unknown = [v for v in values if v not in KNOWN_LEVELS[a]]
        if unknown:
            raise TrustVLInputError(
                f"unknown {a} level(s) {unknown} for SynthWorld; expected some of {list(KNOWN_LEVELS[a])}"
            )
        grid[a] = {v: SYNTHWORLD_PHRASES[a][v] for v in values}
    fields: dict[str, Any] = {
        "occupations": {o: list(SETTING_PHRASES[o][:settings_per_occupation]) for o in r.config.occupations},
        "settings": [],
        "attributes": grid,
        "image_size": r.config.resolution,
        "mask_dilation": 0,
        "min_mask_fraction": 0.0,
        "batch_size": 16,
        "models": {},
    }
    fields.update(overrides)
    cfg = CounterfactualConfig(**fields)
    check_synthworld_config(cfg, r)
    return cfg


def synthworld_stages(
    renderer: SynthWorldRenderer | None = None,
    *,
    split: str = "train",
    segmenter_mode: str = "envelope",
    force_setting: bool = True,
    scene_captions: bool = False,
) -> tuple[SynthWorldTextToImage, OracleSegmenter, OracleInpainter]:
    """(text-to-image, segmenter, inpainter) for SynthWorld: :class:`SynthWorldTextToImage` and the
    oracle segmenter (``"envelope"`` by default) and inpainter, sharing ``renderer``."""
    r = _renderer(renderer)
    return (
        SynthWorldTextToImage(r, split=split, force_setting=force_setting, scene_captions=scene_captions),
        OracleSegmenter(mode=segmenter_mode, renderer=r),
        OracleInpainter(r),
    )


def build_synthworld_counterfactuals(
    out_dir: str | os.PathLike,
    config: CounterfactualConfig | None = None,
    *,
    renderer: SynthWorldRenderer | None = None,
    split: str = "train",
    progress: bool = True,
    overwrite: bool = False,
    state: Any = None,
    force_setting: bool = True,
    scene_captions: bool = False,
    num_proc: int | None = None,
) -> BuildSummary:
    """:func:`~.builder.build_counterfactuals` with the SynthWorld stages (default config:
    :func:`synthworld_counterfactual_config`); ``num_proc`` worker processes render the shards (None: every
    usable core, at most one per shard; 1: in this process), the same bytes whatever the value."""
    r = _renderer(renderer)
    cfg = synthworld_counterfactual_config(r) if config is None else config
    check_synthworld_config(cfg, r)
    t2i, seg, inp = synthworld_stages(
        r, split=split, force_setting=force_setting, scene_captions=scene_captions
    )
    return build_counterfactuals(
        out_dir, cfg, t2i, seg, inp, progress=progress, overwrite=overwrite, state=state, num_proc=num_proc
    )
