"""Pretrain the SynthWorld CLIP from scratch (``trustvl train synthworld-clip``).

Recipe (the reproducible source of the embedded default checkpoint):

1. a CLIP-style BPE tokenizer (1,024 tokens) is trained with ``tokenizers`` on SynthWorld captions
   (context-only and appearance-naming templates of a few thousand scenes);
2. a :func:`~trustvl.modeling.synthworld_clip.build_synthworld_clip` model is trained with the symmetric
   CLIP loss through trustvl's shared training core (:func:`trustvl.training.train`), on scenes of the
   **biased train split** rendered on the fly (a scene is a pure function of its index, so data-loader
   workers render in parallel and a resumed run sees the same data);
3. each scene gets one caption: context-only with probability ``1 - appearance_caption_prob``, else one
   naming the person's appearance. The planted occupation ↔ appearance association of the train split
   is thereby learned, which the fairness audit then measures.

``world_preset="web"`` trains on the web-like mixture instead (SynthWorld-Web, docs/synthworld_web.md):
the world is :meth:`SynthWorldConfig.web` (unsafe elements, a watermark that co-occurs with one
occupation, skin tone planted harder) and the captions are alt-text-like
(:func:`~trustvl.data_builders.synthworld.web_captions.web_caption`: appearance named mostly when it is
atypical for the occupation, the unsafe element only part of the time); ``appearance_caption_prob`` is
then unused and ``web_captions`` sets the caption policy.

Evaluation is not this module's job (training sits below evaluation): ``trustvl train synthworld-clip``
passes the balanced-test-split evaluation (zero-shot occupation accuracy; MaxSkew, MinSkew and NDKL per
attribute over the occupation prompts) as ``evaluate`` and writes the model card.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from trustvl.data_builders.synthworld import (
    SynthWorldConfig,
    SynthWorldRenderer,
    WebCaptionPolicy,
    appearance_caption,
    caption_variants,
    occupation_prompt,
    sample_caption,
    web_caption,
)
from trustvl.errors import TrustVLInputError
from trustvl.modeling.clip_components import normalize_uint8
from trustvl.modeling.synthworld_clip import SynthWorldCLIPArchitecture, build_synthworld_clip
from trustvl.modeling.tokenization import train_clip_tokenizer
from trustvl.training.arguments import TrustVLTrainingArguments
from trustvl.training.collators import ImageTextCollator
from trustvl.training.core import ClipContrastiveLoss, train
from trustvl.utils.io import write_json


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


def _unit_hash(*parts: Any) -> float:
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64


class SynthWorldCaptionDataset(torch.utils.data.Dataset):
    """Scenes ``0..n-1`` of a SynthWorld split with one caption each, rendered on access.

    Items: ``{"pixel_values": [3, H, W] float, "caption": str, "label": occupation id}``. With a
    ``web_policy`` the caption is :func:`web_caption`'s (``appearance_caption_prob`` unused).
    """

    def __init__(
        self,
        renderer: Any,
        image_processor: Any,
        n: int,
        split: str = "train",
        appearance_caption_prob: float = 0.0,
        web_policy: WebCaptionPolicy | None = None,
    ) -> None:
        self.renderer, self.image_processor, self.n, self.split = renderer, image_processor, n, split
        self.p_app = appearance_caption_prob
        self.web_policy = web_policy
        self._occ_index = {o: i for i, o in enumerate(renderer.config.occupations)}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        scene = self.renderer.scene(self.split, int(index))
        if self.web_policy is not None:
            caption = web_caption(scene.spec, self.renderer.config, self.web_policy)
        else:
            use_app = _unit_hash(self.renderer.seed, self.split, int(index), "app") < self.p_app
            caption = appearance_caption(scene.spec) if use_app else sample_caption(scene.spec)
        return {
            "pixel_values": normalize_uint8(scene.image, self.image_processor)[0],
            "caption": caption,
            "label": self._occ_index[scene.spec.occupation],
        }


def caption_corpus(renderer: Any, n_scenes: int = 4000) -> list[str]:
    """Every caption variant (context and appearance) of ``n_scenes`` train and test scenes, plus prompts."""
    corpus = [occupation_prompt(o) for o in renderer.config.occupations]
    for split in ("train", "test"):
        for i in range(n_scenes // 2):
            corpus += caption_variants(renderer.sample_scene(split, i), context_only=False)
    return corpus


def pretrain_synthworld_clip(
    config: SynthWorldCLIPPretrainConfig,
    resume: bool = False,
    *,
    evaluate: Callable[[Any, Any], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train the SynthWorld CLIP; writes ``output_dir/final`` (model + processor) and returns a summary.

    ``evaluate(model, processor) -> metrics`` (optional; the command line passes the balanced-test-split
    evaluation) runs on the trained model; its result is the summary's ``"eval"``. The summary is also
    written to ``final/trustvl_pretrain.json``.
    """
    if not isinstance(config, SynthWorldCLIPPretrainConfig):
        raise TrustVLInputError(
            f"pretrain_synthworld_clip takes a SynthWorldCLIPPretrainConfig; got {type(config).__name__}"
        )
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    renderer = SynthWorldRenderer(config.world_config(), seed=config.world_seed)
    arch = SynthWorldCLIPArchitecture(image_size=config.resolution, **config.arch)
    tok_dir = out / "tokenizer"
    if (tok_dir / "tokenizer.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    else:
        tokenizer = train_clip_tokenizer(
            caption_corpus(renderer), vocab_size=config.vocab_size, model_max_length=arch.max_length
        )
        tokenizer.save_pretrained(str(tok_dir))
    model, processor = build_synthworld_clip(tokenizer, arch)
    n_params = sum(p.numel() for p in model.parameters())
    data = SynthWorldCaptionDataset(
        renderer,
        processor.image_processor,
        config.n_scenes,
        "train",
        config.appearance_caption_prob,
        web_policy=config.caption_policy(),
    )
    collator = ImageTextCollator(processor, max_length=arch.max_length)
    t0 = time.perf_counter()
    callbacks = [WallClockLimit(config.max_train_seconds)] if config.max_train_seconds else None
    result = train(
        model,
        data,
        ClipContrastiveLoss(max_logit_scale=100.0),
        config,
        data_collator=collator,
        resume=resume,
        callbacks=callbacks,
    )
    train_seconds = time.perf_counter() - t0
    final = Path(result.final_model_dir or out / "final")
    model.eval()
    model.save_pretrained(str(final))
    processor.save_pretrained(str(final))
    processor.image_processor.save_pretrained(str(final))
    summary: dict[str, Any] = {
        "n_parameters": n_params,
        "train_seconds": round(train_seconds, 1),
        "global_step": result.global_step,
        "final_loss": result.final_loss,
        "mean_loss": result.mean_loss,
        "device": str(next(model.parameters()).device),
        "model_dir": str(final),
        "config": config.to_dict(),
        "world": renderer.config.to_dict(),
    }
    policy = config.caption_policy()
    if policy is not None:
        summary["web_captions"] = policy.to_dict()
    if torch.cuda.is_available():
        summary["device_name"] = torch.cuda.get_device_name()
    if evaluate is not None:
        summary["eval"] = evaluate(model, processor)
    write_json(final / "trustvl_pretrain.json", summary)
    return summary
