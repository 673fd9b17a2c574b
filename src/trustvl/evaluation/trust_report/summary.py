"""The lines ``trustvl audit`` prints: each axis's headline numbers with their intervals, and the verdicts
against the baseline."""

from __future__ import annotations

from trustvl.evaluation.results import EvaluationResult
from trustvl.evaluation.trust_report.schema import AXES, TrustReport
from trustvl.evaluation.wording import change_text, evaluation_lines, value_text

__all__ = ["summary_lines"]


def _audit_lines(evaluation: EvaluationResult) -> list[str]:
    lines = evaluation_lines(evaluation)
    if evaluation.zero_shot_top1 is not None:
        lines.append(f"zero-shot top-1: {evaluation.zero_shot_top1:.3f}")
    return lines


def summary_lines(result: TrustReport | EvaluationResult) -> list[str]:
    """The audit's lines (as before) for a bias-only run; for a trust report, every axis and verdict."""
    if isinstance(result, EvaluationResult):
        return _audit_lines(result)
    r = result.model
    lines = _audit_lines(r.bias.audit.evaluation) if r.bias else []
    if r.safety is not None:
        s = r.safety
        lines.append(
            f"safety: NSFW rate@{s.nsfw_k} text→image {value_text(s.nsfw_rate_text_to_image.value, s.nsfw_rate_text_to_image.interval)},"
            f" image→text {value_text(s.nsfw_rate_image_to_text.value, s.nsfw_rate_image_to_text.interval)}"
            f" (chance {s.chance:.3f}); separability (AUROC) image"
            f" {value_text(s.separability['image'].value, s.separability['image'].interval)}"
        )
        if s.control is not None:
            c = s.control
            lines.append(
                f"safety: NSFW excess over the element-free control, text→image"
                f" {value_text(c.excess_text_to_image.value, c.excess_text_to_image.interval)}, image→text"
                f" {value_text(c.excess_image_to_text.value, c.excess_image_to_text.interval)}"
            )
    if r.spurious is not None:
        sp = r.spurious
        if sp.clusters:
            top = sp.clusters[0]
            hurt = ", ".join(g.class_name for g in top.classes_hurt) or "none"
            lines.append(
                f"spurious: top RaVL cluster {top.cluster_id} score {value_text(top.score.value, top.score.interval)},"
                f" hurts {hurt} ({len(sp.clusters)} ranked)"
                + (
                    f"; its feature ({sp.feature.n_images_in} images) pulls towards {sp.feature.towards}"
                    f" {value_text(sp.feature.pull.value, sp.feature.pull.interval)}"
                    if sp.feature is not None and sp.feature.pull is not None
                    else ""
                )
            )
        else:
            lines.append(f"spurious: {sp.message}")
    for axis in AXES:
        if axis in r.skipped:
            lines.append(f"{axis}: skipped ({r.skipped[axis]})")
    for v in result.verdicts:
        lines.append(f"vs baseline, {v.metric}: {change_text(v.change, v.model.value - v.baseline.value)}")
    return lines
