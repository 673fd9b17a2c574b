"""The trust report's bias axis: the audit's numbers (:func:`trustvl.evaluation.audit.measure_audit`), plus
the **direction** per prompt and attribute and, with a label column, zero-shot top-1 and worst-group accuracy
with intervals.

Direction (documented choice): at the report's cut-off ``k`` (the middle of the audit's ``ks``), the level
``a`` with the largest skew ``ln(p_a@k / q_a)`` (a zero count floored to ``1/k``, as MaxSkew does) is the
prompt's over-represented group; its skew equals the prompt's MaxSkew@k. The interval is that level's skew
on the audit's gallery resamples (same seed, same resamples as the MaxSkew intervals), and ``stability`` the
share of resamples in which the same level still comes first. Accuracy intervals use the same resamples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trustvl.evaluation.audit import AuditMeasurement
from trustvl.evaluation.evaluator import CHUNKED_RANKING_MIN_CELLS, GALLERY_CHUNK_ROWS
from trustvl.evaluation.trust_report.estimates import estimate, resampled, weighted_mean, worst_group
from trustvl.evaluation.trust_report.schema import BiasAxis, PromptDirection
from trustvl.metrics import chunked_rank_indices, gallery_chunks, rank_indices, resampled_ranking_batches
from trustvl.modeling.embedding import embed_texts

__all__ = ["bias_axis", "report_k"]


def report_k(ks: list[int]) -> int:
    """The cut-off the report shows: the middle of the audit's ``ks`` (100 of 10, 100, 1000)."""
    ks = sorted(ks)
    return ks[len(ks) // 2]


def _level_skews(ranked: torch.Tensor, values: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    """``[..., m]`` skew of each level in the top ``k`` of rankings ``ranked [..., n]`` (gallery indices)."""
    m = target.numel()
    top = values[ranked[..., :k]]
    shares = torch.nn.functional.one_hot(top, m).sum(-2).double() / k
    return torch.log(shares.clamp(min=1.0 / k) / target)


def _directions(
    measured: AuditMeasurement, prompt_embeds: torch.Tensor, k: int, settings
) -> list[PromptDirection]:
    ev = measured.result.evaluation
    image_embeds = measured.result.image_embeds
    if prompt_embeds.shape[0] * image_embeds.shape[0] > CHUNKED_RANKING_MIN_CELLS:  # as the evaluator ranks
        order = chunked_rank_indices(prompt_embeds, gallery_chunks(image_embeds, GALLERY_CHUNK_ROWS))
    else:
        order = rank_indices(prompt_embeds @ image_embeds.T)  # the audit's ranking, ties by gallery index
    n = order.shape[1]
    levels = []  # per attribute: its values, target, skews of the full ranking [Q, m] and first level [Q]
    for attribute in measured.attributes:
        values = torch.as_tensor(attribute.values)
        target = torch.as_tensor(ev.fairness[attribute.name].target, dtype=torch.float64)
        point = _level_skews(order, values, target, k)
        levels.append((values, target, point, point.argmax(dim=1)))
    parts = [[] for _ in levels]  # per attribute: the chosen level's skew [R', Q] per batch of resamples
    firsts = [[] for _ in levels]  # per attribute: whether that level still comes first [R', Q]
    if resampled(n, settings):
        # the audit's resamples, one batch of rankings at a time, each batch's counts drawn when it is ranked
        for ranked in resampled_ranking_batches(order.cpu(), settings.n_resamples, settings.seed):
            for (values, target, _, level), part, first in zip(levels, parts, firsts):
                skews = _level_skews(ranked, values, target, k)  # [R', Q, m]
                part.append(skews.gather(2, level.view(1, -1, 1).expand(skews.shape[0], -1, 1))[..., 0])
                first.append(skews.argmax(dim=2) == level)
            del ranked  # before the next batch is built
    out = []
    for i, attribute in enumerate(measured.attributes):
        _, target, point, level = levels[i]
        chosen_reps = torch.cat(parts[i]) if parts[i] else None
        same_first = torch.cat(firsts[i]).double().mean(0) if firsts[i] else None
        fairness = ev.fairness[attribute.name]
        shares = fairness.at_k[k].top_k_shares
        for q, prompt in enumerate(ev.prompts):
            a = int(level[q])
            out.append(
                PromptDirection(
                    prompt=prompt,
                    attribute=attribute.name,
                    k=k,
                    level=attribute.names[a],
                    share=float(shares[q][a]),
                    target=float(target[a]),
                    skew=estimate(
                        float(point[q, a]),
                        None if chosen_reps is None else chosen_reps[:, q],
                        settings,
                        n,
                        lower=0.0,
                    ),
                    stability=None if same_first is None else float(same_first[q]),
                )
            )
    return out


@torch.no_grad()
def bias_axis(measured: AuditMeasurement, model: Any, processor: Any) -> BiasAxis:
    """The bias axis of one model from its audit measured in memory (the gallery embedded once)."""
    result = measured.result
    ev = result.evaluation
    settings = ev.uncertainty
    k = report_k(ev.ks)
    directions = _directions(measured, embed_texts(model, processor, ev.prompts), k, settings)
    axis = BiasAxis(audit=result, k=k, directions=directions)
    if measured.labels is not None and ev.class_prompts:
        class_embeds = embed_texts(model, processor, ev.class_prompts)
        predicted = (result.image_embeds @ class_embeds.T).argmax(dim=1).numpy()
        correct = (predicted == measured.labels).astype(np.float64)
        axis.zero_shot_top1 = weighted_mean(correct, settings)
        for attribute in measured.attributes:
            groups = measured.labels * len(attribute.names) + attribute.values
            axis.worst_group_accuracy[attribute.name] = worst_group(
                correct, groups, settings, ev.worst_group_accuracy.get(attribute.name)
            )
    return axis
