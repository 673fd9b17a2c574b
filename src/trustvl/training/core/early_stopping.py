"""Early stopping through the training core: the :class:`TrustVLEarlyStopping` callback (built with
:func:`early_stopping`), which names the metric it watches, and :func:`configure_early_stopping`, which sets
the run's ``metric_for_best_model`` / ``greater_is_better`` / ``load_best_model_at_end`` from it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from transformers import EarlyStoppingCallback

from trustvl.errors import TrustVLInputError
from trustvl.training.arguments import TrustVLTrainingArguments

__all__ = ["TrustVLEarlyStopping", "configure_early_stopping", "early_stopping"]


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


def configure_early_stopping(
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
