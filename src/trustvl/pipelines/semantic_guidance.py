"""Semantic guidance (SEGA, arXiv 2301.12247) as used by Fair Diffusion: the per-step maths, batched.

One denoising step with classifier-free guidance scale ``s`` gets, for each image ``b``, the UNet's
unconditional estimate ``ε_u``, its prompt estimate ``ε_p`` and one estimate ``ε_c`` per edit concept ``c``
of that image. With ``g = s·(ε_p − ε_u)`` the guided estimate is ``ε = ε_u + g + ψ`` where (SPEC §5):

* ``ψ_c = s_c·(ε_c − ε_u)``, negated for a concept to be removed (``reverse``);
* only elements with ``|ψ_c| >= quantile_λc(|ψ_c|)`` are kept, the quantile taken per image and latent channel
  over the spatial positions (linear interpolation, as ``torch.quantile``), the others set to 0;
* while only some of the image's concepts are past their warmup, the active ones are added with their weights
  ``w_c`` normalised to sum to 1 and without momentum; once all are, ``ψ = Σ_c w_c·ψ_c + s_m·v`` is added;
  the momentum ``v ← β·v + (1 − β)·(Σ_c w_c·ψ_c + s_m·v)`` is updated at every step from the first one, with
  the raw weights of every concept not cooled down, so it builds up during warmup;
* a concept at or past its cooldown step contributes 0 (to both sums).

This is the behaviour of diffusers' deprecated ``SemanticStableDiffusionPipeline`` (the equality tests check
it). Two of its choices are questionable but kept, so that results match: the weights are normalised only
while some concepts are still warming up (once all are active the raw weights apply, so the edit's size jumps
when the last concept becomes active, and ``k`` concepts of weight 1 add up to ``k`` times one), and the
momentum update feeds on the momentum term itself (``s_m·v`` inside the average). The step index is the loop
index over the scheduler's timesteps (for a second-order scheduler, not the number of model evaluations).
Documented differences:

* each image has its own list of concepts (the reference applies one list to the whole batch); the warmup
  phase ("only some concepts active") is decided per image;
* where the normalisation above divides 0 by 0 (every active concept cooled down or of weight 0 while another
  one is still warming up) the reference produces NaN; here that sum is 0;
* the quantile and the comparison are computed in float32 whatever the model's dtype (the reference rounds
  the quantile back to fp16/bf16 before comparing), and the whole combination runs in float32;
* every per-step quantity that depends only on the step index (warmup, cooldown, normalised weights) is
  precomputed as one device tensor before the loop, so a step does no host<->device copy and no host sync.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from trustvl.errors import TrustVLInputError
from trustvl.utils.checks import check_int, check_number

__all__ = ["EditConcept", "SemanticGuidance", "spatial_quantile_mask"]


@dataclass(frozen=True)
class EditConcept:
    """One semantic-guidance concept, with its own knobs (defaults: those of diffusers' SEGA pipeline).

    Args:
        prompt: the concept text, e.g. ``"female person"`` (non-empty); or None with ``prompt_embeds``.
        reverse: guide away from the concept (remove it) instead of toward it.
        scale: edit guidance scale ``s_c`` (>= 0).
        warmup_steps: steps ``i < warmup_steps`` do not apply the concept (momentum still builds up).
        cooldown_steps: steps ``i >= cooldown_steps`` ignore the concept; None = never.
        threshold: quantile ``λ`` in [0, 1): 0.95 keeps the 5 % largest elements per image and channel.
        weight: ``w_c`` (>= 0) against the image's other concepts.
        prompt_embeds: a precomputed text-encoder output ``[seq, dim]`` used instead of ``prompt``.
    """

    prompt: str | None
    reverse: bool = False
    scale: float = 5.0
    warmup_steps: int = 10
    cooldown_steps: int | None = None
    threshold: float = 0.9
    weight: float = 1.0
    prompt_embeds: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.prompt_embeds is None:
            if not isinstance(self.prompt, str) or not self.prompt.strip():
                raise TrustVLInputError(f"edit concept prompt={self.prompt!r} is empty; expected a text")
        elif self.prompt is not None:
            raise TrustVLInputError("an edit concept takes prompt or prompt_embeds, not both")
        elif self.prompt_embeds.ndim != 2:
            raise TrustVLInputError(
                f"edit concept prompt_embeds has shape {tuple(self.prompt_embeds.shape)}; expected [seq, dim]"
            )
        where = f" of concept {self.prompt!r}" if self.prompt is not None else ""
        if not isinstance(self.reverse, bool):
            raise TrustVLInputError(
                f"reverse_editing_direction={self.reverse!r}{where}: expected True or False"
            )
        check_number("edit_guidance_scale", self.scale, 0, where=where)
        check_number("edit_weights", self.weight, 0, where=where)
        check_int("edit_warmup_steps", self.warmup_steps, 0, where=where)
        check_int("edit_cooldown_steps", self.cooldown_steps, 0, where=where, allow_none=True)
        check_number("edit_threshold", self.threshold, 0, 1, max_open=True, where=where)

    def active(self, step: int) -> bool:
        """Past its warmup (``step >= warmup_steps``)."""
        return step >= self.warmup_steps

    def cooled(self, step: int) -> bool:
        """At or past its cooldown step."""
        return self.cooldown_steps is not None and step >= self.cooldown_steps


def _quantile_ranks(thresholds: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(index below, index above, interpolation weight) of the ``thresholds`` quantiles of ``n`` sorted values.

    Computed in float32 exactly as ``torch.quantile(..., interpolation="linear")`` does, so the kept set of
    elements is the same as the reference's.
    """
    ranks = thresholds.to(torch.float32) * (n - 1)
    below = ranks.to(torch.long)
    above = ranks.ceil().to(torch.long)
    return below, above, ranks - below


def spatial_quantile_mask(
    values: torch.Tensor,
    thresholds: torch.Tensor | float,
    *,
    ranks: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Zero the elements of ``values`` ``[N, C, *spatial]`` below their row's spatial ``|.|`` quantile.

    ``thresholds`` is one quantile per row ``N`` (or one for all). Element ``x`` of row ``n``, channel ``c`` is
    kept when ``|x| >= quantile_λn(|values[n, c]|)``. The quantile and the comparison run in float32, and the
    result keeps ``values``' dtype. ``ranks`` (from the same thresholds) skips recomputing the indices.
    """
    rows, channels = values.shape[:2]
    magnitude = values.abs().flatten(2).to(torch.float32)
    if ranks is None:
        lam = torch.as_tensor(thresholds, dtype=torch.float32, device=values.device).expand(rows)
        ranks = _quantile_ranks(lam, magnitude.shape[-1])
    below, above, weight = ranks
    ordered = magnitude.sort(dim=-1).values
    below = below.view(rows, 1, 1).expand(rows, channels, 1)
    above = above.view(rows, 1, 1).expand(rows, channels, 1)
    cutoff = torch.lerp(ordered.gather(-1, below), ordered.gather(-1, above), weight.view(rows, 1, 1))
    keep = magnitude >= cutoff
    return torch.where(
        keep.view_as(values), values, torch.zeros((), dtype=values.dtype, device=values.device)
    )


class SemanticGuidance:
    """SEGA for one batch: per-image concepts, one combination per step, momentum state on the device.

    The UNet batch of a step is ``[unconditional (B), prompt (B), concept rows (R)]``; concept rows are
    ordered concept slot first, then image (so a whole-batch edit has diffusers' layout ``c0·B, c1·B, ...``).
    :attr:`row_image` maps each concept row to its image and :attr:`row_concepts` to its concept.

    Args:
        concepts: one list of :class:`EditConcept` per image (may be empty).
        num_steps: number of denoising steps (loop iterations).
        momentum_scale: ``s_m`` (>= 0), momentum_beta: ``β`` in [0, 1).
        device: where the precomputed per-step tensors and the momentum live.
    """

    def __init__(
        self,
        concepts: Sequence[Sequence[EditConcept]],
        *,
        num_steps: int,
        momentum_scale: float,
        momentum_beta: float,
        device: torch.device | str,
    ) -> None:
        self.momentum_scale = check_number("edit_momentum_scale", momentum_scale, 0)
        self.momentum_beta = check_number("edit_mom_beta", momentum_beta, 0, 1, max_open=True)
        self.num_images = len(concepts)
        self.num_steps = int(num_steps)
        self.device = torch.device(device)
        slots = max((len(c) for c in concepts), default=0)
        rows = [(slot, b) for slot in range(slots) for b in range(self.num_images) if slot < len(concepts[b])]
        self.row_concepts: list[EditConcept] = [concepts[b][slot] for slot, b in rows]
        row_image = [b for _, b in rows]
        self.num_rows = len(rows)
        self.row_image = torch.tensor(row_image, dtype=torch.long, device=self.device)
        signed = [(-c.scale if c.reverse else c.scale) for c in self.row_concepts]
        self._signed_scale = torch.tensor(signed, dtype=torch.float32, device=self.device)
        self._thresholds = torch.tensor([c.threshold for c in self.row_concepts], dtype=torch.float32)
        self._ranks: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        direct, momentum_sum, gate = self._step_coefficients(row_image)
        # [steps, 2B, R]: rows 0..B-1 give what is added directly (normalised warmup phase, or the weighted sum
        # once all are active), rows B..2B-1 the raw weighted sum that feeds the momentum
        self._coefficients = torch.cat([direct, momentum_sum], dim=1).to(self.device)
        self._gate = gate.to(
            self.device
        )  # [steps, B, 1, 1, 1]: 1 once all of the image's concepts are active
        self._momentum: torch.Tensor | None = None

    @property
    def enabled(self) -> bool:
        return self.num_rows > 0

    def _step_coefficients(self, row_image: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        steps, images, rows = self.num_steps, self.num_images, self.num_rows
        direct = torch.zeros(steps, images, rows, dtype=torch.float64)
        raw = torch.zeros(steps, images, rows, dtype=torch.float64)
        gate = torch.zeros(steps, images, dtype=torch.float64)
        rows_of_image = [[r for r in range(rows) if row_image[r] == b] for b in range(images)]
        for i in range(steps):
            for b, mine in enumerate(rows_of_image):
                weights = {
                    r: 0.0 if self.row_concepts[r].cooled(i) else self.row_concepts[r].weight for r in mine
                }
                active = [r for r in mine if self.row_concepts[r].active(i)]
                for r in mine:
                    raw[i, b, r] = weights[r]
                if len(active) == len(mine):
                    gate[i, b] = 1.0
                    for r in mine:
                        direct[i, b, r] = weights[r]
                elif active:
                    total = sum(weights[r] for r in active)
                    for r in active:  # 0/0 (reference: NaN) -> 0
                        direct[i, b, r] = weights[r] / total if total > 0 else 0.0
        return direct.float(), raw.float(), gate.float().view(steps, images, 1, 1, 1)

    def prepare(self, latent_spatial_shape: Sequence[int]) -> None:
        """Place the quantile indices for latents of this spatial shape on the device and zero the momentum.

        Called once before the loop (else at the first step), so that no step copies anything to the device.
        """
        spatial = math.prod(latent_spatial_shape)
        self._ranks = tuple(t.to(self.device) for t in _quantile_ranks(self._thresholds, spatial))
        self._momentum = None

    def combine(
        self,
        step: int,
        noise_uncond: torch.Tensor,
        noise_text: torch.Tensor,
        noise_concepts: torch.Tensor | None,
        guidance_scale: float,
        *,
        extra: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The guided noise estimate ``ε_u + s·(ε_p − ε_u) + ψ`` of step ``step`` (in ``noise_uncond``'s dtype).

        ``noise_concepts`` holds the :attr:`num_rows` concept-row estimates (None when there are none);
        ``extra`` is added to the guidance (the reference's precomputed ``sem_guidance``).
        """
        dtype = noise_uncond.dtype
        uncond = noise_uncond.to(torch.float32)
        guidance = guidance_scale * (noise_text.to(torch.float32) - uncond)
        if self.enabled and noise_concepts is not None:
            guidance = guidance + self._edit(step, uncond, noise_concepts)
        if extra is not None:
            guidance = guidance + extra
        return (uncond + guidance).to(dtype)

    def _edit(self, step: int, uncond: torch.Tensor, noise_concepts: torch.Tensor) -> torch.Tensor:
        images = self.num_images
        psi = (
            noise_concepts.to(torch.float32) - uncond.index_select(0, self.row_image)
        ) * self._signed_scale.view(-1, 1, 1, 1)
        if self._ranks is None:
            self.prepare(psi.shape[2:])
        psi = spatial_quantile_mask(psi, self._thresholds, ranks=self._ranks)
        sums = (self._coefficients[step] @ psi.flatten(1)).view(2 * images, *psi.shape[1:])
        direct, weighted = sums[:images], sums[images:]
        if self._momentum is None:
            self._momentum = torch.zeros_like(weighted)
        momentum_term = self.momentum_scale * self._momentum
        edit = weighted + momentum_term
        gate = self._gate[step]
        self._momentum = self.momentum_beta * self._momentum + (1.0 - self.momentum_beta) * edit
        # all active: the weighted sum plus momentum (direct == weighted there); warming up: normalised, no momentum
        return direct + gate * momentum_term
