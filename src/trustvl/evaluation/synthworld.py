"""Evaluate a CLIP-style model on SynthWorld's balanced test split, in memory.

Reports what the SynthWorld issues ask for: zero-shot occupation top-1 (prompts "a photo of a
{occupation}"), per-group and worst-group accuracy (occupation × attribute), Recall@K between images
and their context captions, and the fairness of occupation-prompt retrieval per attribute (MaxSkew@k,
MinSkew@k, NDKL against the uniform target — the test split is balanced, so uniform is also its
demographic parity target).

:func:`evaluate_synthworld` returns the typed :class:`~trustvl.evaluation.results.EvaluationResult`;
:func:`fairness_over_galleries` averages several galleries (:class:`FairnessOverGalleries`) and
:func:`effect_vs_base` compares two such averages (:class:`FairnessEffect`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.dataset_columns import AttributeColumn
from trustvl.evaluation.evaluator import evaluate_model
from trustvl.evaluation.results import EvaluationResult, MetricChange, metric_change
from trustvl.metrics import ConfidenceInterval, centred_interval


@dataclass(frozen=True)
class SynthWorldTestSet:
    images: np.ndarray  # uint8 [n, H, W, 3]
    occupation: np.ndarray  # int64 [n]
    attributes: dict[str, np.ndarray]
    captions: tuple[str, ...]
    occupations: tuple[str, ...]
    attribute_levels: dict[str, tuple[str, ...]]


@lru_cache(maxsize=4)
def synthworld_test_set(n: int, world_seed: int = 0, resolution: int = 64) -> SynthWorldTestSet:
    """The first ``n`` scenes of the balanced test split (cached per arguments)."""
    from trustvl.data_builders.synthworld import SynthWorldConfig, SynthWorldRenderer, sample_caption

    renderer = SynthWorldRenderer(SynthWorldConfig(resolution=resolution), seed=world_seed)
    cfg = renderer.config
    batch = renderer.render_batch("test", 0, n)
    occ_index = {o: i for i, o in enumerate(cfg.occupations)}
    levels = {a: tuple(v) for a, v in cfg.attributes.items()}
    attrs = {
        a: np.asarray([levels[a].index(s.attributes[a]) for s in batch.specs], dtype=np.int64) for a in levels
    }
    return SynthWorldTestSet(
        images=batch.images,
        occupation=np.asarray([occ_index[s.occupation] for s in batch.specs], dtype=np.int64),
        attributes=attrs,
        captions=tuple(sample_caption(s) for s in batch.specs),
        occupations=tuple(cfg.occupations),
        attribute_levels=levels,
    )


@torch.no_grad()
def evaluate_synthworld(
    model: Any,
    processor: Any,
    *,
    n_test: int = 4000,
    world_seed: int = 0,
    resolution: int = 64,
    ks: tuple[int, ...] = (10, 100),
    batch_size: int = 512,
    recall_ks: tuple[int, ...] = (1, 5, 10),
    n_recall: int = 1000,
    image_embeds: torch.Tensor | None = None,
) -> EvaluationResult:
    """Metrics of ``model`` on the balanced SynthWorld test split (see module docstring).

    ``n_recall`` image–caption pairs give Recall@K (0 skips the caption embedding); ``ks`` above
    ``n_test`` are skipped; ``image_embeds`` reuses embeddings of the test images.
    """
    from trustvl.data_builders.synthworld import occupation_prompt
    from trustvl.modeling.clip_components import normalize_uint8
    from trustvl.modeling.embedding import embed_pixel_values

    test_set = synthworld_test_set(n_test, world_seed, resolution)
    was_training = model.training
    model.eval()
    try:
        if image_embeds is None:
            image_embeds = embed_pixel_values(
                model, normalize_uint8(test_set.images, processor.image_processor), batch_size=batch_size
            )
        prompts = [occupation_prompt(o) for o in test_set.occupations]
        attributes = [
            AttributeColumn(a, test_set.attributes[a], list(levels))
            for a, levels in test_set.attribute_levels.items()
        ]
        return evaluate_model(
            model,
            processor,
            image_embeds,
            prompts=prompts,
            attributes=attributes,
            ks=[k for k in ks if k <= n_test],
            target="uniform",
            labels=test_set.occupation,
            class_names=list(test_set.occupations),
            captions=list(test_set.captions[: min(n_recall, n_test)]),
            recall_ks=recall_ks,
        )
    finally:
        model.train(was_training)


@dataclass
class GalleryFairness:
    """One gallery's zero-shot top-1 and, per attribute, mean MaxSkew@k and mean NDKL.

    The ``*_replicates`` (per gallery-bootstrap resample) and ``*_floor`` fields are ``None`` when the
    evaluation carried no uncertainty.
    """

    world_seed: int
    zero_shot_top1: float
    max_skew: dict[str, float]
    ndkl: dict[str, float]
    max_skew_replicates: dict[str, list[float]] | None = None
    ndkl_replicates: dict[str, list[float]] | None = None
    max_skew_floor: dict[str, float] | None = None
    ndkl_floor: dict[str, float] | None = None

    @classmethod
    def of(cls, world_seed: int, ev: EvaluationResult, k: int) -> GalleryFairness:
        has = ev.uncertainty is not None
        return cls(
            world_seed=int(world_seed),
            zero_shot_top1=float(ev.zero_shot_top1),
            max_skew={a: f.at_k[k].max_skew for a, f in ev.fairness.items()},
            ndkl={a: f.ndkl for a, f in ev.fairness.items()},
            max_skew_replicates={a: f.at_k[k].max_skew_replicates for a, f in ev.fairness.items()}
            if has
            else None,
            ndkl_replicates={a: f.ndkl_replicates for a, f in ev.fairness.items()} if has else None,
            max_skew_floor={a: f.at_k[k].max_skew_floor for a, f in ev.fairness.items()} if has else None,
            ndkl_floor={a: f.ndkl_floor for a, f in ev.fairness.items()} if has else None,
        )


def _mean_over_galleries(per: list[GalleryFairness], name: str) -> dict[str, Any] | None:
    """The mean over galleries of a per-attribute field (floats or per-resample lists); ``None`` if any
    gallery lacks it. Resample ``r`` of every gallery is averaged: galleries are independent, so this is
    a bootstrap of the mean over galleries."""
    fields = [getattr(g, name) for g in per]
    if not fields or any(f is None for f in fields):
        return None
    return {a: np.mean([f[a] for f in fields], axis=0).tolist() for a in fields[0]}


@dataclass
class FairnessOverGalleries:
    """:class:`GalleryFairness` averaged over the galleries in ``per_gallery`` (MaxSkew at cut-off ``k``),
    with the 95 % bootstrap intervals and the sampling floors of the means (``None`` without uncertainty)."""

    k: int
    zero_shot_top1: float
    max_skew: dict[str, float]
    ndkl: dict[str, float]
    per_gallery: list[GalleryFairness]
    max_skew_interval: dict[str, ConfidenceInterval] | None = None
    ndkl_interval: dict[str, ConfidenceInterval] | None = None
    max_skew_floor: dict[str, float] | None = None
    ndkl_floor: dict[str, float] | None = None

    def replicates(self, metric: str) -> dict[str, list[float]] | None:
        """Per attribute, the mean over galleries of each resample's ``metric`` (``"max_skew"``/``"ndkl"``)."""
        return _mean_over_galleries(self.per_gallery, f"{metric}_replicates")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FairnessOverGalleries:
        data = dict(data)
        data["per_gallery"] = [GalleryFairness(**g) for g in data["per_gallery"]]
        for name in ("max_skew_interval", "ndkl_interval"):
            if data.get(name) is not None:
                data[name] = {a: ConfidenceInterval.from_dict(c) for a, c in data[name].items()}
        return cls(**data)


def fairness_over_galleries(
    model: Any,
    processor: Any,
    world_seeds: tuple[int, ...] | list[int] = (0, 1, 2),
    *,
    n_test: int = 4000,
    k: int = 100,
) -> FairnessOverGalleries:
    """Zero-shot accuracy and, per attribute, mean MaxSkew@k and mean NDKL, averaged over the balanced test
    galleries of several world seeds, with bootstrap intervals and sampling floors of those means.

    One gallery is a noisy judge of small skews: a ranking that is random within each occupation does not
    score 0 (see the floors), so effect sizes near the floor should be read off several galleries and
    judged by :func:`effect_vs_base`'s paired verdicts.
    """
    if not world_seeds:
        raise TrustVLInputError(f"world_seeds={list(world_seeds)!r} is empty; expected at least one seed")
    per = []
    for seed in world_seeds:
        ev = evaluate_synthworld(model, processor, n_test=n_test, world_seed=int(seed), ks=(k,), n_recall=0)
        per.append(GalleryFairness.of(seed, ev, k))
    return combine_galleries(per, k)


def combine_galleries(per: list[GalleryFairness], k: int) -> FairnessOverGalleries:
    """The mean over the galleries ``per`` (measured at cut-off ``k``), with the intervals and floors of the
    means when every gallery carries replicates (see :func:`fairness_over_galleries`)."""
    if not per:
        raise TrustVLInputError("per is empty; expected at least one GalleryFairness")
    attrs = list(per[0].max_skew)
    result = FairnessOverGalleries(
        k=k,
        zero_shot_top1=float(np.mean([g.zero_shot_top1 for g in per])),
        max_skew={a: float(np.mean([g.max_skew[a] for g in per])) for a in attrs},
        ndkl={a: float(np.mean([g.ndkl[a] for g in per])) for a in attrs},
        per_gallery=per,
        max_skew_floor=_mean_over_galleries(per, "max_skew_floor"),
        ndkl_floor=_mean_over_galleries(per, "ndkl_floor"),
    )
    for metric in ("max_skew", "ndkl"):
        reps = result.replicates(metric)
        if reps is not None:
            means = getattr(result, metric)
            intervals = {a: centred_interval(means[a], r, lower=0.0) for a, r in reps.items()}
            setattr(result, f"{metric}_interval", intervals)
    return result


@dataclass
class FairnessEffect:
    """Change of one model against a base: relative drops (%, positive = fairer), zero-shot points and,
    when both carry replicates, the paired changes (other − base) with their verdicts."""

    max_skew_drop_pct: dict[str, float]
    ndkl_drop_pct: dict[str, float]
    zero_shot_change_points: float
    max_skew_change: dict[str, MetricChange] | None = None
    ndkl_change: dict[str, MetricChange] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def effect_vs_base(base: FairnessOverGalleries, other: FairnessOverGalleries) -> FairnessEffect:
    """Relative drop (%, positive = fairer, rounded to 0.1) of each attribute's mean MaxSkew@k and NDKL, the
    zero-shot change (points, rounded to 0.01) of ``other`` against ``base``, and the paired verdicts
    (same galleries and resamples) when both carry replicates."""
    changes = {}
    for metric in ("max_skew", "ndkl"):
        b, o = base.replicates(metric), other.replicates(metric)
        values_b, values_o = getattr(base, metric), getattr(other, metric)
        changes[metric] = (
            None
            if b is None or o is None
            else {a: metric_change(values_b[a], values_o[a], b[a], o[a], 0.95) for a in values_b}
        )
    return FairnessEffect(
        max_skew_drop_pct={a: round(100 * (1 - other.max_skew[a] / v), 1) for a, v in base.max_skew.items()},
        ndkl_drop_pct={a: round(100 * (1 - other.ndkl[a] / v), 1) for a, v in base.ndkl.items()},
        zero_shot_change_points=round(100 * (other.zero_shot_top1 - base.zero_shot_top1), 2),
        max_skew_change=changes["max_skew"],
        ndkl_change=changes["ndkl"],
    )
