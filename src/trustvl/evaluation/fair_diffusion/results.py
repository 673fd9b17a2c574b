"""Typed results of the Fair Diffusion evaluation (``results.json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.results import ConfidenceInterval, MetricChange

__all__ = [
    "AttributeOutcome",
    "ContentKept",
    "FairDiffusionEvaluation",
    "GroupShare",
    "PairedMetric",
    "PromptShares",
]


@dataclass
class PairedMetric:
    """One metric without (``plain``) and with (``fair``) the instruction, intervals and the paired change."""

    plain: float
    fair: float
    plain_interval: ConfidenceInterval | None = None
    fair_interval: ConfidenceInterval | None = None
    change: MetricChange | None = None  # fair − plain

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairedMetric:
        return cls(
            data["plain"], data["fair"], ConfidenceInterval.from_dict(data["plain_interval"]),
            ConfidenceInterval.from_dict(data["fair_interval"]), MetricChange.from_dict(data["change"]),
        )  # fmt: skip


@dataclass
class GroupShare:
    """One group's share of one prompt's images (Wilson intervals)."""

    group: str
    outcome: str
    target: float
    plain: float
    fair: float
    plain_interval: ConfidenceInterval
    fair_interval: ConfidenceInterval

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupShare:
        d = dict(data)
        d["plain_interval"] = ConfidenceInterval.from_dict(d["plain_interval"])
        d["fair_interval"] = ConfidenceInterval.from_dict(d["fair_interval"])
        return cls(**d)


@dataclass
class PromptShares:
    """One prompt, one attribute: the shares per group and the prompt's gap, KL and tolerance check."""

    prompt: str
    groups: list[GroupShare]
    plain_other: float
    fair_other: float
    plain_gap: float
    fair_gap: float
    plain_kl: float | None
    fair_kl: float | None
    plain_within: bool
    fair_within: bool
    obeyed: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptShares:
        d = dict(data)
        d["groups"] = [GroupShare.from_dict(g) for g in d["groups"]]
        return cls(**d)


@dataclass
class AttributeOutcome:
    """One attribute's outcome over all prompts."""

    attribute: str
    head: str
    targets: dict[str, float]
    outcome_values: dict[str, str]
    mean_abs_gap: PairedMetric
    relative_gap_drop: float | None
    relative_gap_drop_interval: ConfidenceInterval | None
    kl: PairedMetric
    within_tolerance: PairedMetric
    obeyed: float
    obeyed_interval: ConfidenceInterval | None
    per_prompt: list[PromptShares]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttributeOutcome:
        d = dict(data)
        for key in ("mean_abs_gap", "kl", "within_tolerance"):
            d[key] = PairedMetric.from_dict(d[key])
        for key in ("relative_gap_drop_interval", "obeyed_interval"):
            d[key] = ConfidenceInterval.from_dict(d[key])
        d["per_prompt"] = [PromptShares.from_dict(p) for p in d["per_prompt"]]
        return cls(**d)


@dataclass
class ContentKept:
    """Whether the prompt's content survives the guidance: occupation recognised, with and without."""

    head: str
    expected: list[str | None]
    plain_per_prompt: list[float | None]
    fair_per_prompt: list[float | None]
    recognised: PairedMetric
    drop_points: float
    drop_points_interval: ConfidenceInterval | None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ContentKept | None:
        if data is None:
            return None
        d = dict(data)
        d["recognised"] = PairedMetric.from_dict(d["recognised"])
        d["drop_points_interval"] = ConfidenceInterval.from_dict(d["drop_points_interval"])
        return cls(**d)


@dataclass
class FairDiffusionEvaluation:
    """What :func:`run_fair_diffusion_eval` measured (``results.json``)."""

    prompts: list[str]
    n_per_prompt: int
    tolerance: float
    attributes: list[AttributeOutcome]
    content: ContentKept | None
    settings: dict[str, Any] = field(default_factory=dict)
    n_resamples: int = 0
    seconds: float = 0.0
    images_per_second: float = 0.0

    def attribute(self, name: str) -> AttributeOutcome:
        for a in self.attributes:
            if a.attribute == name:
                return a
        raise TrustVLInputError(
            f"unknown attribute {name!r}; evaluated: {[a.attribute for a in self.attributes]}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FairDiffusionEvaluation:
        d = dict(data)
        d["attributes"] = [AttributeOutcome.from_dict(a) for a in d["attributes"]]
        d["content"] = ContentKept.from_dict(d["content"])
        return cls(**d)
