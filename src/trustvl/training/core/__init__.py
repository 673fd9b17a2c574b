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

from trustvl.training.core.checkpoints import last_complete_checkpoint
from trustvl.training.core.clip_loss import ClipContrastiveLoss
from trustvl.training.core.contract import LossFn, MetricFn, model_inputs, unwrap_model
from trustvl.training.core.early_stopping import TrustVLEarlyStopping, early_stopping
from trustvl.training.core.results import TrainResult
from trustvl.training.core.run import train
from trustvl.training.core.trainer import TrustVLTrainer
from trustvl.training.core.wall_clock import WallClockLimit

__all__ = [
    "ClipContrastiveLoss",
    "LossFn",
    "MetricFn",
    "TrainResult",
    "TrustVLEarlyStopping",
    "TrustVLTrainer",
    "WallClockLimit",
    "early_stopping",
    "last_complete_checkpoint",
    "model_inputs",
    "train",
    "unwrap_model",
]
