"""The outcome classifier's training run, :func:`train_outcome_classifier`: build a fresh multi-head
``ResNetForImageClassification``, then train it with :class:`~.loss.MultiHeadLoss` on renders and VAE
reconstructions through :func:`trustvl.training.core.train`. The SynthWorld SD run calls it as its classifier
stage (:mod:`trustvl.training.synthworld_sd`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from trustvl.modeling.outcome_classifier import build_outcome_classifier
from trustvl.training.arguments import TrustVLTrainingArguments
from trustvl.training.core import TrainResult, train
from trustvl.training.outcome_classifier.data import LabelledImages
from trustvl.training.outcome_classifier.loss import MultiHeadLoss

__all__ = ["train_outcome_classifier"]


def train_outcome_classifier(
    images: torch.Tensor,
    targets: torch.Tensor,
    heads: dict[str, Sequence[str]],
    args: TrustVLTrainingArguments,
    *,
    recons: torch.Tensor | None,
    recon_prob: float,
    image_size: int,
    hidden_sizes: Sequence[int],
    callbacks: Sequence[Any] | None = None,
    resume: bool = False,
) -> tuple[torch.nn.Module, Any, TrainResult]:
    """Train a new outcome classifier on uint8 ``images`` with ``[N, n_heads]`` ``targets``; a share
    ``recon_prob`` of the rows shows ``recons`` (the VAE's reconstructions) instead. The weights are drawn
    after seeding with ``args.seed``, which also seeds the choice of reconstructed rows. Returns the trained
    model, its image processor and the core's :class:`~trustvl.training.core.TrainResult`."""
    torch.manual_seed(args.seed)
    classifier, processor = build_outcome_classifier(heads, image_size=image_size, hidden_sizes=hidden_sizes)
    dataset = LabelledImages(images, targets, recons, recon_prob, seed=args.seed, size=image_size)
    result = train(classifier, dataset, MultiHeadLoss(heads), args, callbacks=callbacks, resume=resume)
    return classifier, processor, result
