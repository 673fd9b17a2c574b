"""The settings of a trustvl training run: :class:`transformers.TrainingArguments` plus trustvl's fields.

Every method's configuration extends :class:`TrustVLTrainingArguments` the way TRL's ``SFTConfig`` extends
``TrainingArguments``: a method adds its own documented fields (model, data, loss weights, LoRA) and
overrides the defaults of its recipe; :class:`transformers.HfArgumentParser` then gives the command line
(``trustvl train <method> --help`` lists every field once, with its default and doc) and reads YAML/JSON
recipe files. The shared core (:func:`trustvl.training.train`) takes the configuration object itself.

Only defaults that differ from transformers' are restated here, each with the reason.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from trustvl.errors import TrustVLInputError

__all__ = ["TrustVLTrainingArguments"]


@dataclass
class TrustVLTrainingArguments(TrainingArguments):
    """:class:`transformers.TrainingArguments` with trustvl's defaults and two trustvl fields.

    ``output_dir`` is the run folder: resumable checkpoints go to ``<output_dir>/checkpoint-<step>``, the
    method's outputs next to them.
    """

    # -- trustvl's fields
    require_model_forward: bool = field(
        default=True,
        metadata={
            "help": "Raise if a training step's loss function never called the (wrapped) model's forward: under"
            " DDP/FSDP/DeepSpeed such a loss would not synchronise or gather weights (trustvl.training.core)."
        },
    )
    save_final_model: bool = field(
        default=True,
        metadata={
            "help": "train() saves the trained model with trainer.save_model to <output_dir>/final (a peft model"
            " saves its adapter only). Methods that write their own outputs set it to False."
        },
    )

    # -- transformers fields whose trustvl default differs
    output_dir: str | None = field(
        default=None,
        metadata={"help": "The run folder (checkpoints and the method's outputs).", "aliases": ["--out"]},
    )
    seed: int = field(
        default=0,
        metadata={
            "help": "Seed set before the model's LoRA/weights are initialised and before training (data order,"
            " dropout); the same seed gives the same numbers."
        },
    )
    num_train_epochs: float = field(
        default=1.0, metadata={"help": "Number of epochs, used when max_steps is -1."}
    )
    per_device_train_batch_size: int = field(
        default=32,
        metadata={
            "help": "Batch size per device (and per forward); contrastive negatives come from this batch."
        },
    )
    per_device_eval_batch_size: int | None = field(
        default=None, metadata={"help": "Batch size of evaluation losses; None: per_device_train_batch_size."}
    )
    optim: str = field(
        default="adamw_torch",
        metadata={"help": "A transformers optimiser name; AdamW in plain torch (runs on every device)."},
    )
    logging_steps: float = field(
        default=10,
        metadata={"help": "Log the loss, learning rate and the loss function's extras every N steps."},
    )
    load_best_model_at_end: bool | None = field(
        default=None,
        metadata={
            "help": "Reload the best checkpoint when training ends. None: yes when early stopping is used and"
            " checkpoints are saved."
        },
    )
    dataloader_drop_last: bool = field(
        default=True,
        metadata={
            "help": "Drop the last incomplete batch: contrastive losses want full, equal-size batches."
        },
    )
    dataloader_pin_memory: bool = field(
        default_factory=torch.cuda.is_available,
        metadata={"help": "Pin host memory; only useful (and only on by default) when CUDA is available."},
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Keep every dataset column: trustvl's collators and losses read them all."},
    )
    ddp_find_unused_parameters: bool | None = field(
        default=False,
        metadata={
            "help": "DDP's find_unused_parameters. trustvl losses give every trainable parameter a gradient each"
            " step, and False also permits several forward calls per step."
        },
    )
    prediction_loss_only: bool = field(
        default=True, metadata={"help": "Evaluation computes the loss function (and metric_fn) only."}
    )
    report_to: None | str | list[str] = field(
        default="none",
        metadata={"help": "Experiment trackers (tensorboard, wandb, ...); 'none' logs to log_history only."},
    )

    def __post_init__(self) -> None:
        if self.per_device_eval_batch_size is None:
            self.per_device_eval_batch_size = self.per_device_train_batch_size
        for name in (
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
        ):
            if int(getattr(self, name)) < 1:
                raise TrustVLInputError(f"{name}={getattr(self, name)}; expected an integer >= 1")
        if self.max_steps == 0 or self.max_steps < -1:
            raise TrustVLInputError(f"max_steps={self.max_steps}; expected -1 (train by epochs) or >= 1")
        for f in dataclasses.fields(self):  # nan/inf anywhere (a learning rate, a loss weight) is a typo
            value = getattr(self, f.name, None)
            if isinstance(value, float) and not math.isfinite(value):
                raise TrustVLInputError(f"{f.name}={value}; expected a finite number")
        for name in ("learning_rate", "weight_decay", "warmup_steps", "warmup_ratio"):
            if float(getattr(self, name, 0) or 0) < 0:
                raise TrustVLInputError(f"{name}={getattr(self, name)}; expected a number >= 0")
        for name in ("lora_r", "grid_n", "max_length", "resolution"):  # sizes some methods add
            value = getattr(self, name, None)
            if value is not None and not isinstance(value, bool) and isinstance(value, int) and value < 1:
                raise TrustVLInputError(f"{name}={value}; expected an integer >= 1")
        if not 0 <= int(self.seed) < 2**32:
            raise TrustVLInputError(f"seed={self.seed}; expected an integer in [0, 2**32)")
        super().__post_init__()

    @property
    def saves_checkpoints(self) -> bool:
        """Whether the Trainer writes resumable checkpoints (``save_strategy`` is not ``"no"``)."""
        return str(getattr(self.save_strategy, "value", self.save_strategy)) != "no"

    @property
    def evaluates(self) -> bool:
        """Whether the Trainer evaluates during training (``eval_strategy`` is not ``"no"``)."""
        return str(getattr(self.eval_strategy, "value", self.eval_strategy)) != "no"
