"""The pretraining loss: the symmetric CLIP InfoNCE over in-batch negatives, trustvl's shared
:class:`~trustvl.training.core.ClipContrastiveLoss` with the logit scale capped at 100 (as CLIP caps it)."""

from __future__ import annotations

from trustvl.training.core import ClipContrastiveLoss

__all__ = ["MAX_LOGIT_SCALE", "pretraining_loss"]

#: CLIP's cap on the learned temperature's inverse.
MAX_LOGIT_SCALE = 100.0


def pretraining_loss() -> ClipContrastiveLoss:
    """The loss :func:`~trustvl.training.synthworld_clip.train.pretrain_synthworld_clip` trains with."""
    return ClipContrastiveLoss(max_logit_scale=MAX_LOGIT_SCALE)
