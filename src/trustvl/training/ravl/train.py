"""RaVL training entry points through :func:`trustvl.training.core.train`: :func:`finetune_clip` (standard
fine-tuning, ``L_CLIP`` alone, configured by :class:`~.config.CLIPFinetuneConfig`) and :func:`train_ravl`
(mitigation, configured by :class:`~.config.RaVLConfig`, which extends it with the discovery and the
region-aware loss).

LoRA is peft's (:mod:`trustvl.modeling.lora`): a LoRA run saves the merged plain ``CLIPModel`` to
``<output_dir>/model`` and the peft adapter to ``<output_dir>/adapter``; a full fine-tune saves ``model/`` only.

Under ``torchrun`` / ``accelerate launch`` the processes split the embedding of the training regions for the
flags (each its contiguous part of the rows, gathered in rank order), train through the core's DDP with the
global-batch loss (:mod:`.loss`), and process 0 alone writes the run's outputs (every process holds the same
weights and returns the same summary).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object
from peft import PeftModel
from transformers import AutoProcessor, CLIPModel

from trustvl.errors import TrustVLInputError
from trustvl.hub.cards import model_card
from trustvl.hub.loading import load_dataset_any, load_pretrained
from trustvl.modeling.embedding import load_clip, load_clip_float32
from trustvl.modeling.lora import add_lora, clip_lora_config, merge_lora, save_adapter
from trustvl.training.core import TrainResult, train
from trustvl.training.ravl.config import CLIPFinetuneConfig, RaVLConfig
from trustvl.training.ravl.data import RaVLCollator, RegionImageDataset
from trustvl.training.ravl.flag_strategies import FlagSelection
from trustvl.training.ravl.loss import RaVLLoss
from trustvl.training.ravl.medoids import SpuriousMedoids, compute_region_weights
from trustvl.utils.io import write_json, write_text

__all__ = ["CLIPFinetuneConfig", "RaVLConfig", "finetune_clip", "train_ravl"]


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
    model: torch.nn.Module, processor: Any, out: Path, save_model: bool, write: bool = True
) -> tuple[CLIPModel, dict[str, Any]]:
    """Write ``adapter/`` (LoRA runs) and ``model/`` (a plain ``CLIPModel``, merged); return the plain model
    and the paths. ``write=False`` (a process other than 0 of a multi-process run, which holds the same
    weights): merge and return the paths process 0 writes, write nothing."""
    paths: dict[str, Any] = {"model_dir": None, "adapter_dir": None}
    if isinstance(model, PeftModel):
        if save_model:
            paths["adapter_dir"] = (
                str(save_adapter(model, out / "adapter")) if write else str(out / "adapter")
            )
        model = merge_lora(model)
    model.eval()
    if save_model:
        if write:
            model.save_pretrained(str(out / "model"))
            processor.save_pretrained(str(out / "model"))
        paths["model_dir"] = str(out / "model")
    return model, paths


def _write_summary(
    out: Path, result: TrainResult, t0: float, write: bool = True, **extra: Any
) -> dict[str, Any]:
    """The JSON-able run summary, also written (atomically) to ``out/train_summary.json`` when ``write``."""
    logs = [h for h in result.log_history if "loss" in h]
    summary = {
        "global_step": result.global_step,
        "final_loss": result.final_loss,
        "mean_loss": result.mean_loss,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "first_log": logs[0] if logs else None,
        "last_log": logs[-1] if logs else None,
        # every logged step and the Trainer's own timing: what a comparison of runs reads (e.g. 1 vs N
        # processes, benchmarks/bench_multi_gpu.py); the CLI prints the scalar entries only
        "log_history": result.log_history,
        **extra,
    }
    if write:
        write_json(out / "train_summary.json", summary)
    return summary


def _region_weights_split_over_processes(
    config: RaVLConfig, ds: Any, weights_of: Callable[[list[Any]], np.ndarray]
) -> np.ndarray:
    """``weights_of(images)`` (``[n, R]``) of every training row. Under several processes each process
    computes a contiguous part of the rows and the parts are gathered in rank order (the same array on every
    process): the region embedding is split instead of repeated in every process."""
    _ = config.device  # sets up the process group now (the Trainer would, later)
    world, rank = config.world_size, config.process_index
    if world <= 1:
        return weights_of(list(ds[config.image_column]))
    bounds = np.linspace(0, len(ds), world + 1).astype(int)
    lo, hi = int(bounds[rank]), int(bounds[rank + 1])
    part = weights_of(list(ds.select(range(lo, hi))[config.image_column])) if hi > lo else None
    parts = [p for p in gather_object([part]) if p is not None]
    return np.concatenate(parts, axis=0)


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
    model = load_clip_float32(config.base_model)
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
    loss_fn = RaVLLoss(
        lambda_align=0.0,
        lambda_uninf=0.0,
        clip_positives=config.clip_positives,
        gather_across_devices=config.gather_across_devices,
    )
    model, result = _fit(model, processor, rows, loss_fn, config, resume)
    model, paths = _save(model, processor, out, config.save_model, write=config.should_save)
    summary = _write_summary(
        out,
        result,
        t0,
        write=config.should_save,
        method="standard_finetuning",
        **paths,
        base_model=config.base_model,
        n_train=len(rows),
        class_names=rows.class_names,
        config=config.to_dict(),
    )
    return {**summary, "model": model}


def _write_card(model_dir: Path, config: RaVLConfig, summary: dict[str, Any]) -> None:
    """``model_dir/README.md``: what was trained and which discovered clusters mitigation acted on."""
    acted = summary.get("acted_on_clusters")
    if acted is None:
        clusters_text = "The region flags were given by the caller; no cluster selection was recorded."
    elif not acted:
        clusters_text = (
            "None: no cluster was selected (`allow_empty`), so no region was flagged and the run is standard"
            " fine-tuning (the CLIP loss alone)."
        )
    else:
        header = "| cluster | discovery rank | score | weight | hurts (gap < 0) | favours (gap > 0) |\n"
        header += "| --- | --- | --- | --- | --- | --- |"
        rows = [
            f"| {c['cluster_id']} | {c['rank'] + 1} | {'n/a' if c['score'] is None else format(c['score'], '.3f')}"
            f" | {c['weight']:.3g} | {', '.join(c['hurt_classes']) or '-'} | {', '.join(c['favoured_classes']) or '-'} |"
            for c in acted
        ]
        clusters_text = "\n".join([header, *rows])
    card = model_card(
        "ravl",
        model_name=f"ravl-{Path(str(config.base_model)).name}",
        metrics=[],
        tags=["robustness", "spurious-correlations", "ravl", *(["lora"] if config.use_lora else [])],
        base_model_id=str(config.base_model),
        discovery=str(config.discovery),
        flag_clusters=config.flag_clusters,
        acted_on_table=clusters_text,
        spurious_region_fraction=f"{summary['spurious_region_fraction']:.3f}",
        images_with_spurious_region=f"{summary['images_with_spurious_region']:.3f}",
        n_train=summary["n_train"],
        steps=summary["global_step"],
        loss=f"align_input={config.align_input}, uninf_mode={config.uninf_mode}, λ_a={config.lambda_align:g},"
        f" λ_u={config.lambda_uninf:g}",
        adapter_dir="../adapter" if summary.get("adapter_dir") else None,
    )
    write_text(model_dir / "README.md", str(card))


def train_ravl(
    config: RaVLConfig,
    resume: bool = False,
    *,
    region_flags: Any = None,
    flag_selection: FlagSelection | None = None,
    return_model: bool = False,
) -> dict[str, Any]:
    """RaVL mitigation: flag the training regions with the discovered clusters that ``config.flag_clusters``
    selects (:mod:`.flag_strategies`), then fine-tune with :class:`RaVLLoss` through
    :func:`trustvl.training.core.train`; returns a JSON-able summary (also written to
    ``output_dir/train_summary.json``, with the acted-on clusters under ``"acted_on_clusters"``) and saves
    the model to ``output_dir/model`` (a plain ``CLIPModel`` with a model card listing the acted-on clusters)
    and, for LoRA, the peft adapter to ``output_dir/adapter``.

    ``region_flags`` (``[n, R]`` bool flags or score weights, e.g. computed once for several runs with
    :func:`compute_region_weights`) replaces the flag computation; ``flag_selection`` then records which
    clusters they came from. ``return_model``: also return the trained plain model under ``"model"`` (not
    JSON-able).

    When no training region is flagged (``allow_empty`` with an empty selection, or all-zero ``region_flags``)
    the run is standard fine-tuning (``L_CLIP`` alone, as :func:`finetune_clip`; ``"region_terms"`` in the
    summary says so): with nothing spurious there is nothing for the region terms to suppress.

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
    model = load_clip_float32(config.base_model)
    ds = _load_split(config)

    selection = flag_selection
    if region_flags is None and loss_fn.uses_flags:
        medoids = SpuriousMedoids.load(config.discovery)
        # without allow_empty, an empty selection raises here, before the flag model is loaded
        selection = medoids.select(
            config.flag_clusters, config.clusters, config.top_clusters, allow_empty=config.allow_empty
        )
        f_model, f_proc = load_clip(config.flag_model or medoids.model or config.base_model, device="cpu")
        region_flags = _region_weights_split_over_processes(
            config,
            ds,
            lambda images: compute_region_weights(
                f_model,
                f_proc,
                images,
                medoids,
                selection,
                grid_n=config.grid_n,
                progress=not config.disable_tqdm,
            ),
        )
    # no region flagged anywhere (an empty selection with allow_empty, or flags given all 0): there is nothing
    # spurious to ignore and every region is relevant, so the region terms would only add a second image-text
    # term on whole images (L_align of unmasked images: 3.5 overall points below standard fine-tuning on
    # spurious digits V = 0.8 / class 7, seed 0). The run is standard fine-tuning, L_CLIP alone.
    nothing_flagged = loss_fn.uses_flags and not np.asarray(region_flags).any()
    if nothing_flagged:
        loss_fn = dataclasses.replace(loss_fn, lambda_align=0.0, lambda_uninf=0.0)
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
    model, paths = _save(model, processor, out, config.save_model, write=config.should_save)
    flags = np.asarray(rows.flags)
    summary = _write_summary(
        out,
        result,
        t0,
        write=config.should_save,
        method="ravl",
        **paths,
        n_train=len(rows),
        class_names=rows.class_names,
        flag_clusters=config.flag_clusters,
        n_spurious_clusters=None if selection is None else len(selection.clusters),
        acted_on_clusters=None if selection is None else [c.to_dict() for c in selection.clusters],
        spurious_region_fraction=float(flags.mean()),
        images_with_spurious_region=float(flags.any(axis=1).mean()),
        region_terms="on"
        if loss_fn.uses_flags
        else ("off: no region flagged, standard fine-tuning (L_CLIP alone)" if nothing_flagged else "off"),
        config=config.to_dict(),
    )
    if paths["model_dir"] and config.should_save:
        _write_card(Path(paths["model_dir"]), config, summary)
    return {**summary, "model": model} if return_model else summary
