"""Train the SynthWorld outcome classifier (a multi-head ``ResNetForImageClassification``).

The classifier reads occupation, every appearance attribute and the unsafe element (none / gun / knife /
blood / syringe) of a SynthWorld image. It trains through trustvl's shared core with a per-head softmax
cross-entropy (:func:`~trustvl.modeling.outcome_classifier.multi_head_cross_entropy`) on the logits of
the model's own forward. Its job is judging *generated* images, which come out of a VAE decoder: so a
share of the training images (``recon_prob``) are the VAE's reconstructions of the renders, teaching the
classifier to read slightly blurred scenes too. Accuracy is measured on held-out renders of another
split.

Files: :mod:`.config` (:func:`synthworld_heads`, what the classifier predicts), :mod:`.data` (labels, pixel
scaling, :class:`LabelledImages`), :mod:`.loss` (:class:`MultiHeadLoss`), :mod:`.train`
(:func:`train_outcome_classifier`, the classifier stage of ``trustvl train synthworld-sd``) and
:mod:`.accuracy` (:func:`head_accuracy` on held-out images).
"""

from trustvl.training.outcome_classifier.accuracy import head_accuracy
from trustvl.training.outcome_classifier.config import synthworld_heads
from trustvl.training.outcome_classifier.data import LabelledImages, scene_targets, uint8_to_unit
from trustvl.training.outcome_classifier.loss import MultiHeadLoss
from trustvl.training.outcome_classifier.train import train_outcome_classifier

__all__ = [
    "LabelledImages",
    "MultiHeadLoss",
    "head_accuracy",
    "scene_targets",
    "synthworld_heads",
    "train_outcome_classifier",
    "uint8_to_unit",
]
