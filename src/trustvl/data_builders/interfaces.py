"""Small interfaces of the image-generation components the data builders plug together.

The CF_α builder (SPEC §2) needs three components: a text-to-image model for base images, a person
segmenter, and an inpainter that re-paints the person with other appearance attributes. Real ones
(diffusers pipelines, a segmentation model) and SynthWorld's oracles
(:mod:`trustvl.data_builders.synthworld.oracle`) implement the same protocols, so builders are written
once and tested offline against the truth.

Conventions shared by all three:

- Batched: every call takes lists and returns a list of the same length, in order.
- ``metadata``: an optional list of dicts, one per image, passed through unchanged from whoever made
  the image (e.g. a dataset row). Real components may ignore it; SynthWorld oracles read the scene
  spec from it (key ``"scene_spec"``: a ``SceneSpec``, its dict or its JSON string).
- Masks are ``numpy`` bool arrays of shape (H, W) matching the image, True on the person.
- Images are ``PIL.Image.Image`` in RGB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from trustvl.errors import TrustVLInputError

Metadata = Mapping[str, Any]


@runtime_checkable
class TextToImage(Protocol):
    """Makes one image per prompt.

    Implementations may attach generation details to each image's ``info`` dict (SynthWorld's oracle
    stores the scene spec under ``info["scene_spec"]``) so that later components can use them.
    """

    def __call__(
        self, prompts: Sequence[str], metadata: Sequence[Metadata] | None = None
    ) -> list[Image.Image]: ...


@runtime_checkable
class PersonSegmenter(Protocol):
    """Finds the person in each image.

    Returns, per image, a bool (H, W) mask covering every pixel that belongs to the person(s) -- for
    counterfactual inpainting, every pixel an appearance change may touch -- or ``None`` when no
    person is found (the builder skips that image).
    """

    def __call__(
        self, images: Sequence[Image.Image], metadata: Sequence[Metadata] | None = None
    ) -> list[np.ndarray | None]: ...


@runtime_checkable
class Inpainter(Protocol):
    """Re-paints the masked region of each image.

    ``prompts`` describe the new content (e.g. "a dark-skinned elderly woman"); ``attributes``
    optionally gives the same request in structured form (attribute -> level), which oracles use and
    text-driven models may ignore. Contract: every pixel outside the mask is returned unchanged
    (builders can enforce it with :func:`keep_outside_mask`).
    """

    def __call__(
        self,
        images: Sequence[Image.Image],
        masks: Sequence[np.ndarray],
        prompts: Sequence[str],
        metadata: Sequence[Metadata] | None = None,
        attributes: Sequence[Mapping[str, str]] | None = None,
    ) -> list[Image.Image]: ...


def keep_outside_mask(original: Image.Image, edited: Image.Image, mask: np.ndarray) -> Image.Image:
    """``edited`` inside ``mask`` and ``original`` everywhere else (sizes must match)."""
    if edited.size != original.size:
        raise TrustVLInputError(
            f"edited image size {edited.size} differs from the original's {original.size}"
        )
    a = np.asarray(original.convert("RGB"))
    b = np.asarray(edited.convert("RGB"))
    m = np.asarray(mask, dtype=bool)
    if m.shape != a.shape[:2]:
        raise TrustVLInputError(f"mask shape {m.shape} does not match the image's {a.shape[:2]}")
    return Image.fromarray(np.where(m[:, :, None], b, a))


__all__ = ["Inpainter", "Metadata", "PersonSegmenter", "TextToImage", "keep_outside_mask"]
