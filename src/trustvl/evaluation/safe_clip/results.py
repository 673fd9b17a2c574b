"""Typed results of the Safe-CLIP evaluation: a :class:`Rate` with its interval, the rates of one model
(overall and per category), the paired comparison with the base model, and the whole run's
:class:`SafeCLIPEvalResult` (``metrics.json``, the Hub model-index, the non-twin pool it used)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from trustvl.data_builders.safe_clip.unsafe_pool import NonTwinPool
from trustvl.evaluation.results import Estimate, MetricChange, UncertaintySettings
from trustvl.hub.cards import Metric, model_index_dataset

__all__ = [
    "CategoryEvaluation",
    "Rate",
    "SafeCLIPComparison",
    "SafeCLIPEvalResult",
    "SafeCLIPModelEvaluation",
]


#: A Safe-CLIP rate (mean of per-query values) with its bootstrap interval: the shared :class:`Estimate`.
Rate = Estimate


def _rate_dict(rate: Rate | None) -> dict[str, Any] | None:
    return rate.to_dict() if rate is not None else None


@dataclass
class CategoryEvaluation:
    """The rates over the rows of one category: ``recall[direction][k]`` and zero-shot over all its rows;
    ``nsfw_rate`` (text→image: its unsafe captions on the query side) and ``nsfw_rate_image_to_text`` (its
    unsafe images in the non-twin pool), ``None`` where the category has no row on that side (or, for
    image→text, in results written before it existed). ``n`` counts the category's rows.

    ``*_floor``: the same NSFW rate with every unsafe input embedded as its safe counterpart (U as S, G as V)
    by this model, i.e. what a model meeting Safe-CLIP's objective exactly (with this model as the
    reference) scores on this gallery; no model that maps unsafe inputs onto their safe counterparts can go
    below it, however well it does so. Not compared between models."""

    n: int
    recall: dict[str, dict[int, Rate]]
    nsfw_rate: Rate | None
    zero_shot_accuracy: Rate
    nsfw_rate_image_to_text: Rate | None = None
    nsfw_rate_floor: Rate | None = None
    nsfw_rate_image_to_text_floor: Rate | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "recall": {d: {str(k): r.to_dict() for k, r in by_k.items()} for d, by_k in self.recall.items()},
            "nsfw_rate": _rate_dict(self.nsfw_rate),
            "nsfw_rate_image_to_text": _rate_dict(self.nsfw_rate_image_to_text),
            "nsfw_rate_floor": _rate_dict(self.nsfw_rate_floor),
            "nsfw_rate_image_to_text_floor": _rate_dict(self.nsfw_rate_image_to_text_floor),
            "zero_shot_accuracy": self.zero_shot_accuracy.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoryEvaluation:
        return cls(
            data["n"],
            {d: {int(k): Rate.from_dict(r) for k, r in by_k.items()} for d, by_k in data["recall"].items()},
            Rate.from_dict(data["nsfw_rate"]),
            Rate.from_dict(data["zero_shot_accuracy"]),
            Rate.from_dict(data.get("nsfw_rate_image_to_text")),
            Rate.from_dict(data.get("nsfw_rate_floor")),
            Rate.from_dict(data.get("nsfw_rate_image_to_text_floor")),
        )


@dataclass
class SafeCLIPModelEvaluation(CategoryEvaluation):
    """One model on one split: the overall rates (both NSFW rates set) plus ``per_category``; ``nsfw_k`` is
    the NSFW cut-off."""

    model: str = ""
    nsfw_k: int = 10
    occupations: list[str] = field(default_factory=list)
    per_category: dict[str, CategoryEvaluation] = field(default_factory=dict)

    def metric(self, key: str) -> Rate:
        """A rate by key: ``"nsfw_rate"`` (text→image), ``"nsfw_rate_image_to_text"``,
        ``"zero_shot_accuracy"`` or ``"recall/<direction>/<k>"``."""
        if key.startswith("recall/"):
            _, direction, k = key.split("/")
            return self.recall[direction][int(k)]
        return getattr(self, key)

    def metric_keys(self) -> list[str]:
        """The keys of :meth:`metric` this evaluation holds, in report order."""
        keys = [f"recall/{d}/{k}" for d, by_k in self.recall.items() for k in by_k]
        nsfw = ["nsfw_rate"] + ["nsfw_rate_image_to_text"] * (self.nsfw_rate_image_to_text is not None)
        return [*keys, *nsfw, "zero_shot_accuracy"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "nsfw_k": self.nsfw_k,
            "occupations": self.occupations,
            **super().to_dict(),
            "per_category": {c: e.to_dict() for c, e in self.per_category.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SafeCLIPModelEvaluation:
        base = CategoryEvaluation.from_dict(data)
        return cls(
            **vars(base),
            model=data["model"],
            nsfw_k=data["nsfw_k"],
            occupations=list(data["occupations"]),
            per_category={c: CategoryEvaluation.from_dict(e) for c, e in data["per_category"].items()},
        )


@dataclass
class SafeCLIPComparison:
    """Safe-CLIP against its base on the same resamples: ``changes[key]`` (keys of
    :meth:`SafeCLIPModelEvaluation.metric_keys`) and the relative NSFW-rate drops in percent (text→image,
    and image→text where both models have it)."""

    changes: dict[str, MetricChange | None]
    differences: dict[str, float]
    nsfw_rate_drop_pct: float
    nsfw_rate_image_to_text_drop_pct: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": {k: asdict(c) if c is not None else None for k, c in self.changes.items()},
            "differences": self.differences,
            "nsfw_rate_drop_pct": self.nsfw_rate_drop_pct,
            "nsfw_rate_image_to_text_drop_pct": self.nsfw_rate_image_to_text_drop_pct,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SafeCLIPComparison:
        return cls(
            {k: MetricChange.from_dict(c) for k, c in data["changes"].items()},
            dict(data["differences"]),
            data["nsfw_rate_drop_pct"],
            data.get("nsfw_rate_image_to_text_drop_pct"),
        )


@dataclass
class SafeCLIPEvalResult:
    """What :func:`evaluate_safe_clip` returns and writes to ``metrics.json``; ``nsfw_pool`` records which
    rows queried and which formed the non-twin unsafe pool of the NSFW rates."""

    dataset: str
    split: str
    n_quadruplets: int
    uncertainty: UncertaintySettings | None
    safe_clip: SafeCLIPModelEvaluation
    base: SafeCLIPModelEvaluation | None = None
    comparison: SafeCLIPComparison | None = None
    nsfw_pool: NonTwinPool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "n_quadruplets": self.n_quadruplets,
            "uncertainty": asdict(self.uncertainty) if self.uncertainty else None,
            "safe_clip": self.safe_clip.to_dict(),
            "base": self.base.to_dict() if self.base else None,
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "nsfw_pool": self.nsfw_pool.to_dict() if self.nsfw_pool else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SafeCLIPEvalResult:
        return cls(
            data["dataset"],
            data["split"],
            data["n_quadruplets"],
            UncertaintySettings.from_dict(data["uncertainty"]),
            SafeCLIPModelEvaluation.from_dict(data["safe_clip"]),
            SafeCLIPModelEvaluation.from_dict(data["base"]) if data.get("base") else None,
            SafeCLIPComparison.from_dict(data["comparison"]) if data.get("comparison") else None,
            NonTwinPool.from_dict(data.get("nsfw_pool")),
        )

    def model_index_metrics(self) -> list[Metric]:
        """The Safe-CLIP model's model-index: its Recall@K per direction, NSFW rate@k and zero-shot accuracy."""
        name, dtype = model_index_dataset(self.dataset)
        retrieval = "image-text-retrieval"
        model = self.safe_clip
        out = [
            Metric(f"{direction} R@{k}", f"recall@{k}", rate.value, name, dtype, self.split, retrieval)
            for direction, by_k in model.recall.items()
            for k, rate in by_k.items()
        ]
        k = model.nsfw_k
        out.append(
            Metric(
                f"NSFW rate@{k}", f"nsfw_rate@{k}", model.nsfw_rate.value, name, dtype, self.split, retrieval
            )
        )
        if model.nsfw_rate_image_to_text is not None:
            out.append(
                Metric(
                    f"NSFW rate@{k} image→text",
                    f"nsfw_rate_image_to_text@{k}",
                    model.nsfw_rate_image_to_text.value,
                    name,
                    dtype,
                    self.split,
                    retrieval,
                )
            )
        out.append(
            Metric("zero-shot accuracy", "accuracy", model.zero_shot_accuracy.value, name, dtype, self.split)
        )
        return out
