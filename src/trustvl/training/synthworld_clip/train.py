"""The pretraining run, :func:`pretrain_synthworld_clip`: tokenizer, model, data and the shared training core."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, CLIPModel, CLIPProcessor

from trustvl.data_builders.synthworld import SynthWorldRenderer
from trustvl.errors import TrustVLInputError
from trustvl.hub.loading import load_pretrained
from trustvl.modeling.embedding import load_clip_float32
from trustvl.modeling.synthworld_clip import SynthWorldCLIPArchitecture, build_synthworld_clip
from trustvl.modeling.tokenization import train_clip_tokenizer
from trustvl.training.collators import ImageTextCollator
from trustvl.training.core import WallClockLimit, train
from trustvl.training.synthworld_clip.config import SynthWorldCLIPPretrainConfig
from trustvl.training.synthworld_clip.data import SynthWorldCaptionDataset, caption_corpus
from trustvl.training.synthworld_clip.loss import pretraining_loss
from trustvl.utils.io import write_json

__all__ = ["freeze_text_side", "pretrain_synthworld_clip"]


def freeze_text_side(model: CLIPModel) -> None:
    """Freeze everything a text embedding depends on -- the text tower, the text projection -- and the logit
    scale, so that a continued run changes only the image side: text embeddings (and an SD whose encoder is
    this text tower) stay bit-identical to the starting CLIP's."""
    for module in (model.text_model, model.text_projection):
        module.requires_grad_(False)
    model.logit_scale.requires_grad_(False)


def _continued_clip(config: SynthWorldCLIPPretrainConfig) -> tuple[CLIPModel, CLIPProcessor]:
    """The CLIP ``init_from`` names, in float32, with its own processor; its image size must be the run's."""
    model = load_clip_float32(config.init_from)
    processor = load_pretrained(CLIPProcessor, config.init_from, kind="model")
    size = model.config.vision_config.image_size
    if size != config.resolution:
        raise TrustVLInputError(
            f"init_from={config.init_from!r} takes {size}-px images; expected resolution={config.resolution}"
            f" to match (pass --resolution {size})"
        )
    return model, processor


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
    if config.init_from:
        model, processor = _continued_clip(config)
        max_length = model.config.text_config.max_position_embeddings
    else:
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
        max_length = arch.max_length
    if config.train_towers == "vision":
        freeze_text_side(model)
    n_params = sum(p.numel() for p in model.parameters())
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    data = SynthWorldCaptionDataset(
        renderer,
        processor.image_processor,
        config.n_scenes,
        "train",
        config.appearance_caption_prob,
        web_policy=config.caption_policy(),
    )
    collator = ImageTextCollator(processor, max_length=max_length)
    t0 = time.perf_counter()
    callbacks = [WallClockLimit(config.max_train_seconds)] if config.max_train_seconds else None
    result = train(
        model,
        data,
        pretraining_loss(),
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
        "n_trainable_parameters": n_trainable,
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
