"""RaVL training entry points through :func:`trustvl.training.core.train`: :func:`finetune_clip` (standard
fine-tuning, ``L_CLIP`` alone, configured by :class:`CLIPFinetuneConfig`) and :func:`train_ravl` (mitigation,
configured by :class:`RaVLConfig`, which extends it with the discovery and the region-aware loss).

LoRA is peft's (:mod:`trustvl.modeling.lora`): a LoRA run saves the merged plain ``CLIPModel`` to
``<output_dir>/model`` and the peft adapter to ``<output_dir>/adapter``; a full fine-tune saves ``model/`` only.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from peft import PeftModel
from transformers import AutoProcessor, CLIPModel

from trustvl.errors import TrustVLInputError
from trustvl.hub.loading import load_dataset_any, load_pretrained
from trustvl.modeling.embedding import load_clip
from trustvl.modeling.lora import add_lora, clip_lora_config, merge_lora, save_adapter
from trustvl.training.arguments import TrustVLTrainingArguments
from trustvl.training.core import TrainResult, train
from trustvl.training.ravl.data import DEFAULT_PROMPT_TEMPLATE, RaVLCollator, RegionImageDataset
from trustvl.training.ravl.loss import RaVLLoss
from trustvl.training.ravl.medoids import SpuriousMedoids, compute_region_flags
from trustvl.utils.io import write_json


@dataclass
class CLIPFinetuneConfig(TrustVLTrainingArguments):
    """Settings of standard CLIP fine-tuning on labelled images (:func:`finetune_clip`): the run's
    :class:`TrustVLTrainingArguments` plus the model, data and LoRA fields below.

    ``output_dir`` is the run folder: ``model/`` (a plain ``CLIPModel``, merged when LoRA is used),
    ``adapter/`` (the peft adapter, LoRA runs only) and ``train_summary.json``. Optimisation: AdamW, cosine.
    """

    base_model: str | None = field(
        default=None, metadata={"help": "Hub id or folder of the CLIP to fine-tune (required)."}
    )
    dataset: str | None = field(
        default=None,
        metadata={
            "help": "Hub id or folder of the training data: image, label (ClassLabel), optional caption."
        },
    )
    split: str = field(default="train", metadata={"help": "Split of the dataset to train on."})
    image_column: str = field(default="image", metadata={"help": "Image column."})
    label_column: str = field(default="label", metadata={"help": "Class column (a ClassLabel)."})
    caption_column: str | None = field(
        default="caption", metadata={"help": "Caption column; None: the class prompt of each label."}
    )
    class_names: list[str] | None = field(
        default=None, metadata={"help": "Class names of the prompts; None: the ClassLabel's names."}
    )
    prompt_template: str = field(
        default=DEFAULT_PROMPT_TEMPLATE, metadata={"help": "Class prompts: template.format(name=class name)."}
    )
    clip_positives: str = field(
        default=RaVLLoss.clip_positives,
        metadata={"help": "L_CLIP positives: 'same_text' (identical captions) or 'diagonal'."},
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use a seeded random subset of at most this many training rows."}
    )
    use_lora: bool = field(
        default=False, metadata={"help": "Train a peft LoRA delta instead of every weight."}
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank r."})
    lora_alpha: float = field(
        default=8.0, metadata={"help": "LoRA scaling numerator (ΔW = lora_alpha/r·B·A)."}
    )
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA branch's input."})
    lora_target_modules: list[str] | str | None = field(
        default=None,
        metadata={
            "help": "LoRA targets: a regular expression over full module names, or (config file / Python) a list"
            " of module-name suffixes; None: both towers' q/k/v/out_proj, fc1, fc2."
        },
    )
    save_model: bool = field(default=True, metadata={"help": "Save the trained model to <output_dir>/model."})
    # the recipe's defaults
    max_steps: int = field(default=200, metadata={"help": "Optimiser steps."})
    warmup_steps: float = field(default=10, metadata={"help": "Linear warm-up steps."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "transformers scheduler name."})
    save_strategy: str = field(
        default="no", metadata={"help": "'steps' writes resumable checkpoints every save_steps; 'no' none."}
    )
    save_total_limit: int | None = field(default=1, metadata={"help": "Keep at most this many checkpoints."})
    save_final_model: bool = field(
        default=False, metadata={"help": "Also save the Trainer's final/ folder (model/ is written anyway)."}
    )

    def __post_init__(self) -> None:
        for name in self._required_fields():
            if not getattr(self, name):
                raise TrustVLInputError(
                    f"{type(self).__name__}.{name} is required; got {getattr(self, name)!r}"
                )
        super().__post_init__()

    def _required_fields(self) -> tuple[str, ...]:
        return ("base_model", "dataset", "output_dir")


@dataclass
class RaVLConfig(CLIPFinetuneConfig):
    """Settings of RaVL mitigation (``trustvl train ravl``, :func:`train_ravl`): standard fine-tuning's
    fields (:class:`CLIPFinetuneConfig`) plus the discovery and the region-aware loss (:class:`RaVLLoss`,
    whose defaults these are), with LoRA on by default. Compare against :func:`finetune_clip` with the same
    ``use_lora``, data, steps, batch size and learning rate. The default learning rate suits LoRA; full
    fine-tuning wants about 1e-4 (the benchmark's setting).
    """

    discovery: str | None = field(
        default=None,
        metadata={
            "help": "A discovery folder (trustvl discover, holding spurious_medoids.npz) or that file (required)."
        },
    )
    flag_model: str | None = field(
        default=None,
        metadata={
            "help": "Model whose embedding space the medoids are in (embeds the training regions for the flags);"
            " None: the model recorded by discovery, else base_model."
        },
    )
    grid_n: int = field(
        default=2, metadata={"help": "Regions are the grid_n x grid_n cells (as in discovery)."}
    )
    clusters: list[int] | None = field(
        default=None, metadata={"help": "Discovery clusters that count as spurious; None: every kept one."}
    )
    top_clusters: int | None = field(
        default=None, metadata={"help": "Only the top this many kept clusters count as spurious."}
    )
    allow_empty: bool = field(
        default=False,
        metadata={"help": "Train even when discovery kept no cluster (every region non-spurious)."},
    )
    lambda_align: float = field(default=RaVLLoss.lambda_align, metadata={"help": "λ_a, weight of L_align."})
    lambda_uninf: float = field(default=RaVLLoss.lambda_uninf, metadata={"help": "λ_u, weight of L_uninf."})
    align_input: str = field(
        default=RaVLLoss.align_input,
        metadata={"help": "L_align's image side: 'masked_image' or 'regions' (RaVLLoss)."},
    )
    align_pooling: str = field(default=RaVLLoss.align_pooling, metadata={"help": "RaVLLoss.align_pooling."})
    uninf_mode: str = field(
        default=RaVLLoss.uninf_mode,
        metadata={"help": "L_uninf: 'uniform', 'counterfactual' or 'both' (RaVLLoss)."},
    )
    detach_region_scale: bool = field(
        default=RaVLLoss.detach_region_scale, metadata={"help": "RaVLLoss.detach_region_scale."}
    )
    use_lora: bool = field(
        default=True, metadata={"help": "Train a peft LoRA delta (False: full fine-tuning)."}
    )
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate (AdamW)."})
    save_strategy: str = field(
        default="steps",
        metadata={"help": "'steps' writes resumable checkpoints every save_steps; 'no' none."},
    )
    save_steps: float = field(default=100, metadata={"help": "Write a resumable checkpoint every N steps."})

    def _required_fields(self) -> tuple[str, ...]:
        return ("base_model", "dataset", "discovery", "output_dir")

    def loss(self) -> RaVLLoss:
        """The :class:`RaVLLoss` of this run."""
        return RaVLLoss(
            lambda_align=self.lambda_align,
            lambda_uninf=self.lambda_uninf,
            align_input=self.align_input,
            align_pooling=self.align_pooling,
            uninf_mode=self.uninf_mode,
            clip_positives=self.clip_positives,
            detach_region_scale=self.detach_region_scale,
        )


def _load_split(config: CLIPFinetuneConfig) -> Any:
    """The training split, shuffled and cut to ``max_train_samples`` when it is larger."""
    ds = load_dataset_any(os.fspath(config.dataset), split=config.split)
    if config.max_train_samples is not None and len(ds) > config.max_train_samples:
        ds = ds.shuffle(seed=config.seed).select(range(int(config.max_train_samples)))
    return ds


def _prepare_model(model: CLIPModel, config: CLIPFinetuneConfig) -> torch.nn.Module:
    """``model`` with every weight trainable, or (``use_lora``) wrapped by peft with a new LoRA adapter whose
    factors alone are trainable (``A`` drawn after seeding with ``config.seed``)."""
    if not config.use_lora:
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    torch.manual_seed(config.seed)
    targets = config.lora_target_modules
    return add_lora(
        model,
        clip_lora_config(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=targets if targets is None or isinstance(targets, str) else list(targets),
            base_model_name_or_path=str(config.base_model),
        ),
    )


def _fit(
    model: CLIPModel,
    processor: Any,
    rows: RegionImageDataset,
    loss_fn: RaVLLoss,
    config: CLIPFinetuneConfig,
    resume: bool,
) -> tuple[torch.nn.Module, TrainResult]:
    """Prepare ``model`` (:func:`_prepare_model`) and train it on ``rows`` with ``loss_fn``."""
    model = _prepare_model(model, config)
    if config.dataloader_drop_last and len(rows) < config.per_device_train_batch_size:
        config = dataclasses.replace(config, dataloader_drop_last=False)  # else there is no full batch at all
    collator = RaVLCollator(processor, rows.prompts)
    return model, train(model, rows, loss_fn, config, data_collator=collator, resume=resume)


def _save(
    model: torch.nn.Module, processor: Any, out: Path, save_model: bool
) -> tuple[CLIPModel, dict[str, Any]]:
    """Write ``adapter/`` (LoRA runs) and ``model/`` (a plain ``CLIPModel``, merged); return the plain model
    and the paths written."""
    paths: dict[str, Any] = {"model_dir": None, "adapter_dir": None}
    if isinstance(model, PeftModel):
        if save_model:
            paths["adapter_dir"] = str(save_adapter(model, out / "adapter"))
        model = merge_lora(model)
    model.eval()
    if save_model:
        model.save_pretrained(str(out / "model"))
        processor.save_pretrained(str(out / "model"))
        paths["model_dir"] = str(out / "model")
    return model, paths


def _write_summary(out: Path, result: TrainResult, t0: float, **extra: Any) -> dict[str, Any]:
    """The JSON-able run summary, also written (atomically) to ``out/train_summary.json``."""
    logs = [h for h in result.log_history if "loss" in h]
    summary = {
        "global_step": result.global_step,
        "final_loss": result.final_loss,
        "mean_loss": result.mean_loss,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "first_log": logs[0] if logs else None,
        "last_log": logs[-1] if logs else None,
        **extra,
    }
    write_json(out / "train_summary.json", summary)
    return summary


def finetune_clip(config: CLIPFinetuneConfig, resume: bool = False) -> dict[str, Any]:
    """Standard fine-tuning with ``L_CLIP`` alone (:class:`RaVLLoss` with ``λ_a = λ_u = 0``), through the core.

    The "standard fine-tuning" baseline of RaVL mitigation, and the way to make a VLM that picks up a
    spurious correlation of its training data. Full fine-tuning by default; ``use_lora=True`` trains a peft
    LoRA delta. Returns a JSON-able summary (also written to ``output_dir/train_summary.json``) plus a
    ``"model"`` entry, the trained plain ``CLIPModel`` (merged for LoRA).
    """
    if not isinstance(config, CLIPFinetuneConfig):
        raise TrustVLInputError(f"finetune_clip takes a CLIPFinetuneConfig; got {type(config).__name__}")
    t0 = time.perf_counter()
    out = Path(config.output_dir)
    processor = load_pretrained(AutoProcessor, os.fspath(config.base_model))
    model = load_pretrained(CLIPModel, os.fspath(config.base_model))
    rows = RegionImageDataset(
        _load_split(config),
        processor,
        class_names=config.class_names,
        image_column=config.image_column,
        label_column=config.label_column,
        caption_column=config.caption_column,
        prompt_template=config.prompt_template,
        with_regions=False,
    )
    loss_fn = RaVLLoss(lambda_align=0.0, lambda_uninf=0.0, clip_positives=config.clip_positives)
    model, result = _fit(model, processor, rows, loss_fn, config, resume)
    model, paths = _save(model, processor, out, config.save_model)
    summary = _write_summary(
        out,
        result,
        t0,
        method="standard_finetuning",
        **paths,
        base_model=config.base_model,
        n_train=len(rows),
        class_names=rows.class_names,
        config=config.to_dict(),
    )
    return {**summary, "model": model}


def train_ravl(config: RaVLConfig, resume: bool = False, *, region_flags: Any = None) -> dict[str, Any]:
    """RaVL mitigation: flag the training regions with the discovered clusters, then fine-tune with
    :class:`RaVLLoss` through :func:`trustvl.training.core.train`; returns a JSON-able summary (also written
    to ``output_dir/train_summary.json``) and saves the model to ``output_dir/model`` (a plain ``CLIPModel``)
    and, for LoRA, the peft adapter to ``output_dir/adapter``.

    ``region_flags`` (``[n, R]`` bool, e.g. computed once for several runs with :func:`compute_region_flags`)
    replaces the flag computation.

    Raises:
        TrustVLInputError: discovery kept no spurious cluster (unless ``config.allow_empty``), bad columns or
            settings.
    """
    if not isinstance(config, RaVLConfig):
        raise TrustVLInputError(f"train_ravl takes a RaVLConfig; got {type(config).__name__}")
    t0 = time.perf_counter()
    out = Path(config.output_dir)
    loss_fn = config.loss()
    processor = load_pretrained(AutoProcessor, os.fspath(config.base_model))
    model = load_pretrained(CLIPModel, os.fspath(config.base_model))
    ds = _load_split(config)

    n_selected = None
    if region_flags is None and loss_fn.uses_flags:
        medoids = SpuriousMedoids.load(config.discovery)
        # without allow_empty, an empty selection raises here, before the flag model is loaded
        select = medoids.selected if config.allow_empty else medoids.require_selection
        n_selected = int(select(config.clusters, config.top_clusters).sum())
        f_model, f_proc = load_clip(config.flag_model or medoids.model or config.base_model, device="cpu")
        region_flags = compute_region_flags(
            f_model,
            f_proc,
            list(ds[config.image_column]),
            medoids,
            grid_n=config.grid_n,
            clusters=config.clusters,
            top=config.top_clusters,
            allow_empty=config.allow_empty,
            progress=not config.disable_tqdm,
        )
    rows = RegionImageDataset(
        ds,
        processor,
        region_flags=region_flags,
        grid_n=config.grid_n,
        class_names=config.class_names,
        image_column=config.image_column,
        label_column=config.label_column,
        caption_column=config.caption_column,
        prompt_template=config.prompt_template,
        with_regions=loss_fn.uses_regions,
        with_masked=loss_fn.uses_masked,
    )
    model, result = _fit(model, processor, rows, loss_fn, config, resume)
    _, paths = _save(model, processor, out, config.save_model)
    flags = np.asarray(rows.flags)
    return _write_summary(
        out,
        result,
        t0,
        method="ravl",
        **paths,
        n_train=len(rows),
        class_names=rows.class_names,
        n_spurious_clusters=n_selected,
        spurious_region_fraction=float(flags.mean()),
        images_with_spurious_region=float(flags.any(axis=1).mean()),
        config=config.to_dict(),
    )
