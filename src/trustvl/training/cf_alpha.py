"""CF_α counterfactual fine-tuning (arXiv 2406.11331; SPEC §2) through trustvl's shared training core.

Loss, per batch of ``B`` counterfactual sets with ``v`` variants each (images ``x_{b,j}``, one
context-only caption ``t_b`` per set)::

    L = β1 · L_CLIP + β0 · L_cf

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

Only the LoRA factors of a :class:`~trustvl.modeling.cf_alpha.CFAlphaCLIPModel` are trained (at α = 1),
so the base weights stay intact and α interpolates between the original and the fine-tuned model.

**α path (optional, ``alpha_range=(lo, hi)``).** Weight-space interpolation of a LoRA delta trained at
α = 1 only is not an interpolation of fairness: on SynthWorld the skews of attributes that were not
targeted rise above the base model's at α = 0.25–0.5 before falling at α = 1 (README, "The α sweep").
With ``alpha_range`` each step is computed at an α drawn uniformly from ``[lo, hi]``, so the delta is
trained along the path, not only at its end. The draw is a function of ``(seed, optimiser step)`` only
(the training core reports the step through ``set_step``), so every process draws the same α and a
resumed run continues the same sequence. The loss at the drawn α is the same ``β1·L_CLIP + β0·L_cf``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trustvl.errors import TrustVLInputError
from trustvl.training.core import model_inputs, unwrap_model
from trustvl.training.losses import group_mean_cohesion_loss, multi_positive_info_nce

#: Default LoRA targets of CF_α: the attention and MLP projections of the **vision** tower only. The text
#: tower stays the original one, so class prompts keep their embeddings (zero-shot accuracy is preserved
#: even though counterfactual captions are few and templated) and the delta only changes how images are
#: seen; pass ``lora_target_modules`` to adapt both towers.
VISION_LORA_TARGETS = (
    r"vision_model\.encoder\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|out_proj)|mlp\.(fc1|fc2))"
)


@dataclass
class CFAlphaLoss:
    """``L = β1·L_CLIP + β0·L_cf`` as a :data:`~trustvl.training.core.LossFn` (see module docstring).

    Batches hold ``pixel_values`` ``[B·v, 3, H, W]``, ``input_ids``/``attention_mask`` ``[B, L]``,
    ``set_index`` ``[B·v]`` (the caption/set of each image) and optionally ``caption_index`` ``[B]``
    (equal for sets whose captions are identical; such pairs count as positives, not negatives).

    Args:
        beta_clip: β1, weight of the CLIP loss.
        beta_cf: β0, weight of the counterfactual cohesion loss.
        cf_loss: ``"cohesion"`` (squared distance to the set mean) or ``"info_nce"``.
        cf_temperature: temperature of the ``"info_nce"`` variant.
        max_logit_scale: clamp of the learned CLIP logit scale.
        alpha_range: ``(lo, hi)`` with ``0 <= lo <= hi <= 1``: train each step at α ~ U(lo, hi) (see the
            module docstring); ``None`` trains at the model's α (1).
        seed: seed of the α draws.
    """

    beta_clip: float = 1.0
    beta_cf: float = 10.0
    cf_loss: str = "cohesion"
    cf_temperature: float = 0.1
    max_logit_scale: float = 100.0
    alpha_range: tuple[float, float] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cf_loss not in ("cohesion", "info_nce"):
            raise TrustVLInputError(f"cf_loss={self.cf_loss!r}; expected 'cohesion' or 'info_nce'")
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
        self._step = 0

    def set_step(self, step: int) -> None:
        """The optimiser step of the next call (set by the training core); the α-path draw depends on it."""
        self._step = int(step)

    def draw_alpha(self) -> float:
        """The α of the current step: ``lo + (hi - lo)·u`` with ``u ~ U(0, 1)`` seeded by (seed, step)."""
        assert self.alpha_range is not None
        lo, hi = self.alpha_range
        u = np.random.default_rng(np.random.SeedSequence([int(self.seed), 7, self._step])).random()
        return lo + (hi - lo) * float(u)

    def __call__(
        self, model: nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.alpha_range is not None:
            unwrap_model(model).set_alpha(self.draw_alpha())
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
        loss = self.beta_clip * clip + self.beta_cf * cf
        return loss, {"clip_loss": clip.detach(), "cf_loss": cf.detach()}


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
    """Flattens sets into ``pixel_values`` ``[B·v, ...]``, one caption per set, and ``set_index``."""

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
        }


@dataclass
class CFAlphaTrainConfig:
    """Settings of ``trustvl train cf-alpha``.

    Attributes:
        base_model: Hub id or folder of the CLIP to make fairer.
        dataset: counterfactual dataset (``trustvl build counterfactuals`` output or any dataset with
            ``image``, ``caption`` and ``base_id`` columns).
        out_dir: run folder; the CF_α model is saved to ``out_dir/model``.
        lora_r, lora_alpha, lora_dropout, lora_target_modules: the LoRA delta (see
            :class:`~trustvl.modeling.cf_alpha.CFAlphaCLIPConfig`); targets default to the vision
            tower's projections (:data:`VISION_LORA_TARGETS`), a list of names or a regex string.
        beta_clip, beta_cf, cf_loss, alpha_range: the loss (see :class:`CFAlphaLoss`).
        variants_per_set, sets_per_batch: a batch holds ``sets_per_batch`` sets of ``variants_per_set`` images.
        learning_rate, max_steps, num_train_epochs, warmup_steps, weight_decay, seed, save_steps,
        mixed_precision, logging_steps: optimisation (AdamW, cosine schedule).
        full_determinism: deterministic GPU kernels (slower); CPU runs are reproducible without it.
        alpha: α stored in the saved model's config (the sweep changes it at run time).
    """

    base_model: str
    dataset: str
    out_dir: str
    split: str = "train"
    lora_r: int = 8
    lora_alpha: float = 8.0
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | str | None = VISION_LORA_TARGETS
    beta_clip: float = 1.0
    beta_cf: float = 30.0
    cf_loss: str = "cohesion"
    alpha_range: tuple[float, float] | None = None
    variants_per_set: int = 4
    sets_per_batch: int = 32
    learning_rate: float = 1e-3
    max_steps: int = 300
    num_train_epochs: float = 1.0
    warmup_steps: int = 20
    weight_decay: float = 0.0
    seed: int = 0
    save_steps: int = 100
    logging_steps: int = 20
    mixed_precision: str = "no"
    dataloader_num_workers: int = 0
    full_determinism: bool = False
    alpha: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


def train_cf_alpha(cfg: CFAlphaTrainConfig, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Fine-tune a CLIP into a :class:`CFAlphaCLIPModel` on counterfactual sets; returns a summary."""
    from transformers import AutoProcessor, CLIPModel

    from trustvl.hub.loading import load_dataset_any, load_pretrained
    from trustvl.modeling.cf_alpha import CFAlphaCLIPModel
    from trustvl.training.core import TrainConfig, train

    loss_fn = CFAlphaLoss(
        beta_clip=cfg.beta_clip,
        beta_cf=cfg.beta_cf,
        cf_loss=cfg.cf_loss,
        alpha_range=None if cfg.alpha_range is None else tuple(cfg.alpha_range),
        seed=cfg.seed,
    )
    ds = load_dataset_any(cfg.dataset, split=cfg.split)
    sets = CounterfactualSets(ds, variants_per_set=cfg.variants_per_set, seed=cfg.seed)
    base = load_pretrained(CLIPModel, cfg.base_model)
    processor = load_pretrained(AutoProcessor, cfg.base_model)
    lora_kwargs: dict[str, Any] = dict(
        lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout
    )
    if cfg.lora_target_modules:
        targets = cfg.lora_target_modules
        lora_kwargs["lora_target_modules"] = targets if isinstance(targets, str) else list(targets)
    torch.manual_seed(cfg.seed)
    model = CFAlphaCLIPModel.from_clip(
        base, alpha=1.0, base_model_name_or_path=str(cfg.base_model), **lora_kwargs
    )
    model.mark_only_lora_trainable()
    out = Path(cfg.out_dir)
    tcfg = TrainConfig(
        output_dir=str(out / "checkpoints"),
        seed=cfg.seed,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        max_steps=cfg.max_steps,
        num_train_epochs=cfg.num_train_epochs,
        per_device_train_batch_size=cfg.sets_per_batch,
        warmup_steps=cfg.warmup_steps,
        lr_scheduler_type="cosine",
        logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps,
        save_total_limit=1,
        mixed_precision=cfg.mixed_precision,
        dataloader_num_workers=cfg.dataloader_num_workers,
        full_determinism=cfg.full_determinism,
        save_final_model=False,
        disable_tqdm=not progress,
    )
    t0 = time.perf_counter()
    result = train(
        model, sets, loss_fn, tcfg, data_collator=CounterfactualSetCollator(processor), resume=resume
    )
    model.set_alpha(cfg.alpha)
    model.eval()
    model_dir = out / "model"
    model.save_pretrained(str(model_dir))
    processor.save_pretrained(str(model_dir))
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous() for k, v in model.lora_state_dict().items()},
        str(out / "adapter.safetensors"),
        metadata={
            "format": "pt",
            "base_model": str(cfg.base_model),
            "lora_r": str(cfg.lora_r),
            "lora_alpha": str(cfg.lora_alpha),
        },
    )
    logs = [h for h in result.log_history if "loss" in h]
    summary = {
        "model_dir": str(model_dir),
        "global_step": result.global_step,
        "final_loss": result.final_loss,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "n_sets": len(sets),
        "variants_per_set": sets.v,
        "lora_parameters": model.num_lora_parameters(),
        "first_log": logs[0] if logs else None,
        "last_log": logs[-1] if logs else None,
        "config": asdict(cfg),
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
