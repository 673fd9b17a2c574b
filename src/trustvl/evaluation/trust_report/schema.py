"""The typed schema of ``trust_report.json`` (version :data:`SCHEMA_VERSION`): one model's three axes, an
optional baseline's, and the paired verdicts between them.

Every number a person reads is an :class:`Estimate` (value, 95 % interval, sample size). Its bootstrap
replicates are kept in memory only (``replicates``), so that two models measured on the same resamples in
one run compare *paired*; they are not written to JSON. Every class has ``to_dict()`` (JSON-ready) and
``from_dict()`` (its inverse): ``TrustReport.from_dict(report.to_dict()) == report``.

An axis that could not run is ``None`` and its reason sits in ``ModelTrustReport.skipped[axis]`` (one line).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.audit import AuditResult
from trustvl.evaluation.results import Estimate, MetricChange, UncertaintySettings
from trustvl.hub.cards import Metric, model_index_dataset

__all__ = [
    "AXES",
    "FORMAT",
    "SCHEMA_VERSION",
    "BiasAxis",
    "ClusterFinding",
    "ClassGap",
    "ElementFreeControl",
    "Estimate",
    "MetricVerdict",
    "ModelTrustReport",
    "PromptDirection",
    "SafetyAxis",
    "SpuriousAxis",
    "SpuriousFeature",
    "TrustReport",
]

#: bump when a field changes meaning or disappears (adding an optional field keeps the version)
SCHEMA_VERSION = 1
FORMAT = "trustvl-trust-report"
#: the axes, in report order
AXES = ("bias", "safety", "spurious")
#: fields kept in memory for a paired comparison or a benchmark, never written to JSON
_IN_MEMORY = ("member_images", "region_indices", "labels", "correct", "predictions", "regions")


def _estimates(data: dict[str, Any]) -> dict[str, Estimate]:
    return {k: Estimate.from_dict(v) for k, v in data.items()}


@dataclass
class PromptDirection:
    """Which group a prompt over-represents in its top ``k``: the level with the largest skew
    ``ln(share / target)``, its share, its target share, the skew with its interval, and the share of
    bootstrap resamples in which the same level comes first (``stability``)."""

    prompt: str
    attribute: str
    k: int
    level: str
    share: float
    target: float
    skew: Estimate
    stability: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**{f: getattr(self, f) for f in self.__dataclass_fields__}, "skew": self.skew.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptDirection:
        return cls(**{**data, "skew": Estimate.from_dict(data["skew"])})


@dataclass
class BiasAxis:
    """Social bias: the audit (MaxSkew/MinSkew/NDKL per attribute with intervals and floors, as
    ``trustvl audit --axes bias`` writes to ``metrics.json``), the direction per prompt and attribute, and,
    with a label column, zero-shot top-1 and worst-group accuracy per attribute with intervals."""

    audit: AuditResult
    k: int
    directions: list[PromptDirection]
    zero_shot_top1: Estimate | None = None
    worst_group_accuracy: dict[str, Estimate] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "audit": self.audit.to_dict(),
            "k": self.k,
            "directions": [d.to_dict() for d in self.directions],
            "zero_shot_top1": self.zero_shot_top1.to_dict() if self.zero_shot_top1 else None,
            "worst_group_accuracy": {a: e.to_dict() for a, e in self.worst_group_accuracy.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BiasAxis:
        return cls(
            AuditResult.from_dict(data["audit"]),
            int(data["k"]),
            [PromptDirection.from_dict(d) for d in data["directions"]],
            Estimate.from_dict(data.get("zero_shot_top1")),
            _estimates(data.get("worst_group_accuracy") or {}),
        )


@dataclass
class ElementFreeControl:
    """The safety probe's element-free control: every unsafe row's scene without its unsafe element and its
    caption without the phrase, measured exactly as the NSFW rates are (the unsafe rows swapped for their
    element-free versions, the safe rows kept).

    The NSFW rate of a model that ignores the element equals its control rate whatever the scenes are; the
    rate alone also moves with which scenes the probe drew and how sharply the model matches content (an
    unsafe query's own row is left out, its twin of the safe half is not). ``excess_*``: per unsafe query,
    its NSFW rate minus its control rate, averaged (−1 to 1; 0: the element changes nothing; above 0: the
    unsafe element pulls unsafe items up, what a safe model avoids). ``per_category_excess``: the same per
    category, ``{category: {"text_to_image": Estimate, "image_to_text": Estimate}}``.
    ``safe_query_shift_*`` (a diagnostic): per *safe* query, the unsafe share of its top k with the element
    minus without it, averaged; an excess that moves with it is the element's items ranked differently for
    every query, not for the unsafe ones alone."""

    nsfw_rate_text_to_image: Estimate
    nsfw_rate_image_to_text: Estimate
    excess_text_to_image: Estimate
    excess_image_to_text: Estimate
    per_category_excess: dict[str, dict[str, Estimate]]
    safe_query_shift_text_to_image: Estimate | None = None
    safe_query_shift_image_to_text: Estimate | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            f: None if getattr(self, f) is None else getattr(self, f).to_dict()
            for f in self.__dataclass_fields__
            if f != "per_category_excess"
        }
        out["per_category_excess"] = {
            c: {d: e.to_dict() for d, e in by.items()} for c, by in self.per_category_excess.items()
        }
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ElementFreeControl | None:
        if data is None:
            return None
        data = dict(data)
        data["per_category_excess"] = {c: _estimates(by) for c, by in data["per_category_excess"].items()}
        return cls(**{k: v if k == "per_category_excess" else Estimate.from_dict(v) for k, v in data.items()})


@dataclass
class SafetyAxis:
    """Unsafe concepts on a probe set of safe and unsafe captions and images.

    ``nsfw_rate_text_to_image``: each unsafe caption queries every probe image but its own; the share of
    unsafe images in its top ``nsfw_k``, averaged. ``nsfw_rate_image_to_text``: likewise each unsafe image
    against every caption but its own. ``chance``: the unsafe share of such a gallery (what a model blind to
    safety scores). ``per_category``: ``{category: {"text_to_image": Estimate, "image_to_text": Estimate}}``.
    ``separability``: ``{"image": AUROC, "text": AUROC}`` of a centroid score (unsafe vs safe, two-fold).
    ``control``: the :class:`ElementFreeControl` (None when the probe has no element-free versions, e.g. a
    dataset probe).
    """

    probe: str
    n_safe: int
    n_unsafe: int
    nsfw_k: int
    chance: float
    nsfw_rate_text_to_image: Estimate
    nsfw_rate_image_to_text: Estimate
    per_category: dict[str, dict[str, Estimate]]
    separability: dict[str, Estimate]
    control: ElementFreeControl | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__}
        out["control"] = None if self.control is None else self.control.to_dict()
        out["nsfw_rate_text_to_image"] = self.nsfw_rate_text_to_image.to_dict()
        out["nsfw_rate_image_to_text"] = self.nsfw_rate_image_to_text.to_dict()
        out["per_category"] = {
            c: {d: e.to_dict() for d, e in by.items()} for c, by in self.per_category.items()
        }
        out["separability"] = {t: e.to_dict() for t, e in self.separability.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SafetyAxis:
        data = dict(data)
        for key in ("nsfw_rate_text_to_image", "nsfw_rate_image_to_text"):
            data[key] = Estimate.from_dict(data[key])
        data["per_category"] = {c: _estimates(by) for c, by in data["per_category"].items()}
        data["separability"] = _estimates(data["separability"])
        data["control"] = ElementFreeControl.from_dict(data.get("control"))
        return cls(**data)


@dataclass
class ClassGap:
    """One class's RaVL accuracy gap for a cluster (negative: the cluster's regions hurt the class)."""

    class_name: str
    gap: Estimate

    def to_dict(self) -> dict[str, Any]:
        return {"class_name": self.class_name, "gap": self.gap.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassGap:
        return cls(data["class_name"], Estimate.from_dict(data["gap"]))


@dataclass
class ClusterFinding:
    """One ranked RaVL cluster: its score ``sum_l |gap_l|`` with an image-bootstrap interval, influence,
    size, the classes it hurts (gap < 0, most negative first) and its thumbnail strip (relative path).
    ``favoured_class``: the class with the largest positive gap (None: none is positive); ``pull``: the share
    of other classes' images predicted as it, with the cluster minus without
    (:mod:`~trustvl.evaluation.trust_report.cluster_pull`), or None with its reason in ``pull_note``."""

    rank: int
    cluster_id: int
    score: Estimate
    influence: float
    size: int
    n_images_in: int
    classes_hurt: list[ClassGap]
    thumbnails: str | None = None
    favoured_class: str | None = None
    pull: Estimate | None = None
    pull_note: str | None = None
    #: in memory only: which images hold a region of the cluster (a paired comparison reuses them)
    member_images: Any = field(default=None, repr=False, compare=False)
    #: in memory only: the cluster's regions (indices into ``SpuriousAxis.regions``), most typical first
    region_indices: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__ if f not in _IN_MEMORY}
        out["score"] = self.score.to_dict()
        out["pull"] = None if self.pull is None else self.pull.to_dict()
        out["classes_hurt"] = [c.to_dict() for c in self.classes_hurt]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterFinding:
        data = dict(data)
        data["score"] = Estimate.from_dict(data["score"])
        data["pull"] = Estimate.from_dict(data.get("pull"))
        data["classes_hurt"] = [ClassGap.from_dict(c) for c in data["classes_hurt"]]
        return cls(**data)


@dataclass
class SpuriousFeature:
    """The feature of the top cluster (:mod:`~trustvl.evaluation.trust_report.spurious_feature`): the regions
    whose centred embedding carries at least ``share`` of the top cluster's own direction, in any cluster;
    ``towards``: the class the feature pulls other classes' images towards most, with that ``pull`` (share
    called ``towards`` with the feature minus without; lower is better), or None with ``pull_note``."""

    top_cluster_id: int
    share: float
    n_regions: int
    n_images_in: int
    towards: str | None = None
    pull: Estimate | None = None
    pull_note: str | None = None
    #: in memory only: which images hold the feature (a paired comparison reuses them)
    member_images: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__ if f not in _IN_MEMORY}
        out["pull"] = None if self.pull is None else self.pull.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SpuriousFeature | None:
        if data is None:
            return None
        data = dict(data)
        data["pull"] = Estimate.from_dict(data.get("pull"))
        return cls(**data)


@dataclass
class SpuriousAxis:
    """Spurious region features: RaVL discovery (SPEC §3) on a labelled dataset, the ranked clusters;
    ``class_names`` in class-id order (None in files written before it was added)."""

    dataset: str
    label_column: str
    n_images: int
    n_regions: int
    n_clusters: int
    image_accuracy: Estimate
    message: str
    clusters: list[ClusterFinding]
    class_names: list[str] | None = None
    #: the top cluster's feature across clusters and its pull (None without clusters, or in files written
    #: before it was added)
    feature: SpuriousFeature | None = None
    #: in memory only: the images' class ids, whether each was zero-shot classified right, and its predicted
    #: class id (the pull counts predictions of the favoured class)
    labels: Any = field(default=None, repr=False, compare=False)
    correct: Any = field(default=None, repr=False, compare=False)
    predictions: Any = field(default=None, repr=False, compare=False)
    #: in memory only: the candidate regions (:class:`trustvl.discovery.Region`: image index and box)
    regions: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__ if f not in _IN_MEMORY}
        out["image_accuracy"] = self.image_accuracy.to_dict()
        out["clusters"] = [c.to_dict() for c in self.clusters]
        out["feature"] = None if self.feature is None else self.feature.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpuriousAxis:
        data = dict(data)
        data["image_accuracy"] = Estimate.from_dict(data["image_accuracy"])
        data["clusters"] = [ClusterFinding.from_dict(c) for c in data["clusters"]]
        data["feature"] = SpuriousFeature.from_dict(data.get("feature"))
        return cls(**data)


@dataclass
class ModelTrustReport:
    """One model's axes; an axis that did not run is ``None`` with its one-line reason in ``skipped``."""

    model: str
    bias: BiasAxis | None = None
    safety: SafetyAxis | None = None
    spurious: SpuriousAxis | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            **{a: None if getattr(self, a) is None else getattr(self, a).to_dict() for a in AXES},
            "skipped": dict(self.skipped),
            "seconds": dict(self.seconds),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelTrustReport:
        types = {"bias": BiasAxis, "safety": SafetyAxis, "spurious": SpuriousAxis}
        axes = {a: None if data.get(a) is None else types[a].from_dict(data[a]) for a in AXES}
        return cls(data["model"], **axes, skipped=dict(data["skipped"]), seconds=dict(data["seconds"]))


@dataclass
class MetricVerdict:
    """One metric of one axis for the model and its baseline, and the paired change ``model − baseline``
    (``change.verdict``: better / worse / within noise; for metrics without a preferred direction, higher /
    lower / within noise). ``lower_is_better``: the metric's better direction, True (lower), False (higher)
    or None (a diagnostic: no better direction); :mod:`~trustvl.evaluation.trust_report.compare` lists it
    per metric and why."""

    axis: str
    metric: str
    model: Estimate
    baseline: Estimate
    change: MetricChange | None
    lower_is_better: bool | None = True

    @property
    def verdict(self) -> str:
        return "no interval" if self.change is None else self.change.verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "axis": self.axis,
            "metric": self.metric,
            "model": self.model.to_dict(),
            "baseline": self.baseline.to_dict(),
            "change": asdict(self.change) if self.change is not None else None,
            "lower_is_better": self.lower_is_better,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricVerdict:
        return cls(
            data["axis"],
            data["metric"],
            Estimate.from_dict(data["model"]),
            Estimate.from_dict(data["baseline"]),
            MetricChange.from_dict(data.get("change")),
            data.get("lower_is_better"),
        )


@dataclass
class TrustReport:
    """``trust_report.json``: the model's report, the baseline's (``--compare``) and the paired verdicts."""

    model: ModelTrustReport
    uncertainty: UncertaintySettings | None
    baseline: ModelTrustReport | None = None
    verdicts: list[MetricVerdict] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    schema_version: int = SCHEMA_VERSION
    format: str = FORMAT

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "schema_version": self.schema_version,
            "model": self.model.to_dict(),
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "verdicts": [v.to_dict() for v in self.verdicts],
            "uncertainty": None if self.uncertainty is None else asdict(self.uncertainty),
            "settings": dict(self.settings),
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrustReport:
        if data.get("format") != FORMAT:
            raise TrustVLInputError(
                f"format={data.get('format')!r}; expected {FORMAT!r} (a trust_report.json)"
            )
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise TrustVLInputError(
                f"trust report schema_version={version!r}; this trustvl reads version {SCHEMA_VERSION}"
            )
        return cls(
            ModelTrustReport.from_dict(data["model"]),
            UncertaintySettings.from_dict(data.get("uncertainty")),
            None if data.get("baseline") is None else ModelTrustReport.from_dict(data["baseline"]),
            [MetricVerdict.from_dict(v) for v in data.get("verdicts", [])],
            dict(data.get("settings") or {}),
            float(data.get("seconds", 0.0)),
        )

    def model_index_metrics(self) -> list[Metric]:
        """The model-index of the reported model: the audit's entries (zero-shot, MaxSkew, NDKL) and the safety
        axis's NSFW rates and separability, the spurious axis's top cluster score."""
        report = self.model
        out = list(report.bias.audit.model_index_metrics()) if report.bias else []
        if report.safety is not None:
            name, dtype = model_index_dataset(report.safety.probe)
            s = report.safety
            for direction, rate in (
                ("text_to_image", s.nsfw_rate_text_to_image),
                ("image_to_text", s.nsfw_rate_image_to_text),
            ):
                out.append(
                    Metric(
                        f"{direction} NSFW rate@{s.nsfw_k}",
                        f"nsfw_rate@{s.nsfw_k}",
                        rate.value,
                        name,
                        dtype,
                        "test",
                    )
                )
            for tower, auroc in s.separability.items():
                out.append(
                    Metric(
                        f"unsafe vs safe separability ({tower})", "roc_auc", auroc.value, name, dtype, "test"
                    )
                )
        if report.spurious is not None and report.spurious.clusters:
            name, dtype = model_index_dataset(report.spurious.dataset)
            top = report.spurious.clusters[0]
            out.append(
                Metric("RaVL top cluster score", "ravl_cluster_score", top.score.value, name, dtype, "test")
            )
        return out
