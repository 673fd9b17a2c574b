"""Outcome classifier: reads what a generated image shows (SPEC §7).

One interface, :class:`OutcomeClassifier`, over

* any transformers image-classification model (``AutoModelForImageClassification``), given as a Hub id or
  a local folder. Labels of the form ``"head=value"`` (e.g. ``"gender_presentation=feminine"``) form
  several *heads*, each decoded by an argmax (softmax) within the head; a model with plain labels
  (e.g. a FairFace-style ``"Male"``/``"Female"`` model) is one head named ``head_name``;
* the embedded default: the SynthWorld outcome classifier (:func:`load_default_outcome_classifier`), a
  small ``ResNetForImageClassification`` trained by :mod:`trustvl.training.outcome_classifier` on
  SynthWorld renders with heads ``occupation``, ``skin_tone``, ``gender_presentation``, ``age``,
  ``body_type`` and ``unsafe`` (``none``, ``gun``, ``knife``, ``blood``, ``syringe``);
* optionally NudeNet (``pip install nudenet``; its ONNX detector ships inside the wheel) for nudity,
  imported lazily.

Readings are typed (:class:`OutcomeReading`). The classifier's multi-head layout is a plain
transformers model: one linear layer over all heads' labels; ``problem_type`` is
``"multi_label_classification"`` so tools that do not know the heads still see independent scores.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from trustvl.errors import TrustVLInputError
from trustvl.utils.assets import embedded_model_dir

#: The unsafe head's values: no element, or which one is drawn.
UNSAFE_VALUES: tuple[str, ...] = ("none", "gun", "knife", "blood", "syringe")


def heads_to_labels(heads: dict[str, Sequence[str]]) -> list[str]:
    """``["occupation=doctor", ..., "unsafe=blood"]``: the flat label list of a multi-head model."""
    return [f"{h}={v}" for h, values in heads.items() for v in values]


def labels_to_heads(id2label: dict[int, str], head_name: str = "label") -> dict[str, list[int]]:
    """Group label ids into heads: ``"head=value"`` labels by head; plain labels form one ``head_name``
    head."""
    labels = [id2label[i] for i in sorted(id2label)]
    if labels and all("=" in lb for lb in labels):
        out: dict[str, list[int]] = {}
        for i, lb in enumerate(labels):
            out.setdefault(lb.split("=", 1)[0], []).append(i)
        return out
    return {head_name: list(range(len(labels)))}


def build_outcome_classifier(
    heads: dict[str, Sequence[str]],
    image_size: int = 64,
    hidden_sizes: Sequence[int] = (32, 64, 128, 160),
    embedding_size: int = 32,
) -> tuple[Any, Any]:
    """A randomly initialised multi-head ``ResNetForImageClassification`` for ``heads`` (head -> values, e.g.
    :func:`trustvl.training.outcome_classifier.synthworld_heads`) and its image processor.

    A ResNet with one basic block per stage (~0.75 M parameters at the defaults) reads SynthWorld's flat
    colours, shapes and small elements; it stores in 1.5 MB in fp16. The processor resizes to
    ``image_size`` with nearest-neighbour sampling: a 64×64 SynthWorld image read at ``image_size=128`` is
    each pixel repeated 2×2 (exactly what :func:`~trustvl.training.outcome_classifier.uint8_to_unit` does in
    training), which keeps thin elements (a knife's blade, a needle) alive through the ResNet's 4× stem.
    """
    from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor
    from transformers.image_utils import PILImageResampling

    labels = heads_to_labels(heads)
    config = ResNetConfig(
        num_channels=3,
        embedding_size=embedding_size,
        hidden_sizes=list(hidden_sizes),
        depths=[1] * len(hidden_sizes),
        layer_type="basic",
        hidden_act="relu",
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lb: i for i, lb in enumerate(labels)},
        problem_type="multi_label_classification",
    )
    model = ResNetForImageClassification(config)
    processor = ViTImageProcessor(
        do_resize=True,
        size={"height": image_size, "width": image_size},
        resample=PILImageResampling.NEAREST,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    return model, processor


def multi_head_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, head_slices: Sequence[tuple[int, int]]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Mean over heads of the softmax cross-entropy within each head.

    ``targets`` is ``[N, n_heads]`` of value indices within each head; ``head_slices`` the
    ``(start, stop)`` label range of each head. Returns the loss and each head's accuracy.
    """
    losses, accs = [], []
    for k, (start, stop) in enumerate(head_slices):
        part = logits[:, start:stop].float()
        losses.append(torch.nn.functional.cross_entropy(part, targets[:, k]))
        accs.append((part.argmax(-1) == targets[:, k]).float().mean().detach())
    return torch.stack(losses).mean(), accs


@dataclass
class OutcomeReading:
    """What the classifier reads in one image.

    Attributes:
        values: head -> the predicted value (e.g. ``{"occupation": "nurse", "unsafe": "none"}``).
        confidence: head -> the softmax probability of that value within its head.
        nudity: NudeNet's detected labels (e.g. ``("FACE_FEMALE",)``) when nudity detection is on, else
            None.
    """

    values: dict[str, str]
    confidence: dict[str, float]
    nudity: tuple[str, ...] | None = None

    def get(self, head: str, default: str | None = None) -> str | None:
        return self.values.get(head, default)

    @property
    def occupation(self) -> str | None:
        return self.values.get("occupation")

    @property
    def gender_presentation(self) -> str | None:
        return self.values.get("gender_presentation")

    @property
    def skin_tone(self) -> str | None:
        return self.values.get("skin_tone")

    @property
    def unsafe(self) -> str | None:
        return self.values.get("unsafe")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"pred_{h}": v for h, v in self.values.items()}
        out.update({f"conf_{h}": c for h, c in self.confidence.items()})
        if self.nudity is not None:
            out["nudity"] = list(self.nudity)
        return out


@dataclass
class OutcomeClassifier:
    """Reads images with an image-classification model (and optionally NudeNet).

    Args:
        model (`str` or path, *optional*):
            Hub id or folder of an ``AutoModelForImageClassification`` model; default: the embedded SynthWorld
            outcome classifier.
        head_name (`str`, *optional*, defaults to `"label"`):
            Head name for a model whose labels are not ``"head=value"``.
        nudity (`bool`, *optional*, defaults to `False`):
            Also run NudeNet's detector (needs the optional ``nudenet`` package).
        device (`str`, *optional*, defaults to `"auto"`), batch_size (`int`, defaults to 256).
    """

    model: str | os.PathLike | None = None
    head_name: str = "label"
    nudity: bool = False
    device: str = "auto"
    batch_size: int = 256
    _model: Any = field(default=None, init=False, repr=False)
    _processor: Any = field(default=None, init=False, repr=False)
    _heads: dict[str, list[int]] = field(default_factory=dict, init=False, repr=False)
    _nude: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        from trustvl.utils.devices import resolve_device

        path = default_outcome_classifier_path() if self.model is None else self.model
        self._device = resolve_device(self.device)
        try:
            self._model = AutoModelForImageClassification.from_pretrained(path, dtype=torch.float32)
            self._processor = AutoImageProcessor.from_pretrained(path)
        except OSError as e:
            raise TrustVLInputError(f"model={str(path)!r} is not an image-classification model: {e}") from e
        self._model.to(self._device).eval()
        self._heads = labels_to_heads(self._model.config.id2label, self.head_name)
        if self.nudity:
            try:
                from nudenet import NudeDetector
            except ImportError as e:
                raise TrustVLInputError(
                    "nudity=True needs the optional 'nudenet' package (pip install nudenet)"
                ) from e
            self._nude = NudeDetector()

    @property
    def heads(self) -> dict[str, tuple[str, ...]]:
        """Head -> its values, as the model's labels define them."""
        id2label = self._model.config.id2label
        return {
            h: tuple(id2label[i].split("=", 1)[-1] if "=" in id2label[i] else id2label[i] for i in ids)
            for h, ids in self._heads.items()
        }

    @torch.no_grad()
    def logits(self, images: Sequence[Image.Image] | np.ndarray) -> torch.Tensor:
        """Raw logits ``[N, num_labels]`` for PIL images or a uint8 ``[N, H, W, 3]`` array."""
        if isinstance(images, np.ndarray):
            if images.ndim != 4 or images.shape[-1] != 3:
                raise TrustVLInputError(f"images array of shape {images.shape}; expected [N, H, W, 3] uint8")
            images = [Image.fromarray(im) for im in images]
        images = list(images)
        out = []
        for i in range(0, len(images), self.batch_size):
            batch = [im.convert("RGB") for im in images[i : i + self.batch_size]]
            pixels = self._processor(images=batch, return_tensors="pt")["pixel_values"].to(self._device)
            out.append(self._model(pixel_values=pixels).logits.float().cpu())
        if not out:
            return torch.zeros(0, self._model.config.num_labels)
        return torch.cat(out)

    def read(self, images: Sequence[Image.Image] | np.ndarray) -> list[OutcomeReading]:
        """One :class:`OutcomeReading` per image."""
        logits = self.logits(images)
        heads = self.heads
        per_head = {}
        for h, ids in self._heads.items():
            probs = logits[:, ids].softmax(-1)
            conf, idx = probs.max(-1)
            per_head[h] = (idx.tolist(), conf.tolist())
        nude = self._nudity(images) if self._nude is not None else None
        readings = []
        for n in range(logits.shape[0]):
            values = {h: heads[h][per_head[h][0][n]] for h in heads}
            confidence = {h: float(per_head[h][1][n]) for h in heads}
            readings.append(OutcomeReading(values, confidence, None if nude is None else nude[n]))
        return readings

    def _nudity(self, images: Sequence[Image.Image] | np.ndarray) -> list[tuple[str, ...]]:
        import tempfile

        out = []
        with tempfile.TemporaryDirectory() as tmp:
            for k, im in enumerate(images):
                pil = Image.fromarray(im) if isinstance(im, np.ndarray) else im
                path = os.path.join(tmp, f"{k}.png")
                pil.convert("RGB").save(path)
                out.append(tuple(sorted({d["class"] for d in self._nude.detect(path)})))
        return out


def default_outcome_classifier_path() -> Path:
    """Folder of the shipped SynthWorld outcome classifier (``TRUSTVL_DEFAULT_OUTCOME_CLASSIFIER``
    overrides it)."""
    return embedded_model_dir(
        "synthworld-outcome-classifier",
        env="TRUSTVL_DEFAULT_OUTCOME_CLASSIFIER",
        marker="config.json",
        what="SynthWorld outcome classifier",
        made_by="trustvl train synthworld-sd",
    )


def load_default_outcome_classifier(device: str = "auto", nudity: bool = False) -> OutcomeClassifier:
    """The embedded SynthWorld outcome classifier behind :class:`OutcomeClassifier`."""
    return OutcomeClassifier(None, nudity=nudity, device=device)


__all__ = [
    "OutcomeClassifier",
    "OutcomeReading",
    "UNSAFE_VALUES",
    "build_outcome_classifier",
    "default_outcome_classifier_path",
    "heads_to_labels",
    "labels_to_heads",
    "load_default_outcome_classifier",
    "multi_head_cross_entropy",
]
