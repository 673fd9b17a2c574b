"""``WallClockLimit``: a ``TrainerCallback`` that ends a run cleanly (with a save) after a wall-time budget, so a
recipe fits a lent machine's time limit and resumes from the saved checkpoint."""

from __future__ import annotations

import time

__all__ = ["WallClockLimit"]


class WallClockLimit:
    """A ``TrainerCallback`` that ends training cleanly once ``seconds`` of wall time have passed."""

    def __new__(cls, seconds: float):
        from transformers import TrainerCallback

        class _Limit(TrainerCallback):
            def __init__(self) -> None:
                self.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
                if time.perf_counter() - self.start > seconds:
                    control.should_training_stop = True
                    control.should_save = True
                return control

        return _Limit()
