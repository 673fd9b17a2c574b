"""trustvl's one training path: a :class:`transformers.Trainer` with pluggable losses and collators.

Every trustvl method (SynthWorld CLIP pretraining, CF_α counterfactual fine-tuning, RaVL region-aware
fine-tuning, Safe-CLIP) trains through :func:`train` / :class:`TrustVLTrainer`; a method only supplies

* a **loss function** (:data:`LossFn`): ``loss_fn(model, batch) -> (loss, extras)`` where ``loss`` is a
  scalar tensor and ``extras`` a mapping of further scalars (floats or 0-d tensors) to log, e.g. the
  individual terms of a weighted sum. The trainer logs their running mean (over the micro-batches since the
  last log and over processes) next to ``loss``;
* a **collator** turning dataset rows into a batch dict (see :mod:`trustvl.training.collators`);
* optionally an evaluation callable and callbacks (early stopping);
* its **configuration**, a subclass of :class:`~trustvl.training.arguments.TrustVLTrainingArguments`
  (itself a :class:`transformers.TrainingArguments`), passed to :func:`train` as it is.

Everything else — optimiser, scheduler, gradient accumulation, mixed precision, checkpointing and
resumption, logging, progress bars, multi-GPU / multi-node — is the Trainer's, so a script that trains on
one CPU runs unchanged under ``accelerate launch`` or ``torchrun`` on many GPUs.

The loss-function contract (what makes DDP correct)
---------------------------------------------------
``loss_fn`` receives the model *as the Trainer wrapped it* (``DistributedDataParallel``, DeepSpeed engine,
FSDP, ``DataParallel`` or the bare model on one device) and **must compute everything that carries
gradients through that object's forward**, i.e. ``model(**inputs)``. DDP synchronises gradients through
state that its ``forward`` sets up (``Reducer.prepare_for_backward``): a loss built only from
``model.module.get_text_features(...)`` bypasses it, and the processes' weights silently drift apart (FSDP
and DeepSpeed ZeRO-3 need the wrapper's forward even to gather sharded weights). For a ``CLIPModel``
``model(input_ids=..., attention_mask=..., pixel_values=...)`` returns ``text_embeds`` and ``image_embeds``
in one call; methods needing several text or image sets (Safe-CLIP's S/U and V/G, RaVL's regions) can
concatenate them into one forward, because the text and image batch sizes of a CLIP forward may differ.
Several forward calls per step are also fine, provided every trainable parameter receives a gradient in
every step (``TrustVLTrainingArguments.ddp_find_unused_parameters`` defaults to `False`; set it to `True` only if some
trainable parameters legitimately get none, and then make a single forward call per step).

Reading *attributes* of the unwrapped model (``unwrap_model(model).logit_scale``, its config) is fine:
the parameter's gradient hook is registered by DDP on the parameter itself. Frozen reference models (e.g.
Safe-CLIP's original towers) are separate modules the loss function may call however it likes under
``torch.no_grad()``.

To catch violations on a laptop before they bite on a cluster, :class:`TrustVLTrainer` checks in every
training step that ``loss_fn`` called the object it was given (``require_model_forward=True``) and raises
:class:`~trustvl.errors.TrustVLInputError` otherwise, on one CPU exactly as on eight GPUs.

Contrastive negatives are per device by default; see :func:`trustvl.training.losses.gather_with_grad`
for global-batch negatives with exact gradients (:class:`ClipContrastiveLoss` has
``gather_across_devices``).

Launching
---------
``accelerate launch script.py`` / ``torchrun --nproc_per_node N script.py`` (one process per GPU, any
number of nodes) is the supported multi-GPU path. A plain ``python script.py`` on a machine with several
visible GPUs makes the Trainer fall back to ``torch.nn.DataParallel`` in one process, with a batch of
``per_device_train_batch_size × n_gpu``: it works, but is slower; set ``CUDA_VISIBLE_DEVICES`` to use one GPU.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback
from transformers.trainer_callback import PrinterCallback

from trustvl.errors import TrustVLInputError
from trustvl.training.arguments import TrustVLTrainingArguments
from trustvl.training.losses import clip_contrastive_loss, gather_with_grad

__all__ = [
    "ClipContrastiveLoss",
    "LossFn",
    "MetricFn",
    "TrainResult",
    "TrustVLEarlyStopping",
    "TrustVLTrainer",
    "early_stopping",
    "model_inputs",
    "train",
    "unwrap_model",
]

logger = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, dict[str, Any]], "tuple[torch.Tensor, Mapping[str, float | torch.Tensor]]"]
"""``loss_fn(model, batch) -> (loss, extras)``.

``model`` is the (possibly DDP/FSDP/DeepSpeed-wrapped) model: compute gradient-carrying outputs by calling
``model(...)`` (see the module docstring). ``batch`` is the collated batch already moved to the device.
``loss`` is a scalar tensor (a per-batch mean; the trainer divides it by the gradient-accumulation steps).
``extras`` maps names to scalars (floats or 0-d tensors, detached or not) logged as running means; return
the same names on every call.
"""

MetricFn = Callable[[nn.Module], Mapping[str, float]]
"""``metric_fn(model) -> {name: value}``, run at each evaluation on the unwrapped model in eval mode under
``torch.no_grad()``; values are logged as ``eval_<name>`` and can drive early stopping / best-model
selection (e.g. Safe-CLIP's sum of retrieval R@1)."""

_MODEL_INPUT_KEYS = ("input_ids", "attention_mask", "position_ids", "pixel_values")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DDP / DataParallel / DeepSpeed / ``torch.compile`` wrappers (a PEFT model stays a
    PEFT model). Use it to read attributes (``logit_scale``, ``config``), not to run gradient-carrying
    computations (see the module docstring)."""
    from accelerate.utils import extract_model_from_parallel

    return extract_model_from_parallel(model)


def model_inputs(batch: Mapping[str, Any], keys: Sequence[str] = _MODEL_INPUT_KEYS) -> dict[str, Any]:
    """The entries of ``batch`` that a CLIP-style forward takes (``input_ids``, ``attention_mask``,
    ``position_ids``, ``pixel_values`` by default), leaving out bookkeeping fields such as ``group_id``."""
    return {k: batch[k] for k in keys if k in batch and batch[k] is not None}


@dataclass
class ClipContrastiveLoss:
    """The CLIP loss as a :data:`LossFn`: one forward of a CLIP-style model, symmetric InfoNCE on its
    ``image_embeds`` / ``text_embeds``.

    Works for any model whose forward takes ``input_ids``/``attention_mask``/``pixel_values`` and returns
    ``image_embeds`` and ``text_embeds`` (``CLIPModel``, trustvl's subclasses, PEFT-wrapped ones).

    Args:
        max_logit_scale (`float`, *optional*, defaults to 100.0):
            The learned scale ``exp(model.logit_scale)`` is clamped to this, as in CLIP.
        fixed_logit_scale (`float`, *optional*):
            Use this constant scale instead of the model's learned one.
        gather_across_devices (`bool`, *optional*, defaults to `False`):
            Use the global batch (all processes) as negatives, with exact gradients
            (:func:`~trustvl.training.losses.gather_with_grad`).
    """

    max_logit_scale: float = 100.0
    fixed_logit_scale: float | None = None
    gather_across_devices: bool = False

    def __call__(
        self, model: nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = model(**model_inputs(batch))
        image_embeds, text_embeds = out.image_embeds, out.text_embeds
        if self.fixed_logit_scale is not None:
            scale = torch.tensor(float(self.fixed_logit_scale), device=image_embeds.device)
        else:
            scale = unwrap_model(model).logit_scale.exp().clamp(max=self.max_logit_scale)
        if self.gather_across_devices:
            image_embeds, text_embeds = gather_with_grad(image_embeds), gather_with_grad(text_embeds)
        loss = clip_contrastive_loss(image_embeds, text_embeds, scale)
        return loss, {"clip_loss": loss.detach(), "logit_scale": scale.detach().float()}


def _complete(checkpoint: Path) -> bool:
    """Whether ``checkpoint`` was saved to the end: the Trainer writes ``trainer_state.json`` last (after the
    weights, optimiser, scheduler and RNG state), so a readable one with a ``global_step`` marks a complete
    checkpoint; a kill during the save leaves it missing or cut short."""
    state_file = checkpoint / "trainer_state.json"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and "global_step" in state


def last_complete_checkpoint(output_dir: str | os.PathLike, remove_incomplete: bool = False) -> str | None:
    """The newest complete ``checkpoint-<step>`` folder of ``output_dir`` (see :func:`_complete`), or None.

    With ``remove_incomplete``, newer checkpoints that a kill left half-written are deleted (they hold no
    state a resume could use, and the Trainer would later save into the same names).
    """
    folder = Path(output_dir)
    found = sorted(
        (int(p.name.split("-", 1)[1]), p)
        for p in folder.glob("checkpoint-*")
        if p.is_dir() and p.name.split("-", 1)[1].isdigit()
    )
    for _, checkpoint in reversed(found):
        if _complete(checkpoint):
            return str(checkpoint)
        if remove_incomplete:
            logger.warning("trustvl.train: %s is incomplete (killed while saving?); removing it", checkpoint)
            shutil.rmtree(checkpoint, ignore_errors=True)
    return None


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        output_dir (`str`): The run's output folder.
        global_step (`int`): Optimiser steps done, counting those before a resumed checkpoint.
        final_loss (`float`): The last logged training loss (mean over the last logging window); the run's mean
            loss if nothing was logged.
        mean_loss (`float`): Mean of every logged training loss of the whole run, the steps before a resume
            included (the Trainer's own ``train_loss`` metric covers only the steps of this process).
        log_history (`list[dict]`): Every log entry (``loss``, ``learning_rate``, extras, ``eval_*``, ``step``).
        best_metric (`float`, *optional*): Best value of ``metric_for_best_model`` seen, if tracked.
        best_model_checkpoint (`str`, *optional*): Checkpoint holding the best model, if tracked.
        final_model_dir (`str`, *optional*): Where the final model was saved (``<output_dir>/final``), if saved.
        resumed_from (`str`, *optional*): The checkpoint training resumed from, if any.
        metrics (`dict`): The Trainer's end-of-training metrics (``train_loss``, ``train_runtime``…).
    """

    output_dir: str
    global_step: int
    final_loss: float
    log_history: list[dict[str, Any]]
    mean_loss: float = float("nan")
    best_metric: float | None = None
    best_model_checkpoint: str | None = None
    final_model_dir: str | None = None
    resumed_from: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


class TrustVLEarlyStopping(EarlyStoppingCallback):
    """:class:`transformers.EarlyStoppingCallback` that also names the metric it watches, so :func:`train`
    can configure ``metric_for_best_model`` / ``greater_is_better`` from it. Build it with
    :func:`early_stopping`."""

    def __init__(self, patience: int, metric_name: str, greater_is_better: bool, threshold: float = 0.0):
        super().__init__(early_stopping_patience=patience, early_stopping_threshold=threshold)
        self.metric_name = metric_name
        self.greater_is_better = greater_is_better


def early_stopping(
    patience: int, metric_name: str, *, greater_is_better: bool | None = None, threshold: float = 0.0
) -> TrustVLEarlyStopping:
    """Stop when ``metric_name`` has not improved by more than ``threshold`` for ``patience`` evaluations.

    Pass the result in ``callbacks=`` of :func:`train`, together with ``eval_strategy="steps"`` and an
    ``eval_dataset`` (metric ``"loss"``) and/or a ``metric_fn`` producing ``metric_name``. :func:`train` then
    sets ``metric_for_best_model`` / ``greater_is_better`` and, unless configured otherwise, reloads the best
    checkpoint at the end (so ``save_steps`` must be a multiple of ``eval_steps``).

    Args:
        patience (`int`): Evaluations without improvement before stopping (>= 1).
        metric_name (`str`): Evaluation metric, with or without the ``eval_`` prefix (e.g. ``"r1_sum"``).
        greater_is_better (`bool`, *optional*): Default: `False` if the name ends in ``loss``, else `True`.
        threshold (`float`, *optional*, defaults to 0.0): Minimum improvement that counts.
    """
    if int(patience) < 1:
        raise TrustVLInputError(f"patience={patience} must be >= 1")
    if not metric_name:
        raise TrustVLInputError("metric_name must name an evaluation metric, e.g. 'loss' or 'r1_sum'")
    if greater_is_better is None:
        greater_is_better = not metric_name.endswith("loss")
    return TrustVLEarlyStopping(int(patience), metric_name, bool(greater_is_better), float(threshold))


class _MetricsOnlyEval(torch.utils.data.Dataset):
    """Placeholder eval dataset when evaluation consists of ``metric_fn`` only (the Trainer insists on one)."""

    def __len__(self) -> int:
        return 0

    def __getitem__(self, index: int) -> Any:
        raise IndexError(index)


class _ScalarMeans:
    """Running sums of named scalars, kept on device until read (no host sync per step)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor | float] = {}
        self.counts: dict[str, int] = {}

    def add(self, extras: Mapping[str, float | torch.Tensor] | None) -> None:
        for key, value in (extras or {}).items():
            if isinstance(value, torch.Tensor):
                value = value.detach().float().reshape(-1).mean()
            else:
                value = float(value)
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1

    def pop_means(self, accelerator: Any, device: torch.device) -> dict[str, float]:
        """Means over this window (and over processes when distributed); resets the window.

        Under several processes every process must call this at the same point (the Trainer's ``log`` is
        called on all of them); key sets may differ between processes."""
        keys = sorted(self.sums)
        if accelerator is not None and accelerator.num_processes > 1:
            from accelerate.utils import gather_object

            keys = sorted(set().union(*gather_object([keys])))
        self.sums, sums = {}, self.sums
        self.counts, counts = {}, self.counts
        if not keys:
            return {}
        vec = torch.stack(
            [torch.as_tensor(sums.get(k, 0.0), dtype=torch.float32, device=device).reshape(()) for k in keys]
            + [torch.tensor(float(counts.get(k, 0)), device=device) for k in keys]
        )
        if accelerator is not None and accelerator.num_processes > 1:
            vec = accelerator.reduce(vec, reduction="sum")
        n = len(keys)
        return {k: float(vec[i] / vec[n + i]) for i, k in enumerate(keys) if float(vec[n + i]) > 0}


class TrustVLTrainer(Trainer):
    """:class:`transformers.Trainer` whose loss is a trustvl :data:`LossFn`.

    Args:
        loss_fn (:data:`LossFn`):
            ``loss_fn(model, batch) -> (loss, extras)``; see the module docstring for the forward-call rule.
        metric_fn (:data:`MetricFn`, *optional*):
            Called at each evaluation on the unwrapped model (eval mode, no grad). Under several processes it
            runs on every process (so it also works with sharded FSDP/ZeRO-3 weights) and process 0's values
            are broadcast, so every process takes the same early-stopping decision.
        require_model_forward (`bool`, *optional*, defaults to `True`):
            Raise :class:`~trustvl.errors.TrustVLInputError` when a training step's ``loss_fn`` did not call
            the model object it was given.
        *args, **kwargs:
            Everything :class:`transformers.Trainer` takes (``args``, ``train_dataset``, ``data_collator``…),
            except ``compute_loss_func`` and ``compute_metrics`` (use ``loss_fn`` / ``metric_fn``).

    Evaluation computes the mean of ``loss_fn`` over ``eval_dataset`` (``eval_loss``) and the means of its
    extras (``eval_<name>``), plus ``metric_fn``'s values (``eval_<name>``).
    """

    # transformers >= 5.2x: our loss is a per-batch mean, so the Trainer divides it by the accumulation steps
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *args: Any,
        loss_fn: LossFn,
        metric_fn: MetricFn | None = None,
        require_model_forward: bool = True,
        **kwargs: Any,
    ) -> None:
        for banned in ("compute_loss_func", "compute_metrics"):
            if kwargs.get(banned) is not None:
                raise TrustVLInputError(
                    f"TrustVLTrainer takes loss_fn/metric_fn instead of {banned}; got {banned}={kwargs[banned]!r}"
                )
        if not callable(loss_fn):
            raise TrustVLInputError(
                f"loss_fn must be callable(model, batch) -> (loss, extras); got {loss_fn!r}"
            )
        super().__init__(*args, **kwargs)
        self.loss_fn = loss_fn
        self.metric_fn = metric_fn
        self.require_model_forward = require_model_forward
        # transformers 5.17: the same effect as loss_is_scaled_for_ga=False (loss divided by GA steps)
        self.model_accepts_loss_kwargs = False
        self._train_extras = _ScalarMeans()
        self._eval_extras = _ScalarMeans()

    # -- loss ---------------------------------------------------------------------------------------------
    def _run_loss_fn(
        self, model: nn.Module, inputs: dict[str, Any]
    ) -> tuple[torch.Tensor, Mapping[str, Any]]:
        check = self.require_model_forward and model.training and torch.is_grad_enabled()
        calls = [0]
        handle = None
        if check:

            def _count(*_: Any, **__: Any) -> None:
                calls[0] += 1

            handle = model.register_forward_pre_hook(_count)
        try:
            result = self.loss_fn(model, inputs)
        finally:
            if handle is not None:
                handle.remove()
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TrustVLInputError(
                f"loss_fn must return (loss, extras_dict); got {type(result).__name__} {result!r:.200}"
            )
        loss, extras = result
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TrustVLInputError(f"loss_fn's loss must be a scalar tensor; got {loss!r:.200}")
        if check and calls[0] == 0 and loss.requires_grad:
            raise TrustVLInputError(
                "loss_fn computed a gradient-carrying loss without calling the model it was given (model(...)); "
                "under DDP/FSDP/DeepSpeed such a loss does not synchronise or gather weights. Compute the "
                "embeddings through the model's forward (see trustvl.training.core), or set "
                "require_model_forward=False if you know better."
            )
        return loss.reshape(()), dict(extras or {})

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """Run ``loss_fn(model, inputs)``; ``num_items_in_batch`` is ignored (losses are per-batch means).

        A loss with a ``set_step(step)`` method is told the optimiser step first (during training), so a
        loss that varies by step (e.g. CF_α's α path) stays a function of the step and resumes exactly."""
        if model.training and hasattr(self.loss_fn, "set_step"):
            self.loss_fn.set_step(self.state.global_step)
        loss, extras = self._run_loss_fn(model, inputs)
        if model.training:
            self._train_extras.add(extras)
        return (loss, extras) if return_outputs else loss

    # -- evaluation -----------------------------------------------------------------------------------------
    def prediction_step(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss, extras = self._run_loss_fn(model, inputs)
        self._eval_extras.add(extras)
        return loss.detach().mean(), None, None

    def _run_metric_fn(self) -> dict[str, float]:
        model = unwrap_model(self.model)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                values = {str(k): float(v) for k, v in dict(self.metric_fn(model)).items()}
        finally:
            model.train(was_training)
        if self.accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            values = broadcast_object_list([values], from_process=0)[0]
        return values

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Mean ``loss_fn`` (and extras) over the eval dataset plus ``metric_fn``'s values, logged with
        ``metric_key_prefix`` and passed to the callbacks (early stopping)."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if self.metric_fn is None and (dataset is None or isinstance(dataset, _MetricsOnlyEval)):
            raise TrustVLInputError("evaluation needs an eval_dataset or a metric_fn")
        if isinstance(dataset, dict):
            metrics: dict[str, float] = {}
            for name, ds in dataset.items():
                metrics.update(
                    self._evaluate_one(ds, ignore_keys, f"{metric_key_prefix}_{name}", with_metric_fn=False)
                )
            if self.metric_fn is not None:
                metrics.update({f"{metric_key_prefix}_{k}": v for k, v in self._run_metric_fn().items()})
        else:
            metrics = self._evaluate_one(dataset, ignore_keys, metric_key_prefix, with_metric_fn=True)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def _evaluate_one(
        self, dataset: Any, ignore_keys: list[str] | None, prefix: str, *, with_metric_fn: bool
    ) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if dataset is not None and not isinstance(dataset, _MetricsOnlyEval):
            self._eval_extras = _ScalarMeans()
            dataloader = self.get_eval_dataloader(dataset)
            output = self.evaluation_loop(
                dataloader,
                description="Evaluation",
                prediction_loss_only=True,
                ignore_keys=ignore_keys,
                metric_key_prefix=prefix,
            )
            metrics.update({k: float(v) for k, v in output.metrics.items() if isinstance(v, (int, float))})
            extras = self._eval_extras.pop_means(self.accelerator, self.args.device)
            metrics.update({f"{prefix}_{k}": v for k, v in extras.items() if f"{prefix}_{k}" not in metrics})
        if with_metric_fn and self.metric_fn is not None:
            metrics.update({f"{prefix}_{k}": v for k, v in self._run_metric_fn().items()})
        return metrics

    # -- logging --------------------------------------------------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the running means of the loss function's extras to each training log entry."""
        if "loss" in logs:
            extras = self._train_extras.pop_means(self.accelerator, self.args.device)
            logs = {**logs, **{k: v for k, v in extras.items() if k not in logs}}
        super().log(logs, start_time)


def _configure_early_stopping(
    args: TrustVLTrainingArguments, callbacks: Sequence[Any]
) -> TrustVLTrainingArguments:
    stoppers = [cb for cb in callbacks if isinstance(cb, EarlyStoppingCallback)]
    if not stoppers:
        return args
    if not args.evaluates:
        raise TrustVLInputError(
            "early stopping needs evaluation during training; got eval_strategy='no' (set eval_strategy="
            "'steps' and eval_steps)"
        )
    updates: dict[str, Any] = {}
    for cb in stoppers:
        if isinstance(cb, TrustVLEarlyStopping):
            if args.metric_for_best_model and _strip_eval(args.metric_for_best_model) != _strip_eval(
                cb.metric_name
            ):
                raise TrustVLInputError(
                    f"early_stopping watches {cb.metric_name!r} but metric_for_best_model is "
                    f"{args.metric_for_best_model!r}; use one metric"
                )
            updates.setdefault("metric_for_best_model", cb.metric_name)
            updates.setdefault("greater_is_better", cb.greater_is_better)
    if not (args.metric_for_best_model or updates.get("metric_for_best_model")):
        raise TrustVLInputError(
            "an EarlyStoppingCallback needs metric_for_best_model; or build it with early_stopping()"
        )
    if args.load_best_model_at_end is None:
        updates["load_best_model_at_end"] = args.saves_checkpoints
    try:
        return dataclasses.replace(args, **updates)
    except ValueError as err:  # transformers' own consistency checks (e.g. save_steps vs eval_steps)
        raise TrustVLInputError(f"early stopping with these training arguments: {err}") from None


def _strip_eval(name: str) -> str:
    return name[5:] if name.startswith("eval_") else name


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
    args = _configure_early_stopping(args, callbacks)
    if args.evaluates and eval_dataset is None and compute_metrics is None:
        raise TrustVLInputError(
            f"eval_strategy={str(getattr(args.eval_strategy, 'value', args.eval_strategy))!r} asks for evaluation,"
            " but neither eval_dataset nor compute_metrics was given"
        )
    n_trainable = _select_trainable(model, trainable_parameters)
    if args.evaluates and eval_dataset is None:
        eval_dataset = _MetricsOnlyEval()

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
