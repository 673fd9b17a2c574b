"""SynthWorld's randomness: stable seed derivation and ordered streams of uniforms.

Every random choice of a scene comes from a :class:`UniformStream` seeded by :func:`derive_seed` of the
world seed and a name (split, index, "layout", "person", ...), so a scene never depends on call order or
on other scenes, and each concern (appearance, attire, layout) has its own stream: changing a person's
attributes does not shift the draws of the attire or the background.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

__all__ = ["UniformStream", "derive_seed", "jitter_colour"]


def derive_seed(*parts: Any) -> int:
    """A stable 63-bit integer from the parts (blake2b of their ``str`` joined by ``|``)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _clip_to_byte(value: float) -> int:
    return 0 if value < 0 else (255 if value > 255 else int(value))


def jitter_colour(
    brightness_u: float, red_u: float, green_u: float, rgb: Sequence[int], amount: float
) -> tuple[int, int, int]:
    """Jitter a colour: a shared brightness shift plus a small per-channel shift (the u's in [0, 1))."""
    brightness = (brightness_u - 0.5) * 2 * amount
    channel = amount * 0.35
    return (
        _clip_to_byte(rgb[0] + brightness + (red_u - 0.5) * 2 * channel),
        _clip_to_byte(rgb[1] + brightness + (green_u - 0.5) * 2 * channel),
        _clip_to_byte(rgb[2] + brightness - (red_u + green_u - 1.0) * channel),
    )


class UniformStream:
    """A fixed sequence of uniforms in [0, 1) from a seed, read in order (calling the stream draws one).

    Every helper draws a fixed number of uniforms (``jitter``: three, the others one), so how many
    values a drawing step consumes never depends on values outside its control.
    """

    __slots__ = ("_random",)

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def __call__(self) -> float:
        return self._random.random()

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self._random.random()

    def pick(self, choices: Sequence[Any]) -> Any:
        return choices[int(self._random.random() * len(choices)) % len(choices)]

    def jitter(self, rgb: Sequence[int], amount: float = 14.0) -> tuple[int, int, int]:
        draw = self._random.random
        return jitter_colour(draw(), draw(), draw(), rgb, amount)

    def randint(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        return low + int(self._random.random() * (high - low + 1)) % (high - low + 1)
