"""Typed results of trustvl's evaluator: one schema for JSON, model cards and reports.

:class:`EvaluationResult` is what :func:`trustvl.evaluation.evaluator.evaluate_embeddings` returns for one
model on one gallery: zero-shot top-1, per-class and worst-group accuracy, retrieval fairness per
attribute (:class:`AttributeFairness`, with :class:`SkewAtK` per cut-off) and Recall@K
(:class:`RecallResult`). Every class has ``to_dict()`` (JSON-ready: plain floats, lists, string keys) and
``from_dict()`` (the inverse, turning the string keys of cut-offs back into integers).

The ``*_interval`` and ``*_floor`` fields are reserved for uncertainty (a bootstrap confidence interval of
the mean over queries, and the sampling floor: the value of a ranking random within each class); the
evaluator leaves them ``None`` for now.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "AlphaPoint",
    "AlphaSweepResult",
    "AttributeEffect",
    "AttributeFairness",
    "ConfidenceInterval",
    "EvaluationResult",
    "RecallResult",
    "SkewAtK",
    "ZeroShotChange",
]


def _int_keys(mapping: dict[Any, Any]) -> dict[int, Any]:
    return {int(k): v for k, v in mapping.items()}


@dataclass
class ConfidenceInterval:
    """A two-sided interval ``[low, high]`` at confidence ``level`` (e.g. bootstrap percentiles)."""

    low: float
    high: float
    level: float = 0.95

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ConfidenceInterval | None:
        return None if data is None else cls(**data)


@dataclass
class SkewAtK:
    """MaxSkew@k and MinSkew@k of one attribute at one cut-off ``k`` (SPEC §1).

    Attributes:
        k: the cut-off.
        max_skew, min_skew: means over the queries (prompts).
        max_skew_per_query, min_skew_per_query: one value per query, in prompt order.
        top_k_shares: per query, the share of each attribute value among the top ``k``.
        max_skew_interval, min_skew_interval, max_skew_floor, min_skew_floor: uncertainty (not computed yet).
    """

    k: int
    max_skew: float
    min_skew: float
    max_skew_per_query: list[float]
    min_skew_per_query: list[float]
    top_k_shares: list[list[float]]
    max_skew_interval: ConfidenceInterval | None = None
    min_skew_interval: ConfidenceInterval | None = None
    max_skew_floor: float | None = None
    min_skew_floor: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SkewAtK:
        data = dict(data)
        for name in ("max_skew_interval", "min_skew_interval"):
            data[name] = ConfidenceInterval.from_dict(data.get(name))
        return cls(**data)


@dataclass
class AttributeFairness:
    """Retrieval fairness of one protected attribute: NDKL and, per cut-off, MaxSkew/MinSkew.

    Attributes:
        values: the attribute's value names (index = the value's id).
        target: the target distribution ``q`` (uniform or the gallery's own proportions).
        gallery_share: each value's share of the gallery.
        ndkl: mean NDKL over the queries; ``ndkl_per_query`` one value per query.
        at_k: ``{k: SkewAtK}``.
        ndkl_interval, ndkl_floor: uncertainty (not computed yet).
    """

    values: list[str]
    target: list[float]
    gallery_share: list[float]
    ndkl: float
    ndkl_per_query: list[float]
    at_k: dict[int, SkewAtK]
    ndkl_interval: ConfidenceInterval | None = None
    ndkl_floor: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["at_k"] = {str(k): v.to_dict() for k, v in self.at_k.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttributeFairness:
        data = dict(data)
        data["at_k"] = {int(k): SkewAtK.from_dict(v) for k, v in data["at_k"].items()}
        data["ndkl_interval"] = ConfidenceInterval.from_dict(data.get("ndkl_interval"))
        return cls(**data)


@dataclass
class RecallResult:
    """Recall@K between ``n_pairs`` images and their captions (caption ``i`` describes image ``i``)."""

    n_pairs: int
    text_to_image: dict[int, float]
    image_to_text: dict[int, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_pairs": self.n_pairs,
            "text_to_image": {str(k): v for k, v in self.text_to_image.items()},
            "image_to_text": {str(k): v for k, v in self.image_to_text.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RecallResult | None:
        if data is None:
            return None
        return cls(
            n_pairs=int(data["n_pairs"]),
            text_to_image=_int_keys(data["text_to_image"]),
            image_to_text=_int_keys(data["image_to_text"]),
        )


@dataclass
class EvaluationResult:
    """Everything the evaluator measures for one model on one gallery.

    Attributes:
        n_images: gallery size.
        prompts: the queries that rank the gallery for the fairness metrics.
        ks: the MaxSkew/MinSkew cut-offs.
        target: ``"uniform"`` or ``"gallery"`` (the fairness target).
        fairness: ``{attribute: AttributeFairness}``.
        class_names, class_prompts: the zero-shot classes and their prompts (``None`` without labels).
        zero_shot_top1: zero-shot top-1 accuracy over the gallery (``None`` without labels).
        per_class_accuracy: ``{class name: accuracy}``.
        worst_group_accuracy: ``{attribute: min accuracy over the groups class × attribute value}``.
        recall: Recall@K between images and captions (``None`` when not measured).
    """

    n_images: int
    prompts: list[str]
    ks: list[int]
    target: str
    fairness: dict[str, AttributeFairness]
    class_names: list[str] | None = None
    class_prompts: list[str] | None = None
    zero_shot_top1: float | None = None
    per_class_accuracy: dict[str, float] = field(default_factory=dict)
    worst_group_accuracy: dict[str, float] = field(default_factory=dict)
    recall: RecallResult | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__}
        out["fairness"] = {name: a.to_dict() for name, a in self.fairness.items()}
        out["recall"] = None if self.recall is None else self.recall.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationResult:
        data = dict(data)
        data["fairness"] = {name: AttributeFairness.from_dict(a) for name, a in data["fairness"].items()}
        data["recall"] = RecallResult.from_dict(data.get("recall"))
        data["ks"] = [int(k) for k in data["ks"]]
        return cls(**data)


@dataclass
class AlphaPoint:
    """The evaluation of a CF_α model at one α."""

    alpha: float
    evaluation: EvaluationResult

    def to_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "evaluation": self.evaluation.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlphaPoint:
        return cls(alpha=float(data["alpha"]), evaluation=EvaluationResult.from_dict(data["evaluation"]))


@dataclass
class AlphaSweepResult:
    """A CF_α α sweep (``trustvl eval cf-alpha``): one :class:`AlphaPoint` per α, in sweep order.

    ``primary_attribute`` is the one on the Pareto plot; ``k_shown`` the cut-off shown in tables and plots
    (the middle of ``ks``).
    """

    model: str
    dataset: str
    split: str
    n_images: int
    ks: list[int]
    primary_attribute: str
    points: list[AlphaPoint]

    @property
    def k_shown(self) -> int:
        ks = sorted(self.ks)
        return ks[len(ks) // 2]

    def at_alpha(self, alpha: float) -> EvaluationResult:
        """The evaluation at ``alpha`` (which must be one of the swept values)."""
        for point in self.points:
            if point.alpha == float(alpha):
                return point.evaluation
        raise KeyError(f"alpha={alpha} was not swept; swept: {[p.alpha for p in self.points]}")

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__}
        out["points"] = [p.to_dict() for p in self.points]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlphaSweepResult:
        data = dict(data)
        data["points"] = [AlphaPoint.from_dict(p) for p in data["points"]]
        return cls(**data)


def drop_pct(before: float, after: float) -> float:
    """Relative drop ``100·(before − after)/before`` rounded to 0.1 (positive = lower = fairer); NaN if
    ``before`` is not positive."""
    return round(100.0 * (before - after) / before, 1) if before > 0 else float("nan")


@dataclass
class AttributeEffect:
    """One attribute's mean MaxSkew@k and NDKL for a base model and a debiased one, and their drops (%)."""

    k: int
    base_max_skew: float
    cf_alpha_max_skew: float
    max_skew_drop_pct: float
    base_ndkl: float
    cf_alpha_ndkl: float
    ndkl_drop_pct: float

    @classmethod
    def between(cls, base: AttributeFairness, other: AttributeFairness, k: int) -> AttributeEffect:
        b, a = base.at_k[k].max_skew, other.at_k[k].max_skew
        return cls(k, b, a, drop_pct(b, a), base.ndkl, other.ndkl, drop_pct(base.ndkl, other.ndkl))


@dataclass
class ZeroShotChange:
    """Zero-shot top-1 of a base model and a debiased one, and the change in points (100 × difference)."""

    base: float
    cf_alpha: float
    change_points: float

    @classmethod
    def between(cls, base: EvaluationResult, other: EvaluationResult) -> ZeroShotChange:
        b, a = float(base.zero_shot_top1), float(other.zero_shot_top1)
        return cls(b, a, 100 * (a - b))
