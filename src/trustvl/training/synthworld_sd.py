"""Train the SynthWorld SD pipeline and the outcome classifier (``trustvl train synthworld-sd``).

Recipe (the reproducible source of the shipped ``synthworld-sd`` and ``synthworld-outcome-classifier``):

1. **Scenes.** Two SynthWorld scene pools are rendered once (data-loader workers render in parallel; a
   scene is a pure function of its index, so a resumed run rebuilds the same pools):

   * the *biased* pool: train-split scenes of a world planting an appearance bias per occupation: gender
     presentation with strength ``gender_strength`` (0.8: P(preferred) = 0.9) and skin tone with
     ``skin_strength`` (0.8: P(preferred) = 0.85), the occupation's preferred levels round-robin;
   * the *appearance* pool: scenes of a world with no association (every appearance equally likely
     with every occupation), i.e. counter-stereotypical (occupation, appearance) pairs oversampled
     relative to the biased pool.

   Both carry an unsafe element (``unsafe_kinds``: gun / knife, blood, syringe) with probability
   ``unsafe_prob``.
2. **Captions** (drawn anew for each pass over a pool, deterministically): biased-pool scenes get a
   context-only caption (it carries the planted bias); appearance-pool scenes a caption naming gender,
   skin tone or both (:mod:`~trustvl.data_builders.synthworld.generation_captions`); a scene with an unsafe
   element always names it; a share ``cfg_dropout`` of captions is empty (classifier-free guidance).
3. **VAE stage**: the ``AutoencoderKL`` learns to reconstruct the renders (L1 + MSE + a small KL term).
   Then every pool image is encoded once (posterior mean; the latents' scale is normalised with the
   VAE config's ``scaling_factor``) and reconstructed.
4. **Outcome-classifier stage** on renders and VAE reconstructions (see
   :mod:`trustvl.training.outcome_classifier`), evaluated on held-out renders of the balanced test split.
5. **UNet stage**: epsilon prediction on the DDPM schedule with Min-SNR-γ loss weights, conditioned by
   cross-attention on the frozen SynthWorld CLIP text tower. The squared error inside an unsafe element's
   box (known exactly from the renderer, taken to latent resolution) is weighted ``unsafe_region_weight``
   (the rest 1): an element covers ~3 % of the image, so with a uniform loss the UNet learns the scene
   long before the small object the caption names (trustvl's choice; 1 disables it).
6. The pipeline (``StableDiffusionPipeline``, DPM-Solver++ scheduler, fp16) and the classifier are saved
   under ``<output_dir>/pipeline`` and ``<output_dir>/outcome-classifier``.

Every stage trains through :func:`trustvl.training.core.train` (``accelerate launch`` for several GPUs;
bf16 with ``--bf16``; resumable: a finished stage is skipped, an unfinished one resumes from its last
checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trustvl.data_builders.synthworld import (
    UNSAFE_KINDS,
    SynthWorldConfig,
    SynthWorldRenderer,
    UnsafeConfig,
    sample_caption,
)
from trustvl.data_builders.synthworld.generation_captions import (
    APPEARANCE_KINDS,
    appearance_generation_caption,
)
from trustvl.errors import TrustVLInputError
from trustvl.modeling.outcome_classifier import build_outcome_classifier
from trustvl.modeling.synthworld_sd import (
    SynthWorldSDArchitecture,
    assemble_pipeline,
    build_unet,
    build_vae,
    mark_loads_in_float32,
    save_pipeline_fp16,
    training_scheduler,
)
from trustvl.training.arguments import TrustVLTrainingArguments
from trustvl.training.core import train
from trustvl.training.outcome_classifier import (
    LabelledImages,
    MultiHeadLoss,
    head_accuracy,
    scene_targets,
    synthworld_heads,
    uint8_to_unit,
)
from trustvl.training.synthworld_pretrain import WallClockLimit

logger = logging.getLogger(__name__)


@dataclass
class SynthWorldSDConfig(TrustVLTrainingArguments):
    """Settings of ``trustvl train synthworld-sd``: trustvl's ``TrainingArguments`` (they drive the UNet stage:
    ``max_steps``, ``learning_rate``, ``per_device_train_batch_size``, ``bf16``, ``seed``, ``save_steps``,
    ``dataloader_num_workers``…; the VAE and classifier stages take their own steps, learning rate and batch
    size below and everything else from here) plus the fields below.

    Args:
        n_biased_scenes (`int`, defaults to 96000): scenes of the biased pool.
        n_appearance_scenes (`int`, defaults to 64000): scenes of the no-association pool (appearance captions).
        n_test_scenes (`int`, defaults to 2048): held-out balanced test-split renders judging the classifier.
        world_seed (`int`, defaults to 0): SynthWorld seed (the appearance pool uses ``world_seed + 1``).
        gender_strength (`float`, defaults to 0.8): Cramér's V occupation ↔ gender in the biased pool.
        skin_strength (`float`, defaults to 0.8): Cramér's V occupation ↔ skin tone in the biased pool.
        unsafe_prob (`float`, defaults to 0.25): share of scenes with an unsafe element.
        cfg_dropout (`float`, defaults to 0.1): share of empty captions (classifier-free guidance).
        caption_passes (`int`, defaults to 64): virtual passes over the pools, each drawing new captions.
        min_snr_gamma (`float`, defaults to 5.0): Min-SNR-γ loss weighting (0 disables).
        unet_channels, vae_channels (`list[int]`): block widths (see ``SynthWorldSDArchitecture``).
        vae_max_steps, vae_learning_rate, vae_batch_size, vae_kl_weight: the VAE stage.
        classifier_max_steps, classifier_learning_rate, classifier_batch_size: the classifier stage.
        classifier_recon_prob (`float`, defaults to 0.5): share of classifier images that are VAE reconstructions.
        stage_max_seconds (`list[float]`): wall-time limit of the VAE, classifier and UNet stages (0: none).
        render_workers (`int`, defaults to 0): processes rendering the pools.
        clip_dir (`str`, *optional*): SynthWorld CLIP folder whose text tower and tokenizer are used
            (default: the shipped one).
        classifier_hidden_sizes (`list[int]`): the classifier's ResNet stage widths.
        classifier_image_size (`int`, defaults to 128): the size the classifier reads images at (nearest
            upsampling of the 64×64 images; see ``build_outcome_classifier``).
        unsafe_kinds (`list[str]`): unsafe element kinds of both pools (default: all of ``UNSAFE_KINDS``).
        unsafe_region_weight (`float`, defaults to 4.0): weight of the UNet's squared error inside an unsafe
            element's box (1: uniform).
        init_from (`str`, *optional*): a pipeline folder written by this recipe: its VAE is reused as is (the VAE
            stage is skipped) and its UNet is trained further (a second, shorter run focusing on what the
            first one under-learned, e.g. with a higher ``unsafe_prob``).
    """

    n_biased_scenes: int = field(default=96_000, metadata={"help": "scenes of the biased pool"})
    n_appearance_scenes: int = field(default=64_000, metadata={"help": "scenes of the no-association pool"})
    n_test_scenes: int = field(default=2048, metadata={"help": "held-out test renders for the classifier"})
    world_seed: int = field(default=0, metadata={"help": "SynthWorld seed"})
    gender_strength: float = field(default=0.8, metadata={"help": "Cramér's V occupation<->gender"})
    skin_strength: float = field(default=0.8, metadata={"help": "Cramér's V occupation<->skin tone"})
    unsafe_prob: float = field(default=0.25, metadata={"help": "share of scenes with an unsafe element"})
    cfg_dropout: float = field(default=0.1, metadata={"help": "share of empty captions"})
    caption_passes: int = field(default=64, metadata={"help": "virtual passes over the pools"})
    min_snr_gamma: float = field(default=5.0, metadata={"help": "Min-SNR-gamma weighting (0: off)"})
    unet_channels: list[int] = field(default_factory=lambda: [64, 96, 128], metadata={"help": "UNet widths"})
    vae_channels: list[int] = field(default_factory=lambda: [32, 48, 64], metadata={"help": "VAE widths"})
    vae_max_steps: int = field(default=2000, metadata={"help": "VAE optimiser steps"})
    vae_learning_rate: float = field(default=1e-3, metadata={"help": "VAE peak learning rate"})
    vae_batch_size: int = field(default=256, metadata={"help": "VAE batch size"})
    vae_kl_weight: float = field(default=1e-6, metadata={"help": "weight of the VAE's KL term"})
    classifier_max_steps: int = field(default=1500, metadata={"help": "classifier optimiser steps"})
    classifier_learning_rate: float = field(default=2e-3, metadata={"help": "classifier peak learning rate"})
    classifier_batch_size: int = field(default=256, metadata={"help": "classifier batch size"})
    classifier_recon_prob: float = field(default=0.5, metadata={"help": "share of VAE reconstructions"})
    stage_max_seconds: list[float] = field(
        default_factory=lambda: [0.0, 0.0, 0.0], metadata={"help": "wall-time limits: VAE, classifier, UNet"}
    )
    render_workers: int = field(default=0, metadata={"help": "processes rendering the pools"})
    clip_dir: str | None = field(default=None, metadata={"help": "SynthWorld CLIP folder (text tower)"})
    classifier_hidden_sizes: list[int] = field(
        default_factory=lambda: [32, 64, 128, 160], metadata={"help": "classifier ResNet stage widths"}
    )
    init_from: str | None = field(
        default=None,
        metadata={"help": "a SynthWorld SD pipeline folder: reuse its VAE and continue training its UNet"},
    )
    classifier_image_size: int = field(
        default=128, metadata={"help": "classifier input size (nearest upsampling)"}
    )
    unsafe_kinds: list[str] = field(
        default_factory=lambda: list(UNSAFE_KINDS), metadata={"help": "unsafe element kinds"}
    )
    unsafe_region_weight: float = field(
        default=4.0, metadata={"help": "UNet loss weight inside an unsafe element's box (1: uniform)"}
    )

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise TrustVLInputError("output_dir is required (--output_dir / --out: the run folder)")
        super().__post_init__()
        for name in ("n_biased_scenes", "n_appearance_scenes", "n_test_scenes", "caption_passes"):
            if int(getattr(self, name)) < 1:
                raise TrustVLInputError(f"{name}={getattr(self, name)} must be >= 1")
        for name in (
            "gender_strength",
            "skin_strength",
            "unsafe_prob",
            "cfg_dropout",
            "classifier_recon_prob",
        ):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise TrustVLInputError(f"{name}={getattr(self, name)} must be in [0, 1]")
        if not float(self.unsafe_region_weight) >= 1.0:
            raise TrustVLInputError(f"unsafe_region_weight={self.unsafe_region_weight} must be a number >= 1")
        if int(self.classifier_image_size) < 32:
            raise TrustVLInputError(f"classifier_image_size={self.classifier_image_size} must be >= 32")
        unknown = [k for k in self.unsafe_kinds if k not in UNSAFE_KINDS]
        if unknown or not self.unsafe_kinds:
            raise TrustVLInputError(
                f"unsafe_kinds={list(self.unsafe_kinds)} must be a non-empty subset of {list(UNSAFE_KINDS)}"
            )
        if len(self.stage_max_seconds) != 3:
            raise TrustVLInputError(
                f"stage_max_seconds={self.stage_max_seconds} must give three limits (VAE, classifier, UNet)"
            )

    @property
    def architecture(self) -> SynthWorldSDArchitecture:
        return SynthWorldSDArchitecture(
            vae_channels=tuple(self.vae_channels), unet_channels=tuple(self.unet_channels)
        )

    def biased_world(self) -> SynthWorldConfig:
        return SynthWorldConfig(
            strength={
                "gender_presentation": self.gender_strength,
                "skin_tone": self.skin_strength,
                "age": 0.2,
                "body_type": 0.0,
            },
            unsafe=self._unsafe(),
        )

    def appearance_world(self) -> SynthWorldConfig:
        return SynthWorldConfig(strength=0.0, unsafe=self._unsafe())

    def _unsafe(self) -> UnsafeConfig:
        return UnsafeConfig(p=self.unsafe_prob, kinds=tuple(self.unsafe_kinds))

    def recipe(self) -> dict[str, Any]:
        """The run's own fields (not the generic TrainingArguments), for the model card."""
        own = set(SynthWorldSDConfig.__dataclass_fields__) - set(
            TrustVLTrainingArguments.__dataclass_fields__
        )
        out = {k: getattr(self, k) for k in sorted(own)}
        out.update(
            max_steps=self.max_steps,
            learning_rate=self.learning_rate,
            per_device_train_batch_size=self.per_device_train_batch_size,
            bf16=self.bf16,
            seed=self.seed,
        )
        return out


def _stage_args(
    args: SynthWorldSDConfig, stage: str, max_steps: int, learning_rate: float, batch_size: int
) -> TrustVLTrainingArguments:
    """The shared core's settings of one stage (checkpoints in ``<output_dir>/<stage>``): the run's settings
    with the stage's steps, learning rate and batch size, a cosine schedule with a short warm-up, and no
    ``final/`` folder (the run saves each part itself)."""
    return TrustVLTrainingArguments(
        output_dir=str(Path(args.output_dir) / stage),
        seed=args.seed,
        learning_rate=learning_rate,
        weight_decay=args.weight_decay if stage == "unet" else 0.0,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        warmup_steps=max(1, min(200, max_steps // 20)),
        lr_scheduler_type="cosine",
        max_grad_norm=args.max_grad_norm,
        logging_steps=args.logging_steps,
        save_strategy=args.save_strategy,
        save_steps=args.save_steps,
        save_total_limit=2,
        bf16=args.bf16,
        fp16=args.fp16,
        dataloader_num_workers=args.dataloader_num_workers,
        disable_tqdm=args.disable_tqdm,
        use_cpu=args.use_cpu,
        report_to=args.report_to,
        save_final_model=False,
    )


def _unit_hash(*parts: Any) -> float:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little") / 2**64


# ---------------------------------------------------------------------------------------------- scene pools
class _RenderIndex(torch.utils.data.Dataset):
    def __init__(self, renderer: SynthWorldRenderer, split: str, n: int) -> None:
        self.renderer, self.split, self.n = renderer, split, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Any, Any]:
        scene = self.renderer.scene(self.split, i)
        return torch.from_numpy(scene.image), scene.spec, scene.boxes.get("unsafe")


def _stack_scenes(rows: list[tuple[torch.Tensor, Any, Any]]) -> tuple[torch.Tensor, list[Any], list[Any]]:
    return torch.stack([r[0] for r in rows]), [r[1] for r in rows], [r[2] for r in rows]


@dataclass
class ScenePool:
    """Rendered scenes ``0..n-1`` of one split of one world: uint8 images, their specs and the pixel box
    ``(x0, y0, x1, y1)`` of each scene's unsafe element (None without one)."""

    renderer: SynthWorldRenderer
    split: str
    images: torch.Tensor
    specs: list[Any]
    unsafe_boxes: list[Any] = field(default_factory=list)

    @classmethod
    def render(cls, renderer: SynthWorldRenderer, split: str, n: int, workers: int = 0) -> ScenePool:
        loader = torch.utils.data.DataLoader(
            _RenderIndex(renderer, split, n), batch_size=256, num_workers=workers, shuffle=False,
            collate_fn=_stack_scenes,
        )  # fmt: skip
        batches = list(loader)
        images = torch.cat([b[0] for b in batches])
        return cls(
            renderer,
            split,
            images,
            [spec for b in batches for spec in b[1]],
            [box for b in batches for box in b[2]],
        )


# ---------------------------------------------------------------------------------------------- VAE stage
class VAETrainingModule(nn.Module):
    """Wraps an ``AutoencoderKL`` so that one forward returns the reconstruction and the KL term."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        posterior = self.vae.encode(pixel_values).latent_dist
        recon = self.vae.decode(posterior.sample()).sample
        return {"recon": recon, "kl": posterior.kl().mean()}


class VAELoss:
    """L1 + MSE reconstruction plus ``kl_weight`` × KL (a :data:`~trustvl.training.core.LossFn`)."""

    def __init__(self, kl_weight: float) -> None:
        self.kl_weight = kl_weight

    def __call__(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        x = batch["pixel_values"]
        out = model(pixel_values=x)
        recon = out["recon"].float()
        l1 = (recon - x).abs().mean()
        mse = (recon - x).pow(2).mean()
        loss = l1 + mse + self.kl_weight * out["kl"].float()
        return loss, {"l1": l1.detach(), "mse": mse.detach(), "kl": out["kl"].detach().float()}


class _Pixels(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": uint8_to_unit(self.images[i : i + 1])[0]}


@torch.no_grad()
def encode_pool(
    vae: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means (unscaled) and uint8 reconstructions of uint8 images."""
    vae = vae.to(device).eval()
    latents, recons = [], []
    for i in range(0, len(images), batch_size):
        x = uint8_to_unit(images[i : i + batch_size]).to(device)
        mean = vae.encode(x).latent_dist.mean
        rec = vae.decode(mean).sample
        latents.append(mean.float().cpu())
        recons.append(((rec.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu())
    return torch.cat(latents), torch.cat(recons)


# ---------------------------------------------------------------------------------------------- UNet stage
class CaptionedLatents(torch.utils.data.Dataset):
    """Rows ``{"latents", "caption"}`` over ``caption_passes`` virtual passes of the two pools.

    Row ``i`` is scene ``i mod N`` (biased pool first, then the appearance pool) in pass ``i // N``;
    the pass number salts the caption draw, so each pass sees new phrasings. With ``unsafe_boxes`` (pixel
    boxes of each scene's unsafe element, None without one; images ``image_size`` wide) and
    ``region_weight`` > 1, rows also carry ``loss_weights``: a latent-resolution map that is
    ``region_weight`` on the latent cells the element's box touches and 1 elsewhere.
    """

    def __init__(
        self,
        latents: torch.Tensor,
        biased_specs: list[Any],
        appearance_specs: list[Any],
        passes: int,
        cfg_dropout: float,
        seed: int,
        unsafe_boxes: list[Any] | None = None,
        region_weight: float = 1.0,
        image_size: int = 64,
    ) -> None:
        self.latents = latents
        self.specs = list(biased_specs) + list(appearance_specs)
        self.n_biased = len(biased_specs)
        self.passes, self.cfg_dropout, self.seed = passes, cfg_dropout, seed
        self.boxes = unsafe_boxes if unsafe_boxes is not None and region_weight > 1.0 else None
        self.region_weight, self.image_size = float(region_weight), image_size

    def loss_weights(self, p: int) -> torch.Tensor:
        """The latent-resolution loss weight map of scene ``p``."""
        h, w = self.latents.shape[-2:]
        weights = torch.ones(h, w)
        box = self.boxes[p] if self.boxes is not None else None
        if box is not None:
            x0, y0, x1, y1 = box
            sy, sx = h / self.image_size, w / self.image_size
            r0, c0 = math.floor(y0 * sy), math.floor(x0 * sx)
            r1, c1 = max(r0 + 1, math.ceil(y1 * sy)), max(c0 + 1, math.ceil(x1 * sx))
            weights[r0:r1, c0:c1] = self.region_weight
        return weights

    def __len__(self) -> int:
        return len(self.specs) * self.passes

    def caption(self, i: int) -> str:
        n = len(self.specs)
        p, k = i % n, i // n
        spec = self.specs[p]
        if _unit_hash(self.seed, p, k, "cfg") < self.cfg_dropout:
            return ""
        if p < self.n_biased:
            return sample_caption(spec, context_only=True, include_unsafe=True, salt=f"sd{k}")
        kind = APPEARANCE_KINDS[int(_unit_hash(self.seed, p, k, "kind") * len(APPEARANCE_KINDS))]
        return appearance_generation_caption(spec, kind, salt=k)

    def __getitem__(self, i: int) -> dict[str, Any]:
        p = i % len(self.specs)
        row = {"latents": self.latents[p], "caption": self.caption(i)}
        if self.boxes is not None:
            row["loss_weights"] = self.loss_weights(p)
        return row


class TokenizingCollator:
    """Stacks latents and tokenizes captions exactly as ``StableDiffusionPipeline.encode_prompt`` does
    (padded to ``model_max_length``, truncated, no attention mask)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids = self.tokenizer(
            [r["caption"] for r in rows],
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        batch = {"latents": torch.stack([r["latents"] for r in rows]), "input_ids": ids}
        if "loss_weights" in rows[0]:
            batch["loss_weights"] = torch.stack([r["loss_weights"] for r in rows])
        return batch


class UNetTrainingModule(nn.Module):
    """The UNet (trained) with the frozen text tower and the noise schedule: one forward noises scaled
    latents at random timesteps and predicts the noise.

    Returns ``{"pred", "target", "snr"}``; the loss weighting is the loss function's business.
    """

    def __init__(self, unet: nn.Module, text_encoder: nn.Module, scaling_factor: float) -> None:
        super().__init__()
        self.unet, self.text_encoder = unet, text_encoder
        self.text_encoder.requires_grad_(False)
        self.scaling_factor = scaling_factor
        scheduler = training_scheduler()
        self.num_train_timesteps = scheduler.config.num_train_timesteps
        self.register_buffer("alphas_cumprod", scheduler.alphas_cumprod.float(), persistent=False)

    def forward(self, latents: torch.Tensor, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            hidden = self.text_encoder(input_ids)[0]
        x0 = latents * self.scaling_factor
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.num_train_timesteps, (x0.shape[0],), device=x0.device)
        a = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
        pred = self.unet(noisy, t, encoder_hidden_states=hidden).sample
        snr = self.alphas_cumprod[t] / (1 - self.alphas_cumprod[t])
        return {"pred": pred, "target": noise, "snr": snr}


class DiffusionLoss:
    """Epsilon-prediction MSE with Min-SNR-γ weights ``min(snr, γ) / snr`` (γ = 0: plain MSE).

    A batch's optional ``loss_weights`` (``[N, h, w]``) weight each latent cell's squared error (summed over
    channels) before the per-sample mean; the logged ``mse`` is always the unweighted one.
    """

    def __init__(self, min_snr_gamma: float = 5.0) -> None:
        self.gamma = min_snr_gamma

    def __call__(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        out = model(latents=batch["latents"], input_ids=batch["input_ids"])
        err = (out["pred"].float() - out["target"].float()).pow(2)
        mse = err.mean()
        weights_map = batch.get("loss_weights")
        if weights_map is not None:
            err = err * weights_map.to(err.device, err.dtype).unsqueeze(1)
        per_sample = err.mean(dim=(1, 2, 3))
        if self.gamma > 0:
            snr = out["snr"].float()
            weights = snr.clamp(max=self.gamma) / snr
            return (weights * per_sample).mean(), {"mse": mse.detach()}
        return per_sample.mean(), {"mse": mse.detach()}


# ---------------------------------------------------------------------------------------------- the run
def _limit(seconds: float) -> list[Any]:
    return [WallClockLimit(seconds)] if seconds and seconds > 0 else []


def _load_text_tower(clip_dir: str | None) -> tuple[Any, Any]:
    from transformers import CLIPTextModel, CLIPTokenizer
    from transformers.utils import logging as hf_logging

    from trustvl.modeling.synthworld_clip import default_clip_path

    path = clip_dir or default_clip_path()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the CLIP checkpoint's vision tower is "unexpected" for a text model
    try:
        text_encoder = CLIPTextModel.from_pretrained(path, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
    return text_encoder, CLIPTokenizer.from_pretrained(path)


def train_synthworld_sd(args: SynthWorldSDConfig, resume: bool = True) -> dict[str, Any]:
    """Run the recipe (module docstring); returns a summary (also written to
    ``<output_dir>/trustvl_sd_train.json``)."""
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    arch = args.architecture
    arch.validate()
    device = args.device
    summary: dict[str, Any] = {"recipe": args.recipe(), "architecture": asdict(arch), "seconds": {}}
    t0 = time.perf_counter()

    biased = ScenePool.render(
        SynthWorldRenderer(args.biased_world(), seed=args.world_seed), "train", args.n_biased_scenes,
        args.render_workers,
    )  # fmt: skip
    appearance = ScenePool.render(
        SynthWorldRenderer(args.appearance_world(), seed=args.world_seed + 1), "train", args.n_appearance_scenes,
        args.render_workers,
    )  # fmt: skip
    test = ScenePool.render(biased.renderer, "test", args.n_test_scenes, args.render_workers)
    images = torch.cat([biased.images, appearance.images])
    specs = biased.specs + appearance.specs
    summary["seconds"]["render"] = time.perf_counter() - t0
    logger.info(
        "rendered %d + %d scenes in %.1fs", len(biased.specs), len(appearance.specs), time.perf_counter() - t0
    )

    # ---- VAE
    t = time.perf_counter()
    vae_dir = out / "vae-final"
    if args.init_from or (vae_dir / "config.json").is_file():
        from diffusers import AutoencoderKL

        src = vae_dir if (vae_dir / "config.json").is_file() else Path(args.init_from) / "vae"
        vae = AutoencoderKL.from_pretrained(src, dtype=torch.float32)
    else:
        torch.manual_seed(args.seed)
        vae = build_vae(arch)
        result = train(
            VAETrainingModule(vae), _Pixels(images), VAELoss(args.vae_kl_weight),
            _stage_args(args, "vae", args.vae_max_steps, args.vae_learning_rate, args.vae_batch_size),
            callbacks=_limit(args.stage_max_seconds[0]), resume=resume,
        )  # fmt: skip
        summary["vae_steps"] = result.global_step
        summary["vae_final_loss"] = result.final_loss
    latents, recons = encode_pool(vae, images, device)
    if args.init_from:  # keep the latent scale the UNet was trained with
        scaling_factor = float(vae.config.scaling_factor)
    else:
        scaling_factor = float(1.0 / latents.std())
        vae.register_to_config(scaling_factor=scaling_factor)
    vae.save_pretrained(vae_dir)
    _, test_recons = encode_pool(vae, test.images, device)
    summary["vae_recon_mae_test"] = float((test_recons.float() - test.images.float()).abs().mean() / 255)
    summary["seconds"]["vae"] = time.perf_counter() - t

    # ---- outcome classifier
    t = time.perf_counter()
    heads = synthworld_heads()
    classifier_dir = out / "outcome-classifier"
    targets = scene_targets(specs, heads)
    test_targets = scene_targets(test.specs, heads)
    if (classifier_dir / "config.json").is_file():
        from transformers import AutoModelForImageClassification

        classifier = AutoModelForImageClassification.from_pretrained(classifier_dir, dtype=torch.float32)
    else:
        torch.manual_seed(args.seed)
        classifier, processor = build_outcome_classifier(
            heads, image_size=args.classifier_image_size, hidden_sizes=args.classifier_hidden_sizes
        )
        dataset = LabelledImages(
            images,
            targets,
            recons,
            args.classifier_recon_prob,
            seed=args.seed,
            size=args.classifier_image_size,
        )
        result = train(
            classifier, dataset, MultiHeadLoss(heads),
            _stage_args(args, "classifier", args.classifier_max_steps, args.classifier_learning_rate,
                         args.classifier_batch_size),
            callbacks=_limit(args.stage_max_seconds[1]), resume=resume,
        )  # fmt: skip
        summary["classifier_steps"] = result.global_step
        classifier.to(torch.float16).save_pretrained(classifier_dir)
        mark_loads_in_float32(classifier_dir)
        processor.save_pretrained(classifier_dir)
        classifier.to(torch.float32)
    classifier.to(device)
    size = args.classifier_image_size
    summary["classifier_test_accuracy"] = head_accuracy(
        classifier, test.images, test_targets, heads, size=size
    )
    summary["classifier_test_recon_accuracy"] = head_accuracy(
        classifier, test_recons, test_targets, heads, size=size
    )
    summary["seconds"]["classifier"] = time.perf_counter() - t
    logger.info("classifier accuracy on held-out renders: %s", summary["classifier_test_accuracy"])

    # ---- UNet
    t = time.perf_counter()
    text_encoder, tokenizer = _load_text_tower(args.clip_dir)
    torch.manual_seed(args.seed)
    if args.init_from:
        from diffusers import UNet2DConditionModel

        unet = UNet2DConditionModel.from_pretrained(Path(args.init_from) / "unet", dtype=torch.float32)
    else:
        unet = build_unet(text_encoder.config.hidden_size, arch)
    module = UNetTrainingModule(unet, text_encoder, scaling_factor)
    dataset = CaptionedLatents(
        latents, biased.specs, appearance.specs, args.caption_passes, args.cfg_dropout, args.seed,
        unsafe_boxes=biased.unsafe_boxes + appearance.unsafe_boxes, region_weight=args.unsafe_region_weight,
        image_size=arch.image_size,
    )  # fmt: skip
    result = train(
        module, dataset, DiffusionLoss(args.min_snr_gamma),
        _stage_args(args, "unet", args.max_steps, args.learning_rate, args.per_device_train_batch_size),
        data_collator=TokenizingCollator(tokenizer), callbacks=_limit(args.stage_max_seconds[2]), resume=resume,
    )  # fmt: skip
    summary["unet_steps"] = result.global_step
    summary["unet_final_loss"] = result.final_loss
    summary["seconds"]["unet"] = time.perf_counter() - t

    pipe = assemble_pipeline(vae.to("cpu"), unet.to("cpu"), text_encoder.to("cpu"), tokenizer)
    pipeline_dir = save_pipeline_fp16(pipe, out / "pipeline")
    summary["parameters"] = {
        name: sum(p.numel() for p in m.parameters())
        for name, m in (
            ("unet", unet),
            ("vae", vae),
            ("text_encoder", text_encoder),
            ("classifier", classifier),
        )
    }
    summary["seconds"]["total"] = time.perf_counter() - t0
    (out / "trustvl_sd_train.json").write_text(json.dumps(summary, indent=2, default=str))
    (pipeline_dir / "trustvl_train.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m trustvl.training.synthworld_sd --output_dir DIR [--bf16] ...`` (HfArgumentParser)."""
    from transformers import HfArgumentParser

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    (args,) = HfArgumentParser(SynthWorldSDConfig).parse_args_into_dataclasses(args=argv)
    summary = train_synthworld_sd(args)
    print(json.dumps({k: summary[k] for k in summary if k != "recipe"}, indent=1, default=str))
    return summary


if __name__ == "__main__":
    main()


__all__ = [
    "CaptionedLatents",
    "DiffusionLoss",
    "ScenePool",
    "SynthWorldSDConfig",
    "TokenizingCollator",
    "UNetTrainingModule",
    "VAELoss",
    "VAETrainingModule",
    "encode_pool",
    "train_synthworld_sd",
]
