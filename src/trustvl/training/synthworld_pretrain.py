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

The trained model is evaluated on the balanced test split (zero-shot occupation accuracy; MaxSkew,
MinSkew and NDKL per attribute over the occupation prompts) and written with its model card.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from trustvl.errors import TrustVLInputError
from trustvl.modeling.clip_components import normalize_uint8


@dataclass
class SynthWorldPretrainConfig:
    """Settings of the SynthWorld CLIP pretraining run.

    Attributes:
        out_dir: run folder (checkpoints, ``final/`` model, metrics, card).
        n_scenes: size of the train-split index space scenes are drawn from (distinct scenes).
        max_steps: optimisation steps.
        batch_size: per-device batch size (the CLIP loss uses in-batch negatives).
        learning_rate, weight_decay, warmup_steps: AdamW with cosine decay.
        appearance_caption_prob: share of captions that name the person's appearance.
        resolution: image side of SynthWorld scenes (= model input size).
        world_seed: SynthWorld seed; ``seed``: training seed.
        vocab_size: tokenizer vocabulary size.
        num_workers: data-loader worker processes rendering scenes.
        mixed_precision: "no", "bf16" or "fp16".
        eval_test_size: balanced test scenes used for the final evaluation.
        save_steps: checkpoint interval (resume with ``resume=True``).
        max_train_seconds: stop training (and save) once this much wall time has passed; None = no limit.
        arch: overrides of :class:`~trustvl.modeling.synthworld_clip.SynthWorldCLIPArchitecture` fields.
        world: overrides of :class:`~trustvl.data_builders.synthworld.SynthWorldConfig` knobs for the
            train split (e.g. ``{"strength": {"skin_tone": 0.95}}``); the evaluation always uses the
            balanced test split.
    """

    out_dir: str
    n_scenes: int = 2_000_000
    max_steps: int = 6000
    batch_size: int = 512
    learning_rate: float = 5e-4
    weight_decay: float = 0.1
    warmup_steps: int = 300
    appearance_caption_prob: float = 0.3
    resolution: int = 64
    world_seed: int = 0
    seed: int = 0
    vocab_size: int = 1024
    num_workers: int = 8
    mixed_precision: str = "no"
    eval_test_size: int = 4000
    save_steps: int = 1000
    logging_steps: int = 50
    max_train_seconds: float | None = None
    arch: dict[str, Any] = field(default_factory=dict)
    world: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        for name in ("n_scenes", "max_steps", "batch_size", "eval_test_size", "save_steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                raise TrustVLInputError(f"{name}={v!r} must be a positive integer")
        if not 0.0 <= self.appearance_caption_prob <= 1.0:
            raise TrustVLInputError(
                f"appearance_caption_prob={self.appearance_caption_prob} must be in [0, 1]"
            )


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

    Items: ``{"pixel_values": [3, H, W] float, "caption": str, "label": occupation id}``.
    """

    def __init__(
        self,
        renderer: Any,
        image_processor: Any,
        n: int,
        split: str = "train",
        appearance_caption_prob: float = 0.0,
    ) -> None:
        self.renderer, self.image_processor, self.n, self.split = renderer, image_processor, n, split
        self.p_app = appearance_caption_prob
        self._occ_index = {o: i for i, o in enumerate(renderer.config.occupations)}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        from trustvl.data_builders.synthworld import appearance_caption, sample_caption

        scene = self.renderer.scene(self.split, int(index))
        use_app = _unit_hash(self.renderer.seed, self.split, int(index), "app") < self.p_app
        caption = appearance_caption(scene.spec) if use_app else sample_caption(scene.spec)
        return {
            "pixel_values": normalize_uint8(scene.image, self.image_processor)[0],
            "caption": caption,
            "label": self._occ_index[scene.spec.occupation],
        }


def caption_corpus(renderer: Any, n_scenes: int = 4000) -> list[str]:
    """Every caption variant (context and appearance) of ``n_scenes`` train and test scenes, plus prompts."""
    from trustvl.data_builders.synthworld import caption_variants, occupation_prompt

    corpus = [occupation_prompt(o) for o in renderer.config.occupations]
    for split in ("train", "test"):
        for i in range(n_scenes // 2):
            corpus += caption_variants(renderer.sample_scene(split, i), context_only=False)
    return corpus


def pretrain_synthworld_clip(cfg: SynthWorldPretrainConfig, resume: bool = False) -> dict[str, Any]:
    """Train the SynthWorld CLIP; writes ``out_dir/final`` (model + processor), metrics and card."""
    from trustvl.data_builders.synthworld import SynthWorldConfig, SynthWorldRenderer
    from trustvl.evaluation.synthworld import evaluate_on_synthworld
    from trustvl.modeling.synthworld_clip import SynthWorldCLIPArchitecture, build_synthworld_clip
    from trustvl.modeling.tokenization import train_clip_tokenizer
    from trustvl.training import ClipContrastiveLoss, ImageTextCollator, TrainConfig, train

    cfg.validate()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    renderer = SynthWorldRenderer(
        SynthWorldConfig(resolution=cfg.resolution, **cfg.world), seed=cfg.world_seed
    )
    arch = SynthWorldCLIPArchitecture(image_size=cfg.resolution, **cfg.arch)
    tok_dir = out / "tokenizer"
    if (tok_dir / "tokenizer.json").exists():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    else:
        tokenizer = train_clip_tokenizer(
            caption_corpus(renderer), vocab_size=cfg.vocab_size, model_max_length=arch.max_length
        )
        tokenizer.save_pretrained(str(tok_dir))
    model, processor = build_synthworld_clip(tokenizer, arch)
    n_params = sum(p.numel() for p in model.parameters())
    data = SynthWorldCaptionDataset(
        renderer, processor.image_processor, cfg.n_scenes, "train", cfg.appearance_caption_prob
    )
    collator = ImageTextCollator(processor, max_length=arch.max_length)
    tcfg = TrainConfig(
        output_dir=str(out),
        seed=cfg.seed,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        warmup_steps=cfg.warmup_steps,
        lr_scheduler_type="cosine",
        logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps,
        save_total_limit=2,
        mixed_precision=cfg.mixed_precision,
        dataloader_num_workers=cfg.num_workers,
    )
    t0 = time.perf_counter()
    callbacks = [WallClockLimit(cfg.max_train_seconds)] if cfg.max_train_seconds else None
    result = train(
        model,
        data,
        ClipContrastiveLoss(max_logit_scale=100.0),
        tcfg,
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
    metrics = evaluate_on_synthworld(
        model, processor, n_test=cfg.eval_test_size, world_seed=cfg.world_seed, resolution=cfg.resolution
    )
    summary = {
        "n_parameters": n_params,
        "train_seconds": round(train_seconds, 1),
        "global_step": result.global_step,
        "final_loss": result.final_loss,
        "device": str(next(model.parameters()).device),
        "config": asdict(cfg),
        "eval": metrics,
    }
    if torch.cuda.is_available():
        summary["device_name"] = torch.cuda.get_device_name()
    (final / "trustvl_pretrain.json").write_text(json.dumps(summary, indent=2, default=str))
    write_model_card(final, summary)
    return summary


def write_model_card(model_dir: str | Path, summary: dict[str, Any] | None = None) -> Path:
    """Write the SynthWorld CLIP's model card (``README.md``) from its ``trustvl_pretrain.json``."""
    from trustvl.evaluation.report import markdown_table
    from trustvl.hub.cards import Metric, model_card

    model_dir = Path(model_dir)
    if summary is None:
        summary = json.loads((model_dir / "trustvl_pretrain.json").read_text())
    ev = summary["eval"]
    cfg = summary["config"]
    metrics = [
        Metric(
            "zero-shot occupation top-1",
            "accuracy",
            ev["zero_shot_top1"],
            "SynthWorld test",
            "trustvl/synthworld",
        )
    ]
    rows = [["zero-shot occupation top-1", ev["zero_shot_top1"]]]
    for attr, f in ev["fairness"].items():
        for key in sorted(f):
            metrics.append(
                Metric(
                    f"{attr} {key}", key.replace("mean_", ""), f[key], "SynthWorld test", "trustvl/synthworld"
                )
            )
            rows.append([f"{attr} {key}", f[key]])
        rows.append([f"worst-group accuracy (occupation × {attr})", ev["worst_group_accuracy"][attr]])
    training = (
        f"{summary['global_step']} steps of batch {cfg['batch_size']} (AdamW, lr {cfg['learning_rate']},"
        f" cosine, mixed precision {cfg['mixed_precision']}) with the symmetric CLIP loss on scenes of the biased train"
        f" split rendered on the fly; {summary['train_seconds']} s on {summary.get('device_name', summary.get('device'))}."
        f" Reproduce with `trustvl train synthworld-clip` (train-split knobs: {cfg.get('world') or 'defaults'},"
        f" appearance caption share {cfg['appearance_caption_prob']})."
    )
    strength = (cfg.get("world") or {}).get("strength", {}).get("skin_tone", 0.8)
    card = model_card(
        "synthworld_clip",
        model_name="synthworld-clip",
        metrics=metrics,
        tags=["synthworld", "synthetic"],
        n_parameters=f"{summary['n_parameters']:,}",
        training=training,
        n_test=ev["n_test"],
        eval_table=markdown_table(["metric", "value"], rows),
        skin_strength=strength,
    )
    path = model_dir / "README.md"
    card.save(str(path))
    return path
