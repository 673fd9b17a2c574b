"""Settings of ``trustvl train synthworld-sd`` (:class:`SynthWorldSDConfig`): the worlds, the three stages'
steps and the architecture."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trustvl.data_builders.synthworld import UNSAFE_KINDS, SynthWorldConfig, UnsafeConfig
from trustvl.errors import TrustVLInputError
from trustvl.modeling.outcome_classifier import UNSAFE_VALUES
from trustvl.modeling.synthworld_sd import SynthWorldSDArchitecture
from trustvl.training.arguments import TrustVLTrainingArguments
from trustvl.utils.checks import check_int, check_number, check_probability

__all__ = ["UNSAFE_ELEMENTS", "SynthWorldSDConfig"]

#: What an unsafe element can depict (``unsafe_subtype``): the keys of ``unsafe_region_weights``.
UNSAFE_ELEMENTS: tuple[str, ...] = tuple(v for v in UNSAFE_VALUES if v != "none")


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
        unet_channels, vae_channels (`list[int]`): block widths (see ``SynthWorldSDArchitecture``); two VAE
            widths make a 2×-down VAE (32 × 32 latents at 64 px), three the shipped 4×-down one.
        unet_plain_levels (`int`, defaults to 0): outermost UNet levels without attention.
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
        unet_init_from (`str`, *optional*): a pipeline folder whose UNet initialises this run's UNet while the
            VAE is trained afresh: its levels become the innermost ones and the ``unet_channels`` levels added
            outside start fresh (:func:`~trustvl.modeling.synthworld_sd.grow_unet_weights`; e.g. the 4×-down
            SD's UNet inside a 2×-down SD's).
        unsafe_region_weights (`list[str]`): per-element overrides of ``unsafe_region_weight`` as
            ``element=weight`` (elements: gun, knife, blood, syringe), e.g. ``knife=8`` for the thinnest one.
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
    unet_channels: list[int] = field(
        default_factory=lambda: [64, 64, 96, 128], metadata={"help": "UNet widths"}
    )
    vae_channels: list[int] = field(default_factory=lambda: [32, 64], metadata={"help": "VAE widths"})
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
    unet_plain_levels: int = field(default=1, metadata={"help": "outermost UNet levels without attention"})
    unet_init_from: str | None = field(
        default=None,
        metadata={
            "help": "a pipeline folder whose UNet initialises this UNet's inner levels (VAE trained anew)"
        },
    )
    unsafe_region_weights: list[str] = field(
        default_factory=list, metadata={"help": "per-element region weights, e.g. knife=8"}
    )

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise TrustVLInputError("output_dir is required (--output_dir / --out: the run folder)")
        super().__post_init__()
        for name in ("n_biased_scenes", "n_appearance_scenes", "n_test_scenes", "caption_passes"):
            check_int(name, getattr(self, name), 1)
        for name in (
            "gender_strength",
            "skin_strength",
            "unsafe_prob",
            "cfg_dropout",
            "classifier_recon_prob",
        ):
            check_probability(name, getattr(self, name))
        check_number("unsafe_region_weight", self.unsafe_region_weight, 1.0)
        check_int("classifier_image_size", self.classifier_image_size, 32)
        unknown = [k for k in self.unsafe_kinds if k not in UNSAFE_KINDS]
        if unknown or not self.unsafe_kinds:
            raise TrustVLInputError(
                f"unsafe_kinds={list(self.unsafe_kinds)} must be a non-empty subset of {list(UNSAFE_KINDS)}"
            )
        if self.init_from and self.unet_init_from:
            raise TrustVLInputError(
                f"init_from={self.init_from!r} and unet_init_from={self.unet_init_from!r}: expected one of them"
                " (init_from keeps that pipeline's VAE; unet_init_from trains a new VAE)"
            )
        self.element_region_weights()  # validates the overrides
        if len(self.stage_max_seconds) != 3:
            raise TrustVLInputError(
                f"stage_max_seconds={self.stage_max_seconds} must give three limits (VAE, classifier, UNet)"
            )

    @property
    def architecture(self) -> SynthWorldSDArchitecture:
        return SynthWorldSDArchitecture(
            vae_channels=tuple(self.vae_channels),
            unet_channels=tuple(self.unet_channels),
            unet_plain_levels=self.unet_plain_levels,
        )

    def element_region_weights(self) -> dict[str, float]:
        """``unsafe_region_weights`` as ``{element: weight}``."""
        out: dict[str, float] = {}
        for item in self.unsafe_region_weights:
            element, _, value = item.partition("=")
            try:
                weight = float(value)
            except ValueError:
                weight = float("nan")
            if element not in UNSAFE_ELEMENTS or not weight >= 1.0:
                raise TrustVLInputError(
                    f"unsafe_region_weights item {item!r}: expected element=weight with an element of"
                    f" {list(UNSAFE_ELEMENTS)} and a weight >= 1"
                )
            out[element] = weight
        return out

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
