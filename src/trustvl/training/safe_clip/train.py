"""Safe-CLIP training through :func:`trustvl.training.core.train`: :func:`train_safe_clip`.

Order of work: load the base model and check the LoRA targets (a model without them fails here, before
any compute); load and check the splits; compute (or read from the cache) the references with a separate,
frozen instance of the base model; wrap the model with a fresh peft LoRA adapter (seeded); train with
:class:`~trustvl.training.safe_clip.loss.SafeCLIPLoss` (early stopping on the validation ``recall_sum``,
:class:`~trustvl.training.safe_clip.data.ValidationRecall`); then write ``adapter/`` (the peft adapter),
``model/`` (the merged plain ``CLIPModel`` with its processor and a model card whose model-index holds the
validation results of the final model) and ``train_summary.json``. Each folder is staged and renamed into
place, so none is ever half-written.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoProcessor

from trustvl.errors import TrustVLInputError
from trustvl.hub.cards import Metric, model_card
from trustvl.hub.loading import load_dataset_any, load_pretrained
from trustvl.modeling.embedding import load_clip_float32
from trustvl.modeling.lora import add_lora, clip_lora_config, merge_lora, save_adapter
from trustvl.modeling.synthworld_clip import default_clip_path
from trustvl.training.core import early_stopping, train
from trustvl.training.safe_clip.config import SELECTION_METRICS, SafeCLIPConfig
from trustvl.training.safe_clip.data import (
    RECALL_PAIRS,
    QuadrupletCollator,
    QuadrupletDataset,
    ValidationRecall,
    check_quadruplet_columns,
)
from trustvl.training.safe_clip.loss import TERM_NAMES
from trustvl.training.safe_clip.reference import compute_reference_embeddings
from trustvl.utils.io import atomic_output_dir, write_json, write_text

__all__ = ["check_lora_targets", "train_safe_clip"]

_RECALL_LABELS = {
    "r1_s2v": "R@1 safe text → safe image",
    "r1_v2s": "R@1 safe image → safe text",
    "r1_s2g": "R@1 safe text → unsafe image",
    "r1_g2s": "R@1 unsafe image → safe text",
    "r1_u2v": "R@1 unsafe text → safe image",
    "r1_v2u": "R@1 safe image → unsafe text",
}


def check_lora_targets(model: torch.nn.Module, targets: list[str] | str) -> None:
    """Raise :class:`TrustVLInputError` unless every target suffix (or the regular expression) matches a
    module of ``model``: peft itself only fails when *no* target matches, and would silently train fewer
    layers than the recipe asks for."""
    names = [name for name, _ in model.named_modules() if name]
    if isinstance(targets, str):
        if not any(re.fullmatch(targets, name) for name in names):
            raise TrustVLInputError(
                f"lora_target_modules={targets!r} matches no module of the {type(model).__name__}; expected a"
                " regular expression over full module names such as 'text_model.encoder.layers.0.mlp.fc1'"
            )
        return
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise TrustVLInputError(
            f"the {type(model).__name__} has no module named {missing} (LoRA targets {list(targets)}); expected"
            " a CLIP-style model with these layers, or set lora_target_modules to layers it has"
        )


def _subset(ds: Any, limit: int | None, seed: int, shuffle: bool) -> Any:
    if limit is None or len(ds) <= limit:
        return ds
    return (ds.shuffle(seed=seed) if shuffle else ds).select(range(int(limit)))


def _write_card(model_dir: Path, config: SafeCLIPConfig, summary: dict[str, Any]) -> None:
    metrics_values = summary.get("final_eval") or {}
    dataset_name = Path(str(config.dataset)).name or str(config.dataset)
    metrics = [
        Metric(
            _RECALL_LABELS[name],
            name.replace("r1_", "recall@1_"),
            metrics_values[name],
            dataset_name,
            "safe-clip-quadruplets",
            split=str(config.eval_split),
            task_type="image-text-retrieval",
        )
        for name, *_ in RECALL_PAIRS
        if name in metrics_values
    ]
    rows = [
        f"| {_RECALL_LABELS[n]} | {metrics_values[n]:.3f} |" for n, *_ in RECALL_PAIRS if n in metrics_values
    ]
    eval_table = (
        "| metric | value |\n| --- | --- |\n"
        + "\n".join(rows)
        + f"\n| recall_sum | {metrics_values['recall_sum']:.3f} |"
        if rows
        else "No validation split was evaluated."
    )
    targets = config.lora_target_modules
    card = model_card(
        "safe_clip",
        model_name=f"safe-clip-{Path(str(summary['base_model'])).name}",
        metrics=metrics,
        base_model=None,
        datasets=None,
        tags=["safety", "safe-clip", "nsfw", "lora"],
        repo_path=str(model_dir),
        adapter_dir="../adapter",
        base_model_id=summary["base_model"],
        data_description=f"{summary['n_train']} quadruplets of `{config.dataset}` (split {config.train_split})",
        logit_scale=f"{config.logit_scale:g}",
        weights=", ".join(f"{w:g}" for w in config.term_weights),
        normaliser=f"{config.loss().normaliser:g}",
        lora_r=config.lora_r,
        lora_alpha=f"{config.lora_alpha:g}",
        lora_dropout=f"{config.lora_dropout:g}",
        lora_targets=targets if isinstance(targets, str) else ", ".join(targets or []),
        steps=summary["global_step"],
        patience=config.early_stopping_patience,
        eval_split=config.eval_split,
        n_eval=summary.get("n_eval"),
        eval_table=eval_table,
        limitations="Safe-CLIP only redirects the concepts of its training quadruplets; it is reported to lose"
        " about a fifth of its zero-shot accuracy on real data (SafeR-CLIP, 2025): measure it with"
        " `trustvl eval safe-clip` before use. Not a content filter.",
    )
    write_text(model_dir / "README.md", str(card))


def train_safe_clip(config: SafeCLIPConfig, resume: bool = False) -> dict[str, Any]:
    """Fine-tune a CLIP with Safe-CLIP's loss (see the module docstring); returns the JSON-able summary that
    is also written to ``output_dir/train_summary.json``.

    Raises:
        TrustVLInputError: a model without the LoRA targets, missing columns or empty captions, a bad setting.
    """
    if not isinstance(config, SafeCLIPConfig):
        raise TrustVLInputError(f"train_safe_clip takes a SafeCLIPConfig; got {type(config).__name__}")
    t0 = time.perf_counter()
    out = Path(config.output_dir)
    base_model = os.fspath(config.base_model or default_clip_path())
    targets = config.lora_target_modules
    targets = targets if isinstance(targets, str) else list(targets or [])
    if not targets:
        raise TrustVLInputError(
            "lora_target_modules is empty; expected module-name suffixes or a regular expression"
        )
    model = load_clip_float32(base_model)
    check_lora_targets(model, targets)
    processor = load_pretrained(AutoProcessor, base_model)

    train_ds = _subset(
        load_dataset_any(config.dataset, split=config.train_split),
        config.max_train_samples,
        config.seed,
        True,
    )
    check_quadruplet_columns(train_ds, f"split {config.train_split!r}")
    eval_ds = None
    if config.eval_split:
        eval_ds = _subset(
            load_dataset_any(config.dataset, split=config.eval_split), config.max_eval_samples, 0, False
        )
        check_quadruplet_columns(eval_ds, f"split {config.eval_split!r}")
    if config.dataloader_drop_last and len(train_ds) < config.per_device_train_batch_size:
        config = dataclasses.replace(config, dataloader_drop_last=False)  # else not one full batch

    references = compute_reference_embeddings(
        base_model,
        processor,
        train_ds,
        split=config.train_split,
        batch_size=config.reference_batch_size,
        device=str(config.device),
        cache_dir=config.reference_cache_dir,
        progress=not config.disable_tqdm,
        max_length=config.max_length,
    )
    rows = QuadrupletDataset(train_ds, references)

    torch.manual_seed(config.seed)
    peft_model = add_lora(
        model,
        clip_lora_config(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=targets,
            base_model_name_or_path=base_model,
        ),
    )
    validation = (
        ValidationRecall(
            eval_ds, processor, batch_size=config.reference_batch_size, max_length=config.max_length
        )
        if eval_ds is not None
        else None
    )
    callbacks = []
    if config.evaluates and config.early_stopping_patience > 0:
        metric = config.selection_metric
        if validation is not None and metric == "nsfw_rate_t2i" and validation.pool is None:
            raise TrustVLInputError(
                f"selection_metric={metric!r} needs the validation split's unsafe_kind or category column and at"
                " least two scenes; expected a `trustvl build safe-clip-quadruplets` split"
            )
        callbacks.append(
            early_stopping(
                config.early_stopping_patience, metric, greater_is_better=SELECTION_METRICS[metric]
            )
        )
    result = train(
        peft_model,
        rows,
        config.loss(),
        config,
        data_collator=QuadrupletCollator(processor, config.max_length),
        compute_metrics=validation if config.evaluates else None,
        callbacks=callbacks,
        resume=resume,
    )

    peft_model.eval()
    # under torchrun / accelerate launch every process holds the same weights: one writes them
    if config.should_save:
        with atomic_output_dir(out / "adapter", overwrite=True) as stage:
            save_adapter(peft_model, stage)
    merged = merge_lora(peft_model).eval()
    final_eval = validation(merged) if validation is not None else None
    logs = [h for h in result.log_history if "loss" in h]
    summary = {
        "method": "safe_clip",
        "base_model": base_model,
        "adapter_dir": str(out / "adapter"),
        "model_dir": str(out / "model"),
        "global_step": result.global_step,
        "final_loss": result.final_loss,
        "mean_loss": result.mean_loss,
        "best_metric": result.best_metric,
        "best_model_checkpoint": result.best_model_checkpoint,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "n_train": len(rows),
        "n_eval": len(eval_ds) if eval_ds is not None else None,
        "reference_cache_key": references.key,
        "reference_from_cache": references.from_cache,
        "loss_normaliser": config.loss().normaliser,
        "term_names": list(TERM_NAMES),
        "final_eval": final_eval,
        "first_log": logs[0] if logs else None,
        "last_log": logs[-1] if logs else None,
        # every logged step and the Trainer's own timing (train_runtime, train_samples_per_second): what a
        # comparison of runs (e.g. benchmarks/bench_multi_gpu.py, 1 vs N processes) reads
        "log_history": result.log_history,
        "config": config.to_dict(),
    }
    if config.should_save:
        with atomic_output_dir(out / "model", overwrite=True) as stage:
            merged.save_pretrained(str(stage))
            processor.save_pretrained(str(stage))
            _write_card(stage, config, {**summary, "model_dir": str(out / "model")})
        write_json(out / "train_summary.json", summary)
    return summary
