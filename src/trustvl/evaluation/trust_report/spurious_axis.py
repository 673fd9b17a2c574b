"""The trust report's spurious-feature axis: RaVL discovery (SPEC §3, :mod:`trustvl.discovery.ravl`) on a
labelled dataset, the ranked region clusters with intervals, a thumbnail strip per top cluster and the
classes each cluster hurts.

The images are those of the bias axis's gallery (the first ``max_images``), whose whole-image embeddings
are reused for the zero-shot predictions; only the candidate regions (a ``grid_n`` × ``grid_n`` grid) are
embedded here. Interval of a cluster's score ``sum_l |gap_l|`` and of each class's gap (documented choice):
a bootstrap over the images (seeded), the clustering and each image's membership held fixed, so it says how
much the score depends on which images were drawn, given the clusters found.

Each cluster also carries its pull towards the class it favours (:mod:`.cluster_pull`: the share of other
classes' images predicted as that class, with the cluster minus without), on the same resamples. The top
cluster's **feature** (:mod:`.spurious_feature`: its regions and every region, in any cluster, that carries
its direction) carries the pull ``--compare`` reads.

Paired comparison (:func:`cluster_score`, :func:`~.cluster_pull.pull_towards`): the baseline's top cluster
fixes which images are "in" for the score, and the baseline's feature which images are "in" and which class
the pull counts; each model's zero-shot predictions on those images give its score and pull on the same
resamples, so "the fix removed the gap (the pull) on the regions the baseline leaned on" reads as a paired
verdict.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trustvl.discovery import (
    discover_spurious_regions,
    embed_regions,
    make_regions,
    plot_cluster_exemplars,
    zero_shot_scores,
)
from trustvl.evaluation.results import UncertaintySettings
from trustvl.evaluation.trust_report.cluster_pull import cluster_pull
from trustvl.evaluation.trust_report.estimates import estimate, replicates_of, weighted_mean
from trustvl.evaluation.trust_report.schema import ClassGap, ClusterFinding, SpuriousAxis
from trustvl.evaluation.trust_report.spurious_feature import spurious_feature
from trustvl.modeling.embedding import embed_texts

__all__ = ["class_gaps", "cluster_score", "spurious_axis"]


def class_gaps(
    member: np.ndarray, labels: np.ndarray, correct: np.ndarray, n_classes: int, weights: torch.Tensor
) -> torch.Tensor:
    """RaVL's gap per class (step 3) for one cluster, every row of ``weights`` ``[R, n]`` a weighting of the
    images (1 = the sample itself, resample counts = a bootstrap replicate): ``[R, n_classes]``."""
    onehot = torch.nn.functional.one_hot(torch.as_tensor(labels), n_classes).double()
    m = torch.as_tensor(member, dtype=torch.float64)
    hit = torch.as_tensor(correct, dtype=torch.float64)
    n_in = weights @ (onehot * m[:, None])
    n_all = weights @ onehot
    c_in = weights @ (onehot * (m * hit)[:, None])
    c_all = weights @ (onehot * hit[:, None])
    n_out, c_out = n_all - n_in, c_all - c_in
    both = (n_in > 0) & (n_out > 0)
    acc_in = c_in / n_in.clamp(min=1e-12)
    acc_out = c_out / n_out.clamp(min=1e-12)
    weight = 2 * torch.minimum(n_in, n_out) / (n_in + n_out).clamp(min=1e-12)
    return torch.where(both, weight * (acc_in - acc_out), torch.zeros_like(n_in))


def cluster_score(
    member: np.ndarray,
    labels: np.ndarray,
    correct: np.ndarray,
    n_classes: int,
    settings: UncertaintySettings | None,
):
    """The score ``sum_l |gap_l|`` of the images ``member`` under the predictions ``correct``, with its
    bootstrap interval; and the per-class gaps with theirs."""
    n = len(labels)
    point = class_gaps(member, labels, correct, n_classes, torch.ones(1, n, dtype=torch.float64))[0]
    reps = replicates_of(lambda weights: class_gaps(member, labels, correct, n_classes, weights), n, settings)
    score = estimate(
        float(point.abs().sum()), None if reps is None else reps.abs().sum(1), settings, n, lower=0.0
    )
    gaps = [
        estimate(float(point[c]), None if reps is None else reps[:, c], settings, n, lower=-1.0, upper=1.0)
        for c in range(n_classes)
    ]
    return score, gaps


@torch.no_grad()
def spurious_axis(
    model: Any,
    processor: Any,
    images: list[Any],
    image_embeds: torch.Tensor,
    labels: np.ndarray,
    class_names: list[str],
    class_prompts: list[str],
    *,
    dataset: str,
    label_column: str,
    out_dir: Path | None = None,
    file_prefix: str = "",
    grid_n: int = 2,
    n_top: int = 3,
    seed: int = 0,
    batch_size: int = 64,
    uncertainty: UncertaintySettings | None = None,
) -> SpuriousAxis:
    """RaVL discovery on ``images`` (labelled ``labels``), the top ``n_top`` clusters as findings, their
    thumbnail strips written under ``out_dir/spurious/`` (when given)."""
    text = embed_texts(model, processor, class_prompts).numpy()
    n_classes = len(class_names)
    preds = zero_shot_scores(image_embeds.numpy(), text).argmax(axis=1)
    correct = (preds == labels).astype(np.float64)
    regions = make_regions(images, "grid", n=grid_n)
    region_embeds = embed_regions(model, processor, images, regions, batch_size=batch_size, progress=False)
    region_image = np.asarray([r.image_index for r in regions], dtype=np.int64)
    result = discover_spurious_regions(
        region_embeds,
        region_image,
        labels,
        preds,
        zero_shot_scores(region_embeds, text),
        n_classes,
        class_names=list(class_names),
        seed=seed,
    )
    result.regions = regions
    findings = []
    for rank, cluster in enumerate(result.clusters[:n_top], start=1):
        member = np.zeros(len(images), dtype=bool)
        member[region_image[cluster.region_indices]] = True
        score, gaps = cluster_score(member, labels, correct, n_classes, uncertainty)
        pulled = cluster_pull(member, labels, preds, gaps, uncertainty, list(class_names))
        hurt = sorted((c for c in range(n_classes) if gaps[c].value < 0), key=lambda c: gaps[c].value)
        thumbnails = None
        if out_dir is not None:
            thumbnails = f"spurious/{file_prefix}cluster_{rank}.png"
            plot_cluster_exemplars(
                dataclasses.replace(result, clusters=[cluster]),
                images,
                Path(out_dir) / thumbnails,
                n_clusters=1,
                n_per_cluster=10,
                thumb_size=48,
            )
        finding = ClusterFinding(
            rank=rank,
            cluster_id=int(cluster.cluster_id),
            score=score,
            influence=float(cluster.influence),
            size=int(cluster.size),
            n_images_in=int(member.sum()),
            classes_hurt=[ClassGap(class_names[c], gaps[c]) for c in hurt],
            thumbnails=thumbnails,
            favoured_class=None if pulled.favoured is None else class_names[pulled.favoured],
            pull=pulled.pull,
            pull_note=pulled.reason,
            member_images=member,
            region_indices=np.asarray(cluster.region_indices),
        )
        findings.append(finding)
    feature = None
    if result.clusters:
        top = result.clusters[0]
        feature = spurious_feature(
            region_embeds,
            region_image,
            top.cluster_id,
            np.asarray(top.region_indices),
            labels,
            preds,
            list(class_names),
            uncertainty,
        )
    axis = SpuriousAxis(
        dataset=dataset,
        label_column=label_column,
        n_images=len(images),
        n_regions=len(regions),
        n_clusters=int(result.k),
        image_accuracy=weighted_mean(correct, uncertainty),
        message=result.message,
        clusters=findings,
        class_names=list(class_names),
        feature=feature,
        labels=labels,
        correct=correct,
        predictions=preds,
        regions=regions,
    )
    return axis
