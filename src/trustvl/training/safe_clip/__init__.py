"""Safe-CLIP (arXiv 2311.16254; SPEC §4): removing a CLIP's sensitivity to unsafe concepts.

Safe-CLIP fine-tunes a LoRA adapter on both towers of a CLIP with quadruplets (safe text S, safe image
V, unsafe text U, unsafe image G) so that unsafe inputs embed where the *original* model embeds their safe
counterparts, while safe inputs keep their embeddings: retrieval and text-to-image generation built on
the model stop surfacing unsafe content. The loss has eight terms (:mod:`.loss`); the references
``Tref(S)`` and ``Vref(V)`` come from the frozen original model, computed once per dataset and cached
(:mod:`.reference`); training goes through the shared core with early stopping on the validation
``recall_sum`` (:mod:`.data`, :mod:`.train`); the settings are :class:`SafeCLIPConfig` (:mod:`.config`).

Command line: ``trustvl train safe-clip --dataset QUADRUPLETS --out RUN``; evaluation:
``trustvl eval safe-clip`` (:mod:`trustvl.evaluation.safe_clip`).
"""

from trustvl.training.safe_clip.config import SAFE_CLIP_LORA_TARGETS, SafeCLIPConfig
from trustvl.training.safe_clip.data import (
    QUADRUPLET_COLUMNS,
    QuadrupletCollator,
    QuadrupletDataset,
    ValidationRecall,
    check_quadruplet_columns,
)
from trustvl.training.safe_clip.loss import (
    DEFAULT_TERM_WEIGHTS,
    TERM_NAMES,
    SafeCLIPLoss,
    reference_embeddings_from_model,
    safe_clip_terms,
)
from trustvl.training.safe_clip.reference import ReferenceEmbeddings, compute_reference_embeddings
from trustvl.training.safe_clip.train import check_lora_targets, train_safe_clip

__all__ = [
    "DEFAULT_TERM_WEIGHTS",
    "QUADRUPLET_COLUMNS",
    "QuadrupletCollator",
    "QuadrupletDataset",
    "ReferenceEmbeddings",
    "SAFE_CLIP_LORA_TARGETS",
    "SafeCLIPConfig",
    "SafeCLIPLoss",
    "TERM_NAMES",
    "ValidationRecall",
    "check_lora_targets",
    "check_quadruplet_columns",
    "compute_reference_embeddings",
    "reference_embeddings_from_model",
    "safe_clip_terms",
    "train_safe_clip",
]
