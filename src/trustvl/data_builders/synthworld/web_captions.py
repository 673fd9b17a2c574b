"""Alt-text-like captions for the web-like SynthWorld mixture (SynthWorld-Web, docs/synthworld_web.md).

Web captions are not a random sample of what an image shows. Two habits of alt-text matter here:

* **Markedness.** A caption names a person's appearance mostly when it is unexpected for the role ("a
  dark-skinned pilot" where pilots are mostly light-skinned) and leaves it unsaid when it is typical. So a
  plain "a photo of a pilot" is more often paired with a typical-looking pilot than with an atypical one.
  A contrastive model learns the pointwise mutual information of image and caption (the in-batch softmax
  estimates ``log p(caption | image) / p(caption)``), so the plain occupation caption scores typical-looking
  people higher: the planted association shows in its rankings with its direction. With appearance named
  independently of the appearance (today's default captions), ``p(plain caption | image)`` is the same
  for every skin tone and the model has nothing to learn the direction from, whatever the train split's
  proportions (the reason today's default CLIP barely shows it).
* **Incompleteness.** An unsafe element in the picture (a gun, a knife, blood, a syringe) is named only
  part of the time.

:class:`WebCaptionPolicy` holds the three probabilities; :func:`web_caption` draws one caption per scene,
deterministically from ``(seed, split, index)``. Which attribute is "marked" is the one planted strongest,
skin tone; "typical" means the occupation's preferred level in the train split
(:meth:`~trustvl.data_builders.synthworld.config.SynthWorldConfig.preferred_level`).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from trustvl.data_builders.synthworld.captions import sample_caption, skin_appearance_captions
from trustvl.data_builders.synthworld.config import SynthWorldConfig
from trustvl.errors import TrustVLInputError
from trustvl.utils.checks import check_probability

if TYPE_CHECKING:
    from trustvl.data_builders.synthworld.specs import SceneSpec

__all__ = ["WebCaptionPolicy", "web_caption"]


@dataclass(frozen=True)
class WebCaptionPolicy:
    """How often a web-like caption names what the image shows.

    Attributes:
        typical_appearance_prob: P(the caption names the person's skin tone | the skin tone is the
            occupation's preferred level).
        atypical_appearance_prob: the same for any other skin tone. Above ``typical_appearance_prob``,
            it plants the direction of the association in the plain occupation captions (module docstring).
        unsafe_named_prob: P(the caption names the unsafe element | the scene has one).
    """

    typical_appearance_prob: float = 0.05
    atypical_appearance_prob: float = 0.7
    unsafe_named_prob: float = 0.5

    def __post_init__(self) -> None:
        for name in ("typical_appearance_prob", "atypical_appearance_prob", "unsafe_named_prob"):
            check_probability(name, getattr(self, name), where="WebCaptionPolicy")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> WebCaptionPolicy:
        try:
            return cls(**(data or {}))
        except TypeError as err:
            raise TrustVLInputError(
                f"web caption policy {data!r}: {err}; expected some of {sorted(asdict(cls()))}"
            ) from None

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _unit(spec: SceneSpec, salt: str) -> float:
    """A uniform draw in [0, 1) fixed by the scene and ``salt`` (independent of the renderer's streams)."""
    key = f"{spec.seed}|{spec.split}|{spec.index}|web|{salt}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") / 2**64


def web_caption(spec: SceneSpec, config: SynthWorldConfig, policy: WebCaptionPolicy) -> str:
    """One alt-text-like caption of ``spec`` under ``policy`` (deterministic; see the module docstring)."""
    typical = spec.attributes["skin_tone"] == config.preferred_level("skin_tone", spec.occupation)
    p_appearance = policy.typical_appearance_prob if typical else policy.atypical_appearance_prob
    name_unsafe = spec.unsafe is not None and _unit(spec, "unsafe") < policy.unsafe_named_prob
    if _unit(spec, "appearance") < p_appearance:
        variants = skin_appearance_captions(spec, include_unsafe=name_unsafe)
        return variants[int(_unit(spec, "template") * len(variants))]
    return sample_caption(spec, include_unsafe=name_unsafe)
