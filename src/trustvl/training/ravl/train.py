"""RaVL training entry points through :func:`trustvl.training.core.train`: :func:`finetune_clip` (standard
fine-tuning, ``L_CLIP`` alone) and :func:`train_ravl` (mitigation, configured by :class:`RaVLTrainConfig`)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trustvl.training.ravl.data import DEFAULT_PROMPT_TEMPLATE, RaVLCollator, RegionImageDataset
from trustvl.training.ravl.loss import RaVLLoss
from trustvl.training.ravl.medoids import SpuriousMedoids, compute_region_flags


def _load_model_and_processor(name: str | os.PathLike) -> tuple[Any, Any]:
    """``(CLIPModel, processor)`` from a folder or Hub id."""
    from transformers import AutoProcessor, CLIPModel

    from trustvl.hub.loading import load_pretrained

    name = os.fspath(name)
    processor = load_pretrained(AutoProcessor, name)
    return load_pretrained(CLIPModel, name), processor


def _load_split(dataset: str | os.PathLike, split: str, max_samples: int | None, seed: int) -> Any:
    """Split ``split`` of a dataset folder / Hub id, shuffled and cut to ``max_samples`` when it is larger."""
    from trustvl.hub.loading import load_dataset_any

    ds = load_dataset_any(os.fspath(dataset), split=split)
    if max_samples is not None and len(ds) > max_samples:
        ds = ds.shuffle(seed=seed).select(range(int(max_samples)))
    return ds


def _prepare_model(
    model: Any,
    *,
    use_lora: bool,
    lora_r: int,
    lora_alpha: float,
    lora_dropout: float,
    lora_target_modules: list[str] | str | None,
    seed: int,
) -> Any:
    """``model`` with every weight trainable, or (``use_lora``) wrapped in a CFAlphaCLIPModel at α = 1 with
    only its new LoRA factors trainable."""
    from trustvl.modeling.cf_alpha import CFAlphaCLIPModel

    if not use_lora:
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    torch.manual_seed(seed)
    wrapped = CFAlphaCLIPModel.from_clip(
        model,
        alpha=1.0,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        lora_target_modules=lora_target_modules,
    )
    wrapped.mark_only_lora_trainable()
    return wrapped


def _fit(
    model: Any,
    processor: Any,
    rows: RegionImageDataset,
    loss_fn: RaVLLoss,
    out_dir: Path,
    *,
    use_lora: bool,
    lora_r: int,
    lora_alpha: float,
    lora_dropout: float,
    lora_target_modules: list[str] | str | None,
    learning_rate: float,
    max_steps: int,
    batch_size: int,
    warmup_steps: int,
    weight_decay: float,
    seed: int,
    save_steps: int | None,
    logging_steps: int,
    mixed_precision: str,
    progress: bool,
    resume: bool,
) -> tuple[Any, Any]:
    """Prepare ``model`` (:func:`_prepare_model`) and train it on ``rows`` with ``loss_fn`` (AdamW, cosine
    schedule, checkpoints in ``out_dir/checkpoints``); returns ``(trained model, TrainResult)``."""
    from trustvl.training.core import TrainConfig, train

    model = _prepare_model(
        model,
        use_lora=use_lora,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        lora_target_modules=lora_target_modules,
        seed=seed,
    )
    tcfg = TrainConfig(
        output_dir=str(out_dir / "checkpoints"),
        seed=seed,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        warmup_steps=warmup_steps,
        lr_scheduler_type="cosine",
        logging_steps=logging_steps,
        save_steps=save_steps,
        save_total_limit=1,
        mixed_precision=mixed_precision,
        save_final_model=False,
        disable_tqdm=not progress,
        dataloader_drop_last=len(rows) >= batch_size,
    )
    collator = RaVLCollator(processor, rows.prompts)
    return model, train(model, rows, loss_fn, tcfg, data_collator=collator, resume=resume)


def _save(model: Any, processor: Any, model_dir: Path) -> None:
    model.eval()
    model.save_pretrained(str(model_dir))
    processor.save_pretrained(str(model_dir))


def _write_summary(out: Path, result: Any, t0: float, **extra: Any) -> dict[str, Any]:
    """The JSON-able run summary, also written to ``out/train_summary.json``."""
    logs = [h for h in result.log_history if "loss" in h]
    summary = {
        "global_step": result.global_step,
        "final_loss": result.final_loss,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "first_log": logs[0] if logs else None,
        "last_log": logs[-1] if logs else None,
        **extra,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def finetune_clip(
    model: str | os.PathLike,
    dataset: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    split: str = "train",
    image_column: str = "image",
    label_column: str = "label",
    caption_column: str | None = "caption",
    class_names: Sequence[str] | None = None,
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
    clip_positives: str = "same_text",
    use_lora: bool = False,
    lora_r: int = 8,
    lora_alpha: float = 8.0,
    lora_dropout: float = 0.0,
    lora_target_modules: list[str] | str | None = None,
    learning_rate: float = 5e-5,
    max_steps: int = 200,
    batch_size: int = 32,
    warmup_steps: int = 10,
    weight_decay: float = 0.0,
    seed: int = 0,
    max_train_samples: int | None = None,
    save_steps: int | None = None,
    logging_steps: int = 10,
    mixed_precision: str = "no",
    save_model: bool = True,
    progress: bool = True,
    resume: bool = False,
) -> dict[str, Any]:
    """Standard fine-tuning with ``L_CLIP`` alone (:class:`RaVLLoss` with ``λ_a = λ_u = 0``), through the core.

    The "standard fine-tuning" baseline of RaVL mitigation, and the way to make a VLM that picks up a
    spurious correlation of its training data. ``model``: a CLIP folder or Hub id; ``dataset``: a dataset
    folder or Hub id (split ``split``). Full fine-tuning by default; ``use_lora=True`` trains a LoRA delta of
    a :class:`~trustvl.modeling.cf_alpha.CFAlphaCLIPModel` at α = 1. The model is saved to ``out_dir/model``
    (with its processor) when ``save_model``; returns a JSON-able summary (also written to
    ``out_dir/train_summary.json``) plus a ``"model"`` entry, the trained model object.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    base_name = os.fspath(model)
    model, processor = _load_model_and_processor(model)
    ds = _load_split(dataset, split, max_train_samples, seed)
    rows = RegionImageDataset(
        ds,
        processor,
        class_names=class_names,
        image_column=image_column,
        label_column=label_column,
        caption_column=caption_column,
        prompt_template=prompt_template,
        with_regions=False,
    )
    loss_fn = RaVLLoss(lambda_align=0.0, lambda_uninf=0.0, clip_positives=clip_positives)
    model, result = _fit(
        model,
        processor,
        rows,
        loss_fn,
        out,
        use_lora=use_lora,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        lora_target_modules=lora_target_modules,
        learning_rate=learning_rate,
        max_steps=max_steps,
        batch_size=batch_size,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
        seed=seed,
        save_steps=save_steps,
        logging_steps=logging_steps,
        mixed_precision=mixed_precision,
        progress=progress,
        resume=resume,
    )
    model_dir = out / "model"
    if save_model:
        _save(model, processor, model_dir)
    summary = _write_summary(
        out,
        result,
        t0,
        method="standard_finetuning",
        model_dir=str(model_dir) if save_model else None,
        base_model=base_name,
        n_train=len(rows),
        class_names=rows.class_names,
        use_lora=use_lora,
        learning_rate=learning_rate,
        batch_size=batch_size,
    )
    return {**summary, "model": model}


@dataclass
class RaVLTrainConfig:
    """Settings of RaVL mitigation (:func:`train_ravl`).

    Attributes:
        base_model: Hub id or folder of the CLIP to fine-tune (the starting point).
        dataset: Hub id or folder of the training data (``image``, ``label`` ClassLabel, optional ``caption``).
        discovery: a discovery folder (:func:`trustvl.evaluation.ravl.run_discovery`, holding
            ``spurious_medoids.npz``) or that file.
        out_dir: run folder; the model is saved to ``out_dir/model``.
        flag_model: the model whose embedding space the medoids are in (embeds the training regions for the
            flags); default: the model recorded by discovery, else ``base_model``.
        split, image_column, label_column, caption_column: the training data (``caption_column=None``: the
            class prompt of each label is the caption).
        prompt_template: class prompts ``template.format(name=class name)``.
        grid_n: regions are the ``grid_n x grid_n`` cells (as in discovery).
        clusters, top_clusters: which discovery clusters count as spurious (default: all kept ones).
        allow_empty: train even when discovery kept no cluster (every region non-spurious) instead of raising.
        lambda_align, lambda_uninf, align_input, align_pooling, uninf_mode, clip_positives,
            detach_region_scale: the loss (:class:`RaVLLoss`).
        use_lora, lora_r, lora_alpha, lora_dropout, lora_target_modules: LoRA (a CFAlphaCLIPModel at α = 1,
            only LoRA trainable) or, with ``use_lora=False``, full fine-tuning.
        learning_rate, max_steps, batch_size, warmup_steps, weight_decay, seed, save_steps, logging_steps,
        mixed_precision, max_train_samples: optimisation (AdamW, cosine schedule). The default learning rate
            suits LoRA; full fine-tuning wants about 1e-4 (the benchmark's setting).

    Compare against :func:`finetune_clip` with the same ``use_lora``, data, steps, batch size and learning rate.
    """

    base_model: str
    dataset: str
    discovery: str
    out_dir: str
    flag_model: str | None = None
    split: str = "train"
    image_column: str = "image"
    label_column: str = "label"
    caption_column: str | None = "caption"
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    grid_n: int = 2
    clusters: list[int] | None = None
    top_clusters: int | None = None
    allow_empty: bool = False
    lambda_align: float = 1.0
    lambda_uninf: float = 1.0
    align_input: str = "masked_image"
    align_pooling: str = "mean"
    uninf_mode: str = "both"
    clip_positives: str = "same_text"
    detach_region_scale: bool = True
    use_lora: bool = True
    lora_r: int = 8
    lora_alpha: float = 8.0
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | str | None = None
    learning_rate: float = 1e-3
    max_steps: int = 200
    batch_size: int = 32
    warmup_steps: int = 10
    weight_decay: float = 0.0
    seed: int = 0
    save_steps: int | None = 100
    logging_steps: int = 10
    mixed_precision: str = "no"
    max_train_samples: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def train_ravl(
    cfg: RaVLTrainConfig, resume: bool = False, *, progress: bool = True, region_flags: Any = None
) -> dict[str, Any]:
    """RaVL mitigation: flag the training regions with the discovered clusters, then fine-tune with
    :class:`RaVLLoss` through :func:`trustvl.training.core.train`; returns a JSON-able summary (also written
    to ``out_dir/train_summary.json``) and saves the model to ``out_dir/model``.

    ``region_flags`` (``[n, R]`` bool, e.g. computed once for several runs with :func:`compute_region_flags`)
    replaces the flag computation.

    Raises:
        TrustVLInputError: discovery kept no spurious cluster (unless ``cfg.allow_empty``), bad columns or
            settings.
    """
    from trustvl.modeling.embedding import load_clip

    t0 = time.perf_counter()
    out = Path(cfg.out_dir)
    loss_fn = RaVLLoss(
        lambda_align=cfg.lambda_align,
        lambda_uninf=cfg.lambda_uninf,
        align_input=cfg.align_input,
        align_pooling=cfg.align_pooling,
        uninf_mode=cfg.uninf_mode,
        clip_positives=cfg.clip_positives,
        detach_region_scale=cfg.detach_region_scale,
    )
    model, processor = _load_model_and_processor(cfg.base_model)
    ds = _load_split(cfg.dataset, cfg.split, cfg.max_train_samples, cfg.seed)

    n_selected = None
    if region_flags is None and loss_fn.uses_flags:
        medoids = SpuriousMedoids.load(cfg.discovery)
        # without allow_empty, an empty selection raises here, before the flag model is loaded
        select = medoids.selected if cfg.allow_empty else medoids.require_selection
        n_selected = int(select(cfg.clusters, cfg.top_clusters).sum())
        f_model, f_proc = load_clip(cfg.flag_model or medoids.model or cfg.base_model, device="cpu")
        region_flags = compute_region_flags(
            f_model,
            f_proc,
            list(ds[cfg.image_column]),
            medoids,
            grid_n=cfg.grid_n,
            clusters=cfg.clusters,
            top=cfg.top_clusters,
            allow_empty=cfg.allow_empty,
            progress=progress,
        )
    rows = RegionImageDataset(
        ds,
        processor,
        region_flags=region_flags,
        grid_n=cfg.grid_n,
        image_column=cfg.image_column,
        label_column=cfg.label_column,
        caption_column=cfg.caption_column,
        prompt_template=cfg.prompt_template,
        with_regions=loss_fn.uses_regions,
        with_masked=loss_fn.uses_masked,
    )
    model, result = _fit(
        model,
        processor,
        rows,
        loss_fn,
        out,
        use_lora=cfg.use_lora,
        lora_r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        lora_target_modules=cfg.lora_target_modules,
        learning_rate=cfg.learning_rate,
        max_steps=cfg.max_steps,
        batch_size=cfg.batch_size,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        save_steps=cfg.save_steps,
        logging_steps=cfg.logging_steps,
        mixed_precision=cfg.mixed_precision,
        progress=progress,
        resume=resume,
    )
    model_dir = out / "model"
    _save(model, processor, model_dir)
    flags = np.asarray(rows.flags)
    return _write_summary(
        out,
        result,
        t0,
        method="ravl",
        model_dir=str(model_dir),
        n_train=len(rows),
        class_names=rows.class_names,
        n_spurious_clusters=n_selected,
        spurious_region_fraction=float(flags.mean()),
        images_with_spurious_region=float(flags.any(axis=1).mean()),
        config=asdict(cfg),
    )
