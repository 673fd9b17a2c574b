"""The RaVL loss ``L = L_CLIP + λ_a·L_align + λ_u·L_uninf`` (defined in :mod:`trustvl.training.ravl`).

**Several processes (``torchrun`` / ``accelerate launch``).** ``L_CLIP`` takes its negatives from the batch,
and the region terms are means over rows whose number differs between processes (the spurious crops, the
images with a spurious cell); a per-process loss is then another objective than the 1-process loss of the
same global batch. By default (``gather_across_devices``) each process gathers every process's image and
caption embeddings and caption tokens for ``L_CLIP``
(:func:`~trustvl.training.losses.gather_with_grad`), and takes its share of each region term's global mean
(:func:`~trustvl.training.losses.mean_over_processes`): N processes with ``per_device_train_batch_size =
B / N`` train the 1-process objective of batch ``B`` with its exact gradient, and the logged loss and terms
(means over processes) are the global batch's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from trustvl.errors import TrustVLInputError
from trustvl.training.core import unwrap_model
from trustvl.training.losses import gather_with_grad, mean_over_processes, several_processes

# a mean over per-row values: None is ``values.mean()`` as written (one process), else mean_over_processes
RowMean = Callable[[torch.Tensor], torch.Tensor] | None

_ALIGN_INPUTS = ("regions", "masked_image")
_ALIGN_POOLINGS = ("mean", "max")
_UNINF_MODES = ("uniform", "counterfactual", "both")
_CLIP_POSITIVES = ("same_text", "diagonal")


def _unit(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, L2-normalised along the last dimension."""
    return nn.functional.normalize(x.float(), dim=-1)


def _multi_positive_ce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """``mean_i [logsumexp_j l_ij - logsumexp_{j in P(i)} l_ij]`` over rows with a positive (0 if none)."""
    has = positives.any(dim=1)
    if not bool(has.any()):
        return logits.sum() * 0.0
    log_num = torch.logsumexp(logits.masked_fill(~positives, float("-inf")), dim=1)
    return (torch.logsumexp(logits, dim=1) - log_num)[has].mean()


def _global_caption_ids(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Every process's caption tokens ``[B, L]`` in rank order, comparable across processes: padding is -1
    and every process's rows are padded to the longest (each process's collator pads to its own batch)."""
    ids = input_ids.masked_fill(attention_mask == 0, -1)
    length = torch.tensor(ids.shape[1], device=ids.device)
    dist.all_reduce(length, op=dist.ReduceOp.MAX)
    return gather_with_grad(nn.functional.pad(ids, (0, int(length) - ids.shape[1]), value=-1))


@dataclass
class RaVLLoss:
    """``L = L_CLIP + λ_a·L_align + λ_u·L_uninf`` as a :data:`~trustvl.training.core.LossFn` (see
    :mod:`trustvl.training.ravl` for the exact definition and the variants).

    Args:
        lambda_align: λ_a, weight of the alignment of class text with non-spurious regions.
        lambda_uninf: λ_u, weight of the "spurious regions are uninformative" term.
        align_input: ``"masked_image"`` (default: the union of the non-spurious cells, i.e. the image with
            its spurious cells filled, embedded as one image) or ``"regions"`` (the non-spurious grid crops,
            pooled by ``align_pooling``).
        align_pooling: for ``align_input="regions"``: ``"mean"`` (mean-pooled non-spurious region embedding) or
            ``"max"`` (per-class max over non-spurious regions).
        uninf_mode: ``"both"`` (default: the sum of the next two), ``"uniform"`` (KL(uniform ‖ class
            distribution of each spurious crop)) or ``"counterfactual"`` (KL(p(masked image) ‖ p(image)) with
            the masked side as a fixed target).
        clip_positives: ``"same_text"`` (identical captions are positives) or ``"diagonal"`` (plain CLIP).
        detach_region_scale: use the logit scale without gradient in the region terms.
        max_logit_scale: clamp of ``exp(logit_scale)``.
        gather_across_devices: under several processes, compute the loss of every process's batch together
            (the global batch; see the module docstring); one process is unaffected.

    With ``lambda_align = lambda_uninf = 0`` it is the CLIP loss alone and only the images are embedded: the
    "standard fine-tuning" baseline. Only the images a term needs are embedded: every crop for
    ``align_input="regions"``, only the spurious crops for the uniform term alone, and masked images only of
    the images that have a spurious cell.
    """

    lambda_align: float = 1.0
    lambda_uninf: float = 1.0
    align_input: str = "masked_image"
    align_pooling: str = "mean"
    uninf_mode: str = "both"
    clip_positives: str = "same_text"
    detach_region_scale: bool = True
    max_logit_scale: float = 100.0
    gather_across_devices: bool = True

    def __post_init__(self) -> None:
        for name, allowed in (
            ("align_input", _ALIGN_INPUTS),
            ("align_pooling", _ALIGN_POOLINGS),
            ("uninf_mode", _UNINF_MODES),
            ("clip_positives", _CLIP_POSITIVES),
        ):
            if getattr(self, name) not in allowed:
                raise TrustVLInputError(f"{name}={getattr(self, name)!r}; expected one of {allowed}")
        for name in ("lambda_align", "lambda_uninf"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v < 0:
                raise TrustVLInputError(f"{name}={getattr(self, name)!r}; expected a finite weight >= 0")

    # -- which terms are on, and what they need -------------------------------------------------------------
    @property
    def _align_on_crops(self) -> bool:
        return self.lambda_align > 0 and self.align_input == "regions"

    @property
    def _align_on_masked(self) -> bool:
        return self.lambda_align > 0 and self.align_input == "masked_image"

    @property
    def _uniform(self) -> bool:
        return self.lambda_uninf > 0 and self.uninf_mode in ("uniform", "both")

    @property
    def _counterfactual(self) -> bool:
        return self.lambda_uninf > 0 and self.uninf_mode in ("counterfactual", "both")

    @property
    def uses_regions(self) -> bool:
        """Whether batches need region crops (and flags)."""
        return self._align_on_crops or self._uniform

    @property
    def uses_masked(self) -> bool:
        """Whether batches need masked images (and flags)."""
        return self._align_on_masked or self._counterfactual

    @property
    def uses_flags(self) -> bool:
        """Whether batches need spurious flags (some region term is on)."""
        return self.uses_regions or self.uses_masked

    # -- the terms, on embeddings (pure functions, tested by hand) -----------------------------------------
    def clip_term(
        self, image_embeds: torch.Tensor, caption_embeds: torch.Tensor, scale: torch.Tensor, caption_ids: Any
    ) -> torch.Tensor:
        """Symmetric InfoNCE; positives = identical captions (``caption_ids`` ``[B, L]``) or the diagonal."""
        img, cap = _unit(image_embeds), _unit(caption_embeds)
        if self.clip_positives == "same_text" and caption_ids is not None:
            positives = (caption_ids[:, None, :] == caption_ids[None, :, :]).all(dim=-1)
        else:
            positives = torch.eye(img.shape[0], dtype=torch.bool, device=img.device)
        logits = scale * img @ cap.T
        return 0.5 * (_multi_positive_ce(logits, positives) + _multi_positive_ce(logits.T, positives.T))

    def align_term(
        self,
        region_embeds: torch.Tensor,
        spurious: torch.Tensor,
        class_embeds: torch.Tensor,
        labels: torch.Tensor,
        scale: torch.Tensor,
        weights: torch.Tensor | None = None,
        mean: RowMean = None,
    ) -> torch.Tensor:
        """``L_align`` from region embeddings ``[B, R, D]``, flags ``[B, R]``, prompt embeddings ``[C, D]``.

        (For ``align_input="masked_image"`` pass the masked-image embeddings as ``[B, 1, D]`` with no flag.)
        ``weights`` ``[B, R]`` (score-weighted flags): mean pooling weighs region ``r`` by ``1 - w_r``; max
        pooling leaves out the regions of weight 1 only. ``mean``: how the per-image terms are averaged
        (:data:`RowMean`).
        """
        z, t = _unit(region_embeds), _unit(class_embeds)
        keep = ~spurious.bool()
        keep_weight = keep.to(z.dtype)
        if weights is not None:
            keep_weight = torch.where(keep, keep_weight, 1.0 - weights.to(z.dtype))
            keep = keep_weight > 0
        has = keep.any(dim=1)
        if mean is None and not bool(has.any()):
            return z.sum() * 0.0
        if self.align_pooling == "mean":
            pooled = nn.functional.normalize((z * keep_weight[..., None]).sum(dim=1), dim=-1)
            logits = scale * pooled @ t.T
        else:
            region_logits = scale * z @ t.T  # [B, R, C]
            logits = region_logits.masked_fill(~keep[..., None], float("-inf")).amax(dim=1)
        if mean is None:
            return nn.functional.cross_entropy(logits[has], labels[has])
        return mean(nn.functional.cross_entropy(logits[has], labels[has], reduction="none"))

    @staticmethod
    def uninformative_term(
        region_embeds: torch.Tensor,
        spurious: torch.Tensor,
        class_embeds: torch.Tensor,
        scale: torch.Tensor,
        weights: torch.Tensor | None = None,
        mean: RowMean = None,
    ) -> torch.Tensor:
        """``L_uninf`` (uniform): mean over spurious regions of ``KL(uniform ‖ softmax(class logits))``, each
        times its weight when ``weights`` (same shape as ``spurious``) is given; ``mean``: :data:`RowMean`."""
        z, t = _unit(region_embeds), _unit(class_embeds)
        mask = spurious.bool()
        if mean is None and not bool(mask.any()):
            return z.sum() * 0.0
        logq = torch.log_softmax(scale * z[mask] @ t.T, dim=-1)  # [n_spurious, C]
        c = logq.shape[-1]
        kl = -float(np.log(c)) - logq.mean(dim=-1)
        kl = kl if weights is None else kl * weights[mask].to(kl.dtype)
        return kl.mean() if mean is None else mean(kl)

    @staticmethod
    def counterfactual_term(
        image_embeds: torch.Tensor,
        masked_embeds: torch.Tensor,
        class_embeds: torch.Tensor,
        scale: torch.Tensor,
        weights: torch.Tensor | None = None,
        mean: RowMean = None,
    ) -> torch.Tensor:
        """``L_uninf`` (counterfactual): mean over images of ``KL(p_masked ‖ p_image)``, ``p = softmax`` of the
        class logits, the masked side detached (a fixed target): the spurious cells add no class information.
        Rows are the images that have a spurious cell; none -> 0. ``weights`` ``[rows]`` scale each row;
        ``mean``: :data:`RowMean`."""
        if mean is None and image_embeds.shape[0] == 0:
            return class_embeds.sum() * 0.0
        v, m, t = _unit(image_embeds), _unit(masked_embeds), _unit(class_embeds)
        log_p = torch.log_softmax(scale * v @ t.T, dim=-1)
        log_target = torch.log_softmax(scale * m @ t.T, dim=-1).detach()
        kl = (log_target.exp() * (log_target - log_p)).sum(dim=-1)
        kl = kl if weights is None else kl * weights.to(kl.dtype)
        return kl.mean() if mean is None else mean(kl)

    @staticmethod
    def _weighted_align(
        union: torch.Tensor,
        img: torch.Tensor,
        image_weight: torch.Tensor,
        class_embeds: torch.Tensor,
        labels: torch.Tensor,
        scale: torch.Tensor,
        mean: RowMean = None,
    ) -> torch.Tensor:
        """``mean_b [w_b · CE(masked image_b) + (1 − w_b) · CE(image_b)]`` (score-weighted flags; with 0/1
        weights it is the unweighted masked-image ``L_align``); ``mean``: :data:`RowMean`."""
        t = _unit(class_embeds)
        ce_masked = nn.functional.cross_entropy(scale * _unit(union) @ t.T, labels, reduction="none")
        ce_image = nn.functional.cross_entropy(scale * _unit(img) @ t.T, labels, reduction="none")
        w = image_weight.to(ce_masked.dtype)
        per_image = w * ce_masked + (1.0 - w) * ce_image
        return per_image.mean() if mean is None else mean(per_image)

    # -- the LossFn -----------------------------------------------------------------------------------------
    def __call__(
        self, model: nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        pixel_values = batch["pixel_values"]
        b = pixel_values.shape[0]
        spurious = batch.get("region_spurious")
        if self.uses_flags and spurious is None:
            raise TrustVLInputError(
                "the RaVL loss needs 'region_spurious' flags in the batch (RegionImageDataset + RaVLCollator)"
            )
        # one forward: [images, crops (all of them, or only the spurious ones), masked flagged images]
        parts = [pixel_values]
        if self.uses_regions:
            regions = batch["region_pixel_values"]
            r = regions.shape[1]
            parts.append(regions.flatten(0, 1) if self._align_on_crops else regions[spurious.bool()])
        if self.uses_masked:
            flagged = spurious.bool().any(dim=1)
            parts.append(batch["masked_pixel_values"][flagged])
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            pixel_values=torch.cat(parts, dim=0) if len(parts) > 1 else pixel_values,
        )
        image_embeds, text_embeds = out.image_embeds, out.text_embeds
        if text_embeds.shape[0] <= b:
            raise TrustVLInputError(
                f"the batch has {text_embeds.shape[0]} texts for {b} images; expected the {b} captions followed"
                " by the class prompts (use RaVLCollator)"
            )
        chunks = list(torch.split(image_embeds, [p.shape[0] for p in parts], dim=0))
        img = chunks.pop(0)
        crop_emb = chunks.pop(0) if self.uses_regions else None
        masked_emb = chunks.pop(0) if self.uses_masked else None
        scale = unwrap_model(model).logit_scale.exp().clamp(max=self.max_logit_scale)
        # under several processes: L_CLIP of the global batch, each region term's share of its global mean
        mean: RowMean = None
        if self.gather_across_devices and several_processes():
            mean = mean_over_processes
            ids = _global_caption_ids(batch["input_ids"][:b], batch["attention_mask"][:b])
            clip = self.clip_term(gather_with_grad(img), gather_with_grad(text_embeds[:b]), scale, ids)
        else:
            clip = self.clip_term(img, text_embeds[:b], scale, batch["input_ids"][:b])
        zero = clip.new_zeros(())
        align, uninf, n_spur = zero, zero, zero
        if self.uses_flags:
            cls_emb = text_embeds[b:]
            s_reg = scale.detach() if self.detach_region_scale else scale
            spurious = spurious.bool()
            labels = batch["labels"]
            # score-weighted flags (only fractional weights reach the batch): w_{b,r}, and per image its
            # largest weight, the share of the masked image in L_align and of its counterfactual term
            weight = batch.get("region_weight")
            if weight is not None:
                weight = weight.float() * spurious
                image_weight = weight.amax(dim=1)
            if self._align_on_crops:
                align = self.align_term(
                    crop_emb.view(b, r, -1), spurious, cls_emb, labels, s_reg, weight, mean=mean
                )
            elif self._align_on_masked:  # the masked image where there is one, else the image itself
                union = img.clone()
                union[flagged] = masked_emb
                if weight is None:
                    none = torch.zeros(b, 1, dtype=torch.bool, device=union.device)
                    align = self.align_term(union[:, None], none, cls_emb, labels, s_reg, mean=mean)
                else:  # w · CE(masked image) + (1 - w) · CE(image)
                    align = self._weighted_align(union, img, image_weight, cls_emb, labels, s_reg, mean)
            if self._uniform:  # on the spurious crops, one region per row
                spur_emb = crop_emb[spurious.flatten()] if self._align_on_crops else crop_emb
                ones = torch.ones(spur_emb.shape[0], 1, dtype=torch.bool, device=spur_emb.device)
                w_spur = None if weight is None else weight[spurious][:, None]
                uninf = uninf + self.uninformative_term(
                    spur_emb[:, None], ones, cls_emb, s_reg, w_spur, mean=mean
                )
            if self._counterfactual:
                w_img = None if weight is None else image_weight[flagged]
                uninf = uninf + self.counterfactual_term(
                    img[flagged], masked_emb, cls_emb, s_reg, w_img, mean=mean
                )
            flat = spurious.float().flatten()
            n_spur = flat.mean() if mean is None else mean(flat)
        loss = clip + self.lambda_align * align + self.lambda_uninf * uninf
        return loss, {
            "clip_loss": clip.detach(),
            "align_loss": align.detach(),
            "uninf_loss": uninf.detach(),
            "spurious_region_fraction": n_spur.detach(),
            "logit_scale": scale.detach().float(),
        }
