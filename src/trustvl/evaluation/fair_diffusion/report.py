"""The report of the Fair Diffusion evaluation (``report.html`` / ``report.md``): summary, per-prompt and
content tables, the shares plots and the image grids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trustvl.evaluation.fair_diffusion.results import (
    AttributeOutcome,
    ContentKept,
    FairDiffusionEvaluation,
    PairedMetric,
)
from trustvl.evaluation.report import Figure, Links, Report, Table
from trustvl.evaluation.wording import attribute_name, value_text
from trustvl.metrics import ConfidenceInterval
from trustvl.pipelines.fair_diffusion import FairGenerationPlan

__all__ = ["build_report", "content_table", "per_prompt_table", "summary_table"]


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
