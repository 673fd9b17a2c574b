"""Safe-CLIP's loss (arXiv 2311.16254; SPEC §4): eight terms that redirect unsafe inputs to safe embeddings.

Notation for a batch of ``B`` quadruplets: ``T``/``V`` are the towers being fine-tuned (the projected text
and image embeddings of the LoRA-adapted model), ``Tref``/``Vref`` the frozen **original** towers, applied
to safe inputs only (S: safe caption, V: safe image, U: unsafe caption, G: unsafe image). With
``d(a, b) = mean_i (1 - cos(a_i, b_i))`` and ``NCE(a, b)`` the symmetric InfoNCE of CLIP between paired rows
(in-batch negatives, cosine logits times a fixed scale of 100)::

    1  d(T(S), Tref(S))        0.1        5  NCE(T(S), Vref(V))      0.25
    2  d(T(U), Tref(S))        0.1        6  NCE(T(U), Vref(V))      0.25
    3  d(V(V), Vref(V))        0.1        7  NCE(Tref(S), V(V))      0.25
    4  d(V(G), Vref(V))        0.2        8  NCE(Tref(S), V(G))      0.5

    L = Σ_i w_i · term_i / Σ_i w_i                    (Σ w = 1.75 with the defaults)

**Weight convention (documented choice).** trustvl divides the weighted sum by the sum of the weights
(1.75), so ``L`` is a weighted *mean* of the terms. The public code additionally divides by 8, the number
of terms; that is a constant factor which Adam (the recipe's optimiser) almost entirely cancels, so
trustvl does not do it by default; ``divide_by_num_terms=True`` reproduces the public scale exactly.

**One forward.** The DDP rule of :mod:`trustvl.training.core` asks for every gradient-carrying
embedding to come from the wrapped model's forward: S and U are concatenated into one text batch and V
and G into one image batch of ``model(input_ids, attention_mask, pixel_values)`` (a CLIP forward accepts
different text and image batch sizes; here both are ``2B``).

**References.** ``Tref(S)`` and ``Vref(V)`` arrive in the batch (``ref_text`` and ``ref_image``,
``[B, D]``), computed once per dataset by the frozen original model
(:mod:`trustvl.training.safe_clip.reference`), never by the adapted module, so they cannot drift with the
adapter. :func:`reference_embeddings_from_model` computes the same tensors by forward passes of a frozen
model, the public recipe's way (used by the speed benchmark).

**Several processes (``torchrun`` / ``accelerate launch``).** Terms 5-8 take their negatives from the
batch; by default (``gather_across_devices``) every process gathers the six ``[B, D]`` tensors of every
process (:func:`~trustvl.training.losses.gather_with_grad`) and computes the eight terms on the global
batch, so N processes with ``per_device_train_batch_size = B / N`` train the 1-process objective of batch
``B`` with its exact gradient; without it each process's negatives are its own batch's.

Every term is returned in the ``extras`` dict (``term1_text_safe`` … ``term8_unsafe_image_nce``), so the
training core logs each one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from trustvl.errors import TrustVLInputError
from trustvl.training.core import model_inputs
from trustvl.training.losses import clip_contrastive_loss, cosine_distance, gather_with_grad

__all__ = [
    "DEFAULT_TERM_WEIGHTS",
    "TERM_NAMES",
    "SafeCLIPLoss",
    "reference_embeddings_from_model",
    "safe_clip_terms",
]

#: Names of the eight terms, in SPEC §4's order (the keys of the logged extras).
TERM_NAMES: tuple[str, ...] = (
    "term1_text_safe",  # 1 - cos(T(S), Tref(S))
    "term2_text_unsafe",  # 1 - cos(T(U), Tref(S))
    "term3_image_safe",  # 1 - cos(V(V), Vref(V))
    "term4_image_unsafe",  # 1 - cos(V(G), Vref(V))
    "term5_safe_text_nce",  # NCE(T(S), Vref(V))
    "term6_unsafe_text_nce",  # NCE(T(U), Vref(V))
    "term7_safe_image_nce",  # NCE(Tref(S), V(V))
    "term8_unsafe_image_nce",  # NCE(Tref(S), V(G))
)
#: SPEC §4's weights, in the order of :data:`TERM_NAMES` (sum 1.75).
DEFAULT_TERM_WEIGHTS: tuple[float, ...] = (0.1, 0.1, 0.1, 0.2, 0.25, 0.25, 0.25, 0.5)


def safe_clip_terms(
    text_safe: torch.Tensor,
    text_unsafe: torch.Tensor,
    image_safe: torch.Tensor,
    image_unsafe: torch.Tensor,
    ref_text: torch.Tensor,
    ref_image: torch.Tensor,
    logit_scale: float = 100.0,
) -> dict[str, torch.Tensor]:
    """The eight terms (float32 scalars, keyed by :data:`TERM_NAMES`) from ``[B, D]`` embeddings.

    ``text_safe`` = T(S), ``text_unsafe`` = T(U), ``image_safe`` = V(V), ``image_unsafe`` = V(G),
    ``ref_text`` = Tref(S), ``ref_image`` = Vref(V). Nothing needs to be normalised beforehand.
    """
    shapes = {t.shape for t in (text_safe, text_unsafe, image_safe, image_unsafe, ref_text, ref_image)}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise TrustVLInputError(
            f"Safe-CLIP embeddings have shapes {sorted(tuple(s) for s in shapes)}; expected six [B, D] tensors"
        )
    # float32 maths whatever the model's dtype (bf16 embeddings lose too much in the softmax)
    text_safe, text_unsafe, image_safe, image_unsafe, ref_text, ref_image = (
        t.float() for t in (text_safe, text_unsafe, image_safe, image_unsafe, ref_text, ref_image)
    )
    terms = (
        cosine_distance(text_safe, ref_text),
        cosine_distance(text_unsafe, ref_text),
        cosine_distance(image_safe, ref_image),
        cosine_distance(image_unsafe, ref_image),
        clip_contrastive_loss(ref_image, text_safe, logit_scale),
        clip_contrastive_loss(ref_image, text_unsafe, logit_scale),
        clip_contrastive_loss(image_safe, ref_text, logit_scale),
        clip_contrastive_loss(image_unsafe, ref_text, logit_scale),
    )
    return dict(zip(TERM_NAMES, terms))


def _features(out: Any) -> torch.Tensor:
    return out.pooler_output if hasattr(out, "pooler_output") else out


@torch.no_grad()
def reference_embeddings_from_model(
    reference: nn.Module, batch: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Tref(S), Vref(V))`` of a batch by forward passes of a frozen ``reference`` CLIP (the public
    recipe recomputes them every step this way; trustvl caches them, :mod:`.reference`)."""
    n = batch["pixel_values"].shape[0] // 2
    text = _features(
        reference.get_text_features(
            input_ids=batch["input_ids"][:n], attention_mask=batch["attention_mask"][:n]
        )
    )
    image = _features(reference.get_image_features(pixel_values=batch["pixel_values"][:n]))
    return text, image


@dataclass
class SafeCLIPLoss:
    """Safe-CLIP's eight-term loss as a :data:`~trustvl.training.core.LossFn` (see the module docstring).

    Batches (from :class:`~trustvl.training.safe_clip.data.QuadrupletCollator`) hold ``input_ids`` /
    ``attention_mask`` ``[2B, L]`` (S rows then U rows), ``pixel_values`` ``[2B, 3, H, W]`` (V then G), and
    the cached references ``ref_text`` / ``ref_image`` ``[B, D]``.

    Args:
        weights: the eight weights in the order of :data:`TERM_NAMES` (SPEC §4's by default).
        logit_scale: the fixed InfoNCE logit scale (100, not the model's learned one).
        divide_by_num_terms: also divide by 8, as the public code does (see the module docstring).
        reference: a frozen reference model; when given, ``Tref(S)``/``Vref(V)`` are recomputed from it
            every step instead of read from the batch (the public recipe; slower, same value).
        gather_across_devices: under several processes, compute the terms on every process's batch
            together (the global batch; see the module docstring); one process is unaffected.
    """

    weights: tuple[float, ...] = DEFAULT_TERM_WEIGHTS
    logit_scale: float = 100.0
    divide_by_num_terms: bool = False
    reference: nn.Module | None = field(default=None, repr=False)
    gather_across_devices: bool = True

    def __post_init__(self) -> None:
        self.weights = tuple(float(w) for w in self.weights)
        if len(self.weights) != len(TERM_NAMES) or any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise TrustVLInputError(
                f"Safe-CLIP term weights {self.weights!r}; expected {len(TERM_NAMES)} non-negative numbers,"
                " not all zero"
            )
        if not self.logit_scale > 0:
            raise TrustVLInputError(f"logit_scale={self.logit_scale!r}; expected a positive number")

    @property
    def normaliser(self) -> float:
        """What the weighted sum is divided by: Σ w (1.75 by default), times 8 with ``divide_by_num_terms``."""
        return sum(self.weights) * (len(TERM_NAMES) if self.divide_by_num_terms else 1)

    def combine(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """``Σ w_i · term_i / normaliser``."""
        return sum(w * terms[name] for w, name in zip(self.weights, TERM_NAMES)) / self.normaliser

    def __call__(
        self, model: nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        n_text, n_image = batch["input_ids"].shape[0], batch["pixel_values"].shape[0]
        if n_text != n_image or n_text % 2:
            raise TrustVLInputError(
                f"a Safe-CLIP batch has {n_text} texts and {n_image} images; expected 2B of each (S then U, V then G)"
            )
        if self.reference is not None:
            ref_text, ref_image = reference_embeddings_from_model(self.reference, batch)
        else:
            ref_text, ref_image = batch["ref_text"], batch["ref_image"]
        out = model(**model_inputs(batch))
        b = n_text // 2
        text, image = out.text_embeds, out.image_embeds
        parts = (text[:b], text[b:], image[:b], image[b:], ref_text, ref_image)
        if self.gather_across_devices:  # unchanged outside torch.distributed or with one process
            parts = tuple(gather_with_grad(t) for t in parts)
        terms = safe_clip_terms(*parts, self.logit_scale)
        loss = self.combine(terms)
        return loss, {name: value.detach() for name, value in terms.items()}
