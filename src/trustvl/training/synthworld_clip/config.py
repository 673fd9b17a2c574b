"""The SynthWorld CLIP pretraining settings: :class:`SynthWorldCLIPPretrainConfig` (every field, its default and
its help, once; also the ``trustvl train synthworld-clip`` options) and the world presets it starts from."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from trustvl.data_builders.synthworld import SynthWorldConfig, WebCaptionPolicy
from trustvl.errors import TrustVLInputError
from trustvl.training.arguments import TrustVLTrainingArguments

__all__ = ["TRAIN_TOWERS", "WORLD_PRESETS", "SynthWorldCLIPPretrainConfig"]

#: ``train_towers`` values: which parts of the CLIP the run updates.
TRAIN_TOWERS = ("both", "vision")


@dataclass
class SynthWorldCLIPPretrainConfig(TrustVLTrainingArguments):
    """Settings of the SynthWorld CLIP pretraining run (``trustvl train synthworld-clip``): the run's
    :class:`TrustVLTrainingArguments` plus the world, data and architecture fields below, with the recipe's
    defaults (AdamW with cosine decay; ``per_device_train_batch_size`` scenes per device, in-batch negatives).

    ``output_dir`` is the run folder: ``tokenizer/``, the resumable ``checkpoint-<step>`` folders and the
    trained model in ``final/``.
    """

    n_scenes: int = field(
        default=2_000_000, metadata={"help": "Size of the train-split index space scenes are drawn from."}
    )
    appearance_caption_prob: float = field(
        default=0.3, metadata={"help": "Share of captions that name the person's appearance, in [0, 1]."}
    )
    resolution: int = field(default=64, metadata={"help": "Image side of SynthWorld scenes (= model input)."})
    world_seed: int = field(default=0, metadata={"help": "SynthWorld seed (the training seed is `seed`)."})
    vocab_size: int = field(default=1024, metadata={"help": "Tokenizer vocabulary size."})
    eval_test_size: int = field(
        default=4000, metadata={"help": "Balanced test scenes of the final evaluation (trustvl train CLI)."}
    )
    max_train_seconds: float | None = field(
        default=None, metadata={"help": "Stop training (and save) after this much wall time; None: no limit."}
    )
    arch: dict | str | None = field(
        default=None,
        metadata={
            "help": "JSON object of SynthWorldCLIPArchitecture overrides, e.g. '{\"vision_layers\": 4}'."
        },
    )
    world: dict | str | None = field(
        default=None,
        metadata={
            "help": "JSON object of SynthWorldConfig knobs for the train split, e.g."
            ' \'{"strength": {"skin_tone": 0.95}}\'; the evaluation always uses the balanced test split.'
        },
    )
    world_preset: str = field(
        default="default",
        metadata={
            "help": "World and captions to pretrain on: 'default' (SynthWorldConfig() with `world` on top,"
            " captions by appearance_caption_prob) or 'web' (SynthWorldConfig.web() with `world` on top,"
            " alt-text-like captions by `web_captions`; docs/synthworld_web.md)."
        },
    )
    web_captions: dict | str | None = field(
        default=None,
        metadata={
            "help": "JSON object of WebCaptionPolicy fields for world_preset 'web', e.g."
            " '{\"unsafe_named_prob\": 0.5}' (typical_appearance_prob, atypical_appearance_prob,"
            " unsafe_named_prob)."
        },
    )
    init_from: str | None = field(
        default=None,
        metadata={
            "help": "Continue from this CLIP (Hub id or folder) instead of a fresh model: its weights, tokenizer"
            " and processor are kept (`arch` and `vocab_size` are then unused; `resolution` must match)."
        },
    )
    train_towers: str = field(
        default="both",
        metadata={
            "help": "'both', or 'vision' to freeze the text tower, text projection and logit scale: the text"
            " embeddings stay bit-identical, and so does an SD conditioned on this text tower."
        },
    )
    # the recipe's optimisation defaults
    max_steps: int = field(default=6000, metadata={"help": "Optimiser steps."})
    per_device_train_batch_size: int = field(
        default=512, metadata={"help": "Scenes per device and step (the CLIP loss uses in-batch negatives)."}
    )
    learning_rate: float = field(default=5e-4, metadata={"help": "Peak learning rate (AdamW)."})
    weight_decay: float = field(default=0.1, metadata={"help": "Decoupled weight decay."})
    warmup_steps: float = field(default=300, metadata={"help": "Linear warm-up steps."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "transformers scheduler name."})
    logging_steps: float = field(default=50, metadata={"help": "Log every N steps."})
    save_steps: float = field(default=1000, metadata={"help": "Write a resumable checkpoint every N steps."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    dataloader_num_workers: int = field(
        default=8, metadata={"help": "Data-loader worker processes rendering scenes."}
    )

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise TrustVLInputError("output_dir is required (the run folder); got None")
        for name in ("arch", "world", "web_captions"):
            value = getattr(self, name)
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as err:
                    raise TrustVLInputError(f"{name}={value!r} is not a JSON object: {err}") from None
            if value is not None and not isinstance(value, dict):
                raise TrustVLInputError(f"{name}={value!r}; expected a JSON object (a mapping)")
            setattr(self, name, dict(value or {}))
        for name in ("n_scenes", "max_steps", "eval_test_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= 100_000_000:
                raise TrustVLInputError(f"{name}={v!r}; expected a positive integer <= 100000000")
        if not 8 <= self.resolution <= 4096:
            raise TrustVLInputError(f"resolution={self.resolution}; expected an integer in [8, 4096]")
        if self.world_preset not in WORLD_PRESETS:
            raise TrustVLInputError(
                f"world_preset={self.world_preset!r}; expected one of {list(WORLD_PRESETS)}"
            )
        if self.web_captions and self.world_preset != "web":
            raise TrustVLInputError(
                f"web_captions={self.web_captions!r} is only used with world_preset 'web';"
                f" got world_preset={self.world_preset!r}"
            )
        try:  # the world's knobs, checked now rather than when the data loader starts
            self.world_config()
            self.caption_policy()
        except TypeError as err:
            raise TrustVLInputError(
                f"world={self.world!r}: {err}; see SynthWorldConfig for the knobs"
            ) from None
        if self.train_towers not in TRAIN_TOWERS:
            raise TrustVLInputError(
                f"train_towers={self.train_towers!r}; expected one of {list(TRAIN_TOWERS)}"
            )
        if self.train_towers != "both" and not self.init_from:
            raise TrustVLInputError(
                f"train_towers={self.train_towers!r} freezes a tower of a fresh model; expected init_from"
                " (the CLIP whose text tower is kept) or train_towers='both'"
            )
        if not 0.0 <= self.appearance_caption_prob <= 1.0:
            raise TrustVLInputError(
                f"appearance_caption_prob={self.appearance_caption_prob}; expected a number in [0, 1]"
            )
        super().__post_init__()

    def world_config(self) -> SynthWorldConfig:
        """The train world: the preset's :class:`SynthWorldConfig` with ``world`` on top."""
        return WORLD_PRESETS[self.world_preset](resolution=self.resolution, **self.world)

    def caption_policy(self) -> WebCaptionPolicy | None:
        """The web caption policy (``world_preset="web"``), or None for the default captions."""
        if self.world_preset != "web":
            return None
        return WebCaptionPolicy.from_dict(self.web_captions)


#: ``world_preset`` name -> the SynthWorldConfig constructor it starts from.
WORLD_PRESETS: dict[str, Callable[..., SynthWorldConfig]] = {
    "default": SynthWorldConfig,
    "web": SynthWorldConfig.web,
}
