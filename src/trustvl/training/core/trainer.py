"""The training core's :class:`transformers.Trainer` subclass, :class:`TrustVLTrainer`.

Its loss is a trustvl :data:`~trustvl.training.core.contract.LossFn`, run through
:func:`~trustvl.training.core.forward_check.call_loss_fn` (which enforces the DDP forward-call rule); its
evaluation averages the loss function over an eval dataset and adds a
:data:`~trustvl.training.core.contract.MetricFn`'s values; each log entry carries the running means of the
loss function's extras."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from transformers import Trainer

from trustvl.errors import TrustVLInputError
from trustvl.training.core.contract import LossFn, MetricFn, unwrap_model
from trustvl.training.core.forward_check import call_loss_fn

__all__ = ["MetricsOnlyEval", "TrustVLTrainer"]


class MetricsOnlyEval(torch.utils.data.Dataset):
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
            ``loss_fn(model, batch) -> (loss, extras)``; see :mod:`trustvl.training.core` for the forward-call
            rule.
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
        return call_loss_fn(self.loss_fn, model, inputs, require_model_forward=self.require_model_forward)

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
        if self.metric_fn is None and (dataset is None or isinstance(dataset, MetricsOnlyEval)):
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
        if dataset is not None and not isinstance(dataset, MetricsOnlyEval):
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
