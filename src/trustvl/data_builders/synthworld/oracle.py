"""Oracle components: SynthWorld's exact stand-ins for the CF_α pipeline's models.

They implement the protocols of :mod:`trustvl.data_builders.interfaces` using the ground truth, so a
builder can be run and checked offline:

- :class:`OracleTextToImage` (``TextToImage``): renders a scene of the occupation named in the prompt.
- :class:`OracleSegmenter` (``PersonSegmenter``): the true person region, re-derived from the scene spec.
- :class:`OracleInpainter` (``Inpainter``): re-renders the person with the requested attributes inside
  the mask; every pixel outside the mask is copied from the input image (bit-exact).

Where the scene spec comes from (per image, first match): ``metadata[i]["scene_spec"]`` (a
``SceneSpec``, its dict, or its JSON string -- the SynthWorld dataset's ``scene_spec`` column, so a
dataset row can be passed as metadata as is), then ``image.info["scene_spec"]`` (set by
:class:`OracleTextToImage` and :class:`OracleInpainter`), then ``metadata[i]["split"]`` +
``metadata[i]["scene_id"]`` (or ``"index"``) sampled with the oracle's renderer (when one was given).
``metadata[i]["person_index"]`` (int) restricts segmentation/inpainting to one person; default: all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from trustvl.data_builders.synthworld.captions import parse_appearance
from trustvl.data_builders.synthworld.compose import draw_label_image, person_label_masks
from trustvl.data_builders.synthworld.render import (
    SceneSpec,
    SynthWorldRenderer,
    person_envelope,
    render_spec,
    with_attributes,
)
from trustvl.errors import TrustVLInputError

SPEC_KEY = "scene_spec"


def as_scene_spec(obj: Any) -> SceneSpec:
    """A :class:`SceneSpec` from itself, its dict or its JSON (what rows and metadata carry)."""
    if isinstance(obj, SceneSpec):
        return obj
    if isinstance(obj, str):
        return SceneSpec.from_json(obj)
    if isinstance(obj, Mapping):
        return SceneSpec.from_dict(obj)
    raise TrustVLInputError(
        f"scene_spec of type {type(obj).__name__} is not a SceneSpec, dict or JSON string"
    )


def spec_for(
    image: Image.Image | None, metadata: Mapping[str, Any] | None, renderer: SynthWorldRenderer | None = None
) -> SceneSpec:
    """The scene spec of an image (see the module doc for the lookup order)."""
    meta = metadata or {}
    if meta.get(SPEC_KEY) is not None:
        spec = as_scene_spec(meta[SPEC_KEY])
    elif image is not None and image.info.get(SPEC_KEY) is not None:
        spec = as_scene_spec(image.info[SPEC_KEY])
    elif renderer is not None and "split" in meta and ("scene_id" in meta or "index" in meta):
        spec = renderer.sample_scene(meta["split"], int(meta.get("scene_id", meta.get("index"))))
    else:
        raise TrustVLInputError(
            "cannot find the SynthWorld scene of an image: pass metadata with 'scene_spec' (a dataset row "
            "works), an image made by OracleTextToImage, or 'split' + 'scene_id' and a renderer"
        )
    if image is not None and image.size != (spec.resolution, spec.resolution):
        raise TrustVLInputError(
            f"image size {image.size} does not match its scene's resolution {spec.resolution}"
        )
    return spec


def _person_index(meta: Mapping[str, Any] | None) -> int | None:
    if not meta or meta.get("person_index") is None:
        return None
    return int(meta["person_index"])


def occupation_in_prompt(prompt: str, occupations: Sequence[str]) -> str:
    """The occupation of ``occupations`` that ``prompt`` names (case-insensitive; the longest name first).

    Raises :class:`~trustvl.errors.TrustVLInputError` when the prompt names none of them.
    """
    text = prompt.lower()
    for o in sorted(occupations, key=len, reverse=True):
        if o in text:
            return o
    raise TrustVLInputError(
        f"prompt {prompt!r} names no SynthWorld occupation; expected one of {list(occupations)}"
    )


def _check_len(name: str, seq: Sequence[Any] | None, n: int) -> None:
    if seq is not None and len(seq) != n:
        raise TrustVLInputError(f"{name} has {len(seq)} entries; expected {n}, one per image")


class OracleSegmenter:
    """``PersonSegmenter`` returning the true person region.

    Args:
        mode: ``"envelope"`` (default): every pixel any appearance variant of the person can cover
            (union of the exact masks over all shape-affecting levels), so a counterfactual inpainted
            inside it is complete (longer hair, a broader build are not cut off) and equals the true
            re-rendered scene; ``"exact"``: the pixels the person covers in this image.
        renderer: used only to look scenes up by ``split`` + ``scene_id``.
    Returns ``None`` for an image whose person is not visible at all.
    """

    def __init__(self, mode: str = "envelope", renderer: SynthWorldRenderer | None = None) -> None:
        if mode not in ("envelope", "exact"):
            raise TrustVLInputError(f"mode={mode!r}; expected 'envelope' or 'exact'")
        self.mode = mode
        self.renderer = renderer

    def __call__(
        self, images: Sequence[Image.Image], metadata: Sequence[Mapping[str, Any]] | None = None
    ) -> list[np.ndarray | None]:
        _check_len("metadata", metadata, len(images))
        out: list[np.ndarray | None] = []
        for i, img in enumerate(images):
            meta = metadata[i] if metadata is not None else None
            spec = spec_for(img, meta, self.renderer)
            k = _person_index(meta)
            if self.mode == "envelope":
                m = person_envelope(spec, k)
            else:
                sc = render_spec(spec)
                m = sc.person_mask if k is None else sc.person_masks[k]
            out.append(m if m.any() else None)
        return out


class OracleInpainter:
    """``Inpainter`` that re-renders the person(s) with new attributes inside the mask.

    The new attributes come from ``attributes[i]`` when given, else are parsed from ``prompts[i]``
    (:func:`~.captions.parse_appearance`, e.g. "a dark-skinned elderly woman"); attributes not named
    keep their value. Output = the re-rendered scene inside ``masks[i]``, the input image outside it
    (bit-exact). The output's ``info["scene_spec"]`` holds the new spec (JSON).
    """

    def __init__(self, renderer: SynthWorldRenderer | None = None) -> None:
        self.renderer = renderer

    def __call__(
        self,
        images: Sequence[Image.Image],
        masks: Sequence[np.ndarray],
        prompts: Sequence[str],
        metadata: Sequence[Mapping[str, Any]] | None = None,
        attributes: Sequence[Mapping[str, str]] | None = None,
    ) -> list[Image.Image]:
        n = len(images)
        _check_len("masks", masks, n)
        _check_len("prompts", prompts, n)
        _check_len("metadata", metadata, n)
        _check_len("attributes", attributes, n)
        out = []
        for i, img in enumerate(images):
            meta = metadata[i] if metadata is not None else None
            spec = spec_for(img, meta, self.renderer)
            attrs = dict(attributes[i]) if attributes is not None else parse_appearance(prompts[i])
            new_spec = with_attributes(spec, _person_index(meta), **attrs)
            new = render_spec(new_spec).image
            orig = np.asarray(img.convert("RGB"))
            m = np.asarray(masks[i], dtype=bool)
            if m.shape != orig.shape[:2]:
                raise TrustVLInputError(f"mask {i} has shape {m.shape}; expected {orig.shape[:2]}")
            res = Image.fromarray(np.where(m[:, :, None], new, orig))
            res.info[SPEC_KEY] = new_spec.to_json()
            out.append(res)
        return out


class OracleTextToImage:
    """``TextToImage`` that renders a SynthWorld scene of the occupation named in each prompt.

    The scene is drawn from ``renderer`` (its config's bias applies; ``split`` picks the biased "train"
    or balanced "test" distribution). Which scene: ``metadata[i]["index"]`` when given (the n-th scene
    of that occupation), else the n-th request of the same prompt on this object (deterministic for a
    given call sequence). Other prompt words (setting, appearance) are not used. Each image carries
    its spec in ``info["scene_spec"]``. A prompt naming no occupation raises ``TrustVLInputError``.
    """

    def __init__(self, renderer: SynthWorldRenderer | None = None, split: str = "train") -> None:
        self.renderer = renderer if renderer is not None else SynthWorldRenderer()
        if split not in ("train", "test"):
            raise TrustVLInputError(f"split={split!r}; expected 'train' or 'test'")
        self.split = split
        self._seen: Counter[str] = Counter()

    def occupation_of(self, prompt: str) -> str:
        return occupation_in_prompt(prompt, self.renderer.config.occupations)

    def __call__(
        self, prompts: Sequence[str], metadata: Sequence[Mapping[str, Any]] | None = None
    ) -> list[Image.Image]:
        _check_len("metadata", metadata, len(prompts))
        occs = self.renderer.config.occupations
        out = []
        for i, prompt in enumerate(prompts):
            occ = self.occupation_of(prompt)
            meta = metadata[i] if metadata is not None else {}
            if meta.get("index") is not None:
                n = int(meta["index"])
            else:
                n = self._seen[prompt]
                self._seen[prompt] += 1
            spec = self.renderer.sample_scene(self.split, n * len(occs) + occs.index(occ))
            img = Image.fromarray(render_spec(spec).image)
            img.info[SPEC_KEY] = spec.to_json()
            out.append(img)
        return out


def exact_person_masks(spec: SceneSpec) -> list[np.ndarray]:
    """The exact mask of each person in a scene."""
    lab, _, _ = draw_label_image(spec)
    return person_label_masks(spec, lab)[1]


__all__ = [
    "OracleInpainter",
    "OracleSegmenter",
    "OracleTextToImage",
    "as_scene_spec",
    "exact_person_masks",
    "spec_for",
]
