"""The training core's one entry point, :func:`train`: it checks the run's settings, configures early
stopping, selects the trainable parameters, builds a :class:`~trustvl.training.core.trainer.TrustVLTrainer`,
resumes from the last complete checkpoint when asked, and returns a
:class:`~trustvl.training.core.results.TrainResult`."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from torch import nn
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

from trustvl.errors import TrustVLInputError
from trustvl.training.arguments import TrustVLTrainingArguments
from trustvl.training.core.checkpoints import last_complete_checkpoint
from trustvl.training.core.contract import LossFn, MetricFn
from trustvl.training.core.early_stopping import configure_early_stopping
from trustvl.training.core.results import TrainResult
from trustvl.training.core.trainer import MetricsOnlyEval, TrustVLTrainer

__all__ = ["train"]

logger = logging.getLogger(__name__)


def _select_trainable(model: nn.Module, trainable_parameters: str) -> int:
    if trainable_parameters == "all":
        for p in model.parameters():
            p.requires_grad_(True)
    elif trainable_parameters != "requires_grad":
        raise TrustVLInputError(
            f"trainable_parameters={trainable_parameters!r} is not supported; expected 'all' or 'requires_grad'"
        )
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if n == 0:
        raise TrustVLInputError("the model has no trainable parameters (every requires_grad is False)")
    return n


def train(
    model: nn.Module,
    train_dataset: Any,
    loss_fn: LossFn,
    args: TrustVLTrainingArguments,
    *,
    data_collator: Callable[[list[Any]], dict[str, Any]] | None = None,
    eval_dataset: Any = None,
    compute_metrics: MetricFn | None = None,
    callbacks: Sequence[TrainerCallback] | None = None,
    resume: bool | str | os.PathLike = False,
    trainable_parameters: Literal["all", "requires_grad"] = "requires_grad",
    processing_class: Any = None,
) -> TrainResult:
    """Train ``model`` with ``loss_fn`` through trustvl's single training path (a :class:`TrustVLTrainer`).

    The model is trained in place (and, with ``load_best_model_at_end``, ends holding the best
    checkpoint's weights). Launch the same script with ``accelerate launch`` or ``torchrun`` for multi-GPU
    or multi-node training; nothing here changes.

    Args:
        model (`torch.nn.Module`):
            A ``PreTrainedModel`` (e.g. ``CLIPModel``), a PEFT model, or any module ``loss_fn`` understands.
        train_dataset:
            A map-style dataset (``datasets.Dataset``, ``torch.utils.data.Dataset``, list) or an iterable dataset.
        loss_fn (:data:`LossFn`):
            ``loss_fn(model, batch) -> (loss, extras)``, e.g. :class:`ClipContrastiveLoss`.
        args (:class:`~trustvl.training.arguments.TrustVLTrainingArguments`):
            The run's settings (a method's configuration, e.g. ``CFAlphaConfig``, is one); ``output_dir`` is the
            run folder.
        data_collator (`callable`, *optional*):
            Turns a list of rows into a batch dict (e.g. :class:`~trustvl.training.ImageTextCollator`); defaults
            to transformers' ``default_data_collator`` (stacks tensors / numbers).
        eval_dataset (*optional*):
            Rows on which ``loss_fn`` is averaged at each evaluation (``eval_loss`` + extras); a dict of datasets
            gives ``eval_<name>_loss`` etc.
        compute_metrics (:data:`MetricFn`, *optional*):
            ``compute_metrics(model) -> {name: value}``, run at each evaluation (unwrapped model, eval mode, no
            grad) and logged as ``eval_<name>``. Note: unlike ``Trainer``'s, it receives the model, not
            predictions: trustvl's metrics (retrieval recall, fairness) need whole galleries.
        callbacks (list of `TrainerCallback`, *optional*):
            Extra callbacks, e.g. :func:`early_stopping`.
        resume (`bool` or path, *optional*, defaults to `False`):
            `True`: continue from the last ``checkpoint-*`` in ``args.output_dir`` if there is one, else start
            fresh. A path: resume from that checkpoint. Model, optimiser, scheduler, RNG and data position are
            restored; training continues to ``args.max_steps`` / ``num_train_epochs``.
        trainable_parameters (`str`, *optional*, defaults to `"requires_grad"`):
            `"requires_grad"` trains the parameters whose ``requires_grad`` is set (frozen towers and PEFT
            adapters are respected); `"all"` sets ``requires_grad=True`` on every parameter first.
        processing_class (*optional*):
            A tokenizer / processor saved alongside checkpoints and the final model.

    Returns:
        :class:`TrainResult`.

    Raises:
        TrustVLInputError: inconsistent configuration (e.g. evaluation requested without data or metric).
    """
    if not isinstance(args, TrustVLTrainingArguments):
        raise TrustVLInputError(
            f"args must be a TrustVLTrainingArguments (or a method's config); got {type(args).__name__}"
        )
    if not args.output_dir:
        raise TrustVLInputError("args.output_dir is required (the run folder); got None")
    if train_dataset is None:
        raise TrustVLInputError("train_dataset is required")
    callbacks = list(callbacks or [])
    args = configure_early_stopping(args, callbacks)
    if args.evaluates and eval_dataset is None and compute_metrics is None:
        raise TrustVLInputError(
            f"eval_strategy={str(getattr(args.eval_strategy, 'value', args.eval_strategy))!r} asks for evaluation,"
            " but neither eval_dataset nor compute_metrics was given"
        )
    n_trainable = _select_trainable(model, trainable_parameters)
    if args.evaluates and eval_dataset is None:
        eval_dataset = MetricsOnlyEval()

    trainer = TrustVLTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data_collator,
        processing_class=processing_class,
        callbacks=callbacks or None,
        loss_fn=loss_fn,
        metric_fn=compute_metrics,
        require_model_forward=args.require_model_forward,
    )
    if args.disable_tqdm:
        # without a progress bar transformers prints every log dict to stdout instead; quiet means quiet
        # (the logs stay in ``TrainResult.log_history`` and ``trainer_state.json``)
        trainer.remove_callback(PrinterCallback)
    n_total = sum(p.numel() for p in model.parameters())
    logger.info(
        "trustvl.train: %d of %d parameters trainable (%.2f%%)",
        n_trainable,
        n_total,
        100.0 * n_trainable / max(n_total, 1),
    )

    checkpoint: str | None = None
    if isinstance(resume, (str, os.PathLike)) and not isinstance(resume, bool):
        checkpoint = os.fspath(resume)
        if not Path(checkpoint).is_dir():
            raise TrustVLInputError(f"resume={checkpoint!r} is not a checkpoint folder")
    elif resume and Path(args.output_dir).is_dir():
        checkpoint = last_complete_checkpoint(args.output_dir, remove_incomplete=True)
        if checkpoint is None:
            logger.info("trustvl.train: no checkpoint in %s, starting fresh", args.output_dir)
    output = trainer.train(resume_from_checkpoint=checkpoint)

    final_dir = None
    if args.save_final_model:
        final_dir = os.path.join(args.output_dir, "final")
        trainer.save_model(final_dir)

    history = list(trainer.state.log_history)
    losses = [entry["loss"] for entry in history if "loss" in entry]
    final_loss = float(losses[-1]) if losses else float(output.training_loss)
    mean_loss = float(sum(losses) / len(losses)) if losses else float(output.training_loss)
    if math.isnan(final_loss):
        logger.warning("trustvl.train: the final loss is NaN")
    return TrainResult(
        output_dir=args.output_dir,
        global_step=int(trainer.state.global_step),
        final_loss=final_loss,
        log_history=history,
        mean_loss=mean_loss,
        best_metric=trainer.state.best_metric,
        best_model_checkpoint=trainer.state.best_model_checkpoint,
        final_model_dir=final_dir,
        resumed_from=checkpoint,
        metrics=dict(output.metrics),
    )
