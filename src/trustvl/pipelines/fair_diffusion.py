"""``FairDiffusionPipeline``: Stable Diffusion with semantic guidance (SEGA) and fairness instructions.

A drop-in successor of diffusers' deprecated ``SemanticStableDiffusionPipeline``: the same components, the same
argument names (``editing_prompt``, ``reverse_editing_direction``, ``edit_guidance_scale``, ``edit_warmup_steps``,
``edit_cooldown_steps``, ``edit_threshold``, ``edit_momentum_scale``, ``edit_mom_beta``, ``edit_weights``,
``editing_prompt_embeddings``, ``sem_guidance``) and, for a whole-batch edit, the same latents for the same
seeds. On top of it:

* per-image edits (``edits=[[...], [...], ...]``): each image of a batch has its own concepts and directions,
  all evaluated in one batched UNet call per step (the public Fair Diffusion code runs one call per image);
* fairness instructions (``fairness=FairnessInstruction(...)``): each image gets a group with exact counts and
  a seeded assignment, and is guided toward it and away from the other groups; the output says which group
  each image was given (:attr:`FairDiffusionPipelineOutput.assignments`);
* no host copy or host sync inside the denoising loop (the reference copies every estimate to the CPU at every
  step), the guidance maths in float32 (fp16/bf16 safe);
* schedulers whose loop runs more iterations than ``num_inference_steps`` (PNDM, Heun) work (the reference
  fails on them with an IndexError); the step index of warmup/cooldown is the loop index, as in the reference;
* concise errors instead of silent behaviour: edits with ``guidance_scale <= 1`` (the reference ignores them),
  bad knobs and bad proportions raise :class:`~trustvl.errors.TrustVLInputError` before any computation.

Differences from the reference, all documented here: prompts longer than the tokenizer's limit are truncated
with their end token kept (as ``StableDiffusionPipeline`` does; the reference cuts the end token off); the
reference's ``editing_prompt_embeddings`` with several prompts interleaves concepts across prompts, here each
concept applies to every prompt; a string ``negative_prompt`` applies to every prompt (the reference fails
there with several prompts); per-concept lists must have one entry per concept (the reference ignores extra
entries); the reference's per-step estimate attributes (``uncond_estimates`` ...) are not kept. The guidance
maths and its own documented differences are in :mod:`trustvl.pipelines.semantic_guidance`.

Speed: the loop never waits for the GPU, so the UNet's own speed is what is left; ``pipe.unet.compile()`` is
the lever (keep the batch shape fixed between calls to avoid recompiling). Measured numbers are in
``benchmarks/results/fair_diffusion_speed_h200.json`` (``benchmarks/bench_fair_diffusion_speed.py``).
"""

import inspect
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers.image_processor import VaeImageProcessor
from diffusers.loaders import StableDiffusionLoraLoaderMixin, TextualInversionLoaderMixin
from diffusers.models import AutoencoderKL, UNet2DConditionModel
from diffusers.pipelines.pipeline_utils import DiffusionPipeline, StableDiffusionMixin
from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
from diffusers.schedulers import KarrasDiffusionSchedulers
from diffusers.utils import BaseOutput, logging
from diffusers.utils.torch_utils import randn_tensor
from transformers import CLIPImageProcessor, CLIPTextModel, CLIPTokenizer

from trustvl.errors import TrustVLInputError
from trustvl.pipelines.fairness_instruction import (
    FAIR_DIFFUSION_MOMENTUM,
    FairnessInstruction,
    GroupAssignment,
    assign_groups,
    check_instructions,
    given_assignments,
    resolve_subjects,
)
from trustvl.pipelines.semantic_guidance import (
    EditConcept,
    SemanticGuidance,
)
from trustvl.utils.checks import check_number

__all__ = [
    "FairDiffusionPipeline",
    "FairDiffusionPipelineOutput",
    "FairGenerationPlan",
    "concepts_from_sega_arguments",
]

logger = logging.get_logger(__name__)

#: Momentum defaults: SEGA's (diffusers' pipeline) and, when ``fairness`` is given, the Fair Diffusion paper's.
SEGA_MOMENTUM = (0.1, 0.4)


@dataclass
class FairDiffusionPipelineOutput(BaseOutput):
    """Output of :class:`FairDiffusionPipeline`.

    Args:
        images: PIL images, a numpy array ``[N, H, W, 3]``, a tensor, or latents (``output_type="latent"``).
        nsfw_content_detected: per image, or None without a safety checker.
        assignments: per image, the groups it was guided toward (None without ``fairness``).
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    nsfw_content_detected: list[bool] | None = None
    assignments: list[GroupAssignment] | None = None


def _per_concept(name: str, value: Any, count: int) -> list[Any]:
    """A scalar for every concept, or a list with exactly one value per concept."""
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise TrustVLInputError(f"{name} has {len(value)} values for {count} editing concept(s)")
        return list(value)
    return [value] * count


def concepts_from_sega_arguments(
    editing_prompt: str | Sequence[str] | None = None,
    editing_prompt_embeddings: torch.Tensor | None = None,
    reverse_editing_direction: bool | Sequence[bool] = False,
    edit_guidance_scale: float | Sequence[float] = 5,
    edit_warmup_steps: int | Sequence[int] = 10,
    edit_cooldown_steps: int | Sequence[int] | None = None,
    edit_threshold: float | Sequence[float] = 0.9,
    edit_weights: Sequence[float] | None = None,
) -> list[EditConcept]:
    """The :class:`EditConcept` list that diffusers' SEGA arguments describe (one scalar or one value per concept)."""
    if editing_prompt is not None and editing_prompt_embeddings is not None:
        raise TrustVLInputError("pass editing_prompt or editing_prompt_embeddings, not both")
    if editing_prompt_embeddings is not None:
        if editing_prompt_embeddings.ndim != 3:
            raise TrustVLInputError(
                f"editing_prompt_embeddings has shape {tuple(editing_prompt_embeddings.shape)}; "
                "expected [concepts, seq, dim]"
            )
        texts: list[str | None] = [None] * editing_prompt_embeddings.shape[0]
    elif editing_prompt is None or (isinstance(editing_prompt, (list, tuple)) and not editing_prompt):
        return []
    else:
        texts = [editing_prompt] if isinstance(editing_prompt, str) else list(editing_prompt)
    n = len(texts)
    knobs = {
        "reverse": _per_concept("reverse_editing_direction", reverse_editing_direction, n),
        "scale": _per_concept("edit_guidance_scale", edit_guidance_scale, n),
        "warmup_steps": _per_concept("edit_warmup_steps", edit_warmup_steps, n),
        "cooldown_steps": _per_concept("edit_cooldown_steps", edit_cooldown_steps, n),
        "threshold": _per_concept("edit_threshold", edit_threshold, n),
        "weight": _per_concept("edit_weights", 1.0 if edit_weights is None else list(edit_weights), n),
    }
    return [
        EditConcept(
            text,
            prompt_embeds=None if editing_prompt_embeddings is None else editing_prompt_embeddings[c],
            **{key: values[c] for key, values in knobs.items()},
        )
        for c, text in enumerate(texts)
    ]


class FairDiffusionPipeline(
    DiffusionPipeline, StableDiffusionMixin, TextualInversionLoaderMixin, StableDiffusionLoraLoaderMixin
):
    """Stable Diffusion with semantic guidance per image, and fairness instructions (Fair Diffusion).

    Built like ``StableDiffusionPipeline``: ``FairDiffusionPipeline.from_pretrained(<any SD id or folder>)`` or
    ``FairDiffusionPipeline.from_pipe(existing_sd_pipeline)`` (components are shared, not copied).

    Example::

        pipe = FairDiffusionPipeline.from_pretrained(sd_id_or_folder, torch_dtype=torch.bfloat16).to("cuda")
        gender = FairnessInstruction("gender", {"female person": 0.5, "male person": 0.5})
        out = pipe("a photo of the face of a firefighter", num_images_per_prompt=8, guidance_scale=7.0,
                   fairness=gender, generator=torch.Generator("cuda").manual_seed(0))
        out.images, [a["gender"] for a in out.assignments]   # 4 of each, in a seeded order

        # diffusers' SemanticStableDiffusionPipeline arguments work unchanged:
        pipe("a photo of a cat", editing_prompt=["smiling", "glasses"], reverse_editing_direction=[False, True],
             edit_warmup_steps=10, edit_guidance_scale=5, edit_threshold=0.9)

    Args:
        vae: ``AutoencoderKL`` between images and latents.
        text_encoder: ``CLIPTextModel``; tokenizer: its ``CLIPTokenizer``.
        unet: ``UNet2DConditionModel`` that denoises the latents.
        scheduler: any diffusers scheduler of Stable Diffusion (DDIM, PNDM, Euler, DPM-Solver, ...).
        safety_checker / feature_extractor: optional, as in ``StableDiffusionPipeline``.
        requires_safety_checker: only warns when the safety checker is missing.
    """

    model_cpu_offload_seq = "text_encoder->unet->vae"
    _optional_components = ["safety_checker", "feature_extractor"]
    _exclude_from_cpu_offload = ["safety_checker"]
    _callback_tensor_inputs = ["latents"]

    def __init__(
        self,
        vae: AutoencoderKL,
        text_encoder: CLIPTextModel,
        tokenizer: CLIPTokenizer,
        unet: UNet2DConditionModel,
        scheduler: KarrasDiffusionSchedulers,
        safety_checker: StableDiffusionSafetyChecker | None = None,
        feature_extractor: CLIPImageProcessor | None = None,
        requires_safety_checker: bool = True,
    ) -> None:
        super().__init__()
        if safety_checker is not None and feature_extractor is None:
            raise TrustVLInputError("a safety_checker needs a feature_extractor; pass both or neither")
        if safety_checker is None and requires_safety_checker:
            logger.warning("FairDiffusionPipeline runs without a safety checker (safety_checker=None).")
        self.register_modules(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=safety_checker,
            feature_extractor=feature_extractor,
        )
        self.vae_scale_factor = (
            2 ** (len(self.vae.config.block_out_channels) - 1) if self.vae is not None else 8
        )
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor)
        self.register_to_config(requires_safety_checker=requires_safety_checker)

    def to_json_string(self) -> str:
        """``model_index.json`` naming ``StableDiffusionPipeline``, so plain diffusers loads a saved folder.

        Fair Diffusion is a way of sampling, not new weights: ``DiffusionPipeline.from_pretrained(folder)``
        gives a ``StableDiffusionPipeline``, and ``FairDiffusionPipeline.from_pretrained(folder)`` this class.
        """
        index = json.loads(super().to_json_string())
        index["_class_name"] = "StableDiffusionPipeline"
        return json.dumps(index, indent=2, sort_keys=True) + "\n"

    # ------------------------------------------------------------------ properties of the current call
    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self._guidance_scale > 1.0

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    # ------------------------------------------------------------------ inputs
    def check_inputs(
        self,
        prompt: str | list[str] | None,
        height: int,
        width: int,
        num_inference_steps: int,
        guidance_scale: float,
        num_images_per_prompt: int,
        callback_steps: int | None,
        negative_prompt: str | list[str] | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] | None = None,
        output_type: str | None = "pil",
    ) -> None:
        """Raise :class:`TrustVLInputError` naming the first bad value (edits are checked where built)."""
        if height % 8 or width % 8:
            raise TrustVLInputError(f"height={height} and width={width} must be divisible by 8")
        if (
            isinstance(num_inference_steps, bool)
            or not isinstance(num_inference_steps, int)
            or num_inference_steps < 1
        ):
            raise TrustVLInputError(
                f"num_inference_steps={num_inference_steps!r} must be a positive whole number"
            )
        if (
            isinstance(num_images_per_prompt, bool)
            or not isinstance(num_images_per_prompt, int)
            or num_images_per_prompt < 1
        ):
            raise TrustVLInputError(
                f"num_images_per_prompt={num_images_per_prompt!r} must be a positive whole number"
            )
        if not isinstance(guidance_scale, (int, float)) or math.isnan(guidance_scale) or guidance_scale < 0:
            raise TrustVLInputError(f"guidance_scale={guidance_scale!r} must be a number >= 0")
        if callback_steps is not None and (not isinstance(callback_steps, int) or callback_steps <= 0):
            raise TrustVLInputError(f"callback_steps={callback_steps!r} must be a positive whole number")
        unknown = [
            k for k in callback_on_step_end_tensor_inputs or () if k not in self._callback_tensor_inputs
        ]
        if unknown:
            raise TrustVLInputError(
                f"callback_on_step_end_tensor_inputs names {unknown}; allowed: {self._callback_tensor_inputs}"
            )
        if (prompt is None) == (prompt_embeds is None):
            raise TrustVLInputError("pass exactly one of prompt and prompt_embeds")
        if prompt is not None:
            texts = [prompt] if isinstance(prompt, str) else prompt
            if not isinstance(texts, list) or not texts or not all(isinstance(p, str) for p in texts):
                raise TrustVLInputError(f"prompt={prompt!r} must be a text or a non-empty list of texts")
        if negative_prompt is not None and negative_prompt_embeds is not None:
            raise TrustVLInputError("pass negative_prompt or negative_prompt_embeds, not both")
        batch = len(texts) if prompt is not None else prompt_embeds.shape[0]
        if isinstance(negative_prompt, list) and len(negative_prompt) != batch:
            raise TrustVLInputError(f"negative_prompt has {len(negative_prompt)} texts for {batch} prompt(s)")
        if (
            prompt_embeds is not None
            and negative_prompt_embeds is not None
            and prompt_embeds.shape != negative_prompt_embeds.shape
        ):
            raise TrustVLInputError(
                f"prompt_embeds {tuple(prompt_embeds.shape)} and negative_prompt_embeds "
                f"{tuple(negative_prompt_embeds.shape)} must have the same shape"
            )
        if output_type not in ("pil", "np", "pt", "latent"):
            raise TrustVLInputError(f"output_type={output_type!r}: expected 'pil', 'np', 'pt' or 'latent'")

    def prepare_edits(
        self,
        shared: Sequence[EditConcept],
        edits: Sequence[EditConcept] | Sequence[Sequence[EditConcept]] | None,
        fairness: FairnessInstruction | Sequence[FairnessInstruction] | None,
        batch_size: int,
        num_images_per_prompt: int,
        fairness_seed: int,
        subjects: Sequence[str | None] | None = None,
        assignments: Sequence[Mapping[str, str] | GroupAssignment] | None = None,
    ) -> tuple[list[list[EditConcept]], list[GroupAssignment] | None]:
        """Per image (prompt-major, as the latents): the concepts of ``shared``, then ``edits``, then ``fairness``.

        ``edits`` is either one list for the whole batch or one list per image (``batch_size ·
        num_images_per_prompt`` lists); ``subjects``: one per prompt, for fairness guidance texts in context;
        ``assignments``: each image's groups, assigned beforehand (e.g. by
        :meth:`FairGenerationPlan.assign` for exact counts over several calls), else assigned here by
        :func:`~trustvl.pipelines.fairness_instruction.assign_groups` (exact counts per prompt of this call).
        """
        num_images = batch_size * num_images_per_prompt
        per_image: list[list[EditConcept]] = [list(shared) for _ in range(num_images)]
        if edits is not None:
            items = list(edits)
            if all(isinstance(e, EditConcept) for e in items):
                for concepts in per_image:
                    concepts.extend(items)
            elif all(isinstance(e, (list, tuple)) for e in items):
                if len(items) != num_images:
                    raise TrustVLInputError(
                        f"edits has {len(items)} per-image lists for {num_images} images "
                        f"({batch_size} prompt(s) x {num_images_per_prompt})"
                    )
                for concepts, own in zip(per_image, items):
                    bad = [e for e in own if not isinstance(e, EditConcept)]
                    if bad:
                        raise TrustVLInputError(f"edits holds {bad[0]!r}; expected EditConcept objects")
                    concepts.extend(own)
            else:
                raise TrustVLInputError(
                    "edits must be a list of EditConcept (whole batch) or one such list per image"
                )
        if fairness is None:
            if assignments is not None:
                raise TrustVLInputError("fairness_assignments needs the fairness instructions (fairness=...)")
            return per_image, None
        instructions = check_instructions(fairness)
        if assignments is None:
            assignments = []
            for p in range(batch_size):
                assignments += assign_groups(
                    instructions,
                    num_images_per_prompt,
                    seed=fairness_seed,
                    prompt_index=p,
                    first_image_index=p * num_images_per_prompt,
                )
        else:
            assignments = given_assignments(instructions, assignments, num_images_per_prompt, num_images)
        for assignment in assignments:
            for instruction in instructions:
                per_image[assignment.image_index] += instruction.edit_concepts(
                    assignment[instruction.attribute],
                    subjects[assignment.prompt_index] if subjects is not None else None,
                )
        return per_image, assignments

    # ------------------------------------------------------------------ text
    def _encode_texts(self, texts: list[str], device: torch.device, clip_skip: int | None) -> torch.Tensor:
        texts = self.maybe_convert_prompt(texts, self.tokenizer)  # textual-inversion tokens, if any
        limit = self.tokenizer.model_max_length
        tokens = self.tokenizer(
            texts, padding="max_length", max_length=limit, truncation=True, return_tensors="pt"
        )
        full = self.tokenizer(texts, padding="longest", return_tensors="pt").input_ids
        if full.shape[-1] > tokens.input_ids.shape[-1]:
            logger.warning(f"Text longer than {limit} tokens was truncated: {texts}")
        mask = None
        if getattr(self.text_encoder.config, "use_attention_mask", False):
            mask = tokens.attention_mask.to(device)
        ids = tokens.input_ids.to(device)
        if clip_skip is None:
            embeds = self.text_encoder(ids, attention_mask=mask)[0]
        else:
            hidden = self.text_encoder(ids, attention_mask=mask, output_hidden_states=True).hidden_states
            embeds = self.text_encoder.text_model.final_layer_norm(hidden[-(clip_skip + 1)])
        return embeds.to(dtype=self.text_encoder.dtype, device=device)

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        device: torch.device,
        num_images_per_prompt: int,
        do_classifier_free_guidance: bool,
        negative_prompt: str | list[str] | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        clip_skip: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(prompt embeddings, negative embeddings or None), each repeated ``num_images_per_prompt`` times."""
        if prompt_embeds is None:
            prompt_embeds = self._encode_texts(
                [prompt] if isinstance(prompt, str) else list(prompt), device, clip_skip
            )
        batch = prompt_embeds.shape[0]
        if do_classifier_free_guidance and negative_prompt_embeds is None:
            negatives = negative_prompt if negative_prompt is not None else ""
            negatives = [negatives] * batch if isinstance(negatives, str) else list(negatives)
            negative_prompt_embeds = self._encode_texts(negatives, device, clip_skip)
        prompt_embeds = prompt_embeds.to(device).repeat_interleave(num_images_per_prompt, dim=0)
        if do_classifier_free_guidance:
            negative_prompt_embeds = negative_prompt_embeds.to(device=device, dtype=prompt_embeds.dtype)
            negative_prompt_embeds = negative_prompt_embeds.repeat_interleave(num_images_per_prompt, dim=0)
        else:
            negative_prompt_embeds = None
        return prompt_embeds, negative_prompt_embeds

    def encode_concepts(
        self, concepts: Sequence[EditConcept], device: torch.device, dtype: torch.dtype, clip_skip: int | None
    ) -> torch.Tensor:
        """Text-encoder outputs ``[len(concepts), seq, dim]``; each distinct text is encoded once."""
        if not concepts:
            return torch.empty(0, device=device, dtype=dtype)
        texts = sorted({c.prompt for c in concepts if c.prompt is not None})
        table = dict(zip(texts, self._encode_texts(texts, device, clip_skip))) if texts else {}
        rows = [table[c.prompt] if c.prompt is not None else c.prompt_embeds.to(device) for c in concepts]
        return torch.stack(rows).to(dtype)

    # ------------------------------------------------------------------ latents, scheduler, images
    def prepare_latents(
        self,
        num_images: int,
        num_channels: int,
        height: int,
        width: int,
        dtype: torch.dtype,
        device: torch.device,
        generator: torch.Generator | list[torch.Generator] | None,
        latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        shape = (num_images, num_channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        if isinstance(generator, list) and len(generator) != num_images:
            raise TrustVLInputError(f"{len(generator)} generators for {num_images} images")
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise TrustVLInputError(f"latents have shape {tuple(latents.shape)}; expected {shape}")
        else:
            latents = latents.to(device=device, dtype=dtype)
        return latents * self.scheduler.init_noise_sigma

    def prepare_extra_step_kwargs(self, generator: Any, eta: float) -> dict[str, Any]:
        """``eta`` and ``generator`` for schedulers whose ``step`` takes them."""
        accepted = set(inspect.signature(self.scheduler.step).parameters)
        return {k: v for k, v in (("eta", eta), ("generator", generator)) if k in accepted}

    def run_safety_checker(self, image: torch.Tensor, device: torch.device, dtype: torch.dtype):
        if self.safety_checker is None:
            return image, None
        pil = self.image_processor.postprocess(image, output_type="pil")
        features = self.feature_extractor(pil, return_tensors="pt").to(device)
        return self.safety_checker(images=image, clip_input=features.pixel_values.to(dtype))

    # ------------------------------------------------------------------ the call
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 7.5,
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, torch.Tensor], None] | None = None,
        callback_steps: int = 1,
        editing_prompt: str | list[str] | None = None,
        editing_prompt_embeddings: torch.Tensor | None = None,
        reverse_editing_direction: bool | list[bool] = False,
        edit_guidance_scale: float | list[float] = 5,
        edit_warmup_steps: int | list[int] = 10,
        edit_cooldown_steps: int | list[int] | None = None,
        edit_threshold: float | list[float] = 0.9,
        edit_momentum_scale: float | None = None,
        edit_mom_beta: float | None = None,
        edit_weights: list[float] | None = None,
        sem_guidance: list[torch.Tensor] | torch.Tensor | None = None,
        edits: Sequence[EditConcept] | Sequence[Sequence[EditConcept]] | None = None,
        fairness: FairnessInstruction | Sequence[FairnessInstruction] | None = None,
        fairness_seed: int | None = None,
        fairness_subjects: str | Sequence[str] | Mapping[str, str] | None = None,
        fairness_assignments: Sequence[Mapping[str, str] | GroupAssignment] | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        cross_attention_kwargs: dict[str, Any] | None = None,
        clip_skip: int | None = None,
        callback_on_step_end: Callable[..., dict[str, torch.Tensor]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ) -> FairDiffusionPipelineOutput | tuple:
        """Generate images with semantic guidance.

        Arguments up to ``sem_guidance`` are those of diffusers' ``SemanticStableDiffusionPipeline`` in the same
        order, with the same defaults (per-concept knobs take one value or a list with one value per concept;
        momentum defaults to 0.1 / β 0.4, or the paper's 0.5 / 0.6 when ``fairness`` is given).

        Args:
            edits: :class:`~trustvl.pipelines.semantic_guidance.EditConcept` objects, either one list applied to
                every image, or one list per image (``len(prompt) · num_images_per_prompt`` lists, prompt-major).
            fairness: one :class:`~trustvl.pipelines.fairness_instruction.FairnessInstruction` or several (one per
                attribute); the ``num_images_per_prompt`` images of each prompt are split among the groups.
            fairness_seed: seed of the group assignment; default the (first) generator's seed, else 0.
            fairness_subjects: what each prompt shows (one text, or one per prompt), for fairness guidance texts
                with a ``{subject}`` field ("a photo of a female {subject}"); default the SynthWorld occupation
                the prompt names; a ``{prompt: subject}`` mapping also works.
            fairness_assignments: each image's groups (``{attribute: group}`` or
                :class:`~trustvl.pipelines.fairness_instruction.GroupAssignment`, one per image, prompt-major),
                assigned beforehand, e.g. by :meth:`FairGenerationPlan.assign` so that counts are exact over
                several calls; default: assigned per prompt of this call (exact counts, ``fairness_seed``).
            callback_on_step_end: ``f(pipe, step, timestep, {"latents": ...})`` returning tensors to replace.

        Concepts from ``editing_prompt``, ``edits`` and ``fairness`` add up per image. Returns
        :class:`FairDiffusionPipelineOutput` (or ``(images, nsfw, assignments)`` with ``return_dict=False``).
        """
        height = height or self.unet.config.sample_size * self.vae_scale_factor
        width = width or self.unet.config.sample_size * self.vae_scale_factor
        # 1. check every input before any work
        self.check_inputs(
            prompt,
            height,
            width,
            num_inference_steps,
            guidance_scale,
            num_images_per_prompt,
            callback_steps,
            negative_prompt,
            prompt_embeds,
            negative_prompt_embeds,
            callback_on_step_end_tensor_inputs,
            output_type,
        )
        self._guidance_scale = float(guidance_scale)
        self._interrupt = False
        batch_size = (
            (1 if isinstance(prompt, str) else len(prompt)) if prompt is not None else prompt_embeds.shape[0]
        )
        num_images = batch_size * num_images_per_prompt
        shared = concepts_from_sega_arguments(
            editing_prompt,
            editing_prompt_embeddings,
            reverse_editing_direction,
            edit_guidance_scale,
            edit_warmup_steps,
            edit_cooldown_steps,
            edit_threshold,
            edit_weights,
        )
        if fairness_seed is None:
            first = generator[0] if isinstance(generator, list) else generator
            fairness_seed = int(first.initial_seed()) if first is not None else 0
        subjects = None
        if fairness is not None and any(i.needs_subject for i in check_instructions(fairness)):
            if prompt is None:
                raise TrustVLInputError(
                    "fairness guidance in context needs the prompt texts (or fairness_subjects), not prompt_embeds"
                    if fairness_subjects is None
                    else "fairness_subjects needs prompt texts to pair with; got prompt_embeds"
                )
            subjects = resolve_subjects(
                fairness, [prompt] if isinstance(prompt, str) else list(prompt), fairness_subjects
            )
        concepts, assignments = self.prepare_edits(
            shared, edits, fairness, batch_size, num_images_per_prompt, fairness_seed, subjects,
            fairness_assignments,
        )  # fmt: skip
        default_momentum = FAIR_DIFFUSION_MOMENTUM if fairness is not None else SEGA_MOMENTUM
        device = self._execution_device
        # the schedule first: a step index counts loop iterations, which some schedulers make more than
        # num_inference_steps (PNDM, Heun); a host copy of it for scheduler.step, which then never syncs
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        host_timesteps = timesteps.cpu()
        self._num_timesteps = len(timesteps)
        guidance = SemanticGuidance(
            concepts,
            num_steps=len(timesteps),
            momentum_scale=default_momentum[0] if edit_momentum_scale is None else edit_momentum_scale,
            momentum_beta=default_momentum[1] if edit_mom_beta is None else edit_mom_beta,
            device=device,
        )
        if (guidance.enabled or sem_guidance is not None) and not self.do_classifier_free_guidance:
            raise TrustVLInputError(
                f"semantic guidance needs classifier-free guidance: guidance_scale={guidance_scale!r} must be > 1 "
                "when editing concepts, fairness or sem_guidance are given"
            )
        if sem_guidance is not None and len(sem_guidance) < len(timesteps):
            raise TrustVLInputError(
                f"sem_guidance has {len(sem_guidance)} steps for {len(timesteps)} timesteps"
            )

        # 2. text: [negative (N), prompt (N), concept rows (R)] for the UNet
        prompt_embeds, negative_prompt_embeds = self.encode_prompt(
            prompt,
            device,
            num_images_per_prompt,
            self.do_classifier_free_guidance,
            negative_prompt,
            prompt_embeds,
            negative_prompt_embeds,
            clip_skip,
        )
        if self.do_classifier_free_guidance:
            parts = [negative_prompt_embeds, prompt_embeds]
            if guidance.enabled:
                concept_embeds = self.encode_concepts(
                    guidance.row_concepts, device, prompt_embeds.dtype, clip_skip
                )
                if concept_embeds.shape[1:] != prompt_embeds.shape[1:]:
                    raise TrustVLInputError(
                        f"concept embeddings {tuple(concept_embeds.shape[1:])} do not match the prompt's "
                        f"{tuple(prompt_embeds.shape[1:])}"
                    )
                parts.append(concept_embeds)
            encoder_states = torch.cat(parts)
            images = torch.arange(num_images, device=device)
            model_rows = torch.cat([images, images, guidance.row_image])
        else:
            encoder_states, model_rows = prompt_embeds, None

        # 3. latents
        latents = self.prepare_latents(
            num_images,
            self.unet.config.in_channels,
            height,
            width,
            prompt_embeds.dtype,
            device,
            generator,
            latents,
        )
        extra_step_kwargs = self.prepare_extra_step_kwargs(generator, eta)
        guidance.prepare(latents.shape[2:])
        step_guidance = None
        if sem_guidance is not None:
            step_guidance = torch.stack([g.to(device=device, dtype=torch.float32) for g in sem_guidance])

        # 4. denoising loop: one UNet call per step, no host copies
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, (t, t_host) in enumerate(zip(timesteps, host_timesteps)):
                if self.interrupt:
                    continue
                model_input = latents if model_rows is None else latents.index_select(0, model_rows)
                model_input = self.scheduler.scale_model_input(model_input, t_host)
                noise = self.unet(
                    model_input,
                    t,
                    encoder_hidden_states=encoder_states,
                    cross_attention_kwargs=cross_attention_kwargs,
                    return_dict=False,
                )[0]
                if model_rows is not None:
                    noise_uncond, noise_text = noise[:num_images], noise[num_images : 2 * num_images]
                    noise_concepts = noise[2 * num_images :] if guidance.enabled else None
                    extra = None if step_guidance is None else step_guidance[i]
                    noise = guidance.combine(
                        i, noise_uncond, noise_text, noise_concepts, self._guidance_scale, extra=extra
                    )
                latents = self.scheduler.step(noise, t_host, latents, **extra_step_kwargs, return_dict=False)[
                    0
                ]
                if callback_on_step_end is not None:
                    tensors = {"latents": latents} if "latents" in callback_on_step_end_tensor_inputs else {}
                    latents = (callback_on_step_end(self, i, t, tensors) or {}).get("latents", latents)
                if callback is not None and i % callback_steps == 0:
                    callback(i // getattr(self.scheduler, "order", 1), t, latents)
                progress_bar.update()

        # 5. images
        if output_type == "latent":
            image, nsfw = latents, None
        else:
            image = self.vae.decode(
                latents / self.vae.config.scaling_factor, return_dict=False, generator=generator
            )[0]
            image, nsfw = self.run_safety_checker(image, device, prompt_embeds.dtype)
            denormalize = [True] * image.shape[0] if nsfw is None else [not flagged for flagged in nsfw]
            image = self.image_processor.postprocess(
                image, output_type=output_type, do_denormalize=denormalize
            )
        self.maybe_free_model_hooks()
        if not return_dict:
            return image, nsfw, assignments
        return FairDiffusionPipelineOutput(images=image, nsfw_content_detected=nsfw, assignments=assignments)


@dataclass(frozen=True)
class FairGenerationPlan:
    """Fair Diffusion for a generation job: the instructions (one per attribute) and the SEGA momentum.

    The generation loop (:mod:`trustvl.pipelines.generation`) calls its methods: :meth:`check` before loading
    models, :meth:`pipeline` to wrap an SD pipeline, :meth:`assign` for the exact, seeded groups of one
    prompt's images (all of them, before batching), :meth:`call_kwargs` for a batch of them.

    Args:
        instructions: :class:`FairnessInstruction` objects, one per attribute.
        momentum_scale: SEGA momentum ``s_m`` (>= 0; paper 0.5).
        momentum_beta: SEGA momentum β in [0, 1) (paper 0.6).
        subjects: ``{prompt: subject}`` for guidance texts in context (``{subject}``); a prompt not listed
            gets the SynthWorld occupation it names.
    """

    instructions: tuple[FairnessInstruction, ...]
    momentum_scale: float = FAIR_DIFFUSION_MOMENTUM[0]
    momentum_beta: float = FAIR_DIFFUSION_MOMENTUM[1]
    subjects: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        instructions = tuple(check_instructions(self.instructions))
        if not instructions:
            raise TrustVLInputError("a fairness plan needs at least one FairnessInstruction")
        object.__setattr__(self, "instructions", instructions)
        if self.subjects is not None:
            if not isinstance(self.subjects, Mapping):
                raise TrustVLInputError(f"subjects={self.subjects!r}; expected a mapping {{prompt: subject}}")
            object.__setattr__(self, "subjects", dict(self.subjects))
        check_number("edit_momentum_scale", self.momentum_scale, 0)
        check_number("edit_mom_beta", self.momentum_beta, 0, 1, max_open=True)

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(ins.attribute for ins in self.instructions)

    def check(self, num_images: int, prompts: Sequence[str] = ()) -> None:
        """Raise :class:`TrustVLInputError` when ``num_images`` images per prompt cannot follow the plan, or a
        prompt has no subject for guidance in context."""
        assign_groups(self.instructions, num_images)
        resolve_subjects(self.instructions, prompts, self.subjects)

    def pipeline(self, pipe):
        """``FairDiffusionPipeline.from_pipe(pipe)`` (same components), progress bars off."""
        fair = pipe if isinstance(pipe, FairDiffusionPipeline) else FairDiffusionPipeline.from_pipe(pipe)
        fair.set_progress_bar_config(disable=True)
        return fair

    def assign(self, num_images: int, *, seed: int = 0, prompt_index: int = 0) -> list[dict[str, str]]:
        """``{attribute: group}`` for each of one prompt's ``num_images`` images (:func:`assign_groups`)."""
        found = assign_groups(self.instructions, num_images, seed=seed, prompt_index=prompt_index)
        return [dict(a.groups) for a in found]

    def call_kwargs(self, groups_per_image: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        """The :class:`FairDiffusionPipeline` arguments for a batch of images (in order) whose groups
        :meth:`assign` gave: the pipeline turns them into guidance concepts (one route for every caller)."""
        return {
            "fairness": self.instructions,
            "fairness_assignments": list(groups_per_image),
            "fairness_subjects": self.subjects,
            "edit_momentum_scale": self.momentum_scale,
            "edit_mom_beta": self.momentum_beta,
        }

    def describe(self, num_images: int) -> str:
        """Markdown: the targets, exact counts per prompt and knobs (for dataset cards and reports)."""
        lines = [
            f"Fair Diffusion (semantic guidance; momentum {self.momentum_scale:g}, β {self.momentum_beta:g}): each"
            " image was guided toward the group in its `fair_<attribute>` column and away from the others."
            f" Images per group for {num_images} images per prompt:",
            "",
        ]
        for ins in self.instructions:
            counts = ", ".join(f"{g} {c}" for g, c in ins.counts(num_images).items())
            targets = ", ".join(f"{g} {s:g}" for g, s in ins.groups.items())
            texts = ""
            if ins.prompts:
                texts = "; guided with " + ", ".join(f"'{ins.prompts.get(g, g)}'" for g in ins.group_names)
            lines.append(
                f"- `{ins.attribute}`: {counts} (targets {targets}; edit scale {ins.guidance_scale:g}, warmup"
                f" {ins.warmup_steps}, threshold {ins.threshold:g}{texts})"
            )
        return "\n".join(lines)
