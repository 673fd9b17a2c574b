"""The CF_α loss :class:`CFAlphaLoss` (arXiv 2406.11331; SPEC §2), a :data:`~trustvl.training.core.LossFn`.

Loss, per batch of ``B`` counterfactual sets with ``v`` variants each (images ``x_{b,j}``, one
context-only caption ``t_b`` per set)::

    L = β1 · L_CLIP + β0 · L_cf + β_s · L_score

* ``L_CLIP``: symmetric InfoNCE between the ``B·v`` images and the ``B`` captions, with logit scale
  ``exp(logit_scale)`` (clamped at 100), in the multi-positive form ``-log Σ_pos exp / Σ_all exp``
  (:func:`~trustvl.training.losses.multi_positive_info_nce`): an image's positives are its set's caption
  and every identical caption of another set in the batch (counterfactual captions are templated, so two
  chefs in a kitchen share one; treating them as negatives would teach the model to tell same-context
  scenes apart); a caption's positives are all variants of those sets. With distinct captions and one
  variant per set this is exactly CLIP's loss. Captions never name appearance, so context alone must
  explain the match. ``clip_positives="out"`` (off by default; issue 26) averages each positive's log
  likelihood instead. In the default form the caption→image term weights each variant by its share of
  the caption's match, so the variant that already matches best keeps much of the pull; the ``"out"`` form
  pulls every variant equally, so the weakest match gains the most. The hypothesis that the default form
  keeps an appearance showing more of the context (SynthWorld's broad body type, more attire) scored higher
  was refuted on SynthWorld: the ``"out"`` form changed nothing measurable (docs/results.md, "CF_α").
* ``L_cf`` (trustvl's definition; the paper leaves it open): **cohesion** of each set's variants,
  the mean squared distance of their L2-normalised image embeddings to the set mean
  (:func:`~trustvl.training.losses.group_mean_cohesion_loss`). It is zero exactly when every variant of
  a base image embeds identically, i.e. when the image tower ignores the person's appearance. The
  ``cf_loss="info_nce"`` alternative treats same-set variants as positives among all batch images.
* ``L_score`` (weight ``β_s = beta_score``, default 20, 0 turns it off; trustvl's addition): **score cohesion**, the
  within-set variance of each image's retrieval logits against every caption of the batch
  (``scale·cos(x_{b,j}, t_c)``, averaged over captions ``c``). Retrieval skew (MaxSkew, NDKL) comes from
  scores that depend on appearance; embedding cohesion removes that dependence only where it is fully
  reached, while this term targets the scores themselves, so it also holds along the α path.
* ``L_effect`` (weight ``β_e = beta_effect``, default 0: off; trustvl's addition, issue 26): the **attribute
  effects** on the scores. It needs each variant's attribute levels (``variant_attributes`` ``[B·v, A]``, from
  the builder's attribute columns: ``CFAlphaConfig.effect_attributes``). With ``d_{i,c}`` image ``i``'s
  logit against caption ``c`` minus its set's mean (the base image and context cancel), the effect of level
  ``ℓ`` of attribute ``a`` is ``E_{a,ℓ,c} = mean_{i : a_i = ℓ} d_{i,c}`` over the batch, and
  ``L_effect = mean_a mean_{ℓ,c} sqrt(E_{a,ℓ,c}² + ε)``. Why: a top-k cut turns an attribute's *mean* score
  shift of 0.1–0.2 within-occupation standard deviations into a MaxSkew@100 rise of 0.05–0.1; the variance
  terms above are quadratic, so they remove the planted attribute's large effect first and leave the small
  effects of the others, which the planted one had masked in the base ranking. This term pushes every
  attribute's mean effect towards zero at the same rate, however small it is. ``effect_own_caption``
  measures ``E`` on each image's own caption only (the score a retrieval for its context ranks it by).
  ``effect_momentum = m`` (off by default; issue 26, session 18) steers each step by a running mean of every
  level's effect over the steps (:class:`RunningEffects`) instead of the batch's own estimate, which on a
  batch of 16 sets is mostly noise at the size that matters: the gradient then removes the effect the
  training stream shows on average rather than fitting each batch's noise. Refuted on SynthWorld
  (docs/results.md, "CF_α", round 8): the lagging mean pushes the same way for many steps, so the effects
  overshoot; they ended larger than without it, on the training sets and off them, and at β_e = 30 zero-shot
  fell by up to 6 points.

**α path (optional, ``alpha_range=(lo, hi)``).** Weight-space interpolation of a LoRA delta trained at
α = 1 only is not an interpolation of fairness: on SynthWorld the skews of attributes that were not
targeted rise above the base model's at α = 0.25–0.5 before falling at α = 1 (docs/results.md, "CF_α").
With ``alpha_range`` each step is computed at an α drawn uniformly from ``[lo, hi]``, so the delta is
trained along the path, not only at its end. The draw is a function of ``(seed, optimiser step)`` only
(the training core reports the step through ``set_step``), so every process draws the same α and a
resumed run continues the same sequence. The loss at the drawn α is the same ``β1·L_CLIP + β0·L_cf``,
unless ``cf_weight_by_alpha``: then it is ``β1·L_CLIP + α·β0·L_cf``, so the model at each α is trained on
the objective whose fairness weight grows with α (the α-weighted path: α walks along the accuracy/fairness
trade-off instead of asking every α for full invariance). ``alpha_endpoint_prob`` trains a share of the
steps at ``hi`` exactly (draws stay a function of seed and step). ``alpha_path_power = k`` draws
``α = lo + (hi − lo)·u^k`` (default 1: uniform; k = 2 puts half the path steps in the lowest quarter, where
the planted attribute's effect is already gone but the others' are not: docs/results.md, "CF_α").

**Linear α path (``alpha_path_target="linear"``; trustvl's addition, issue 26).** The default path target
asks every drawn α for the end point's invariance. Its variance-type terms remove the largest appearance
effect first, so half-way along the path the planted attribute no longer masks the small ones and their skew
rises above the base's. With ``"linear"`` the model at α is instead asked to keep ``(1 − α)`` of the base
model's own appearance dependence: ``L_cf`` and ``L_score`` measure each variant's offset from its set's
mean (embedding, resp. logits against every caption) against ``(1 − α)`` times the same offset of the model
at α = 0 (the frozen base: the same forward with the delta off, no gradient), i.e.
``‖(z_i − μ) − (1 − α)(z⁰_i − μ⁰)‖²`` instead of ``‖z_i − μ‖²``. At α = 1 both terms are the invariance
terms above. Every attribute's effect then shrinks by the same factor along α, so their order, and hence
which attribute masks which in a top-k cut, is kept, and no attribute's skew has a reason to rise on the
way. The base forward costs one extra no-gradient forward per step. ``L_effect`` keeps its zero target
unless ``effect_path_target``: then it asks each level effect for the same share of the base's effect in the
batch (off by default; issue 26, session 17: with the zero target a strong ``L_effect`` removed the small
attributes' effects already at α = 0.25, where the planted one still masks part of the ranking; with the
path's target the benchmark's sweep was monotone for one training seed of three).
Measured on SynthWorld-Web (docs/results.md, "CF_α"): α ≤ 0.75 stays close to the base in every attribute,
but the rise of the small attributes' skew moves to the last step, α = 1; off by default.
``alpha_path_keep_power = q`` (default 1) keeps ``(1 − α)^q`` of the base's offsets instead of ``(1 − α)``:
with q > 1 the planted attribute's effect falls faster early on (q = 3 keeps 42 / 12.5 / 1.6 % at α = 0.25 /
0.5 / 0.75), so it stops masking the small attributes over several steps of the sweep instead of at the last
one, where the linear path concentrates the whole rise of their skew (issue 26). At α = 1 the target is zero
for every q.

**Several processes (``torchrun`` / ``accelerate launch``).** Every term is over the batch (``L_CLIP``'s
negatives, ``L_score``'s captions), so by default (``gather_across_devices``) each process gathers every
process's embeddings, set indices and caption keys (:func:`~trustvl.training.losses.gather_with_grad`) and
computes the loss of the global batch: N processes with ``per_device_train_batch_size = B / N`` train the
1-process objective of batch ``B`` with its exact gradient. Without it each process's batch is its own,
smaller, set of negatives (a different objective; ``benchmarks/bench_multi_gpu.py`` measures the gap).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from trustvl.errors import TrustVLInputError
from trustvl.training.core import model_inputs, unwrap_model
from trustvl.training.losses import (
    gather_with_grad,
    group_mean_cohesion_loss,
    group_offsets,
    multi_positive_info_nce,
    several_processes,
)

__all__ = ["ALPHA_PATH_TARGETS", "CFAlphaLoss", "RunningEffects"]

#: What the CF_α terms ask of the model at a drawn α (``CFAlphaLoss.alpha_path_target``).
ALPHA_PATH_TARGETS = ("invariance", "linear")


@dataclass
class CFAlphaLoss:
    """``L = β1·L_CLIP + β0·L_cf + β_s·L_score`` as a :data:`~trustvl.training.core.LossFn` (see module docstring).

    Batches hold ``pixel_values`` ``[B·v, 3, H, W]``, ``input_ids``/``attention_mask`` ``[B, L]``,
    ``set_index`` ``[B·v]`` (the caption/set of each image) and optionally ``caption_index`` ``[B]``
    (equal for sets whose captions are identical; such pairs count as positives, not negatives) and
    ``caption_key`` ``[B]`` (the same grouping as a stable hash, comparable across processes; needed when
    the batch is gathered from several processes).

    Build it from a run's settings with :meth:`from_config`; the :class:`CFAlphaConfig` fields of the same
    names take their defaults from here (the CF_α recipe: β1 = 1, β0 = 30).

    Args:
        beta_clip: β1, weight of the CLIP loss.
        clip_positives: ``"in"`` (positives summed inside the log, the default) or ``"out"`` (each
            positive's log likelihood averaged) in ``L_CLIP``'s multi-positive InfoNCE (module docstring).
        beta_cf: β0, weight of the counterfactual cohesion loss.
        cf_loss: ``"cohesion"`` (squared distance to the set mean) or ``"info_nce"``.
        cf_temperature: temperature of the ``"info_nce"`` variant.
        beta_score: β_s, weight of the score-cohesion term ``L_score`` (0: off; the default 20 is the
            recipe measured best on SynthWorld: with it every attribute's MaxSkew@100 fell at α = 1, body type's
            included, for less zero-shot accuracy than without; docs/results.md, "CF_α").
        max_logit_scale: clamp of the learned CLIP logit scale.
        beta_effect: β_e, weight of the attribute-effect term ``L_effect`` (0: off; needs the batch's
            ``variant_attributes``).
        effect_own_caption: ``L_effect`` on each image's own caption's logit only (default: every caption).
        effect_path_target: on the linear α path, ``L_effect`` asks each effect to be the share kept of the
            base's (``(1 − α)^q`` times the frozen base's effect in the batch) instead of zero at every α.
        effect_momentum: ``m`` in ``[0, 1)``; with ``m > 0`` (needs ``effect_own_caption``) ``L_effect``'s
            gradient follows a running mean of each level's effect over the steps (:class:`RunningEffects`)
            instead of the batch's own noisy estimate (module docstring).
        alpha_range: ``(lo, hi)`` with ``0 <= lo <= hi <= 1``: train each step at α ~ U(lo, hi) (see the
            module docstring); ``None`` trains at the model's α (1).
        cf_weight_by_alpha: with ``alpha_range``, weight ``L_cf`` by the drawn α (``α·β0``).
        alpha_endpoint_prob: with ``alpha_range``, the probability that a step trains at ``hi`` exactly.
        alpha_path_power: with ``alpha_range``, draw ``α = lo + (hi − lo)·u^k`` (1: uniform; > 1 favours low α).
        alpha_path_target: with ``alpha_range``, what ``L_cf`` and ``L_score`` ask of the model at a drawn α:
            ``"invariance"`` (the end point's, at every α) or ``"linear"`` (``1 − α`` of the base's own
            within-set offsets; module docstring).
        alpha_path_keep_power: with ``alpha_path_target="linear"``, the share of the base's within-set offsets
            kept at a drawn α is ``(1 − α)^q`` (1: linear; > 1: the offsets fall faster at low α).
        seed: seed of the α draws.
        gather_across_devices: under several processes, compute the loss on every process's batch
            together (the global batch; see the module docstring); one process is unaffected.
    """

    beta_clip: float = 1.0
    clip_positives: str = "in"
    beta_cf: float = 30.0
    cf_loss: str = "cohesion"
    cf_temperature: float = 0.1
    max_logit_scale: float = 100.0
    alpha_range: tuple[float, float] | None = None
    cf_weight_by_alpha: bool = False
    alpha_endpoint_prob: float = 0.0
    alpha_path_power: float = 1.0
    alpha_path_target: str = "invariance"
    alpha_path_keep_power: float = 1.0
    beta_score: float = 20.0
    beta_effect: float = 0.0
    effect_own_caption: bool = False
    effect_path_target: bool = False
    effect_momentum: float = 0.0
    seed: int = 0
    gather_across_devices: bool = True

    @classmethod
    def from_config(cls, config: Any) -> CFAlphaLoss:
        """The loss of a :class:`~trustvl.training.cf_alpha.config.CFAlphaConfig` run (typed ``Any``: the
        config imports this class for its defaults, so this module cannot import the config back)."""
        return cls(
            beta_clip=config.beta_clip,
            clip_positives=config.clip_positives,
            beta_cf=config.beta_cf,
            cf_loss=config.cf_loss,
            cf_temperature=config.cf_temperature,
            max_logit_scale=config.max_logit_scale,
            alpha_range=None if config.alpha_range is None else tuple(config.alpha_range),
            cf_weight_by_alpha=config.cf_weight_by_alpha,
            alpha_endpoint_prob=config.alpha_endpoint_prob,
            alpha_path_power=config.alpha_path_power,
            alpha_path_target=config.alpha_path_target,
            alpha_path_keep_power=config.alpha_path_keep_power,
            beta_score=config.beta_score,
            beta_effect=config.beta_effect,
            effect_own_caption=config.effect_own_caption,
            effect_path_target=config.effect_path_target,
            effect_momentum=config.effect_momentum,
            seed=config.seed,
            gather_across_devices=config.gather_across_devices,
        )

    def __post_init__(self) -> None:
        if self.cf_loss not in ("cohesion", "info_nce"):
            raise TrustVLInputError(f"cf_loss={self.cf_loss!r}; expected 'cohesion' or 'info_nce'")
        if self.clip_positives not in ("in", "out"):
            raise TrustVLInputError(f"clip_positives={self.clip_positives!r}; expected 'in' or 'out'")
        if self.beta_score < 0:
            raise TrustVLInputError(f"beta_score={self.beta_score}; expected a non-negative weight")
        if self.beta_effect < 0:
            raise TrustVLInputError(f"beta_effect={self.beta_effect}; expected a non-negative weight")
        if self.beta_clip < 0 or self.beta_cf < 0 or self.beta_clip + self.beta_cf == 0:
            raise TrustVLInputError(
                f"beta_clip={self.beta_clip}, beta_cf={self.beta_cf}; expected non-negative"
                " weights, not both zero"
            )
        if self.alpha_range is not None:
            lo, hi = (float(x) for x in self.alpha_range)
            if not 0.0 <= lo <= hi <= 1.0:
                raise TrustVLInputError(
                    f"alpha_range={self.alpha_range!r}; expected (lo, hi) with 0 <= lo <= hi <= 1"
                )
            self.alpha_range = (lo, hi)
        if not 0.0 <= self.alpha_endpoint_prob <= 1.0:
            raise TrustVLInputError(
                f"alpha_endpoint_prob={self.alpha_endpoint_prob}; expected a probability in [0, 1]"
            )
        if self.alpha_path_power <= 0:
            raise TrustVLInputError(f"alpha_path_power={self.alpha_path_power}; expected a positive power")
        if self.alpha_path_target not in ALPHA_PATH_TARGETS:
            raise TrustVLInputError(
                f"alpha_path_target={self.alpha_path_target!r}; expected one of {', '.join(ALPHA_PATH_TARGETS)}"
            )
        if self.alpha_path_keep_power <= 0:
            raise TrustVLInputError(
                f"alpha_path_keep_power={self.alpha_path_keep_power}; expected a positive power"
            )
        if self.alpha_path_keep_power != 1.0 and self.alpha_path_target != "linear":
            raise TrustVLInputError(
                f"alpha_path_keep_power={self.alpha_path_keep_power} needs alpha_path_target='linear'"
                f" (it shapes that target); got alpha_path_target={self.alpha_path_target!r}"
            )
        if self.alpha_path_target != "invariance" and self.cf_loss != "cohesion":
            raise TrustVLInputError(
                f"alpha_path_target={self.alpha_path_target!r} needs cf_loss='cohesion' (its target is a"
                f" within-set offset); got cf_loss={self.cf_loss!r}"
            )
        if self.effect_path_target and (self.alpha_path_target != "linear" or not self.beta_effect):
            raise TrustVLInputError(
                "effect_path_target needs alpha_path_target='linear' and beta_effect > 0 (it shapes L_effect's"
                f" target along the linear path); got alpha_path_target={self.alpha_path_target!r},"
                f" beta_effect={self.beta_effect}"
            )
        if not 0.0 <= self.effect_momentum < 1.0:
            raise TrustVLInputError(f"effect_momentum={self.effect_momentum}; expected a momentum in [0, 1)")
        if self.effect_momentum and not (self.beta_effect and self.effect_own_caption):
            raise TrustVLInputError(
                f"effect_momentum={self.effect_momentum} needs beta_effect > 0 and effect_own_caption (a running"
                " mean per level of the own caption's effect; every-caption effects change with the batch's"
                f" captions); got beta_effect={self.beta_effect}, effect_own_caption={self.effect_own_caption}"
            )
        self._running = RunningEffects(self.effect_momentum) if self.effect_momentum else None
        if self.alpha_path_target != "invariance" and self.alpha_range is None:
            raise TrustVLInputError(
                f"alpha_path_target={self.alpha_path_target!r} needs alpha_range (lo, hi); got alpha_range=None"
            )
        if (self.cf_weight_by_alpha or self.alpha_endpoint_prob) and self.alpha_range is None:
            raise TrustVLInputError(
                "cf_weight_by_alpha / alpha_endpoint_prob need alpha_range (lo, hi); got alpha_range=None"
            )
        self._step = 0

    def set_step(self, step: int) -> None:
        """The optimiser step of the next call (set by the training core); the α-path draw depends on it."""
        self._step = int(step)

    def draw_alpha(self) -> float:
        """The α of the current step: ``lo + (hi - lo)·u`` with ``u ~ U(0, 1)`` seeded by (seed, step)."""
        assert self.alpha_range is not None
        lo, hi = self.alpha_range
        rng = np.random.default_rng(np.random.SeedSequence([int(self.seed), 7, self._step]))
        u = float(rng.random())
        if self.alpha_endpoint_prob and float(rng.random()) < self.alpha_endpoint_prob:
            return hi
        return lo + (hi - lo) * u**self.alpha_path_power

    def __call__(
        self, model: nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cf_weight, keep = self.beta_cf, 0.0  # keep: share of the base's within-set offsets the α model keeps
        reference = None
        if self.alpha_range is not None:
            alpha = self.draw_alpha()
            if self.alpha_path_target == "linear" and alpha < 1.0:
                keep = (1.0 - alpha) ** self.alpha_path_keep_power
                unwrap_model(model).set_alpha(0.0)
                with torch.no_grad():
                    reference = _forward(model, batch)
            unwrap_model(model).set_alpha(alpha)
            if self.cf_weight_by_alpha:
                cf_weight = self.beta_cf * alpha
        img, txt = _forward(model, batch)
        sets = batch["set_index"]
        # sets whose captions are identical (e.g. two chefs in a kitchen) are not negatives of each other
        caption_index = batch.get("caption_index")
        if caption_index is None:
            caption_index = torch.arange(txt.shape[0], device=sets.device)
        attributes = batch.get("variant_attributes")
        if self.beta_effect and attributes is None:
            raise TrustVLInputError(
                f"beta_effect={self.beta_effect} needs each variant's attribute levels in the batch"
                " ('variant_attributes'); expected CFAlphaConfig.effect_attributes naming the dataset's"
                " attribute columns (e.g. ['skin_tone', 'gender_presentation', 'age', 'body_type'])"
            )
        if self.gather_across_devices and several_processes():
            local_sets = sets
            img, txt, sets, caption_index = _global_batch(img, txt, local_sets, batch)
            if reference is not None:
                reference = _global_batch(*reference, local_sets, batch)[:2]
            if self.beta_effect:
                attributes = gather_with_grad(attributes.to(sets.device))
        scale = unwrap_model(model).logit_scale.exp().clamp(max=self.max_logit_scale)
        img_n = nn.functional.normalize(img, dim=-1)
        txt_n = nn.functional.normalize(txt, dim=-1)
        positives = caption_index[sets][:, None] == caption_index[None, :]  # [B·v, B]
        form = self.clip_positives
        i2t = multi_positive_info_nce(img_n, txt_n, positives, scale, normalize=False, positives=form)
        t2i = multi_positive_info_nce(txt_n, img_n, positives.T, scale, normalize=False, positives=form)
        clip = 0.5 * (i2t + t2i)
        ref_img_n = ref_logits = None
        if reference is not None:
            ref_img_n = nn.functional.normalize(reference[0].float(), dim=-1)
            ref_txt_n = nn.functional.normalize(reference[1].float(), dim=-1)
            ref_logits = scale.detach() * ref_img_n @ ref_txt_n.T
        if self.cf_loss == "cohesion":
            target = None if ref_img_n is None else keep * group_offsets(ref_img_n, sets, normalize=False)
            cf = group_mean_cohesion_loss(img_n, sets, target_offsets=target)
        else:
            cf = multi_positive_info_nce(
                img_n, None, sets[:, None] == sets[None, :], self.cf_temperature, normalize=False
            )
        loss = self.beta_clip * clip + cf_weight * cf
        logs = {"clip_loss": clip.detach(), "cf_loss": cf.detach()}
        logits = scale * img_n @ txt_n.T if (self.beta_score or self.beta_effect) else None  # [B·v, B]
        if self.beta_effect:
            # set b's caption is row b of the captions (also in the gathered batch: both in rank order)
            own = logits.gather(1, sets[:, None]) if self.effect_own_caption else logits
            ref_own = None
            if self.effect_path_target and ref_logits is not None:
                ref_own = ref_logits.gather(1, sets[:, None]) if self.effect_own_caption else ref_logits
            effect = attribute_effect_loss(
                own, sets, attributes.to(sets.device), ref_own, keep, running=self._running
            )
            loss = loss + self.beta_effect * effect
            logs["effect_loss"] = effect.detach()
        if self.beta_score:
            target = None if ref_logits is None else keep * group_offsets(ref_logits, sets, normalize=False)
            score = group_mean_cohesion_loss(logits, sets, normalize=False, target_offsets=target)
            score = score / logits.shape[1]
            loss = loss + self.beta_score * score
            logs["score_loss"] = score.detach()
        return loss, logs


def _forward(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's image and text embeddings at the model's current α."""
    if "vision_hidden_states" in batch:  # frozen prefix cached (PrefixCachedSets): adapted layers only
        out = model(
            vision_hidden_states=batch["vision_hidden_states"],
            vision_start_layer=batch["vision_start_layer"],
            text_embeds=batch["text_embeds"],
        )
    else:
        out = model(**model_inputs(batch))
    return out.image_embeds, out.text_embeds


#: ε of ``sqrt(E² + ε)`` in ``L_effect`` (logit units²): smooths |E| below 0.001 logits, a cosine shift of
#: 5e-5 at the SynthWorld CLIP's logit scale (≈ 20), a tenth of the smallest effect that skews a top-100 cut.
_EFFECT_EPS = 1e-6


class RunningEffects:
    """Running means of ``L_effect``'s per-level effects over the steps (``CFAlphaLoss.effect_momentum``).

    A batch of 16 sets holds a few dozen images per level, so its estimate of an effect of 10⁻² logits (the size
    that skews a top-100 cut) is mostly noise; a gradient that follows each batch's sign fits that noise on the
    training sets (issue 26, round 7: the effects left on held-out sets were unchanged). This keeps, per
    (attribute, level), an exponentially weighted mean ``R ← m·R + (1 − m)·E_batch`` (``E`` detached),
    normalised by the weight it has gathered so far (no bias towards 0 in the first steps, and a level missing
    from a batch keeps its mean). Not part of a checkpoint: a resumed run starts the means afresh. Under
    several processes with ``gather_across_devices`` (the default) every process sees the gathered batch, so
    the means agree; without it each process keeps its own."""

    def __init__(self, momentum: float) -> None:
        self.momentum = float(momentum)
        self._sums: dict[tuple[int, int], torch.Tensor] = {}
        self._weights: dict[tuple[int, int], float] = {}

    def update(self, attribute: int, levels: list[int], effect: torch.Tensor) -> torch.Tensor:
        """Fold the batch's ``effect`` ``[len(levels), C]`` of ``attribute`` in; returns the running means
        ``[len(levels), C]`` (detached) after the update."""
        m, out = self.momentum, []
        for row, level in zip(effect.detach().float(), levels):
            key = (attribute, int(level))
            previous = self._sums.get(key)
            self._sums[key] = (
                (1 - m) * row if previous is None else m * previous.to(row.device) + (1 - m) * row
            )
            self._weights[key] = m * self._weights.get(key, 0.0) + (1 - m)
            out.append(self._sums[key] / self._weights[key])
        return torch.stack(out).to(effect.dtype)


def attribute_effect_loss(
    logits: torch.Tensor,
    sets: torch.Tensor,
    attributes: torch.Tensor,
    target_logits: torch.Tensor | None = None,
    keep: float = 0.0,
    running: RunningEffects | None = None,
) -> torch.Tensor:
    """``L_effect`` (module docstring): mean over attributes, levels present and captions of
    ``sqrt((E − keep·E⁰)² + ε)``, ``E`` the batch mean of the set-centred logits of the variants at that level
    and ``E⁰`` the same of ``target_logits`` (the frozen base's, on the linear α path; ``None``: ``E⁰ = 0``).

    ``logits`` and ``target_logits`` ``[N, C]``, ``sets`` ``[N]`` (set of each image), ``attributes``
    ``[N, A]`` (integer levels). Images of single-image sets have no within-set contrast and are left out.

    With ``running`` (:class:`RunningEffects`, ``C`` fixed across calls) the value is the same expression at the
    running means ``R`` and the gradient is ``∂sqrt(R² + ε)/∂R`` (about ``sign(R)``) times the batch's
    ``∂E``: each step moves the batch's level means against the running estimate of the effect rather than
    against its own noisy one."""
    _, inverse, counts = torch.unique(sets, return_inverse=True, return_counts=True)
    rows = counts[inverse] >= 2
    if not bool(rows.any()):
        return logits.sum() * 0.0

    def centred(x: torch.Tensor) -> torch.Tensor:
        means = x.new_zeros(counts.shape[0], x.shape[1]).index_add_(0, inverse, x) / counts[:, None]
        return (x - means[inverse])[rows]

    offsets, attributes = centred(logits), attributes[rows]
    reference = None if target_logits is None or keep == 0.0 else centred(target_logits.to(logits.dtype))
    per_attribute = []
    for a in range(attributes.shape[1]):
        levels, level_of = torch.unique(attributes[:, a], return_inverse=True)
        n = torch.bincount(level_of, minlength=len(levels)).to(offsets.dtype)[:, None]
        effect = offsets.new_zeros(len(levels), offsets.shape[1]).index_add_(0, level_of, offsets) / n
        if reference is not None:
            effect = effect - keep * (
                reference.new_zeros(len(levels), reference.shape[1]).index_add_(0, level_of, reference) / n
            )
        if running is None:
            per_attribute.append(torch.sqrt(effect**2 + _EFFECT_EPS).mean())
            continue
        smoothed = running.update(a, levels.tolist(), effect)
        value = torch.sqrt(smoothed**2 + _EFFECT_EPS)
        slope = smoothed / value
        # value of the running estimate, gradient of the surrogate slope·E (slope fixed)
        per_attribute.append((value + slope * (effect - effect.detach())).mean())
    return torch.stack(per_attribute).mean()


def _global_batch(
    img: torch.Tensor, txt: torch.Tensor, sets: torch.Tensor, batch: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every process's images, captions, set indices and caption groups, in rank order (the order of the
    1-process batch that the data loader split): set indices are shifted by ``rank · B`` (every process has
    ``B`` sets: accelerate evens the batches), captions are grouped by their key, which is the same
    on every process (a batch-local ``caption_index`` is not)."""
    keys = batch.get("caption_key")
    if keys is None:
        raise TrustVLInputError(
            "a CF_α batch gathered from several processes has no 'caption_key'; expected the batches of"
            " CounterfactualSetCollator / collate_prefix_cached_sets (or gather_across_devices=False)"
        )
    offset = dist.get_rank() * txt.shape[0]
    return (
        gather_with_grad(img),
        gather_with_grad(txt),
        gather_with_grad(sets + offset),
        gather_with_grad(keys.to(sets.device)),
    )
