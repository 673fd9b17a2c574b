"""Settings of Safe-CLIP fine-tuning (``trustvl train safe-clip``), with SPEC §4's recipe as defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from trustvl.errors import TrustVLInputError
from trustvl.training.arguments import TrustVLTrainingArguments
from trustvl.training.safe_clip.loss import DEFAULT_TERM_WEIGHTS, SafeCLIPLoss

__all__ = ["SAFE_CLIP_LORA_TARGETS", "SELECTION_METRICS", "SafeCLIPConfig"]

#: SPEC §4's LoRA targets on both towers (peft suffix match): attention k/v/out projections, both MLP
#: layers and the vision patch embedding (a Conv2d); q_proj is deliberately not a target.
SAFE_CLIP_LORA_TARGETS = ("k_proj", "v_proj", "out_proj", "fc1", "fc2", "patch_embedding")

_W = DEFAULT_TERM_WEIGHTS


#: validation metrics a Safe-CLIP run can select its checkpoint on, and whether higher is better
SELECTION_METRICS: dict[str, bool] = {"recall_sum": True, "nsfw_rate_t2i": False}


@dataclass
class SafeCLIPConfig(TrustVLTrainingArguments):
    """Settings of Safe-CLIP fine-tuning: the run's :class:`TrustVLTrainingArguments` plus the model, data,
    LoRA and loss fields below, with SPEC §4's recipe as defaults (LoRA r 16, lora_alpha 1, dropout 0.1;
    Adam at lr 1e-3 — ``adamw_torch`` with ``weight_decay`` 0 is exactly Adam — constant rate; batch 16;
    up to 50 epochs; evaluation and a checkpoint every epoch; early stopping with patience 5 on
    ``recall_sum`` of the validation split, the best checkpoint reloaded at the end).

    ``output_dir`` is the run folder: ``adapter/`` (the peft adapter), ``model/`` (the merged plain
    ``CLIPModel``, its processor and a model card), ``train_summary.json`` and the resumable
    ``checkpoint-<step>`` folders. ``per_device_train_batch_size`` counts quadruplets (each gives two texts
    and two images to one forward).
    """

    base_model: str | None = field(
        default=None,
        metadata={"help": "Hub id or folder of the CLIP to make safe; None: the embedded SynthWorld CLIP."},
    )
    dataset: str | None = field(
        default=None,
        metadata={
            "help": "Quadruplet dataset (safe_text, safe_image, unsafe_text, unsafe_image columns): `trustvl build"
            " safe-clip-quadruplets` output or any dataset with those columns (required)."
        },
    )
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    eval_split: str | None = field(
        default="validation",
        metadata={
            "help": "Split of the early-stopping metric recall_sum and of the card's results; None: none."
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Train on a seeded random subset of at most this many quadruplets."}
    )
    max_eval_samples: int | None = field(
        default=1000,
        metadata={"help": "recall_sum uses the first this many validation quadruplets (the gallery size)."},
    )
    max_length: int | None = field(
        default=None, metadata={"help": "Token limit of captions; None: the tokenizer's model_max_length."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank r (ΔW = lora_alpha / r · B·A)."})
    lora_alpha: float = field(
        default=1.0, metadata={"help": "peft's lora_alpha, the LoRA scaling numerator."}
    )
    lora_dropout: float = field(default=0.1, metadata={"help": "Dropout on the LoRA branch's input."})
    lora_target_modules: list[str] | str | None = field(
        default_factory=lambda: list(SAFE_CLIP_LORA_TARGETS),
        metadata={
            "help": "LoRA targets on both towers: module-name suffixes (every one must match a layer of the model)"
            " or one regular expression over full module names."
        },
    )
    weight_text_safe: float = field(default=_W[0], metadata={"help": "Term 1: 1 − cos(T(S), Tref(S))."})
    weight_text_unsafe: float = field(default=_W[1], metadata={"help": "Term 2: 1 − cos(T(U), Tref(S))."})
    weight_image_safe: float = field(default=_W[2], metadata={"help": "Term 3: 1 − cos(V(V), Vref(V))."})
    weight_image_unsafe: float = field(default=_W[3], metadata={"help": "Term 4: 1 − cos(V(G), Vref(V))."})
    weight_safe_text_nce: float = field(default=_W[4], metadata={"help": "Term 5: InfoNCE(T(S), Vref(V))."})
    weight_unsafe_text_nce: float = field(default=_W[5], metadata={"help": "Term 6: InfoNCE(T(U), Vref(V))."})
    weight_safe_image_nce: float = field(default=_W[6], metadata={"help": "Term 7: InfoNCE(Tref(S), V(V))."})
    weight_unsafe_image_nce: float = field(
        default=_W[7], metadata={"help": "Term 8: InfoNCE(Tref(S), V(G))."}
    )
    logit_scale: float = field(default=100.0, metadata={"help": "Fixed logit scale of the InfoNCE terms."})
    divide_by_num_terms: bool = field(
        default=False,
        metadata={
            "help": "Divide the loss by 8 as well as by the sum of the weights (the public code's scale); trustvl"
            " divides by the sum of the weights only (a weighted mean of the terms)."
        },
    )
    gather_across_devices: bool = field(
        default=True,
        metadata={
            "help": "Under torchrun / accelerate launch: the terms on every process's batch together (the global"
            " batch, exact gradients), so N processes train the 1-process objective; false: each process's own."
        },
    )
    early_stopping_patience: int = field(
        default=5,
        metadata={"help": "Evaluations without a better selection_metric before stopping; 0: no early stop."},
    )
    selection_metric: str = field(
        default="recall_sum",
        metadata={
            "help": "Validation metric that early stopping watches and the kept checkpoint is best on:"
            " 'recall_sum' (the paper's: R@1 both ways of S-V, S-G, U-V; higher is better) or 'nsfw_rate_t2i'"
            " (the share of unsafe images in the top 10 of the unsafe captions, against a non-twin unsafe pool;"
            " lower is better; needs the split's unsafe_kind or category column).",
            "choices": list(SELECTION_METRICS),
        },
    )
    reference_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "Folder of cached reference embeddings; None: $TRUSTVL_CACHE/safe_clip_references."
        },
    )
    reference_batch_size: int = field(
        default=256, metadata={"help": "Batch size of the one-off reference and validation embedding passes."}
    )
    # SPEC §4's optimisation recipe
    learning_rate: float = field(default=1e-3, metadata={"help": "Learning rate (Adam)."})
    lr_scheduler_type: str = field(default="constant", metadata={"help": "transformers scheduler name."})
    weight_decay: float = field(default=0.0, metadata={"help": "0: adamw_torch is plain Adam."})
    num_train_epochs: float = field(
        default=50.0, metadata={"help": "Epochs at most (early stopping ends sooner)."}
    )
    per_device_train_batch_size: int = field(
        default=16, metadata={"help": "Quadruplets per device and step (the public launch scripts use 16)."}
    )
    eval_strategy: str = field(
        default="epoch", metadata={"help": "When recall_sum is computed: 'epoch', 'steps' or 'no'."}
    )
    save_strategy: str = field(
        default="epoch",
        metadata={"help": "When resumable checkpoints are written: 'epoch', 'steps' or 'no'."},
    )
    save_total_limit: int | None = field(default=1, metadata={"help": "Keep at most this many checkpoints."})
    save_final_model: bool = field(
        default=False,
        metadata={"help": "Also save the Trainer's final/ folder (adapter/ and model/ are written)."},
    )

    def __post_init__(self) -> None:
        if not self.dataset:
            raise TrustVLInputError("SafeCLIPConfig.dataset is required (a quadruplet dataset); got None")
        if not self.output_dir:
            raise TrustVLInputError("SafeCLIPConfig.output_dir is required (the run folder); got None")
        if self.selection_metric not in SELECTION_METRICS:
            raise TrustVLInputError(
                f"selection_metric={self.selection_metric!r}; expected one of {', '.join(SELECTION_METRICS)}"
            )
        if self.early_stopping_patience < 0:
            raise TrustVLInputError(
                f"early_stopping_patience={self.early_stopping_patience}; expected >= 0 (0 turns it off)"
            )
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise TrustVLInputError(f"{name}={value}; expected None or an integer >= 2")
        self.loss()  # validates the weights and the scale before anything runs
        super().__post_init__()
        if self.evaluates and not self.eval_split:
            raise TrustVLInputError(
                f"eval_strategy={str(getattr(self.eval_strategy, 'value', self.eval_strategy))!r} needs"
                " eval_split (the validation split of recall_sum); got None"
            )

    @property
    def term_weights(self) -> tuple[float, ...]:
        """The eight weights in SPEC §4's order."""
        return (
            self.weight_text_safe,
            self.weight_text_unsafe,
            self.weight_image_safe,
            self.weight_image_unsafe,
            self.weight_safe_text_nce,
            self.weight_unsafe_text_nce,
            self.weight_safe_image_nce,
            self.weight_unsafe_image_nce,
        )

    def loss(self) -> SafeCLIPLoss:
        """The :class:`SafeCLIPLoss` of this run."""
        return SafeCLIPLoss(
            weights=self.term_weights,
            logit_scale=self.logit_scale,
            divide_by_num_terms=self.divide_by_num_terms,
            gather_across_devices=self.gather_across_devices,
        )
