"""trustvl's one evaluator: zero-shot, per-group / worst-group accuracy, retrieval fairness and Recall@K.

Every job (audit, α sweep, SynthWorld evaluation, demo) embeds its gallery once and hands the embeddings
here. The prompts rank the gallery (score = cosine similarity, ``[n_prompts, n_images]``); for each
protected attribute the rankings are scored with MaxSkew@k, MinSkew@k and NDKL against a target
(``"uniform"``: equal opportunity; ``"gallery"``: the gallery's own proportions), all with
:mod:`trustvl.metrics` (SPEC §1). With class labels the class prompts give zero-shot top-1, per-class
accuracy and worst-group accuracy (groups = class × attribute value); with captions, Recall@K between
image ``i`` and caption ``i`` in both directions. Results are :class:`~trustvl.evaluation.results.EvaluationResult`.

Uncertainty (SPEC §1, on by default): every fairness mean gets a gallery-bootstrap interval centred on it
(:func:`trustvl.metrics.bootstrap_fairness` replicates, :func:`trustvl.metrics.centred_interval`: the mean
± 1.96·SE truncated to the metric's range, flagged ``bootstrap_biased`` near the sampling floor;
``UncertaintySettings``: 200 resamples, seed 0, 95 %) and its
sampling floor (:func:`trustvl.metrics.sampling_floor`, "class" = the zero-shot class labels when given,
else the whole gallery); the per-resample means are kept so that two results on the same gallery compare
paired. ``uncertainty=None`` skips all of it (point values are identical either way).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.dataset_columns import AttributeColumn
from trustvl.evaluation.results import (
    AttributeFairness,
    EvaluationResult,
    RecallResult,
    SkewAtK,
    UncertaintySettings,
)
from trustvl.metrics import (
    FairnessReplicates,
    GalleryChunks,
    bootstrap_fairness,
    centred_interval,
    chunked_rank_indices,
    gallery_chunks,
    gallery_target,
    max_skew,
    min_skew,
    ndkl,
    rank_indices,
    rank_labels,
    recall_at_k,
    sampling_floor,
    uniform_target,
    worst_group_accuracy,
    zero_shot_accuracy,
)

__all__ = [
    "TARGETS",
    "evaluate_embeddings",
    "evaluate_model",
    "fairness_by_attribute",
    "recall_between",
]

TARGETS = ("uniform", "gallery")

# Above this many score cells (n_prompts x n_images) the prompts rank the gallery chunk by chunk
# (metrics/chunked_ranking.py: same ranking, same metrics) instead of through one score matrix: 2**28
# float32 cells are 1 GiB. The demo and the tests' galleries stay far below it, so their path is unchanged.
CHUNKED_RANKING_MIN_CELLS = 2**28
# gallery rows scored at once on the chunked path
GALLERY_CHUNK_ROWS = 65_536


def _target(kind: str, attribute: AttributeColumn) -> torch.Tensor:
    m = len(attribute.names)
    if kind == "uniform":
        return uniform_target(m)
    if kind == "gallery":
        return gallery_target(torch.as_tensor(attribute.values), m)
    raise TrustVLInputError(f"target={kind!r} is not supported; expected one of {list(TARGETS)}")


def _add_uncertainty(
    fairness: AttributeFairness,
    boot: FairnessReplicates,
    floor: FairnessReplicates,
    level: float,
) -> None:
    fairness.ndkl_interval = centred_interval(fairness.ndkl, boot.ndkl, level, lower=0.0)
    fairness.ndkl_floor = float(floor.ndkl.mean())
    fairness.ndkl_replicates = boot.ndkl.tolist()
    for k, s in fairness.at_k.items():
        s.max_skew_interval = centred_interval(s.max_skew, boot.max_skew[k], level, lower=0.0)
        # MinSkew <= 0, except when k < m and the 1/k floor of zero counts lifts every value above its target
        s.min_skew_interval = centred_interval(
            s.min_skew, boot.min_skew[k], level, upper=max(0.0, s.min_skew)
        )
        s.max_skew_floor = float(floor.max_skew[k].mean())
        s.min_skew_floor = float(floor.min_skew[k].mean())
        s.max_skew_replicates = boot.max_skew[k].tolist()
        s.min_skew_replicates = boot.min_skew[k].tolist()


def _floor_shares(
    order: torch.Tensor, classes: torch.Tensor, values: torch.Tensor, m: int, k: int
) -> list[float]:
    """Expected top-``k`` share of each value when every class's images are shuffled among its places:
    the mean over the top ``k`` places of the value's share within the class at that place (exact)."""
    n_classes = int(classes.max()) + 1
    joint = torch.zeros(n_classes, m, dtype=torch.float64)
    joint.index_put_((classes, values.long()), torch.ones(len(values), dtype=torch.float64), accumulate=True)
    within = joint / joint.sum(1, keepdim=True).clamp(min=1)
    return within[classes[order[:, :k]]].mean(dim=(0, 1)).tolist()


def fairness_by_attribute(
    scores: torch.Tensor | None,
    attributes: Sequence[AttributeColumn],
    ks: Sequence[int],
    target: str = "uniform",
    *,
    uncertainty: UncertaintySettings | None = None,
    classes: np.ndarray | None = None,
    order: torch.Tensor | None = None,
) -> dict[str, AttributeFairness]:
    """MaxSkew@k / MinSkew@k (each ``k``) and NDKL of the rankings ``scores [n_prompts, n_images]`` induce.

    The gallery is ranked once for all attributes (score descending, ties by gallery index); NDKL uses the
    full ranking. With ``uncertainty`` the intervals, floors and replicates are filled (the floor's classes
    are ``classes``, ``[n_images]`` ids, or the whole gallery when ``None``). ``order`` is that full ranking
    when the caller already has it (``[n_prompts, n_images]`` int64, e.g. from
    :func:`~trustvl.metrics.chunked_rank_indices`); then ``scores`` is not needed (``None``).
    """
    if not attributes:
        raise TrustVLInputError("attributes is empty; expected at least one attribute column")
    if scores is None and order is None:
        raise TrustVLInputError("neither scores nor order was given; expected one of them")
    n = order.shape[1] if order is not None else scores.shape[1]
    for attribute in attributes:
        bad = np.flatnonzero((attribute.values < 0) | (attribute.values >= len(attribute.names)))
        if bad.size:
            raise TrustVLInputError(
                f"attribute {attribute.name!r} has value {attribute.values[bad[0]]} at image {bad[0]};"
                f" expected ids 0..{len(attribute.names) - 1} (one per value name)"
            )
    stacked = np.stack([a.values for a in attributes], axis=1)
    small = int(stacked.max(initial=0)) < 256 and int(stacked.min(initial=0)) >= 0
    gallery_labels = torch.as_tensor(stacked.astype(np.uint8 if small else np.int64))
    if order is None:
        ranked_all = rank_labels(scores, gallery_labels)
    else:  # the same gather rank_labels does on its own ranking
        flat = gallery_labels.index_select(0, order.reshape(-1).to(gallery_labels.device))
        ranked_all = flat.view(*order.shape, gallery_labels.shape[1])
    out: dict[str, AttributeFairness] = {}
    for j, attribute in enumerate(attributes):
        m = len(attribute.names)
        q = _target(target, attribute)
        ranked = ranked_all[..., j]  # uint8 when the ids fit: a 1,000 x 100,000 ranking stays 100 MB
        at_k = {}
        for k in ks:
            mx, mn = max_skew(ranked, q, int(k)), min_skew(ranked, q, int(k))
            shares = torch.nn.functional.one_hot(ranked[:, : int(k)].long(), m).sum(1).double() / int(k)
            at_k[int(k)] = SkewAtK(
                k=int(k),
                max_skew=float(mx.mean()),
                min_skew=float(mn.mean()),
                max_skew_per_query=mx.tolist(),
                min_skew_per_query=mn.tolist(),
                top_k_shares=shares.tolist(),
            )
        nd = ndkl(ranked, q)
        out[attribute.name] = AttributeFairness(
            values=list(attribute.names),
            target=q.tolist(),
            gallery_share=(np.bincount(attribute.values, minlength=m) / n).tolist(),
            ndkl=float(nd.mean()),
            ndkl_per_query=nd.tolist(),
            at_k=at_k,
        )
    if uncertainty is not None:
        targets = [_target(target, a) for a in attributes]
        ks = [int(k) for k in ks]
        n_resamples, seed = uncertainty.n_resamples, uncertainty.seed
        if order is None:
            order = rank_indices(scores)  # the order rank_labels used, shared by the bootstrap and the floor
        boots = bootstrap_fairness(
            scores, gallery_labels, targets, ks, n_resamples=n_resamples, seed=seed, order=order
        )
        floors = sampling_floor(
            scores,
            gallery_labels,
            targets,
            ks,
            classes=classes,
            n_rankings=n_resamples,
            seed=seed,
            order=order,
        )
        class_ids = torch.zeros(n, dtype=torch.int64) if classes is None else torch.as_tensor(classes)
        class_ids = torch.unique(class_ids, return_inverse=True)[1]
        for j, (attribute, boot, floor) in enumerate(zip(attributes, boots, floors)):
            _add_uncertainty(out[attribute.name], boot, floor, uncertainty.level)
            for k in ks:
                out[attribute.name].at_k[k].floor_shares = _floor_shares(
                    order, class_ids, gallery_labels[:, j], len(attribute.names), k
                )
    return out


def recall_between(
    caption_embeds: torch.Tensor, image_embeds: torch.Tensor, recall_ks: Sequence[int]
) -> RecallResult:
    """Recall@K (each ``k`` <= the number of pairs) of caption ``i`` ↔ image ``i``, both directions."""
    m = caption_embeds.shape[0]
    sim = caption_embeds @ image_embeds[:m].T  # [n_texts, n_images]
    ks = [int(k) for k in recall_ks if k <= m]
    return RecallResult(
        n_pairs=int(m),
        text_to_image={k: float(recall_at_k(sim, k, direction="text_to_image")) for k in ks},
        image_to_text={k: float(recall_at_k(sim, k, direction="image_to_text")) for k in ks},
    )


def evaluate_embeddings(
    image_embeds: torch.Tensor | GalleryChunks,
    prompt_embeds: torch.Tensor,
    *,
    prompts: Sequence[str],
    attributes: Sequence[AttributeColumn],
    ks: Sequence[int],
    target: str = "uniform",
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    class_prompts: Sequence[str] | None = None,
    class_prompt_embeds: torch.Tensor | None = None,
    caption_embeds: torch.Tensor | None = None,
    recall_ks: Sequence[int] = (1, 5, 10),
    uncertainty: UncertaintySettings | None = UncertaintySettings(),
    ranking_device: str | torch.device | None = None,
) -> EvaluationResult:
    """Evaluate normalised embeddings (see the module docstring).

    Args:
        image_embeds: ``[n_images, d]`` gallery embeddings, or :class:`~trustvl.metrics.GalleryChunks` (a
            gallery read block by block, e.g. from the embedding cache's shards, never one tensor: always
            ranked on the chunked path).
        prompt_embeds: ``[n_prompts, d]`` embeddings of ``prompts``, the queries ranking the gallery.
        attributes: the protected attributes of the gallery.
        ks: MaxSkew/MinSkew cut-offs (each <= ``n_images``).
        target: ``"uniform"`` or ``"gallery"``.
        labels: ``[n_images]`` class ids; with ``class_names`` enables the accuracies.
        class_prompts, class_prompt_embeds: one prompt per class; default: the prompts are the class prompts.
        caption_embeds: ``[n_pairs, d]`` embeddings of the captions of the first ``n_pairs`` images (Recall@K).
        recall_ks: Recall@K cut-offs (those above ``n_pairs`` are skipped).
        uncertainty: bootstrap/floor settings (``floor_classes`` is set from ``labels``); ``None`` skips them.
        ranking_device: where the chunked path scores the gallery blocks (each moved there in turn, so the
            full gallery is never on it); ``None``: the prompt embeddings' device.
    """
    n = image_embeds.shape[0]
    if target not in TARGETS:
        raise TrustVLInputError(f"target={target!r} is not supported; expected one of {list(TARGETS)}")
    bad = [k for k in ks if k > n]
    if bad:
        raise TrustVLInputError(f"k={bad[0]} exceeds the gallery size {n}; expected 1 <= k <= {n}")
    order = None
    streamed = isinstance(image_embeds, GalleryChunks)
    device = torch.device(ranking_device) if ranking_device is not None else prompt_embeds.device

    def blocks() -> Iterable[torch.Tensor]:
        return image_embeds if streamed else gallery_chunks(image_embeds, GALLERY_CHUNK_ROWS)

    if streamed or prompt_embeds.shape[0] * n > CHUNKED_RANKING_MIN_CELLS:
        # never hold [n_prompts, n_images] scores: the exact full ranking (NDKL needs it) from sorted chunks
        scores = None
        order = chunked_rank_indices(prompt_embeds.to(device), blocks())
    else:
        scores = prompt_embeds @ image_embeds.T  # [n_prompts, n_images]
    if uncertainty is not None:
        floor_classes = "class labels" if labels is not None else "whole gallery"
        uncertainty = replace(uncertainty, floor_classes=floor_classes)
    result = EvaluationResult(
        n_images=int(n),
        prompts=list(prompts),
        ks=[int(k) for k in ks],
        target=target,
        fairness=fairness_by_attribute(
            scores,
            attributes,
            ks,
            target,
            uncertainty=uncertainty,
            classes=None if labels is None else np.asarray(labels, dtype=np.int64),
            order=order,
        ),
        uncertainty=uncertainty,
    )
    if labels is not None:
        if class_names is None:
            raise TrustVLInputError("labels were given without class_names; expected one name per class")
        if class_prompt_embeds is None:
            class_prompts, class_prompt_embeds, class_scores = list(prompts), prompt_embeds, scores
        else:
            class_scores = None
        if class_scores is None:  # one column per image, so scoring the gallery in chunks is the same
            queries = class_prompt_embeds.to(device)
            class_scores = torch.cat(
                [(queries @ c.to(device, queries.dtype).T).cpu() for c in blocks()], dim=1
            )
        if class_scores.shape[0] != len(class_names):
            raise TrustVLInputError(
                f"{class_scores.shape[0]} class prompts for {len(class_names)} classes; expected one per class"
            )
        labels = np.asarray(labels, dtype=np.int64)
        correct = class_scores.argmax(0).numpy() == labels
        result.class_names = list(class_names)
        result.class_prompts = list(class_prompts or [])
        result.zero_shot_top1 = float(zero_shot_accuracy(class_scores.T, torch.as_tensor(labels)))
        result.per_class_accuracy = {
            name: float(correct[labels == i].mean())
            for i, name in enumerate(class_names)
            if (labels == i).any()
        }
        result.worst_group_accuracy = {
            a.name: float(worst_group_accuracy(correct, labels, a.values)) for a in attributes
        }
    if caption_embeds is not None and caption_embeds.shape[0] > 0:
        head = image_embeds.head(min(caption_embeds.shape[0], n)) if streamed else image_embeds
        result.recall = recall_between(caption_embeds, head, recall_ks)
    return result


@torch.no_grad()
def evaluate_model(
    model: Any,
    processor: Any,
    image_embeds: torch.Tensor | GalleryChunks,
    *,
    prompts: Sequence[str],
    attributes: Sequence[AttributeColumn],
    ks: Sequence[int],
    target: str = "uniform",
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    class_prompts: Sequence[str] | None = None,
    captions: Sequence[str] | None = None,
    recall_ks: Sequence[int] = (1, 5, 10),
    uncertainty: UncertaintySettings | None = UncertaintySettings(),
    ranking_device: str | torch.device | None = None,
) -> EvaluationResult:
    """Embed the prompts (and the class prompts when they differ, and the captions) with ``model`` and
    :func:`evaluate_embeddings` the gallery ``image_embeds`` (embedded once by the caller)."""
    from trustvl.modeling.embedding import embed_texts

    was_training = model.training
    model.eval()
    try:
        prompt_embeds = embed_texts(model, processor, list(prompts))
        class_prompt_embeds = None
        if class_prompts is not None and list(class_prompts) != list(prompts):
            class_prompt_embeds = embed_texts(model, processor, list(class_prompts))
        caption_embeds = embed_texts(model, processor, list(captions)) if captions else None
        return evaluate_embeddings(
            image_embeds,
            prompt_embeds,
            prompts=prompts,
            attributes=attributes,
            ks=ks,
            target=target,
            labels=labels,
            class_names=class_names,
            class_prompts=class_prompts,
            class_prompt_embeds=class_prompt_embeds,
            caption_embeds=caption_embeds,
            recall_ks=recall_ks,
            uncertainty=uncertainty,
            ranking_device=ranking_device,
        )
    finally:
        model.train(was_training)
