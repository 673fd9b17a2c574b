"""Settings of RaVL's two runs, both :class:`~trustvl.training.arguments.TrustVLTrainingArguments`:
:class:`CLIPFinetuneConfig` (standard CLIP fine-tuning on labelled images, :func:`~.train.finetune_clip`) and
:class:`RaVLConfig` (mitigation, :func:`~.train.train_ravl`), which extends it with the discovery and the
region-aware loss (:class:`~.loss.RaVLLoss`, whose defaults its fields take)."""

from __future__ import annotations

from dataclasses import dataclass, field

from trustvl.errors import TrustVLInputError
from trustvl.training.arguments import TrustVLTrainingArguments
from trustvl.training.ravl.data import DEFAULT_PROMPT_TEMPLATE
from trustvl.training.ravl.flag_strategies import DEFAULT_FLAG_STRATEGY, FLAG_STRATEGIES
from trustvl.training.ravl.loss import RaVLLoss

__all__ = ["CLIPFinetuneConfig", "RaVLConfig"]


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
    gather_across_devices: bool = field(
        default=RaVLLoss.gather_across_devices,
        metadata={
            "help": "Under torchrun / accelerate launch: the loss of every process's batch together (the global"
            " batch, exact gradients), so N processes train the 1-process objective; false: each process's own."
        },
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
    flag_clusters: str = field(
        default=DEFAULT_FLAG_STRATEGY,
        metadata={
            "help": "Which discovered clusters mitigation acts on: 'top1' (the top-ranked, as the public RaVL"
            " returns), 'top_per_class' (the best-ranked cluster affecting each class), 'all_kept' (every kept"
            " cluster; the behaviour before the option), 'score_weighted' (every kept one, weighted by score / top score),"
            " 'gap_test' (kept clusters whose accuracy gap is negative beyond noise), 'gap_test_or_top1'"
            " (gap_test, else the top-ranked cluster) or 'gap_test_two_sided' (kept clusters with a gap of"
            " either sign beyond noise) or 'top1_similar' (the top-ranked cluster and the kept clusters whose"
            " medoid is within cosine 0.8 of its medoid; the default, chosen by the ablation in docs/methods/ravl.md)."
            " See trustvl.training.ravl.flag_strategies.",
            "choices": list(FLAG_STRATEGIES),
        },
    )
    clusters: list[int] | None = field(
        default=None,
        metadata={"help": "Candidate discovery clusters (ids) for flag_clusters; None: every kept one."},
    )
    top_clusters: int | None = field(
        default=None, metadata={"help": "Only the top this many kept clusters are candidates."}
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

    def __post_init__(self) -> None:
        if self.flag_clusters not in FLAG_STRATEGIES:
            raise TrustVLInputError(
                f"flag_clusters={self.flag_clusters!r}; expected one of {FLAG_STRATEGIES}"
            )
        super().__post_init__()

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
            gather_across_devices=self.gather_across_devices,
        )
