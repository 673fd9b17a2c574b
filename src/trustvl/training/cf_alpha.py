"""CF_α counterfactual fine-tuning (arXiv 2406.11331; SPEC §2) through trustvl's shared training core.

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
  explain the match.
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

Only the LoRA factors of a :class:`~trustvl.modeling.cf_alpha.CFAlphaCLIPModel` are trained (at α = 1),
so the base weights stay intact and α interpolates between the original and the fine-tuned model.

**α path (optional, ``alpha_range=(lo, hi)``).** Weight-space interpolation of a LoRA delta trained at
α = 1 only is not an interpolation of fairness: on SynthWorld the skews of attributes that were not
targeted rise above the base model's at α = 0.25–0.5 before falling at α = 1 (README, "The α sweep").
With ``alpha_range`` each step is computed at an α drawn uniformly from ``[lo, hi]``, so the delta is
trained along the path, not only at its end. The draw is a function of ``(seed, optimiser step)`` only
(the training core reports the step through ``set_step``), so every process draws the same α and a
resumed run continues the same sequence. The loss at the drawn α is the same ``β1·L_CLIP + β0·L_cf``,
unless ``cf_weight_by_alpha``: then it is ``β1·L_CLIP + α·β0·L_cf``, so the model at each α is trained on
the objective whose fairness weight grows with α (the α-weighted path: α walks along the accuracy/fairness
trade-off instead of asking every α for full invariance). ``alpha_endpoint_prob`` trains a share of the
steps at ``hi`` exactly (draws stay a function of seed and step).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoProcessor, CLIPModel

from trustvl.errors import TrustVLInputError
from trustvl.hub.loading import load_dataset_any, load_pretrained
from trustvl.modeling.cf_alpha import CFAlphaCLIPModel
from trustvl.modeling.synthworld_clip import default_clip_path
from trustvl.training.arguments import TrustVLTrainingArguments
from trustvl.training.core import model_inputs, train, unwrap_model
from trustvl.training.losses import group_mean_cohesion_loss, multi_positive_info_nce
from trustvl.utils.io import write_json


#: Default LoRA targets of CF_α: the attention and MLP projections of the **vision** tower only. The text
#: tower stays the original one, so class prompts keep their embeddings (zero-shot accuracy is preserved
#: even though counterfactual captions are few and templated) and the delta only changes how images are
#: seen; pass ``lora_target_modules`` to adapt both towers.
def vision_lora_targets(layers: str = r"\d+") -> str:
    r"""Regular expression for the attention and MLP projections of the vision encoder layers whose index
    matches ``layers`` (a regex: ``r"\d+"`` every layer, ``"[2-5]"`` layers 2 to 5)."""
    return rf"vision_model\.encoder\.layers\.{layers}\.(self_attn\.(q_proj|k_proj|v_proj|out_proj)|mlp\.(fc1|fc2))"


VISION_LORA_TARGETS = vision_lora_targets()


@dataclass
class CFAlphaLoss:
    """``L = β1·L_CLIP + β0·L_cf + β_s·L_score`` as a :data:`~trustvl.training.core.LossFn` (see module docstring).

    Batches hold ``pixel_values`` ``[B·v, 3, H, W]``, ``input_ids``/``attention_mask`` ``[B, L]``,
    ``set_index`` ``[B·v]`` (the caption/set of each image) and optionally ``caption_index`` ``[B]``
    (equal for sets whose captions are identical; such pairs count as positives, not negatives).

    Build it from a run's settings with :meth:`from_config`; the :class:`CFAlphaConfig` fields of the same
    names take their defaults from here (the CF_α recipe: β1 = 1, β0 = 30).

    Args:
        beta_clip: β1, weight of the CLIP loss.
        beta_cf: β0, weight of the counterfactual cohesion loss.
        cf_loss: ``"cohesion"`` (squared distance to the set mean) or ``"info_nce"``.
        cf_temperature: temperature of the ``"info_nce"`` variant.
        beta_score: β_s, weight of the score-cohesion term ``L_score`` (0: off; the default 20 is the
            recipe measured best on SynthWorld: with it every attribute's MaxSkew@100 fell at α = 1, body type's
            included, for less zero-shot accuracy than without; README, "CF_α").
        max_logit_scale: clamp of the learned CLIP logit scale.
        alpha_range: ``(lo, hi)`` with ``0 <= lo <= hi <= 1``: train each step at α ~ U(lo, hi) (see the
            module docstring); ``None`` trains at the model's α (1).
        cf_weight_by_alpha: with ``alpha_range``, weight ``L_cf`` by the drawn α (``α·β0``).
        alpha_endpoint_prob: with ``alpha_range``, the probability that a step trains at ``hi`` exactly.
        seed: seed of the α draws.
    """

    beta_clip: float = 1.0
    beta_cf: float = 30.0
    cf_loss: str = "cohesion"
    cf_temperature: float = 0.1
    max_logit_scale: float = 100.0
    alpha_range: tuple[float, float] | None = None
    cf_weight_by_alpha: bool = False
    alpha_endpoint_prob: float = 0.0
    beta_score: float = 20.0
    seed: int = 0

    @classmethod
    def from_config(cls, config: CFAlphaConfig) -> CFAlphaLoss:
        """The loss of a :class:`CFAlphaConfig` run."""
        return cls(
            beta_clip=config.beta_clip,
            beta_cf=config.beta_cf,
            cf_loss=config.cf_loss,
            cf_temperature=config.cf_temperature,
            max_logit_scale=config.max_logit_scale,
            alpha_range=None if config.alpha_range is None else tuple(config.alpha_range),
            cf_weight_by_alpha=config.cf_weight_by_alpha,
            alpha_endpoint_prob=config.alpha_endpoint_prob,
            beta_score=config.beta_score,
            seed=config.seed,
        )

    def __post_init__(self) -> None:
        if self.cf_loss not in ("cohesion", "info_nce"):
            raise TrustVLInputError(f"cf_loss={self.cf_loss!r}; expected 'cohesion' or 'info_nce'")
        if self.beta_score < 0:
            raise TrustVLInputError(f"beta_score={self.beta_score}; expected a non-negative weight")
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
        return lo + (hi - lo) * u

    def __call__(
        self, model: nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cf_weight = self.beta_cf
        if self.alpha_range is not None:
            alpha = self.draw_alpha()
            unwrap_model(model).set_alpha(alpha)
            if self.cf_weight_by_alpha:
                cf_weight = self.beta_cf * alpha
        if "vision_hidden_states" in batch:  # frozen prefix cached (PrefixCachedSets): adapted layers only
            out = model(
                vision_hidden_states=batch["vision_hidden_states"],
                vision_start_layer=batch["vision_start_layer"],
                text_embeds=batch["text_embeds"],
            )
        else:
            out = model(**model_inputs(batch))
        img, txt = out.image_embeds, out.text_embeds
        sets = batch["set_index"]
        scale = unwrap_model(model).logit_scale.exp().clamp(max=self.max_logit_scale)
        img_n = nn.functional.normalize(img, dim=-1)
        txt_n = nn.functional.normalize(txt, dim=-1)
        # sets whose captions are identical (e.g. two chefs in a kitchen) are not negatives of each other
        caption_index = batch.get("caption_index")
        if caption_index is None:
            caption_index = torch.arange(txt.shape[0], device=sets.device)
        positives = caption_index[sets][:, None] == caption_index[None, :]  # [B·v, B]
        i2t = multi_positive_info_nce(img_n, txt_n, positives, scale, normalize=False)
        t2i = multi_positive_info_nce(txt_n, img_n, positives.T, scale, normalize=False)
        clip = 0.5 * (i2t + t2i)
        if self.cf_loss == "cohesion":
            cf = group_mean_cohesion_loss(img_n, sets)
        else:
            cf = multi_positive_info_nce(
                img_n, None, sets[:, None] == sets[None, :], self.cf_temperature, normalize=False
            )
        loss = self.beta_clip * clip + cf_weight * cf
        logs = {"clip_loss": clip.detach(), "cf_loss": cf.detach()}
        if self.beta_score:
            logits = scale * img_n @ txt_n.T  # [B·v, B]
            score = group_mean_cohesion_loss(logits, sets, normalize=False) / logits.shape[1]
            loss = loss + self.beta_score * score
            logs["score_loss"] = score.detach()
        return loss, logs


class CounterfactualSets(torch.utils.data.Dataset):
    """A counterfactual dataset grouped by ``base_id``: item ``i`` is ``v`` variants of the i-th base.

    Variants are chosen deterministically (a seeded permutation per base and epoch-independent), so
    training is reproducible. Bases with fewer than two variants are rejected: they teach no invariance.
    """

    def __init__(
        self,
        dataset: Any,
        variants_per_set: int = 4,
        seed: int = 0,
        image_column: str = "image",
        caption_column: str = "caption",
        base_column: str = "base_id",
    ) -> None:
        for col in (image_column, caption_column, base_column):
            if col not in dataset.column_names:
                raise TrustVLInputError(
                    f"column {col!r} is not in the counterfactual dataset; available columns:"
                    f" {dataset.column_names} (a dataset of base_id groups is expected)"
                )
        if variants_per_set < 2:
            raise TrustVLInputError(f"variants_per_set={variants_per_set}; expected at least 2")
        groups: dict[int, list[int]] = defaultdict(list)
        for row, base in enumerate(dataset[base_column]):
            groups[int(base)].append(row)
        self.bases = sorted(b for b, rows in groups.items() if len(rows) >= 2)
        if not self.bases:
            raise TrustVLInputError(
                f"no {base_column!r} group has two or more variants; expected counterfactual"
                " sets (several rows sharing a base_id)"
            )
        rng = np.random.default_rng(seed)
        self.rows = {
            b: [groups[b][i] for i in rng.permutation(len(groups[b]))[:variants_per_set]] for b in self.bases
        }
        self.v = min(variants_per_set, min(len(r) for r in self.rows.values()))
        self.dataset, self.image_column, self.caption_column = dataset, image_column, caption_column

    def __len__(self) -> int:
        return len(self.bases)

    def __getitem__(self, i: int) -> dict[str, Any]:
        rows = self.dataset[self.rows[self.bases[i]][: self.v]]
        return {"images": rows[self.image_column], "caption": rows[self.caption_column][0]}


@dataclass
class CounterfactualSetCollator:
    """Flattens sets into ``pixel_values`` ``[B·v, ...]``, one caption per set, ``set_index`` ``[B·v]`` and
    ``caption_index`` ``[B]`` (equal for sets whose captions are identical, so the loss counts them as
    positives of each other rather than negatives)."""

    processor: Any
    max_length: int | None = None

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        images = [img.convert("RGB") for it in items for img in it["images"]]
        pixel_values = self.processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
        tok = self.processor.tokenizer(
            [it["caption"] for it in items],
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        set_index = torch.tensor([i for i, it in enumerate(items) for _ in it["images"]], dtype=torch.long)
        return {
            "pixel_values": pixel_values,
            "input_ids": tok["input_ids"],
            "attention_mask": tok["attention_mask"],
            "set_index": set_index,
            "caption_index": caption_groups([it["caption"] for it in items]),
        }


def caption_groups(captions: list[str]) -> torch.Tensor:
    """``[B]`` long tensor: the index of each caption's first occurrence among distinct captions."""
    first: dict[str, int] = {}
    return torch.tensor([first.setdefault(c, len(first)) for c in captions], dtype=torch.long)


#: Largest cache of frozen-prefix states CF_α training builds (bytes); larger datasets train from pixels.
PREFIX_CACHE_MAX_BYTES = 4 * 2**30


class PrefixCachedSets(torch.utils.data.Dataset):
    """:class:`CounterfactualSets` with the frozen part of the model computed once: each image replaced by the
    hidden states entering the first vision layer with a LoRA delta, each caption by its text features.

    Exact when nothing before that layer is trained and the text tower carries no LoRA (see
    :meth:`~trustvl.modeling.cf_alpha.CFAlphaCLIPModel.first_adapted_vision_layer`) and the towers have no
    dropout: every step then computes the same numbers as from pixels (up to rounding) while running only the
    adapted layers, and no image is decoded or preprocessed again. The cost is one forward pass of the frozen
    part per image and the memory of the states (``n_images × tokens × width`` floats; 204 MB for the demo's
    3,072 images of the SynthWorld CLIP).
    """

    def __init__(
        self,
        sets: CounterfactualSets,
        model: CFAlphaCLIPModel,
        processor: Any,
        *,
        device: torch.device | str = "cpu",
        batch_size: int = 256,
        progress: bool = False,
    ) -> None:
        from tqdm.auto import tqdm

        from trustvl.modeling.embedding import embed_texts, vision_prefix_states

        self.start_layer = model.first_adapted_vision_layer()
        self.sets = sets
        was_training, original_device = model.training, next(model.parameters()).device
        model.eval().to(device)
        states: list[torch.Tensor] = []
        self.captions: list[str] = []
        bases_per_chunk = max(1, batch_size // sets.v)
        for lo in tqdm(
            range(0, len(sets), bases_per_chunk), desc="caching frozen layers", disable=not progress
        ):
            items = [sets[i] for i in range(lo, min(lo + bases_per_chunk, len(sets)))]
            images = [img.convert("RGB") for it in items for img in it["images"]]
            hidden = vision_prefix_states(
                model, processor.image_processor, images, self.start_layer, batch_size=len(images)
            )
            states.append(hidden.reshape(len(items), sets.v, *hidden.shape[1:]))
            self.captions.extend(it["caption"] for it in items)
        distinct = sorted(set(self.captions))
        features = embed_texts(model, processor, distinct, normalize=False)
        self.hidden_states = torch.cat(states)
        lookup = {c: i for i, c in enumerate(distinct)}
        self.text_embeds = features[torch.tensor([lookup[c] for c in self.captions])]
        model.train(was_training).to(original_device)

    @staticmethod
    def applies(model: CFAlphaCLIPModel, sets: CounterfactualSets | None = None) -> bool:
        """Whether caching is exact for ``model`` (no LoRA in the text tower, no dropout in either tower) and,
        given ``sets``, whether their states fit in :data:`PREFIX_CACHE_MAX_BYTES`."""
        cfg = model.config
        dropouts = [
            getattr(sub, key, 0.0) or 0.0
            for sub in (cfg.vision_config, cfg.text_config)
            for key in ("attention_dropout", "dropout", "hidden_dropout_prob")
        ]
        if model.text_tower_adapted() or any(dropouts):
            return False
        return sets is None or PrefixCachedSets.nbytes(model, sets) <= PREFIX_CACHE_MAX_BYTES

    @staticmethod
    def nbytes(model: CFAlphaCLIPModel, sets: CounterfactualSets) -> int:
        """Memory the cached states of ``sets`` take."""
        return model.vision_hidden_states_nbytes(len(sets) * sets.v)

    def __len__(self) -> int:
        return len(self.sets)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "hidden_states": self.hidden_states[i],
            "text_embeds": self.text_embeds[i],
            "caption": self.captions[i],
            "start_layer": self.start_layer,
        }


def collate_prefix_cached_sets(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Batch of :class:`PrefixCachedSets` items: ``vision_hidden_states`` ``[B·v, tokens, width]``,
    ``vision_start_layer``, ``text_embeds`` ``[B, d]``, ``set_index`` ``[B·v]`` and ``caption_index`` ``[B]``."""
    hidden = torch.cat([it["hidden_states"] for it in items])
    v = items[0]["hidden_states"].shape[0]
    return {
        "vision_hidden_states": hidden,
        "vision_start_layer": torch.tensor(items[0]["start_layer"]),
        "text_embeds": torch.stack([it["text_embeds"] for it in items]),
        "set_index": torch.arange(len(items)).repeat_interleave(v),
        "caption_index": caption_groups([it["caption"] for it in items]),
    }


@dataclass
class CFAlphaConfig(TrustVLTrainingArguments):
    """Settings of CF_α fine-tuning (``trustvl train cf-alpha``): the run's :class:`TrustVLTrainingArguments`
    plus the model, data, LoRA and loss fields below, with the CF_α recipe's defaults.

    ``output_dir`` is the run folder: ``model/`` (the :class:`~trustvl.modeling.cf_alpha.CFAlphaCLIPModel`),
    ``adapter/`` (the LoRA delta as a peft adapter), ``train_summary.json`` and the resumable
    ``checkpoint-<step>`` folders. ``per_device_train_batch_size`` counts counterfactual **sets** (each of
    ``variants_per_set`` images) per device. Optimisation is the Trainer's: AdamW, cosine schedule.
    """

    base_model: str | None = field(
        default=None,
        metadata={"help": "Hub id or folder of the CLIP to make fairer; None: the embedded SynthWorld CLIP."},
    )
    dataset: str | None = field(
        default=None,
        metadata={
            "help": "Counterfactual dataset: `trustvl build counterfactuals` output or any dataset with image,"
            " caption and base_id columns (required).",
        },
    )
    split: str = field(default="train", metadata={"help": "Split of the dataset to train on."})
    variants_per_set: int = field(
        default=4, metadata={"help": "Variants (images) of one base image per counterfactual set."}
    )
    lora_r: int = field(default=8, metadata={"help": "Rank r of the LoRA delta ΔW = (lora_alpha / r)·B·A."})
    lora_alpha: float = field(
        default=8.0,
        metadata={"help": "LoRA scaling numerator (peft's lora_alpha; not the CF_α coefficient)."},
    )
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA branch's input."})
    lora_target_modules: list[str] | str | None = field(
        default=VISION_LORA_TARGETS,
        metadata={
            "help": "Linear layers with a LoRA delta: a regular expression matched against full module names"
            " (the default: the vision tower's attention and MLP projections), or (config file / Python) a list"
            " of module-name suffixes; None: both towers' q/k/v/out_proj, fc1, fc2."
        },
    )
    beta_clip: float = field(
        default=CFAlphaLoss.beta_clip, metadata={"help": "β1, weight of the CLIP loss L_CLIP."}
    )
    beta_cf: float = field(
        default=CFAlphaLoss.beta_cf, metadata={"help": "β0, weight of the counterfactual loss L_cf."}
    )
    cf_loss: str = field(
        default=CFAlphaLoss.cf_loss,
        metadata={
            "help": "L_cf: 'cohesion' (squared distance to the set mean) or 'info_nce' (same-set positives).",
            "choices": ["cohesion", "info_nce"],
        },
    )
    cf_temperature: float = field(
        default=CFAlphaLoss.cf_temperature, metadata={"help": "Temperature of cf_loss='info_nce'."}
    )
    beta_score: float = field(
        default=CFAlphaLoss.beta_score,
        metadata={
            "help": "β_s, weight of the score-cohesion term (within-set variance of retrieval logits); 0: off."
        },
    )
    max_logit_scale: float = field(
        default=CFAlphaLoss.max_logit_scale,
        metadata={"help": "Clamp of the learned CLIP logit scale in L_CLIP."},
    )
    alpha_range: list[float] | None = field(
        default=None,
        metadata={
            "help": "LO HI: train each step at α ~ U(LO, HI) (the α path) instead of α = 1: a smoother α sweep"
            " for some accuracy at α = 1 (see the README)."
        },
    )
    cf_weight_by_alpha: bool = field(
        default=False,
        metadata={
            "help": "With alpha_range: weight L_cf by the drawn α (the α-weighted path, see the module docs)."
        },
    )
    alpha_endpoint_prob: float = field(
        default=0.0, metadata={"help": "With alpha_range: share of steps trained at its upper end exactly."}
    )
    cache_frozen_layers: bool = field(
        default=True,
        metadata={
            "help": "Compute the frozen part once (vision layers below the first LoRA layer, the text tower) instead"
            " of every step; exact, applied when the text tower has no LoRA, the towers have no dropout and the"
            " states fit in 4 GiB (else the run trains from pixels)."
        },
    )
    alpha: float = field(
        default=1.0,
        metadata={"help": "α stored in the saved model's config (the sweep changes it at run time)."},
    )
    # the CF_α recipe's optimisation defaults
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate (AdamW)."})
    max_steps: int = field(default=300, metadata={"help": "Optimiser steps (-1: train num_train_epochs)."})
    warmup_steps: float = field(default=20, metadata={"help": "Linear warm-up steps (a float < 1: a ratio)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "transformers scheduler name."})
    logging_steps: float = field(default=20, metadata={"help": "Log every N steps."})
    save_steps: float = field(default=100, metadata={"help": "Write a resumable checkpoint every N steps."})
    save_total_limit: int | None = field(default=1, metadata={"help": "Keep at most this many checkpoints."})
    save_final_model: bool = field(
        default=False, metadata={"help": "Also save the Trainer's final/ folder (CF_α writes model/ itself)."}
    )

    def __post_init__(self) -> None:
        if not self.dataset:
            raise TrustVLInputError("CFAlphaConfig.dataset is required (a counterfactual dataset); got None")
        if not self.output_dir:
            raise TrustVLInputError("CFAlphaConfig.output_dir is required (the run folder); got None")
        if self.variants_per_set < 2:
            raise TrustVLInputError(f"variants_per_set={self.variants_per_set}; expected at least 2")
        if self.alpha_range is not None:
            if len(self.alpha_range) != 2:
                raise TrustVLInputError(f"alpha_range={self.alpha_range!r}; expected two numbers LO HI")
            self.alpha_range = [float(x) for x in self.alpha_range]
        super().__post_init__()
        # the loss settings are checked here, before any data or model is loaded
        CFAlphaLoss.from_config(self)


def train_cf_alpha(config: CFAlphaConfig, resume: bool = False) -> dict[str, Any]:
    """Fine-tune a CLIP into a :class:`CFAlphaCLIPModel` on counterfactual sets; returns a summary.

    Writes ``model/``, ``adapter/`` (peft) and ``train_summary.json`` into ``config.output_dir``; the
    progress bar follows ``config.disable_tqdm``.
    """
    if not isinstance(config, CFAlphaConfig):
        raise TrustVLInputError(f"train_cf_alpha takes a CFAlphaConfig; got {type(config).__name__}")
    loss_fn = CFAlphaLoss.from_config(config)
    base_model = config.base_model or str(default_clip_path())
    ds = load_dataset_any(config.dataset, split=config.split)
    sets = CounterfactualSets(ds, variants_per_set=config.variants_per_set, seed=config.seed)
    base = load_pretrained(CLIPModel, base_model)
    processor = load_pretrained(AutoProcessor, base_model)
    targets = config.lora_target_modules
    torch.manual_seed(config.seed)
    model = CFAlphaCLIPModel.from_clip(
        base,
        alpha=1.0,
        base_model_name_or_path=str(base_model),
        lora_r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        lora_target_modules=targets if targets is None or isinstance(targets, str) else list(targets),
    )
    model.mark_only_lora_trainable()
    out = Path(config.output_dir)
    t0 = time.perf_counter()
    data, collator = sets, CounterfactualSetCollator(processor)
    if config.cache_frozen_layers and PrefixCachedSets.applies(model, sets):
        data = PrefixCachedSets(
            sets, model, processor, device=config.device, progress=not config.disable_tqdm
        )
        collator = collate_prefix_cached_sets
    result = train(model, data, loss_fn, config, data_collator=collator, resume=resume)
    model.set_alpha(config.alpha)
    model.eval()
    model_dir = out / "model"
    model.save_pretrained(str(model_dir))
    processor.save_pretrained(str(model_dir))
    model.save_adapter(out / "adapter")
    logs = [h for h in result.log_history if "loss" in h]
    summary = {
        "model_dir": str(model_dir),
        "adapter_dir": str(out / "adapter"),
        "global_step": result.global_step,
        "final_loss": result.final_loss,
        "mean_loss": result.mean_loss,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "n_sets": len(sets),
        "variants_per_set": sets.v,
        "lora_parameters": model.num_lora_parameters(),
        "first_log": logs[0] if logs else None,
        "last_log": logs[-1] if logs else None,
        "config": config.to_dict(),
    }
    write_json(out / "train_summary.json", summary)
    return summary
