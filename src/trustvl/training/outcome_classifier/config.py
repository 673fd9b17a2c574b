"""What the SynthWorld outcome classifier predicts: its heads and each head's values in label order
(:func:`synthworld_heads`), which fix the model's output layout and label names. The classifier stage's
training settings (steps, learning rate, batch size, share of VAE reconstructions, input size, ResNet widths)
are the ``classifier_*`` fields of :class:`~trustvl.training.synthworld_sd.SynthWorldSDConfig`: the
classifier trains as a stage of the SynthWorld SD run."""

from __future__ import annotations

from collections.abc import Sequence

from trustvl.data_builders.synthworld import ATTRIBUTES, OCCUPATIONS
from trustvl.modeling.outcome_classifier import UNSAFE_VALUES

__all__ = ["synthworld_heads"]


def synthworld_heads(
    occupations: Sequence[str] = OCCUPATIONS, attributes: dict[str, Sequence[str]] | None = None
) -> dict[str, tuple[str, ...]]:
    """Head -> values of the SynthWorld outcome classifier (in label order): occupation, each appearance
    attribute, and the unsafe element (none / gun / knife / blood / syringe)."""
    attrs = dict(ATTRIBUTES) if attributes is None else dict(attributes)
    heads = {"occupation": tuple(occupations)}
    heads.update({a: tuple(v) for a, v in attrs.items()})
    heads["unsafe"] = UNSAFE_VALUES
    return heads
