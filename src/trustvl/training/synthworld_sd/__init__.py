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
   long before the small object the caption names (trustvl's choice; 1 disables it;
   ``unsafe_region_weights`` sets it per element, e.g. ``knife=8``). With ``unet_init_from`` the UNet starts
   from another pipeline's UNet, grown by outer levels when its latent grid is coarser (a 2×-down SD from the
   4×-down one; :func:`~trustvl.modeling.synthworld_sd.grow_unet_weights`).
6. The pipeline (``StableDiffusionPipeline``, DPM-Solver++ scheduler, fp16) and the classifier are saved
   under ``<output_dir>/pipeline`` and ``<output_dir>/outcome-classifier``.

Every stage trains through :func:`trustvl.training.core.train` (``accelerate launch`` for several GPUs;
bf16 with ``--bf16``; resumable: a finished stage is skipped, an unfinished one resumes from its last
checkpoint).

Modules: :mod:`.config` (settings), :mod:`.data` (scene pools, latents, captions), :mod:`.loss` (the trained
wrappers and their losses), :mod:`.train` (the run; ``python -m trustvl.training.synthworld_sd``).
"""

from trustvl.training.synthworld_sd.config import SynthWorldSDConfig
from trustvl.training.synthworld_sd.data import (
    CaptionedLatents,
    PoolPixels,
    ScenePool,
    TokenizingCollator,
    encode_pool,
)
from trustvl.training.synthworld_sd.loss import DiffusionLoss, UNetTrainingModule, VAELoss, VAETrainingModule
from trustvl.training.synthworld_sd.train import main, train_synthworld_sd

__all__ = [
    "CaptionedLatents",
    "DiffusionLoss",
    "PoolPixels",
    "ScenePool",
    "SynthWorldSDConfig",
    "TokenizingCollator",
    "UNetTrainingModule",
    "VAELoss",
    "VAETrainingModule",
    "encode_pool",
    "main",
    "train_synthworld_sd",
]
