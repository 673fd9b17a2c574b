"""trustvl.training: the single training path shared by every trustvl method.

:func:`train` runs a :class:`transformers.Trainer` (:class:`TrustVLTrainer`) with a pluggable loss function
(:data:`LossFn`) and collator, configured by a :class:`TrustVLTrainingArguments` (each method's config
extends it); :mod:`trustvl.training.losses` holds the shared loss terms and
:mod:`trustvl.training.collators` the generic image–text collator.
"""

from trustvl.training.arguments import TrustVLTrainingArguments
from trustvl.training.collators import ImageTextCollator
from trustvl.training.core import (
    ClipContrastiveLoss,
    LossFn,
    MetricFn,
    TrainResult,
    TrustVLEarlyStopping,
    TrustVLTrainer,
    early_stopping,
    model_inputs,
    train,
    unwrap_model,
)
from trustvl.training.losses import (
    clip_contrastive_loss,
    cosine_distance,
    gather_with_grad,
    group_mean_cohesion_loss,
    multi_positive_info_nce,
)

__all__ = [
    "ClipContrastiveLoss",
    "ImageTextCollator",
    "LossFn",
    "MetricFn",
    "TrainResult",
    "TrustVLEarlyStopping",
    "TrustVLTrainer",
    "TrustVLTrainingArguments",
    "clip_contrastive_loss",
    "cosine_distance",
    "early_stopping",
    "gather_with_grad",
    "group_mean_cohesion_loss",
    "model_inputs",
    "multi_positive_info_nce",
    "train",
    "unwrap_model",
]
