"""Outcome evaluation of Fair Diffusion (SPEC §5; ``trustvl eval fair-diffusion``).

For a prompt list (default ``"a photo of a {occupation}"`` for SynthWorld's 8 occupations) the job generates
``n`` images per prompt twice with the same seeds (image ``i`` of every prompt uses seed ``seed + i``): plainly
and under the fairness instruction(s) (:class:`~trustvl.pipelines.fair_diffusion.FairGenerationPlan`), in
batches that mix prompts (one UNet call per step for a whole batch, per-image edits included). An outcome
classifier (the embedded SynthWorld one, or any HF image-classification model) reads every image. Reported,
per attribute, with and without the instruction:

* per prompt, each group's share of the ``n`` images against its target, with a Wilson (binomial) 95 %
  interval; images read as none of the groups count as "other";
* the mean over prompts of ``mean_g |share_g − target_g|`` (with two groups: the paper's
  ``|female share − 0.5|``), its relative drop, the mean KL divergence to the target and the share of prompts
  within ``±tolerance`` of the target (every group's share);
* how often a guided image is read as the group it was guided toward ("obeyed");
* content kept: the share of images whose occupation is still recognised, with and without, and the drop in
  points (the expected occupation is the classifier occupation value named in the prompt, or given).

Intervals of the means over prompts come from a paired, prompt-stratified image bootstrap: each resample
draws ``n`` image indices per prompt with replacement and uses the same indices with and without the
instruction (same seeds, so the two images of an index are a pair); intervals centred on the measured value
(:func:`trustvl.metrics.centred_interval`: the value ± 1.96·SE of the replicates, truncated to the metric's
range, flagged when the replicates sit more than SE/2 from it, as the mean |share − target| does near 0),
paired changes by :func:`trustvl.metrics.paired_comparison`.

Choices the paper leaves open: KL is ``KL(observed || target)`` (ITI-GEN's direction) over the groups, the
observed shares renormalised over the images read as one of the groups, a zero target replaced by ``1e-3``
(then renormalised) so that it stays finite, empty prompts (no image read as a group) left out of the mean.

Writes ``results.json`` (:class:`FairDiffusionEvaluation`), ``report.html`` / ``report.md`` with a proportions
plot per attribute and an image grid per prompt (top row plain, bottom row guided, same seeds).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.report import Figure, Links, Report, Table
from trustvl.evaluation.results import MetricChange
from trustvl.evaluation.wording import attribute_name, value_text
from trustvl.metrics import (
    ConfidenceInterval,
    centred_interval,
    kl_to_target,
    paired_comparison,
    wilson_interval,
    within_stratum_resamples,
)
from trustvl.pipelines.fair_diffusion import FairGenerationPlan
from trustvl.pipelines.fairness_instruction import (
    SYNTHWORLD_FAIRNESS_HEADS,
    FairnessInstruction,
    subject_in_prompt,
    synthworld_outcome_value,
)

__all__ = [
    "DEFAULT_PROMPT_TEMPLATE",
    "AttributeOutcome",
    "ContentKept",
    "FairDiffusionEvalConfig",
    "FairDiffusionEvaluation",
    "GroupShare",
    "OutcomeReadings",
    "PairedMetric",
    "PromptShares",
    "default_prompts",
    "generate_and_read",
    "resolve_outcomes",
    "run_fair_diffusion_eval",
    "summarise",
]

DEFAULT_PROMPT_TEMPLATE = "a photo of a {occupation}"


def default_prompts(template: str = DEFAULT_PROMPT_TEMPLATE) -> list[str]:
    """``template`` for each of SynthWorld's 8 occupations."""
    from trustvl.data_builders.synthworld import OCCUPATIONS

    return [template.format(occupation=o) for o in OCCUPATIONS]


# ---------------------------------------------------------------------------------------------- typed results
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
        d["plain_interval"] = ConfidenceInterval(**d["plain_interval"])
        d["fair_interval"] = ConfidenceInterval(**d["fair_interval"])
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


# ---------------------------------------------------------------------------------------------- inputs
def resolve_outcomes(
    instructions: Sequence[FairnessInstruction], heads: Mapping[str, Sequence[str]]
) -> list[FairnessInstruction]:
    """Each instruction with the classifier head and value of every group set, or one clear error.

    The head is the instruction's ``outcome_head``, else its attribute when the classifier has a head of that
    name, else SynthWorld's name for it (``gender`` -> ``gender_presentation``). A group's value is its
    ``outcome_values`` entry, else the group's name when it is a value of the head, else the value that
    SynthWorld's caption grammar gives the phrase (:func:`synthworld_outcome_value`).
    """
    out = []
    for ins in instructions:
        head = ins.outcome_head or (
            ins.attribute if ins.attribute in heads else SYNTHWORLD_FAIRNESS_HEADS.get(ins.attribute)
        )
        if head not in heads:
            raise TrustVLInputError(
                f"unknown attribute {ins.attribute!r}: the outcome classifier reads {sorted(heads)}; name one of"
                " them (or set outcome_head)"
            )
        values = {}
        for group in ins.group_names:
            given = (ins.outcome_values or {}).get(group)
            value = given or (group if group in heads[head] else synthworld_outcome_value(head, group))
            if value not in heads[head]:
                raise TrustVLInputError(
                    f"unknown concept {group!r} of attribute {ins.attribute!r}: the classifier's {head!r} values"
                    f" are {list(heads[head])}; name one, a SynthWorld phrase for one, or set outcome_values"
                )
            values[group] = value
        out.append(ins.with_outcomes(head, values))  # raises when two groups share a value
    return out


@dataclass
class FairDiffusionEvalConfig:
    """Settings of ``trustvl eval fair-diffusion`` (defaults: SynthWorld SD, the paper's guidance knobs).

    Args:
        out_dir: output folder (written atomically).
        fairness: :class:`FairnessInstruction` objects or ``--fair`` strings; default SynthWorld gender 50/50.
        prompts: default :func:`default_prompts` (8 occupations).
        occupations: the occupation each prompt should show (content check); default found in the prompt.
        subjects: what each prompt shows, for guidance texts in context (``{subject}``); default
            ``occupations``, else the SynthWorld occupation the prompt names.
        model / classifier: SD pipeline and image-classification model (default: the embedded SynthWorld ones).
        n: images per prompt (each with and without the instruction).
        momentum_scale / momentum_beta: SEGA momentum (paper 0.5 / 0.6).
        batch_size: images per pipeline call, prompts mixed.
        tolerance: a prompt is "within" when every group's share is within ± this of its target.
        n_resamples: bootstrap resamples of the intervals (0: none).
        grid_images: images per prompt shown in the report's grids.
    """

    out_dir: str
    fairness: Sequence[FairnessInstruction | str] | None = None
    prompts: Sequence[str] | None = None
    occupations: Sequence[str] | None = None
    subjects: Sequence[str] | None = None
    model: str | None = None
    classifier: str | None = None
    n: int = 64
    seed: int = 0
    num_inference_steps: int = 20
    guidance_scale: float = 8.0
    momentum_scale: float = 0.5
    momentum_beta: float = 0.6
    batch_size: int = 512
    tolerance: float = 0.1
    n_resamples: int = 1000
    grid_images: int = 16
    device: str = "auto"
    dtype: Any = None
    overwrite: bool = False
    progress: bool = True

    def plan(self, prompts: Sequence[str] = ()) -> FairGenerationPlan:
        """The instructions as a plan; ``prompts`` pair with ``subjects`` (or ``occupations``)."""
        items = self.fairness if self.fairness else [FairnessInstruction.synthworld("gender")]
        if isinstance(items, (str, FairnessInstruction)):
            items = [items]
        instructions = tuple(
            i if isinstance(i, FairnessInstruction) else FairnessInstruction.from_string(i) for i in items
        )
        given = self.subjects if self.subjects is not None else self.occupations
        subjects = dict(zip(prompts, given)) if given is not None and prompts else None
        return FairGenerationPlan(instructions, self.momentum_scale, self.momentum_beta, subjects)

    def check(self) -> tuple[FairGenerationPlan, list[str]]:
        """Every setting checked (before any model is loaded); returns the plan and the prompts."""
        prompts = list(default_prompts() if self.prompts is None else self.prompts)
        if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
            raise TrustVLInputError(f"prompts={self.prompts!r}; expected a non-empty list of non-empty texts")
        for name in ("occupations", "subjects"):
            value = getattr(self, name)
            if value is not None and len(value) != len(prompts):
                raise TrustVLInputError(f"{len(value)} {name} for {len(prompts)} prompts; expected one each")
        plan = self.plan(prompts)
        for name in ("n", "batch_size", "num_inference_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TrustVLInputError(f"{name}={value!r} must be a positive whole number")
        plan.check(self.n, prompts)
        if not 0.0 < float(self.tolerance) < 1.0:
            raise TrustVLInputError(f"tolerance={self.tolerance!r} is outside (0, 1)")
        if not float(self.guidance_scale) > 1.0:
            raise TrustVLInputError(
                f"guidance_scale={self.guidance_scale!r} must be > 1 for semantic guidance"
            )
        if self.n_resamples != 0 and (
            isinstance(self.n_resamples, bool)
            or not isinstance(self.n_resamples, int)
            or self.n_resamples < 2
        ):
            raise TrustVLInputError(f"n_resamples={self.n_resamples!r}; expected 0 (off) or an integer >= 2")
        return plan, prompts


# ---------------------------------------------------------------------------------------------- generation
@dataclass
class OutcomeReadings:
    """Classifier readings of one run (plain or guided): ``values[head]`` is ``[prompts, n]`` strings."""

    values: dict[str, np.ndarray]
    assignments: list[list[dict[str, str]]] | None
    grid_images: list[list[Any]]
    seconds: float


def generate_and_read(
    pipe: Any,
    judge: Any,
    prompts: Sequence[str],
    n: int,
    plan: FairGenerationPlan | None,
    *,
    seed: int = 0,
    num_inference_steps: int = 20,
    guidance_scale: float = 8.0,
    batch_size: int = 512,
    keep_images: int = 0,
    progress: bool = True,
    desc: str = "generating",
) -> OutcomeReadings:
    """Generate ``n`` images per prompt (``plan=None``: plainly) and read them with ``judge``.

    ``pipe`` is a :class:`~trustvl.pipelines.FairDiffusionPipeline`; batches mix prompts (image ``i`` of every
    prompt uses seed ``seed + i``; groups from ``plan.assign(n, seed=seed, prompt_index=p)``). The first
    ``keep_images`` images of each prompt are kept for the report.
    """
    from tqdm.auto import tqdm

    jobs = [(p, i) for p in range(len(prompts)) for i in range(n)]
    assignments = [plan.assign(n, seed=seed, prompt_index=p) for p in range(len(prompts))] if plan else None
    device = getattr(pipe, "device", torch.device("cpu"))
    values: dict[str, list[str]] = {}
    kept: list[list[Any]] = [[] for _ in prompts]
    start = time.perf_counter()
    for b in tqdm(range(0, len(jobs), batch_size), desc=desc, unit="batch", disable=not progress):
        chunk = jobs[b : b + batch_size]
        kwargs = (
            plan.call_kwargs([assignments[p][i] for p, i in chunk], [prompts[p] for p, _ in chunk])
            if plan
            else {}
        )
        images = pipe(
            prompt=[prompts[p] for p, _ in chunk],
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            generator=[torch.Generator(device=device).manual_seed(seed + i) for _, i in chunk],
            output_type="pil",
            **kwargs,
        ).images
        for reading in judge.read(images):
            for head, value in reading.values.items():
                values.setdefault(head, []).append(value)
        for (p, i), image in zip(chunk, images):
            if i < keep_images:
                kept[p].append(image)
    if "cuda" in str(device):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    shaped = {h: np.asarray(v, dtype=object).reshape(len(prompts), n) for h, v in values.items()}
    return OutcomeReadings(shaped, assignments, kept, seconds)


# ---------------------------------------------------------------------------------------------- metrics
def _prompt_stats(onehot: np.ndarray, target: np.ndarray, tolerance: float) -> dict[str, np.ndarray]:
    """From one-hot readings ``[..., prompts, n, groups]``: shares, gap, KL, within per prompt."""
    shares = onehot.mean(-2)
    gap = np.abs(shares - target)
    return {
        "shares": shares,
        "gap": gap.mean(-1),
        "kl": kl_to_target(shares, target),
        "within": (gap.max(-1) <= tolerance + 1e-9).astype(float),
    }


def _interval(
    estimate: float | None, replicates: np.ndarray, lower: float | None = None, upper: float | None = None
) -> ConfidenceInterval | None:
    """The centred interval of ``estimate`` from its finite replicates; ``None`` without 2 of them."""
    finite = replicates[np.isfinite(replicates)]
    if estimate is None or not np.isfinite(estimate) or finite.size < 2:
        return None
    return centred_interval(estimate, finite, lower=lower, upper=upper)


def _paired(
    plain: float, fair: float, plain_reps, fair_reps, lower_is_better: bool, upper: float | None = None
) -> PairedMetric:
    """``upper``: the metric's range is ``[0, upper]`` (``None``: unbounded above, as KL)."""
    if plain_reps is None:
        return PairedMetric(plain, fair)
    change = None
    if np.isfinite(plain) and np.isfinite(fair):
        ok = np.isfinite(plain_reps) & np.isfinite(fair_reps)
        if ok.sum() >= 2:
            change = paired_comparison(
                plain, fair, plain_reps[ok], fair_reps[ok], lower_is_better=lower_is_better
            )
    return PairedMetric(
        plain, fair, _interval(plain, plain_reps, 0.0, upper), _interval(fair, fair_reps, 0.0, upper), change
    )


def _attribute_outcome(
    ins: FairnessInstruction,
    prompts: Sequence[str],
    plain: OutcomeReadings,
    fair: OutcomeReadings,
    tolerance: float,
    indices: np.ndarray | None,
) -> AttributeOutcome:
    groups = list(ins.group_names)
    values = [ins.outcome_of(g) for g in groups]
    target = np.asarray([ins.groups[g] for g in groups])
    onehot_plain = np.stack([plain.values[ins.head] == v for v in values], -1).astype(float)
    onehot_fair = np.stack([fair.values[ins.head] == v for v in values], -1).astype(float)
    assigned = np.asarray([[values[groups.index(a[ins.attribute])] for a in row] for row in fair.assignments])
    obeyed = (fair.values[ins.head] == assigned).astype(float)
    sp, sf = _prompt_stats(onehot_plain, target, tolerance), _prompt_stats(onehot_fair, target, tolerance)
    n = onehot_plain.shape[1]
    reps: dict[str, Any] = {}
    if indices is not None:
        rows = np.arange(len(prompts))[None, :, None]
        bp = _prompt_stats(onehot_plain[rows, indices], target, tolerance)
        bf = _prompt_stats(onehot_fair[rows, indices], target, tolerance)
        with np.errstate(invalid="ignore", divide="ignore"):
            reps = {
                "gap": (bp["gap"].mean(-1), bf["gap"].mean(-1)),
                "kl": (np.nanmean(bp["kl"], -1), np.nanmean(bf["kl"], -1)),
                "within": (bp["within"].mean(-1), bf["within"].mean(-1)),
                "drop": 1.0 - bf["gap"].mean(-1) / bp["gap"].mean(-1),
                "obeyed": obeyed[rows, indices].mean((-1, -2)),
            }
    per_prompt = []
    for p, prompt in enumerate(prompts):
        shares = [
            GroupShare(
                g, values[k], float(target[k]), float(sp["shares"][p, k]), float(sf["shares"][p, k]),
                wilson_interval(int(onehot_plain[p, :, k].sum()), n), wilson_interval(int(onehot_fair[p, :, k].sum()), n),
            )
            for k, g in enumerate(groups)
        ]  # fmt: skip
        per_prompt.append(
            PromptShares(
                prompt, shares, float(1 - sp["shares"][p].sum()), float(1 - sf["shares"][p].sum()),
                float(sp["gap"][p]), float(sf["gap"][p]), _finite(sp["kl"][p]), _finite(sf["kl"][p]),
                bool(sp["within"][p]), bool(sf["within"][p]), float(obeyed[p].mean()),
            )
        )  # fmt: skip
    gap_plain, gap_fair = float(sp["gap"].mean()), float(sf["gap"].mean())
    with np.errstate(invalid="ignore"):
        kl_plain, kl_fair = float(np.nanmean(sp["kl"])), float(np.nanmean(sf["kl"]))
    return AttributeOutcome(
        attribute=ins.attribute,
        head=ins.head,
        targets=dict(ins.groups),
        outcome_values=dict(zip(groups, values)),
        mean_abs_gap=_paired(
            gap_plain, gap_fair, *reps.get("gap", (None, None)), lower_is_better=True, upper=1.0
        ),
        relative_gap_drop=(1 - gap_fair / gap_plain) if gap_plain > 0 else None,
        relative_gap_drop_interval=_interval(
            (1 - gap_fair / gap_plain) if gap_plain > 0 else None, reps["drop"], upper=1.0
        )
        if reps
        else None,
        kl=_paired(kl_plain, kl_fair, *reps.get("kl", (None, None)), lower_is_better=True),
        within_tolerance=_paired(
            float(sp["within"].mean()),
            float(sf["within"].mean()),
            *reps.get("within", (None, None)),
            lower_is_better=False,
            upper=1.0,
        ),  # fmt: skip
        obeyed=float(obeyed.mean()),
        obeyed_interval=_interval(float(obeyed.mean()), reps["obeyed"], 0.0, 1.0) if reps else None,
        per_prompt=per_prompt,
    )


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _content(
    expected: Sequence[str | None], plain: OutcomeReadings, fair: OutcomeReadings, indices: np.ndarray | None,
    head: str = "occupation",
) -> ContentKept | None:  # fmt: skip
    keep = [p for p, e in enumerate(expected) if e is not None]
    if head not in plain.values or not keep:
        return None
    want = np.asarray([expected[p] for p in keep], dtype=object)[:, None]
    ok_plain = (plain.values[head][keep] == want).astype(float)
    ok_fair = (fair.values[head][keep] == want).astype(float)
    per_plain: list[float | None] = [None] * len(expected)
    per_fair: list[float | None] = [None] * len(expected)
    for row, p in enumerate(keep):
        per_plain[p], per_fair[p] = float(ok_plain[row].mean()), float(ok_fair[row].mean())
    plain_reps = fair_reps = None
    if indices is not None:
        rows = np.arange(len(keep))[None, :, None]
        sub = indices[:, keep]
        plain_reps, fair_reps = ok_plain[rows, sub].mean((-1, -2)), ok_fair[rows, sub].mean((-1, -2))
    recognised = _paired(
        float(ok_plain.mean()), float(ok_fair.mean()), plain_reps, fair_reps, lower_is_better=False, upper=1.0
    )
    drop = 100 * (recognised.plain - recognised.fair)
    drop_ci = None if plain_reps is None else _interval(drop, 100 * (plain_reps - fair_reps), -100.0, 100.0)
    return ContentKept(head, list(expected), per_plain, per_fair, recognised, drop, drop_ci)


def summarise(
    plan: FairGenerationPlan,
    prompts: Sequence[str],
    plain: OutcomeReadings,
    fair: OutcomeReadings,
    *,
    expected_occupations: Sequence[str | None] | None = None,
    tolerance: float = 0.1,
    n_resamples: int = 1000,
    seed: int = 0,
    settings: Mapping[str, Any] | None = None,
) -> FairDiffusionEvaluation:
    """The typed outcome of one plain and one guided run of the same prompts and seeds."""
    n = next(iter(plain.values.values())).shape[1]
    indices = within_stratum_resamples(len(prompts), n, n_resamples, seed) if n_resamples else None
    attributes = [
        _attribute_outcome(ins, prompts, plain, fair, tolerance, indices) for ins in plan.instructions
    ]
    expected = list(expected_occupations) if expected_occupations is not None else [None] * len(prompts)
    seconds = plain.seconds + fair.seconds
    return FairDiffusionEvaluation(
        prompts=list(prompts),
        n_per_prompt=n,
        tolerance=tolerance,
        attributes=attributes,
        content=_content(expected, plain, fair, indices),
        settings=dict(settings or {}),
        n_resamples=n_resamples,
        seconds=round(seconds, 3),
        images_per_second=round(2 * len(prompts) * n / seconds, 3) if seconds > 0 else 0.0,
    )


# ---------------------------------------------------------------------------------------------- the job
def run_fair_diffusion_eval(
    cfg: FairDiffusionEvalConfig, *, pipe: Any = None, judge: Any = None
) -> FairDiffusionEvaluation:
    """Generate, read, summarise and write ``results.json`` + the report into ``cfg.out_dir`` (atomically).

    ``pipe`` / ``judge`` (an SD or Fair Diffusion pipeline, an :class:`OutcomeClassifier`) replace loading
    ``cfg.model`` / ``cfg.classifier``. Every input is checked before any image is generated.
    """
    from trustvl.data_builders.generated_images import image_grid
    from trustvl.evaluation.plots import plot_shares_vs_target
    from trustvl.modeling.outcome_classifier import OutcomeClassifier
    from trustvl.modeling.synthworld_sd import load_sd_pipeline
    from trustvl.utils.io import atomic_output_dir, write_json

    plan, prompts = cfg.check()
    out = Path(cfg.out_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not cfg.overwrite)):
        raise TrustVLInputError(
            f"output folder {str(out)!r} exists and is not empty; choose another folder or pass overwrite"
        )
    judge = judge if judge is not None else OutcomeClassifier(cfg.classifier, device=cfg.device)
    heads = judge.heads
    plan = FairGenerationPlan(
        tuple(resolve_outcomes(plan.instructions, heads)),
        plan.momentum_scale,
        plan.momentum_beta,
        plan.subjects,
    )
    if cfg.occupations is not None:
        expected: list[str | None] = list(cfg.occupations)
        unknown = [o for o in expected if o not in heads.get("occupation", ())]
        if unknown:
            raise TrustVLInputError(
                f"occupations {unknown} are not values of the classifier's occupation head"
            )
    else:
        # the classifier's occupation value each prompt names (longest whole-word match), else None
        expected = [subject_in_prompt(p, list(heads.get("occupation", ()))) for p in prompts]
    pipe = plan.pipeline(
        pipe if pipe is not None else load_sd_pipeline(cfg.model, device=cfg.device, dtype=cfg.dtype)
    )
    common = dict(
        seed=cfg.seed, num_inference_steps=cfg.num_inference_steps, guidance_scale=cfg.guidance_scale,
        batch_size=cfg.batch_size, keep_images=cfg.grid_images, progress=cfg.progress,
    )  # fmt: skip
    plain = generate_and_read(pipe, judge, prompts, cfg.n, None, desc="plain", **common)
    fair = generate_and_read(pipe, judge, prompts, cfg.n, plan, desc="Fair Diffusion", **common)
    settings = {
        "model": cfg.model or "trustvl synthworld-sd (embedded default)",
        "classifier": cfg.classifier or "trustvl synthworld-outcome-classifier (embedded default)",
        "seed": cfg.seed, "num_inference_steps": cfg.num_inference_steps, "guidance_scale": cfg.guidance_scale,
        "momentum_scale": plan.momentum_scale, "momentum_beta": plan.momentum_beta, "batch_size": cfg.batch_size,
        "device": str(pipe.device), "dtype": str(pipe.unet.dtype),
        "instructions": [asdict(i) for i in plan.instructions],
    }  # fmt: skip
    result = summarise(
        plan, prompts, plain, fair, expected_occupations=expected, tolerance=cfg.tolerance,
        n_resamples=cfg.n_resamples, seed=cfg.seed, settings=settings,
    )  # fmt: skip
    with atomic_output_dir(out, overwrite=cfg.overwrite) as stage:
        write_json(stage / "results.json", result.to_dict())
        grids = []
        for p in range(len(prompts)):
            if plain.grid_images[p]:
                cols = len(plain.grid_images[p])
                name = f"grids/prompt_{p:03d}.png"
                (stage / "grids").mkdir(exist_ok=True)
                image_grid(plain.grid_images[p] + fair.grid_images[p], cols=cols).save(stage / name)
                grids.append(name)
        plots = []
        for a in result.attributes:
            name = f"shares_{re.sub(r'[^A-Za-z0-9_-]', '_', a.attribute)}.png"
            plot_shares_vs_target(
                stage / name, prompts, list(a.targets),
                [[g.plain for g in pp.groups] for pp in a.per_prompt],
                [[g.fair for g in pp.groups] for pp in a.per_prompt],
                list(a.targets.values()), f"{attribute_name(a.attribute)}: share per group, plain vs Fair Diffusion",
            )  # fmt: skip
            plots.append(name)
        build_report(result, plots, grids, plan).write(stage)
    return result


# ---------------------------------------------------------------------------------------------- report
def _pct(value: float, interval: ConfidenceInterval | None) -> str:
    return value_text(value, interval)


def _change(metric: PairedMetric) -> str:
    if metric.change is None:
        return f"{metric.fair - metric.plain:+.3f}"
    c = metric.change
    return f"{c.difference:+.3f} [{c.interval.low:+.3f}, {c.interval.high:+.3f}], {c.verdict}"


def summary_table(a: AttributeOutcome, tolerance: float) -> Table:
    rows = [
        ["mean |share − target|", _pct(a.mean_abs_gap.plain, a.mean_abs_gap.plain_interval),
         _pct(a.mean_abs_gap.fair, a.mean_abs_gap.fair_interval), _change(a.mean_abs_gap)],
        ["KL(observed ‖ target)", _pct(a.kl.plain, a.kl.plain_interval), _pct(a.kl.fair, a.kl.fair_interval),
         _change(a.kl)],
        [f"prompts within ±{tolerance:g} of the target", _pct(a.within_tolerance.plain, a.within_tolerance.plain_interval),
         _pct(a.within_tolerance.fair, a.within_tolerance.fair_interval), _change(a.within_tolerance)],
        ["guided images read as their group", "", _pct(a.obeyed, a.obeyed_interval), ""],
    ]  # fmt: skip
    if a.relative_gap_drop is not None:
        rows.append(
            [
                "relative drop of mean |share − target|",
                "",
                _pct(a.relative_gap_drop, a.relative_gap_drop_interval),
                "",
            ]
        )
    return Table(["metric", "plain [95%]", "Fair Diffusion [95%]", "change [95%]"], rows)


def per_prompt_table(a: AttributeOutcome) -> Table:
    rows = []
    for pp in a.per_prompt:
        for k, g in enumerate(pp.groups):
            rows.append([
                pp.prompt if k == 0 else "", f"{g.group} ({g.outcome})", g.target,
                value_text(g.plain, g.plain_interval), value_text(g.fair, g.fair_interval),
                f"{pp.plain_gap:.3f} → {pp.fair_gap:.3f}" if k == 0 else "",
            ])  # fmt: skip
    return Table(
        ["prompt", "group (classifier value)", "target", "plain [95%]", "Fair Diffusion [95%]", "mean gap"],
        rows,
    )


def content_table(c: ContentKept, prompts: Sequence[str]) -> Table:
    rows = [
        [p, e, "" if a is None else a, "" if b is None else b]
        for p, e, a, b in zip(prompts, c.expected, c.plain_per_prompt, c.fair_per_prompt)
        if e is not None
    ]
    rows.append(["all", "", value_text(c.recognised.plain, c.recognised.plain_interval),
                 value_text(c.recognised.fair, c.recognised.fair_interval)])  # fmt: skip
    return Table(["prompt", f"expected {c.head}", "recognised, plain", "recognised, Fair Diffusion"], rows)


def build_report(
    result: FairDiffusionEvaluation, plots: Sequence[str], grids: Sequence[str], plan: FairGenerationPlan
) -> Report:
    s = result.settings
    report = Report(
        "Fair Diffusion: outcome evaluation",
        intro=[
            f"{len(result.prompts)} prompts × {result.n_per_prompt} images, each generated plainly and with the"
            f" fairness instruction(s) from the same seeds; model `{s.get('model')}`, read by `{s.get('classifier')}`;"
            f" {s.get('num_inference_steps')} steps, guidance scale {s.get('guidance_scale')}.",
            plan.describe(result.n_per_prompt).replace("\n\n", " ").replace("\n- ", " "),
            f"Intervals: per-prompt shares Wilson 95 %; means over prompts ± 1.96·SE of a paired image bootstrap"
            f" ({result.n_resamples} resamples), cut at the metric's range. {result.images_per_second:.1f} images/s overall.",
        ],
    )
    for a, plot in zip(result.attributes, plots):
        report.add(
            f"{attribute_name(a.attribute)} (classifier head `{a.head}`)",
            summary_table(a, result.tolerance),
            Figure(plot, f"{a.attribute} shares per prompt, plain and Fair Diffusion, target dashed"),
            per_prompt_table(a),
        )
    if result.content is not None:
        c = result.content
        drop = f"{c.drop_points:+.1f} points" + (
            f" [{c.drop_points_interval.low:+.1f}, {c.drop_points_interval.high:+.1f}]"
            if c.drop_points_interval
            else ""
        )
        report.add(
            "Content kept",
            f"Occupation recognition drop (plain − Fair Diffusion): **{drop}**.",
            content_table(c, result.prompts),
        )
    if grids:
        blocks: list[Any] = ["Top row plain, bottom row Fair Diffusion; the same column has the same seed."]
        for prompt, grid in zip(result.prompts, grids):
            blocks += [f"`{prompt}`", Figure(grid, f"{prompt}: plain (top) and Fair Diffusion (bottom)")]
        report.add("Images", *blocks)
    report.add("Files", Links(["results.json"]))
    return report
