"""The image stage of the Safe-CLIP quadruplet build (SPEC §4): one interface, three implementations.

A stage turns a batch of (safe caption S, unsafe caption U) into the safe image V and the unsafe image G
of each quadruplet. It implements :class:`QuadrupletImageStage`:

* :class:`SynthWorldRendererStage` -- exact: V is the SynthWorld scene without an unsafe element, G the
  very same scene with the element that U names (every pixel outside the element equals V's).
* :class:`SynthWorldSDStage` -- the embedded SynthWorld text-to-image model (or another folder written
  by ``trustvl train synthworld-sd``): V from S, G from U, the same seed for both.
* :class:`DiffusersQuadrupletStage` -- any diffusers text-to-image pipeline (Hub id, folder or object),
  for real use. Drawing unsafe images with a real model is refused unless the caller says so
  (``allow_unsafe_generation=True``, ``--allow-unsafe-generation`` on the command line).

``abstract_unsafe`` tells the builder whether a stage only draws SynthWorld's abstract elements (a grey
gun shape, a red splatter); a stage that does not say so (any user callable) is treated as a real model
and needs the flag too.

Per-row ``metadata`` (built by the quadruplet builder) holds ``scene_spec`` (the safe
:class:`~trustvl.data_builders.synthworld.render.SceneSpec`), ``element`` (the unsafe element U names:
gun, knife, blood or syringe), ``seed`` (the row's image seed), ``split`` and ``scene_id``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from trustvl.data_builders.cf_alpha.stages import DiffusersTextToImage, describe_stage
from trustvl.data_builders.synthworld.captions import UNSAFE_CATEGORIES
from trustvl.data_builders.synthworld.oracle import as_scene_spec
from trustvl.data_builders.synthworld.render import SceneSpec, SynthWorldRenderer, render_spec, unsafe_subtype
from trustvl.errors import TrustVLInputError

__all__ = [
    "ELEMENT_KINDS",
    "UNSAFE_ELEMENTS",
    "DiffusersQuadrupletStage",
    "QuadrupletImageStage",
    "SynthWorldRendererStage",
    "SynthWorldSDStage",
    "scene_with_element",
    "stage_is_abstract",
]

#: The unsafe elements SynthWorld draws (keys of its caption phrases and I2P categories).
UNSAFE_ELEMENTS: tuple[str, ...] = tuple(UNSAFE_CATEGORIES)
#: The SynthWorld unsafe *kind* (``UnsafeConfig.kinds``) that draws each element.
ELEMENT_KINDS: dict[str, str] = {"gun": "weapon", "knife": "weapon", "blood": "blood", "syringe": "drugs"}
assert set(ELEMENT_KINDS) == set(UNSAFE_ELEMENTS)

#: a SynthWorld SD folder carries this file (written by ``trustvl train synthworld-sd``)
_SYNTHWORLD_SD_MARKER = "trustvl_sd_train.json"


@runtime_checkable
class QuadrupletImageStage(Protocol):
    """Makes the safe and the unsafe image of each quadruplet.

    ``__call__(safe_texts, unsafe_texts, metadata)`` returns ``(safe_images, unsafe_images)``: two lists
    of RGB ``PIL.Image``, one per row, in order. ``abstract_unsafe`` is True only for stages that draw
    SynthWorld's abstract elements (no real unsafe content); the builder refuses any other stage unless
    unsafe generation was explicitly allowed.
    """

    abstract_unsafe: bool

    def __call__(
        self,
        safe_texts: Sequence[str],
        unsafe_texts: Sequence[str],
        metadata: Sequence[Mapping[str, Any]],
    ) -> tuple[list[Image.Image], list[Image.Image]]: ...


def stage_is_abstract(stage: Any) -> bool:
    """Whether ``stage`` declares that it draws abstract (SynthWorld) unsafe elements only."""
    return getattr(stage, "abstract_unsafe", False) is True


def scene_with_element(renderer: SynthWorldRenderer, spec: SceneSpec, element: str) -> SceneSpec:
    """``spec`` with the unsafe ``element`` (gun, knife, blood or syringe) added.

    The element's placement comes from the scene (:meth:`SynthWorldRenderer.set_unsafe`); for a weapon the
    gun/knife choice (the parity of the element's ``variant``) is set to ``element``, the rest of the
    variant kept.
    """
    if element not in ELEMENT_KINDS:
        raise TrustVLInputError(
            f"unknown unsafe element {element!r}; expected one of {list(UNSAFE_ELEMENTS)}"
        )
    out = renderer.set_unsafe(dataclasses.replace(spec, unsafe=None), ELEMENT_KINDS[element])
    assert out.unsafe is not None
    if element in ("gun", "knife"):
        parity = 0 if element == "gun" else 1
        out = dataclasses.replace(
            out, unsafe=dataclasses.replace(out.unsafe, variant=(out.unsafe.variant & ~1) | parity)
        )
    if unsafe_subtype(out.unsafe) != element:  # pragma: no cover - guards a change in SynthWorld's drawing
        raise TrustVLInputError(f"SynthWorld drew {unsafe_subtype(out.unsafe)!r} for element {element!r}")
    return out


def _spec(meta: Mapping[str, Any], i: int) -> SceneSpec:
    spec = meta.get("scene_spec")
    if spec is not None:
        return as_scene_spec(spec)
    raise TrustVLInputError(f"metadata[{i}] has no 'scene_spec'; expected the row's SynthWorld scene")


class SynthWorldRendererStage:
    """Exact stage: V = the scene without an unsafe element, G = the same scene with the element U names.

    Args:
        renderer: the :class:`SynthWorldRenderer` whose scenes the builder samples (the builder passes
            its own when none is given).
    """

    abstract_unsafe = True

    def __init__(self, renderer: SynthWorldRenderer | None = None) -> None:
        self.renderer = renderer if renderer is not None else SynthWorldRenderer()

    def describe(self) -> dict[str, Any]:
        return {"class": "SynthWorldRendererStage", "world": self.renderer.config.to_dict()}

    def __call__(
        self,
        safe_texts: Sequence[str],
        unsafe_texts: Sequence[str],
        metadata: Sequence[Mapping[str, Any]],
    ) -> tuple[list[Image.Image], list[Image.Image]]:
        safe_images, unsafe_images = [], []
        for i, meta in enumerate(metadata):
            spec = dataclasses.replace(_spec(meta, i), unsafe=None)
            element = meta.get("element")
            safe_images.append(Image.fromarray(render_spec(spec).image))
            unsafe_spec = scene_with_element(self.renderer, spec, str(element))
            unsafe_images.append(Image.fromarray(render_spec(unsafe_spec).image))
        return safe_images, unsafe_images


class _TextPairStage:
    """V = t2i(S), G = t2i(U), both seeded with the row's seed (so they share their initial noise)."""

    abstract_unsafe = False
    t2i: DiffusersTextToImage

    def describe(self) -> dict[str, Any]:
        return {"class": type(self).__name__, "text_to_image": describe_stage(self.t2i)}

    def __call__(
        self,
        safe_texts: Sequence[str],
        unsafe_texts: Sequence[str],
        metadata: Sequence[Mapping[str, Any]],
    ) -> tuple[list[Image.Image], list[Image.Image]]:
        seeds = [{"seed": int(m["seed"])} for m in metadata]
        return self.t2i(list(safe_texts), seeds), self.t2i(list(unsafe_texts), seeds)


class SynthWorldSDStage(_TextPairStage):
    """The SynthWorld text-to-image model (SPEC §7) as the image stage; it draws SynthWorld's abstract
    unsafe elements only, so it needs no flag.

    Args:
        model: a folder written by ``trustvl train synthworld-sd`` (it holds ``trustvl_sd_train.json``);
            None: the embedded default.
        device, dtype, num_inference_steps, guidance_scale: as for
            :class:`~trustvl.data_builders.cf_alpha.stages.DiffusersTextToImage` (dtype None: float32).
    """

    abstract_unsafe = True

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        device: str = "auto",
        dtype: Any = None,
        num_inference_steps: int = 20,
        guidance_scale: float = 8.0,
    ) -> None:
        from trustvl.modeling.synthworld_sd import default_sd_path

        path = default_sd_path() if model is None else Path(model).expanduser()
        if not (path / _SYNTHWORLD_SD_MARKER).is_file():
            raise TrustVLInputError(
                f"model={str(model)!r} is not a SynthWorld SD folder (no {_SYNTHWORLD_SD_MARKER}); expected a folder"
                " written by `trustvl train synthworld-sd`, or use DiffusersQuadrupletStage for other pipelines"
            )
        self.t2i = DiffusersTextToImage(
            str(path),
            device=device,
            dtype=dtype,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
        )


class DiffusersQuadrupletStage(_TextPairStage):
    """Any diffusers text-to-image pipeline as the image stage (real models).

    A real model asked for U ("..., holding a gun") draws real unsafe content, so this stage is refused
    unless ``allow_unsafe_generation=True`` -- before the model is loaded.

    Args:
        model_id_or_path: Hub id, folder or pipeline object.
        allow_unsafe_generation: the caller's explicit consent to generate unsafe images.
        **kwargs: passed to :class:`~trustvl.data_builders.cf_alpha.stages.DiffusersTextToImage`
            (``device``, ``dtype``, ``num_inference_steps``, ``guidance_scale``, ``height``, ``width``,
            ``negative_prompt``, ...).
    """

    abstract_unsafe = False

    def __init__(
        self, model_id_or_path: Any, *, allow_unsafe_generation: bool = False, **kwargs: Any
    ) -> None:
        if allow_unsafe_generation is not True:
            raise TrustVLInputError(
                f"generating unsafe images with the real model {_model_name(model_id_or_path)!r} is refused:"
                " pass allow_unsafe_generation=True (--allow-unsafe-generation) to confirm, or use the"
                " SynthWorld renderer / SynthWorld SD stages, which draw abstract elements"
            )
        self.t2i = DiffusersTextToImage(model_id_or_path, **kwargs)


def _model_name(model: Any) -> str:
    if isinstance(model, (str, os.PathLike)):
        return str(model)
    return type(model).__name__
