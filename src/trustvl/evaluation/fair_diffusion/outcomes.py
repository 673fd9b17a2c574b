"""The outcome metrics of one plain and one guided run (shares, gaps, KL, tolerance, obeyed, content kept),
with paired image-bootstrap intervals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trustvl.evaluation.fair_diffusion.readings import OutcomeReadings
from trustvl.evaluation.fair_diffusion.results import (
    AttributeOutcome,
    ContentKept,
    FairDiffusionEvaluation,
    GroupShare,
    PromptShares,
)
from trustvl.evaluation.fair_diffusion.statistics import finite_centred_interval, paired_metric
from trustvl.metrics import kl_to_target, wilson_interval, within_stratum_resamples
from trustvl.pipelines.fair_diffusion import FairGenerationPlan
from trustvl.pipelines.fairness_instruction import FairnessInstruction

__all__ = ["summarise"]


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
    relative_drop = (1 - gap_fair / gap_plain) if gap_plain > 0 else None
    return AttributeOutcome(
        attribute=ins.attribute,
        head=ins.head,
        targets=dict(ins.groups),
        outcome_values=dict(zip(groups, values)),
        mean_abs_gap=paired_metric(
            gap_plain, gap_fair, *reps.get("gap", (None, None)), lower_is_better=True, upper=1.0
        ),
        relative_gap_drop=relative_drop,
        relative_gap_drop_interval=finite_centred_interval(relative_drop, reps["drop"], upper=1.0)
        if reps
        else None,
        kl=paired_metric(kl_plain, kl_fair, *reps.get("kl", (None, None)), lower_is_better=True),
        within_tolerance=paired_metric(
            float(sp["within"].mean()),
            float(sf["within"].mean()),
            *reps.get("within", (None, None)),
            lower_is_better=False,
            upper=1.0,
        ),  # fmt: skip
        obeyed=float(obeyed.mean()),
        obeyed_interval=finite_centred_interval(float(obeyed.mean()), reps["obeyed"], 0.0, 1.0)
        if reps
        else None,
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
    recognised = paired_metric(
        float(ok_plain.mean()), float(ok_fair.mean()), plain_reps, fair_reps, lower_is_better=False, upper=1.0
    )
    drop = 100 * (recognised.plain - recognised.fair)
    drop_ci = (
        None
        if plain_reps is None
        else finite_centred_interval(drop, 100 * (plain_reps - fair_reps), -100.0, 100.0)
    )
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
