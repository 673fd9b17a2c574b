"""Typed results of trustvl's evaluator: one schema for JSON, model cards and reports.

:class:`EvaluationResult` is what :func:`trustvl.evaluation.evaluator.evaluate_embeddings` returns for one
model on one gallery: zero-shot top-1, per-class and worst-group accuracy, retrieval fairness per
attribute (:class:`AttributeFairness`, with :class:`SkewAtK` per cut-off) and Recall@K
(:class:`RecallResult`). Every class has ``to_dict()`` (JSON-ready: plain floats, lists, string keys) and
``from_dict()`` (the inverse, turning the string keys of cut-offs back into integers).

Uncertainty (SPEC §1): the ``*_interval`` fields hold the gallery-bootstrap confidence interval of the mean
over queries (:class:`~trustvl.metrics.ConfidenceInterval`: the mean ± 1.96·SE of the resampled means,
truncated to the metric's range, ``bootstrap_biased`` when the resampled means sit more than SE/2 from it),
the ``*_floor`` fields the sampling floor (the mean of rankings random within each class) and the
``*_replicates`` fields the per-resample means, kept so that two models evaluated on the same gallery with the same :class:`UncertaintySettings` can be compared *paired* (:class:`MetricChange`). They are
``None`` when the evaluator ran with ``uncertainty=None``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from trustvl.hub.cards import Metric, model_index_dataset
from trustvl.metrics import ConfidenceInterval, PairedComparison, paired_comparison
from trustvl.metrics.bootstrap import check_resampling

__all__ = [
    "AlphaPoint",
    "AlphaRise",
    "AlphaSweepResult",
    "AttributeEffect",
    "AttributeFairness",
    "ConfidenceInterval",
    "EvaluationResult",
    "Estimate",
    "MetricChange",
    "RecallResult",
    "SkewAtK",
    "UncertaintySettings",
    "ZeroShotChange",
    "metric_change",
]


def _int_keys(mapping: dict[Any, Any]) -> dict[int, Any]:
    return {int(k): v for k, v in mapping.items()}


@dataclass
class Estimate:
    """A measured value with its 95 % interval (``None`` without uncertainty) over ``n`` samples (a rate, a
    mean, an accuracy). ``replicates`` (one value per bootstrap resample) stay in memory for paired
    comparisons and are not written to JSON."""

    value: float
    interval: ConfidenceInterval | None = None
    n: int = 0
    replicates: list[float] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "interval": asdict(self.interval) if self.interval else None,
            "n": self.n,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Estimate | None:
        if data is None:
            return None
        return cls(
            float(data["value"]), ConfidenceInterval.from_dict(data.get("interval")), int(data.get("n", 0))
        )


@dataclass(frozen=True)
class UncertaintySettings:
    """How the intervals and floors were computed (SPEC §1).

    Attributes:
        n_resamples: gallery bootstrap resamples (and random rankings for the floor).
        seed: the seed of the resamples and of the random rankings.
        level: the confidence level of the intervals.
        floor_classes: what "class" means for the floor: ``"class labels"`` (the zero-shot labels) or
            ``"whole gallery"`` (no labels).
    """

    n_resamples: int = 200
    seed: int = 0
    level: float = 0.95
    floor_classes: str = "class labels"

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> UncertaintySettings | None:
        return None if data is None else cls(**data)

    @classmethod
    def of(cls, n_resamples: int, seed: int) -> UncertaintySettings | None:
        """A job's settings: ``n_resamples = 0`` turns uncertainty off (``None``); else >= 2 (SPEC: >= 200)."""
        if n_resamples == 0:
            return None
        check_resampling(n_resamples, seed)
        return cls(n_resamples=n_resamples, seed=seed)


#: A paired change ``other − base`` of one metric (its value, centred interval and verdict): the metrics
#: layer's type under the name the evaluation results have always used (kept: cards and other jobs read it).
MetricChange = PairedComparison


@dataclass
class SkewAtK:
    """MaxSkew@k and MinSkew@k of one attribute at one cut-off ``k`` (SPEC §1).

    Attributes:
        k: the cut-off.
        max_skew, min_skew: means over the queries (prompts).
        max_skew_per_query, min_skew_per_query: one value per query, in prompt order.
        top_k_shares: per query, the share of each attribute value among the top ``k``.
        max_skew_interval, min_skew_interval: bootstrap confidence intervals of the means.
        max_skew_floor, min_skew_floor: sampling floors of the means.
        max_skew_replicates, min_skew_replicates: the means on each bootstrap resample.
        floor_shares: each value's expected share of the top ``k`` under the floor's rankings (random
            within each class), averaged over the queries.
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
    max_skew_replicates: list[float] | None = None
    min_skew_replicates: list[float] | None = None
    floor_shares: list[float] | None = None

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
        ndkl_interval, ndkl_floor, ndkl_replicates: NDKL's bootstrap interval, sampling floor and
            per-resample means.
    """

    values: list[str]
    target: list[float]
    gallery_share: list[float]
    ndkl: float
    ndkl_per_query: list[float]
    at_k: dict[int, SkewAtK]
    ndkl_interval: ConfidenceInterval | None = None
    ndkl_floor: float | None = None
    ndkl_replicates: list[float] | None = None

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
        uncertainty: how the fairness intervals and floors were computed (``None``: not computed).
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
    uncertainty: UncertaintySettings | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__}
        out["fairness"] = {name: a.to_dict() for name, a in self.fairness.items()}
        out["recall"] = None if self.recall is None else self.recall.to_dict()
        out["uncertainty"] = None if self.uncertainty is None else asdict(self.uncertainty)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationResult:
        data = dict(data)
        data["fairness"] = {name: AttributeFairness.from_dict(a) for name, a in data["fairness"].items()}
        data["recall"] = RecallResult.from_dict(data.get("recall"))
        data["uncertainty"] = UncertaintySettings.from_dict(data.get("uncertainty"))
        data["ks"] = [int(k) for k in data["ks"]]
        return cls(**data)

    def model_index_metrics(self, dataset: str | None = None, split: str = "test") -> list[Metric]:
        """The numbers a model card's model-index reports (measured on ``dataset``/``split``): zero-shot top-1,
        per attribute MaxSkew@k at the largest k and NDKL, and Recall@K in both directions."""
        name, dtype = model_index_dataset(dataset)
        out = []
        if self.zero_shot_top1 is not None:
            out.append(Metric("zero-shot top-1", "accuracy", self.zero_shot_top1, name, dtype, split))
        for attribute, fairness in self.fairness.items():
            if fairness.at_k:
                k = max(fairness.at_k)
                max_skew = fairness.at_k[k].max_skew
                out.append(Metric(f"{attribute} MaxSkew@{k}", f"max_skew@{k}", max_skew, name, dtype, split))
            if fairness.ndkl is not None:
                out.append(Metric(f"{attribute} NDKL", "ndkl", fairness.ndkl, name, dtype, split))
        if self.recall is not None:
            retrieval = "image-text-retrieval"
            for direction in ("text_to_image", "image_to_text"):
                for k, value in getattr(self.recall, direction).items():
                    out.append(
                        Metric(f"{direction} R@{k}", f"recall@{k}", value, name, dtype, split, retrieval)
                    )
        return out


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
class AlphaRise:
    """One step of an α sweep where an attribute got worse beyond noise: ``metric`` (``"max_skew"`` or
    ``"ndkl"``) of ``attribute`` at ``alpha`` against ``previous_alpha``, with the paired change."""

    alpha: float
    previous_alpha: float
    attribute: str
    metric: str
    change: MetricChange


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

    @property
    def baseline(self) -> AlphaPoint:
        """The point with the smallest α (α = 0: the original model), the reference of :meth:`effects`."""
        return min(self.points, key=lambda p: p.alpha)

    def effects(self) -> dict[float, dict[str, AttributeEffect]]:
        """Every other α against :attr:`baseline`: ``{α: {attribute: AttributeEffect}}`` at :attr:`k_shown`,
        with the paired verdicts when the evaluations carry uncertainty."""
        base = self.baseline
        level = base.evaluation.uncertainty.level if base.evaluation.uncertainty else 0.95
        return {
            p.alpha: {
                a: AttributeEffect.between(f, p.evaluation.fairness[a], self.k_shown, level)
                for a, f in base.evaluation.fairness.items()
            }
            for p in self.points
            if p is not base
        }

    def steps(self) -> dict[float, dict[str, AttributeEffect]]:
        """Each α against the α before it in increasing order (CF_α's knob read as a dial):
        ``{α: {attribute: AttributeEffect}}`` at :attr:`k_shown`, ``base_*`` fields holding the previous α."""
        ordered = sorted(self.points, key=lambda p: p.alpha)
        level = ordered[0].evaluation.uncertainty.level if ordered[0].evaluation.uncertainty else 0.95
        return {
            cur.alpha: {
                a: AttributeEffect.between(f, cur.evaluation.fairness[a], self.k_shown, level)
                for a, f in prev.evaluation.fairness.items()
            }
            for prev, cur in zip(ordered, ordered[1:])
        }

    def rises(self) -> list[AlphaRise]:
        """The steps along α where an attribute's mean MaxSkew@:attr:`k_shown` or NDKL gets **worse** beyond
        noise (paired verdict against the previous α, same resamples). Empty: the knob is monotone within
        the intervals (issue 26's criterion); point-value rises inside the noise are not listed."""
        ordered = sorted(p.alpha for p in self.points)
        previous = dict(zip(ordered[1:], ordered))
        out = []
        for alpha, effect in self.steps().items():
            for attribute, e in effect.items():
                for metric, change in (("max_skew", e.max_skew_change), ("ndkl", e.ndkl_change)):
                    if change is not None and change.verdict == "worse":
                        out.append(AlphaRise(alpha, previous[alpha], attribute, metric, change))
        return out

    @property
    def monotone(self) -> bool | None:
        """True when no step along α makes any attribute worse beyond noise (:meth:`rises`); ``None`` when
        the evaluations carry no replicates (no paired verdict is possible)."""
        if any(p.evaluation.uncertainty is None for p in self.points):
            return None
        return not self.rises()

    def best_alpha(self, attribute: str, metric: str = "max_skew") -> float:
        """The α with the lowest mean ``metric`` (``"max_skew"`` at :attr:`k_shown`, or ``"ndkl"``) of
        ``attribute``; the smallest such α on ties. A point value: see :meth:`effects` for significance."""

        def value(p: AlphaPoint) -> float:
            f = p.evaluation.fairness[attribute]
            return f.ndkl if metric == "ndkl" else f.at_k[self.k_shown].max_skew

        return min(sorted(self.points, key=lambda p: p.alpha), key=value).alpha

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__}
        out["points"] = [p.to_dict() for p in self.points]
        # derived (recomputed by effects()), written for readers of metrics.json
        out["changes_vs_baseline"] = [
            {"alpha": alpha, "effect": {a: e.to_dict() for a, e in effect.items()}}
            for alpha, effect in self.effects().items()
        ]
        out["changes_vs_previous"] = [
            {"alpha": alpha, "effect": {a: e.to_dict() for a, e in effect.items()}}
            for alpha, effect in self.steps().items()
        ]
        out["monotone"] = self.monotone
        out["rises"] = [asdict(r) for r in self.rises()]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlphaSweepResult:
        data = dict(data)
        for derived in ("changes_vs_baseline", "changes_vs_previous", "monotone", "rises"):
            data.pop(derived, None)
        data["points"] = [AlphaPoint.from_dict(p) for p in data["points"]]
        return cls(**data)

    def model_index_metrics(self, alpha: float | None = None) -> list[Metric]:
        """The model-index of the model at ``alpha`` (the published model's α) when it was swept, else at the
        largest swept α (:meth:`EvaluationResult.model_index_metrics`)."""
        point = next((p for p in self.points if alpha is not None and p.alpha == float(alpha)), None)
        point = point or max(self.points, key=lambda p: p.alpha)
        return point.evaluation.model_index_metrics(self.dataset, self.split)


def drop_pct(before: float, after: float) -> float:
    """Relative drop ``100·(before − after)/before`` rounded to 0.1 (positive = lower = fairer); NaN if
    ``before`` is not positive."""
    return round(100.0 * (before - after) / before, 1) if before > 0 else float("nan")


def metric_change(
    base_value: float,
    other_value: float,
    base_replicates: list[float] | None,
    other_replicates: list[float] | None,
    level: float,
    lower_is_better: bool = True,
) -> MetricChange | None:
    """The paired :class:`MetricChange` ``other − base``; ``None`` when either side has no replicates."""
    if base_replicates is None or other_replicates is None:
        return None
    return paired_comparison(
        base_value,
        other_value,
        base_replicates,
        other_replicates,
        lower_is_better=lower_is_better,
        level=level,
    )


@dataclass
class AttributeEffect:
    """One attribute's mean MaxSkew@k and NDKL for a base model and a debiased one, and their changes.

    ``*_drop_pct`` are the relative drops (%; positive = lower = fairer), kept for continuity; the
    verdict comes from ``max_skew_change`` / ``ndkl_change``: the paired bootstrap difference
    (debiased − base, same resamples) and "better" / "worse" / "within noise". The intervals and floors
    are those of the two evaluations (the floor shown is the debiased model's). The uncertainty fields are
    ``None`` when the evaluations carry no replicates.
    """

    k: int
    base_max_skew: float
    cf_alpha_max_skew: float
    max_skew_drop_pct: float
    base_ndkl: float
    cf_alpha_ndkl: float
    ndkl_drop_pct: float
    max_skew_change: MetricChange | None = None
    ndkl_change: MetricChange | None = None
    base_max_skew_interval: ConfidenceInterval | None = None
    cf_alpha_max_skew_interval: ConfidenceInterval | None = None
    max_skew_floor: float | None = None
    base_ndkl_interval: ConfidenceInterval | None = None
    cf_alpha_ndkl_interval: ConfidenceInterval | None = None
    ndkl_floor: float | None = None

    @classmethod
    def between(
        cls, base: AttributeFairness, other: AttributeFairness, k: int, level: float = 0.95
    ) -> AttributeEffect:
        bs, os_ = base.at_k[k], other.at_k[k]
        b, a = bs.max_skew, os_.max_skew
        return cls(
            k,
            b,
            a,
            drop_pct(b, a),
            base.ndkl,
            other.ndkl,
            drop_pct(base.ndkl, other.ndkl),
            max_skew_change=metric_change(b, a, bs.max_skew_replicates, os_.max_skew_replicates, level),
            ndkl_change=metric_change(
                base.ndkl, other.ndkl, base.ndkl_replicates, other.ndkl_replicates, level
            ),
            base_max_skew_interval=bs.max_skew_interval,
            cf_alpha_max_skew_interval=os_.max_skew_interval,
            max_skew_floor=os_.max_skew_floor,
            base_ndkl_interval=base.ndkl_interval,
            cf_alpha_ndkl_interval=other.ndkl_interval,
            ndkl_floor=other.ndkl_floor,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttributeEffect:
        data = dict(data)
        for name in ("max_skew_change", "ndkl_change"):
            data[name] = MetricChange.from_dict(data.get(name))
        for name in (
            "base_max_skew_interval",
            "cf_alpha_max_skew_interval",
            "base_ndkl_interval",
            "cf_alpha_ndkl_interval",
        ):
            data[name] = ConfidenceInterval.from_dict(data.get(name))
        return cls(**data)


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
