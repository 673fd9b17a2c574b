"""This process's place in a data-parallel run (``accelerate launch`` / ``torchrun``), or a single process.

A job that splits work over processes (the audit's gallery embedding, :mod:`trustvl.evaluation.audit`)
asks :func:`process_group` for its ``rank`` and ``world_size`` and waits on :meth:`ProcessGroup.barrier`.
Launched by ``accelerate launch`` or ``torchrun`` (``WORLD_SIZE`` > 1 in the environment), the group is
accelerate's :class:`~accelerate.PartialState` (NCCL on GPUs, gloo on CPU), which also gives each process its
device (:func:`trustvl.utils.devices.resolve_device`); otherwise it is the trivial group of one process and
accelerate is not imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["ProcessGroup", "process_group"]


@dataclass(frozen=True)
class ProcessGroup:
    """This process's ``rank`` among ``world_size`` processes."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes the run's outputs."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every process of the group reaches this point (no-op for a single process)."""
        if self.world_size > 1:
            from accelerate import PartialState

            PartialState().wait_for_everyone()


def process_group(cpu: bool | None = None) -> ProcessGroup:
    """The group this process runs in: accelerate's under a multi-process launch, else a group of one.

    ``cpu``: the processes run on CPU (gloo). None: when ``accelerate launch --cpu`` said so or no CUDA GPU
    is present. accelerate's state is one per process, so the first call decides; call this before anything
    else asks accelerate for the device.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return ProcessGroup()
    from accelerate import PartialState

    if cpu is None:  # PartialState alone reads neither the flag nor the absence of a GPU: on CPU it would
        # see no distributed run at all (every process rank 0 of 1)
        flag = os.environ.get("ACCELERATE_USE_CPU", "false").lower() in ("1", "true", "yes")
        cpu = flag or not torch.cuda.is_available()
    state = PartialState(cpu=cpu)  # initialises torch.distributed from the launcher's environment
    return ProcessGroup(rank=state.process_index, world_size=state.num_processes)
