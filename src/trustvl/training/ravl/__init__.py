"""RaVL mitigation (arXiv 2411.04097; SPEC §3): region-aware fine-tuning through trustvl's training core.

RaVL discovery (:mod:`trustvl.discovery`) finds clusters of image regions that a fine-tuned VLM relies on
spuriously. Mitigation fine-tunes a CLIP so that the class text aligns with the *relevant* regions and the
discovered *spurious* regions carry no class information. The paper's exact loss is not public; trustvl
defines it as follows.

Region flags
------------
Every training image is cut into the same candidate regions as in discovery (default: the 2 x 2 grid of
quadrants). Each region is embedded with the model discovery ran on and assigned to the **nearest medoid**
(highest cosine similarity) among *all* discovery clusters; it is flagged **spurious** when mitigation acts
on that cluster (:class:`SpuriousMedoids`, :func:`spurious_region_flags`). Which of the kept (ranked)
clusters it acts on is ``RaVLConfig.flag_clusters`` (:mod:`.flag_strategies`: ``top1`` — the
top-ranked kept cluster —, ``top_per_class``, ``all_kept``, ``score_weighted``, ``gap_test``, ``gap_test_or_top1``,
``gap_test_two_sided``, ``top1_similar`` — the default, the top one and the kept clusters whose medoid is close
to its medoid). Flags are computed once, before training, and stay fixed. Under
``score_weighted`` a flag has a weight ``w`` in (0, 1] (``region_weight``): the uniform term of a crop and
the counterfactual term of an image (its largest weight) are scaled by it, ``L_align`` becomes
``w·CE(masked image) + (1 − w)·CE(image)`` (mean pooling of crops weighs a region by ``1 − w``); with all
weights 1 everything below is unchanged.

The loss
--------
A batch holds ``B`` images ``x_b`` with labels ``y_b`` and captions ``t_b``, the ``R`` region crops
``x_{b,r}`` of every image with flags ``s_{b,r}`` (1 = spurious), and the ``C`` class prompts
(``"a photo of the digit {name}"``). Let ``x̃_b`` be the **masked image**: ``x_b`` with its spurious cells
filled with black (:func:`masked_image`), i.e. the union of its non-spurious regions (``x̃_b = x_b`` when no
cell is flagged). **One** forward of the model embeds everything a term needs: ``pixel_values`` is the
concatenation of the images, the needed crops and the needed masked images, ``input_ids`` the concatenation
``[t_1..t_B, prompt_1..prompt_C]`` (CLIP accepts different image and text batch sizes). With L2-normalised
embeddings ``v_b`` (images), ``ṽ_b`` (masked images), ``u_b`` (captions), ``z_{b,r}`` (crops), ``T_c``
(prompts), ``s = exp(logit_scale)`` (clamped at ``max_logit_scale``) and ``s̄ = s`` without gradient::

    L = L_CLIP + λ_a · L_align + λ_u · L_uninf          (defaults λ_a = λ_u = 1)

* ``L_CLIP`` — symmetric InfoNCE between images and captions with logits ``s · <v_b, u_b'>``. Positives are
  the pairs whose captions are token-for-token identical (``clip_positives="same_text"``, the default):
  on class-caption data such as spurious digits a batch holds many images of one class with the same
  caption, and plain InfoNCE would treat those identical captions as negatives of each other. Both
  directions are ``-log(Σ_pos exp / Σ_all exp)`` (multi-positive InfoNCE); with distinct captions this is
  exactly CLIP's loss (``clip_positives="diagonal"`` forces the plain one).
* ``L_align`` — the class text aligns with the relevant (non-spurious) regions, cross-entropy against ``y_b``:

      align_input="masked_image" (default): the union of the non-spurious regions as one region
          L_align = mean_b CE(s̄ · <ṽ_b, T>, y_b)
      align_input="regions": the non-spurious crops, for images with at least one
          align_pooling="mean":  p_b = normalize(Σ_r (1 - s_{b,r}) z_{b,r}),  l_{b,c} = s̄ · <p_b, T_c>
          align_pooling="max":   l_{b,c} = max_{r : s_{b,r} = 0} s̄ · <z_{b,r}, T_c>
          L_align = mean_b CE(l_b, y_b)

* ``L_uninf`` — the spurious regions carry no class information:

      uninf_mode="uniform": every spurious crop's class distribution q = softmax_c(s̄ · <z_{b,r}, T_c>) is
          pushed to uniform:  KL(U ‖ q) = -log C - (1/C) Σ_c log q_c  (>= 0, 0 iff equally similar to
          every prompt; the cross-entropy to uniform minus log C), averaged over spurious crops
      uninf_mode="counterfactual": adding the spurious cells to the rest of the image must not change the
          class distribution:  mean over images with a spurious cell of KL(p̃_b ‖ p_b),
          p_b = softmax_c(s̄ · <v_b, T_c>), p̃_b the same for ṽ_b and held fixed (no gradient) as the target
      uninf_mode="both" (default): the sum of the two

  ``L_uninf`` terms without any flagged region in the batch contribute 0 (``L_align`` then aligns the
  whole images). A run in which no training region is flagged at all is standard fine-tuning,
  ``L_CLIP`` alone (:func:`train_ravl`): nothing is spurious, so there is nothing to suppress.

The region terms use ``s̄`` (``detach_region_scale=True``): with full fine-tuning the logit scale is
trainable, and ``L_uninf`` could otherwise be lowered by shrinking it (less confident predictions
everywhere) instead of by changing what the spurious regions encode.

**Why these defaults** (measured, ``benchmarks/bench_ravl_spurious_digits.py``, V = 0.9, spurious class 7,
4 digits, 100 full fine-tuning steps; worst-group test accuracy over class x rectangle present): standard
fine-tuning 0.04; the crop-level form ``align_input="regions", uninf_mode="uniform"`` 0.00 (the crops of the
rectangle became uninformative, whole-image predictions still followed the rectangle); ``regions`` +
``both`` 0.00; ``masked_image`` + ``uniform`` 0.22; ``masked_image`` + ``counterfactual`` 0.74;
``masked_image`` + ``both`` 0.78 (overall 0.69 -> 0.86); ``masked_image`` + ``counterfactual`` without
``L_align`` 0.00. The image-scale terms act on what a whole-image prediction uses; both are needed.

Cost: only what a term needs is embedded — every crop for ``align_input="regions"``, only the spurious crops
for the uniform term, masked images only of the images that have a spurious cell — so the defaults cost
about ``1.3x`` a standard fine-tuning step on spurious digits, ``align_input="regions"`` about ``5x``.

Training
--------
:func:`train_ravl` (config file/CLI entry) and :func:`finetune_clip` (the "standard fine-tuning" baseline:
``L_CLIP`` alone, also used to make a spuriously correlated VLM) both run through
:func:`trustvl.training.core.train`; neither has a training loop of its own. Their settings are
:class:`CLIPFinetuneConfig` and :class:`RaVLConfig` (which extends it), both ``TrainingArguments``. By
default RaVL trains a peft LoRA delta (:mod:`trustvl.modeling.lora`; only the LoRA factors train) and saves
the merged plain ``CLIPModel`` (``model/``) and the peft adapter (``adapter/``); set ``use_lora=False`` for
full fine-tuning. Under ``torchrun`` / ``accelerate launch`` both train the 1-process objective of the
global batch (``gather_across_devices``, :mod:`.loss`) and process 0 alone writes (:mod:`.train`;
docs/multi_gpu.md).

Files
-----
:mod:`.config` (:class:`CLIPFinetuneConfig`, :class:`RaVLConfig`), :mod:`.flag_strategies` (which clusters are
acted on: :func:`select_flag_clusters`), :mod:`.medoids` (:class:`SpuriousMedoids`, the flags), :mod:`.data` (prompts, crops, masked images, :class:`RegionImageDataset`, :class:`RaVLCollator`),
:mod:`.loss` (:class:`RaVLLoss`), :mod:`.train` (:func:`finetune_clip`, :func:`train_ravl`).
"""

from trustvl.training.ravl.config import CLIPFinetuneConfig, RaVLConfig
from trustvl.training.ravl.data import (
    DEFAULT_PROMPT_TEMPLATE,
    RaVLCollator,
    RegionImageDataset,
    class_prompts,
    masked_image,
    region_crops,
)
from trustvl.training.ravl.flag_strategies import (
    DEFAULT_FLAG_STRATEGY,
    FLAG_STRATEGIES,
    MEDOID_STRATEGIES,
    ActedOnCluster,
    ClusterStatistics,
    FlagSelection,
    select_flag_clusters,
    selection_from_result,
)
from trustvl.training.ravl.loss import RaVLLoss
from trustvl.training.ravl.medoids import (
    MEDOIDS_FILE,
    SpuriousMedoids,
    compute_region_flags,
    compute_region_weights,
    embed_region_grid,
    spurious_region_flags,
)
from trustvl.training.ravl.train import finetune_clip, train_ravl

__all__ = [
    "ActedOnCluster",
    "CLIPFinetuneConfig",
    "ClusterStatistics",
    "DEFAULT_FLAG_STRATEGY",
    "FLAG_STRATEGIES",
    "MEDOID_STRATEGIES",
    "FlagSelection",
    "DEFAULT_PROMPT_TEMPLATE",
    "MEDOIDS_FILE",
    "RaVLCollator",
    "RaVLLoss",
    "RaVLConfig",
    "RegionImageDataset",
    "SpuriousMedoids",
    "class_prompts",
    "compute_region_flags",
    "compute_region_weights",
    "embed_region_grid",
    "finetune_clip",
    "masked_image",
    "region_crops",
    "select_flag_clusters",
    "selection_from_result",
    "spurious_region_flags",
    "train_ravl",
]
