"""Sampling scene specs from a :class:`~trustvl.data_builders.synthworld.config.SynthWorldConfig`.

Scene ``(seed, split, index)`` is a pure function of those three: the occupation cycles with the index,
and every other choice is read, in a fixed order, from a :class:`UniformStream` seeded by the three (plus
separate streams for the spurious artefact and the unsafe element, so turning those on does not change
the rest of the scene). The train split draws each attribute of the main person from the configured
per-occupation proportions (the planted bias); the test split cycles through every attribute combination
(balanced).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trustvl.data_builders.synthworld.config import ATTRIBUTE_NAMES, SPLITS, SynthWorldConfig
from trustvl.data_builders.synthworld.randomness import UniformStream, derive_seed
from trustvl.data_builders.synthworld.specs import ArtefactSpec, PersonSpec, SceneSpec
from trustvl.errors import TrustVLInputError

__all__ = ["SceneSampler", "unsafe_element"]


class SceneSampler:
    """Samples the :class:`SceneSpec` of any scene of a world (``config``, ``seed``)."""

    def __init__(self, config: SynthWorldConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self._cumulative = {
            name: {occupation: _cumulative(p) for occupation, p in table.items()}
            for name, table in config.train_proportions().items()
        }

    def sample(self, split: str, index: int) -> SceneSpec:
        """The spec of scene ``index`` of ``split`` ("train": biased as configured; "test": balanced)."""
        if split not in SPLITS:
            raise TrustVLInputError(f"split={split!r}; expected one of {list(SPLITS)}")
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise TrustVLInputError(f"index={index!r} must be a non-negative int")
        index = int(index)
        cfg = self.config
        occupations = cfg.occupations
        n_occupations = len(occupations)
        occupation = occupations[index % n_occupations]
        rng = UniformStream(derive_seed(self.seed, split, index))
        people = [self._person(rng, split, index, occupation, k) for k in range(cfg.n_people)]
        setting = occupation
        if rng() < cfg.setting_swap_prob and n_occupations > 1:
            setting = self._other_occupation(occupation, rng())
        else:
            rng()  # keep the stream aligned whether or not the setting is swapped
        held_object = rng() >= cfg.object_drop_prob
        hat = rng() >= cfg.hat_drop_prob
        occluder = rng() < cfg.occlusion_prob
        n_clutter = int(rng() * (cfg.max_clutter + 1)) % (cfg.max_clutter + 1)
        confuser = None
        confuser_draw, confuser_choice = rng(), rng()
        if n_occupations > 1 and confuser_draw < cfg.confuser_prob:
            confuser = self._other_occupation(occupation, confuser_choice)
        flip = rng() < 0.5
        cue_level, cue_setting, attire = self._cue_level(split, index, occupation)
        if cue_level is not None:  # only the attire, or nothing, shows the occupation (own stream)
            setting, held_object, hat, confuser = cue_setting, False, False, None
        return SceneSpec(
            seed=self.seed, split=split, index=index, resolution=cfg.resolution, occupation=occupation,
            setting=setting, people=tuple(people), layout_seed=derive_seed(self.seed, split, index, "layout"),
            flip=flip, held_object=held_object, hat=hat, occluder=occluder, n_clutter=n_clutter,
            confuser=confuser, spurious=self._spurious(split, index, occupation),
            unsafe=self._unsafe(split, index), noise=cfg.noise, lighting=cfg.lighting,
            cue_poor=cue_level == "poor", attire=attire,
        )  # fmt: skip

    def _person(self, rng: UniformStream, split: str, index: int, occupation: str, k: int) -> PersonSpec:
        """Person ``k`` (0: the main person, whose attributes are the scene's labels)."""
        cfg = self.config
        if split == "test":
            if k == 0 and cfg.test_balanced:
                attributes = self._balanced_attributes(index // len(cfg.occupations))
                for _ in ATTRIBUTE_NAMES:  # the same draws as an unbalanced test person
                    rng()
            else:
                attributes = {
                    name: levels[int(rng() * len(levels)) % len(levels)]
                    for name, levels in cfg.attributes.items()
                }
        else:
            attributes = {
                name: levels[_choose(self._cumulative[name][occupation], rng())]
                for name, levels in cfg.attributes.items()
            }
        if k == 0:
            x, scale = rng.uniform(0.33, 0.67), rng.uniform(0.88, 1.08)
        else:  # background people alternate sides, smaller
            side = (k % 2) * 2 - 1
            x, scale = 0.5 + side * rng.uniform(0.26, 0.36), rng.uniform(0.52, 0.62)
        return PersonSpec(
            attributes=attributes,
            x=x,
            scale=scale,
            seed=derive_seed(self.seed, split, index, "person", k),
            attire_seed=derive_seed(self.seed, split, index, "attire", k),
        )

    def _other_occupation(self, occupation: str, draw: float) -> str:
        occupations = self.config.occupations
        n_occupations = len(occupations)
        return occupations[
            (occupations.index(occupation) + 1 + int(draw * (n_occupations - 1)) % (n_occupations - 1))
            % n_occupations
        ]

    def _balanced_attributes(self, combination: int) -> dict[str, str]:
        """The ``combination``-th attribute combination (mixed radix over the attributes' levels)."""
        attributes = {}
        for name in ATTRIBUTE_NAMES:
            levels = self.config.attributes[name]
            attributes[name] = levels[combination % len(levels)]
            combination //= len(levels)
        return attributes

    def _cue_level(self, split: str, index: int, occupation: str) -> tuple[str | None, str, str | None]:
        """``("poor" | "weak" | None, setting, attire)``: a cue-poor scene, a weak-cue one (attire only) or an
        ordinary one, the setting a reduced scene is drawn in (any occupation's, uniformly), and the other
        occupation whose clothes a weak-cue scene's people wear (``weak_cue_attire_swap_prob``; else None)."""
        cfg = self.config
        if cfg.cue_poor_prob <= 0.0 and cfg.weak_cue_prob <= 0.0:
            return None, "", None
        rng = UniformStream(derive_seed(self.seed, split, index, "cue_poor"))
        draw, setting = rng(), rng.pick(cfg.occupations)
        if draw < cfg.cue_poor_prob:
            return "poor", setting, None
        if draw < cfg.cue_poor_prob + cfg.weak_cue_prob:
            swap, choice = rng(), rng()  # after the draws above, which stay as they were
            if swap < cfg.weak_cue_attire_swap_prob and len(cfg.occupations) > 1:
                return "weak", setting, self._other_occupation(occupation, choice)
            return "weak", setting, None
        return None, setting, None

    def _spurious(self, split: str, index: int, occupation: str) -> ArtefactSpec | None:
        spurious = self.config.spurious
        if spurious is None:
            return None
        rng = UniformStream(derive_seed(self.seed, split, index, "spurious"))
        if split == "test":
            p_present = spurious.p_test
        else:
            p_present = spurious.p_target if occupation == spurious.target else spurious.p_other
        present = rng() < p_present
        quadrant = spurious.quadrant if spurious.quadrant is not None else int(rng() * 4) % 4
        size = spurious.size
        # outer half of the quadrant: the square's centre lies in the corner-most quarter-square
        fraction_x, fraction_y = rng(), rng()
        if quadrant % 2 == 0:
            x = 0.03 + fraction_x * (0.25 - size / 2 - 0.03)
        else:
            x = 0.75 + fraction_x * (0.22 - size / 2) - size / 2
        if quadrant // 2 == 0:
            y = 0.03 + fraction_y * (0.25 - size / 2 - 0.03)
        else:
            y = 0.75 + fraction_y * (0.22 - size / 2) - size / 2
        x = min(max(x, 0.0), 1.0 - size)
        y = min(max(y, 0.0), 1.0 - size)
        if not present:
            return None
        return ArtefactSpec(kind=spurious.shape, x=x, y=y, size=size, color=tuple(spurious.color))

    def _unsafe(self, split: str, index: int) -> ArtefactSpec | None:
        unsafe = self.config.unsafe
        if unsafe is None:
            return None
        rng = UniformStream(derive_seed(self.seed, split, index, "unsafe"))
        present = rng() < unsafe.p
        kind = rng.pick(unsafe.kinds)
        element = unsafe_element(kind, rng)  # drawn even when absent, so the stream stays aligned
        return element if present else None


def unsafe_element(kind: str, rng: UniformStream) -> ArtefactSpec:
    """An unsafe element of ``kind`` ("weapon" / "blood" / "drugs") placed in the lower part of the image."""
    if kind in ("weapon", "drugs"):
        size = rng.uniform(0.2, 0.26)
        x = rng.pick((rng.uniform(0.02, 0.2), rng.uniform(0.8 - size, 0.98 - size)))
        y = rng.uniform(0.5, 0.95 - size)
    else:
        size = rng.uniform(0.22, 0.3)
        x = rng.uniform(0.15, 0.85 - size)
        y = rng.uniform(0.45, 0.98 - size)
    return ArtefactSpec(kind=kind, x=x, y=y, size=size, variant=int(rng() * 2**31))


def _cumulative(p: Sequence[float]) -> tuple[float, ...]:
    out, total = [], 0.0
    for value in p:
        total += value
        out.append(total)
    return tuple(out)


def _choose(cumulative: Sequence[float], draw: float) -> int:
    """The index whose cumulative interval holds ``draw`` (scaled to the total)."""
    draw *= cumulative[-1]
    for i, edge in enumerate(cumulative):
        if draw < edge:
            return i
    return len(cumulative) - 1
