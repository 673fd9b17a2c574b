"""CF_α fine-tuning through :func:`trustvl.training.core.train`: :func:`train_cf_alpha`.

Only the LoRA factors of a :class:`~trustvl.modeling.cf_alpha.CFAlphaCLIPModel` are trained (at α = 1),
so the base weights stay intact and α interpolates between the original and the fine-tuned model. The run
loads the counterfactual sets (:class:`~trustvl.training.cf_alpha.data.CounterfactualSets`), wraps the base
CLIP with a fresh (seeded) LoRA delta, caches the frozen layers when that is exact and fits
(:class:`~trustvl.training.cf_alpha.data.PrefixCachedSets`), trains with
:class:`~trustvl.training.cf_alpha.loss.CFAlphaLoss`, then writes ``model/``, ``adapter/`` and
``train_summary.json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoProcessor

from trustvl.errors import TrustVLInputError
from trustvl.hub.loading import load_dataset_any, load_pretrained
from trustvl.modeling.cf_alpha import CFAlphaCLIPModel
from trustvl.modeling.embedding import load_clip_float32
from trustvl.modeling.synthworld_clip import default_clip_path
from trustvl.training.cf_alpha.config import CFAlphaConfig
from trustvl.training.cf_alpha.data import (
    CounterfactualSetCollator,
    CounterfactualSets,
    PrefixCachedSets,
    collate_prefix_cached_sets,
)
from trustvl.training.cf_alpha.loss import CFAlphaLoss
from trustvl.training.core import train
from trustvl.utils.io import write_json

__all__ = ["train_cf_alpha"]


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
    sets = CounterfactualSets(
        ds,
        variants_per_set=config.variants_per_set,
        seed=config.seed,
        # the attribute levels ride along only for L_effect: batches stay as before otherwise
        attribute_columns=list(config.effect_attributes or []) if config.beta_effect else None,
    )
    base = load_clip_float32(base_model)
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
    # under torchrun / accelerate launch every process holds the same weights: one writes them
    if config.should_save:
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
        # every logged step and the Trainer's own timing (train_runtime, train_samples_per_second): what a
        # comparison of runs (e.g. benchmarks/bench_multi_gpu.py, 1 vs N processes) reads
        "log_history": result.log_history,
        "config": config.to_dict(),
    }
    if config.should_save:
        write_json(out / "train_summary.json", summary)
    return summary
