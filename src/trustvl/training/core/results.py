"""What :func:`trustvl.training.core.train` returns: :class:`TrainResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrainResult"]


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
