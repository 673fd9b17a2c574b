"""The SynthWorld SD run (:func:`train_synthworld_sd`): render the pools, then the VAE, outcome-classifier and
UNet stages through the shared training core, each resumable; ``main`` is ``python -m
trustvl.training.synthworld_sd``."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from trustvl.data_builders.synthworld import SynthWorldRenderer
from trustvl.modeling.synthworld_clip import default_clip_path
from trustvl.modeling.synthworld_sd import (
    assemble_pipeline,
    build_unet,
    build_vae,
    grow_unet_weights,
    load_clip_text_tower,
    mark_loads_in_float32,
    save_pipeline_fp16,
)
from trustvl.training.arguments import TrustVLTrainingArguments
from trustvl.training.core import WallClockLimit, train
from trustvl.training.outcome_classifier import (
    head_accuracy,
    scene_targets,
    synthworld_heads,
    train_outcome_classifier,
)
from trustvl.training.synthworld_sd.config import SynthWorldSDConfig
from trustvl.training.synthworld_sd.data import (
    CaptionedLatents,
    PoolPixels,
    ScenePool,
    TokenizingCollator,
    encode_pool,
)
from trustvl.training.synthworld_sd.loss import DiffusionLoss, UNetTrainingModule, VAELoss, VAETrainingModule

__all__ = ["main", "train_synthworld_sd"]

logger = logging.getLogger(__name__)


def _stage_args(
    args: SynthWorldSDConfig, stage: str, max_steps: int, learning_rate: float, batch_size: int
) -> TrustVLTrainingArguments:
    """The shared core's settings of one stage (checkpoints in ``<output_dir>/<stage>``): the run's settings
    with the stage's steps, learning rate and batch size, a cosine schedule with a short warm-up, and no
    ``final/`` folder (the run saves each part itself)."""
    return TrustVLTrainingArguments(
        output_dir=str(Path(args.output_dir) / stage),
        seed=args.seed,
        learning_rate=learning_rate,
        weight_decay=args.weight_decay if stage == "unet" else 0.0,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        warmup_steps=max(1, min(200, max_steps // 20)),
        lr_scheduler_type="cosine",
        max_grad_norm=args.max_grad_norm,
        logging_steps=args.logging_steps,
        save_strategy=args.save_strategy,
        save_steps=args.save_steps,
        save_total_limit=2,
        bf16=args.bf16,
        fp16=args.fp16,
        dataloader_num_workers=args.dataloader_num_workers,
        disable_tqdm=args.disable_tqdm,
        use_cpu=args.use_cpu,
        report_to=args.report_to,
        save_final_model=False,
    )


def _limit(seconds: float) -> list[Any]:
    return [WallClockLimit(seconds)] if seconds and seconds > 0 else []


def train_synthworld_sd(args: SynthWorldSDConfig, resume: bool = True) -> dict[str, Any]:
    """Run the recipe (module docstring); returns a summary (also written to
    ``<output_dir>/trustvl_sd_train.json``)."""
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    arch = args.architecture
    arch.validate()
    device = args.device
    summary: dict[str, Any] = {"recipe": args.recipe(), "architecture": asdict(arch), "seconds": {}}
    t0 = time.perf_counter()

    biased = ScenePool.render(
        SynthWorldRenderer(args.biased_world(), seed=args.world_seed), "train", args.n_biased_scenes,
        args.render_workers,
    )  # fmt: skip
    appearance = ScenePool.render(
        SynthWorldRenderer(args.appearance_world(), seed=args.world_seed + 1), "train", args.n_appearance_scenes,
        args.render_workers,
    )  # fmt: skip
    test = ScenePool.render(biased.renderer, "test", args.n_test_scenes, args.render_workers)
    images = torch.cat([biased.images, appearance.images])
    specs = biased.specs + appearance.specs
    summary["seconds"]["render"] = time.perf_counter() - t0
    logger.info(
        "rendered %d + %d scenes in %.1fs", len(biased.specs), len(appearance.specs), time.perf_counter() - t0
    )

    # ---- VAE
    t = time.perf_counter()
    vae_dir = out / "vae-final"
    if args.init_from or (vae_dir / "config.json").is_file():
        from diffusers import AutoencoderKL

        src = vae_dir if (vae_dir / "config.json").is_file() else Path(args.init_from) / "vae"
        vae = AutoencoderKL.from_pretrained(src, dtype=torch.float32)
    else:
        torch.manual_seed(args.seed)
        vae = build_vae(arch)
        result = train(
            VAETrainingModule(vae), PoolPixels(images), VAELoss(args.vae_kl_weight),
            _stage_args(args, "vae", args.vae_max_steps, args.vae_learning_rate, args.vae_batch_size),
            callbacks=_limit(args.stage_max_seconds[0]), resume=resume,
        )  # fmt: skip
        summary["vae_steps"] = result.global_step
        summary["vae_final_loss"] = result.final_loss
    latents, recons = encode_pool(vae, images, device)
    if args.init_from:  # keep the latent scale the UNet was trained with
        scaling_factor = float(vae.config.scaling_factor)
    else:
        scaling_factor = float(1.0 / latents.std())
        vae.register_to_config(scaling_factor=scaling_factor)
    vae.save_pretrained(vae_dir)
    _, test_recons = encode_pool(vae, test.images, device)
    summary["vae_recon_mae_test"] = float((test_recons.float() - test.images.float()).abs().mean() / 255)
    summary["seconds"]["vae"] = time.perf_counter() - t

    # ---- outcome classifier
    t = time.perf_counter()
    heads = synthworld_heads()
    classifier_dir = out / "outcome-classifier"
    targets = scene_targets(specs, heads)
    test_targets = scene_targets(test.specs, heads)
    if (classifier_dir / "config.json").is_file():
        from transformers import AutoModelForImageClassification

        classifier = AutoModelForImageClassification.from_pretrained(classifier_dir, dtype=torch.float32)
    else:
        classifier, processor, result = train_outcome_classifier(
            images, targets, heads,
            _stage_args(args, "classifier", args.classifier_max_steps, args.classifier_learning_rate,
                         args.classifier_batch_size),
            recons=recons, recon_prob=args.classifier_recon_prob, image_size=args.classifier_image_size,
            hidden_sizes=args.classifier_hidden_sizes, callbacks=_limit(args.stage_max_seconds[1]), resume=resume,
        )  # fmt: skip
        summary["classifier_steps"] = result.global_step
        classifier.to(torch.float16).save_pretrained(classifier_dir)
        mark_loads_in_float32(classifier_dir)
        processor.save_pretrained(classifier_dir)
        classifier.to(torch.float32)
    classifier.to(device)
    size = args.classifier_image_size
    summary["classifier_test_accuracy"] = head_accuracy(
        classifier, test.images, test_targets, heads, size=size
    )
    summary["classifier_test_recon_accuracy"] = head_accuracy(
        classifier, test_recons, test_targets, heads, size=size
    )
    summary["seconds"]["classifier"] = time.perf_counter() - t
    logger.info("classifier accuracy on held-out renders: %s", summary["classifier_test_accuracy"])

    # ---- UNet
    t = time.perf_counter()
    text_encoder, tokenizer = load_clip_text_tower(args.clip_dir or default_clip_path())
    torch.manual_seed(args.seed)
    if args.init_from:
        from diffusers import UNet2DConditionModel

        unet = UNet2DConditionModel.from_pretrained(Path(args.init_from) / "unet", dtype=torch.float32)
    else:
        unet = build_unet(text_encoder.config.hidden_size, arch)
    if args.unet_init_from:
        from diffusers import UNet2DConditionModel

        source = UNet2DConditionModel.from_pretrained(Path(args.unet_init_from) / "unet", dtype=torch.float32)
        fresh = grow_unet_weights(unet, source)
        summary["unet_fresh_tensors"] = len(fresh)
        logger.info("UNet initialised from %s; %d tensors start fresh", args.unet_init_from, len(fresh))
    module = UNetTrainingModule(unet, text_encoder, scaling_factor)
    dataset = CaptionedLatents(
        latents, biased.specs, appearance.specs, args.caption_passes, args.cfg_dropout, args.seed,
        unsafe_boxes=biased.unsafe_boxes + appearance.unsafe_boxes, region_weight=args.unsafe_region_weight,
        image_size=arch.image_size, element_region_weights=args.element_region_weights(),
    )  # fmt: skip
    result = train(
        module, dataset, DiffusionLoss(args.min_snr_gamma),
        _stage_args(args, "unet", args.max_steps, args.learning_rate, args.per_device_train_batch_size),
        data_collator=TokenizingCollator(tokenizer), callbacks=_limit(args.stage_max_seconds[2]), resume=resume,
    )  # fmt: skip
    summary["unet_steps"] = result.global_step
    summary["unet_final_loss"] = result.final_loss
    summary["seconds"]["unet"] = time.perf_counter() - t

    pipe = assemble_pipeline(vae.to("cpu"), unet.to("cpu"), text_encoder.to("cpu"), tokenizer)
    pipeline_dir = save_pipeline_fp16(pipe, out / "pipeline")
    summary["parameters"] = {
        name: sum(p.numel() for p in m.parameters())
        for name, m in (
            ("unet", unet),
            ("vae", vae),
            ("text_encoder", text_encoder),
            ("classifier", classifier),
        )
    }
    summary["seconds"]["total"] = time.perf_counter() - t0
    (out / "trustvl_sd_train.json").write_text(json.dumps(summary, indent=2, default=str))
    (pipeline_dir / "trustvl_train.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m trustvl.training.synthworld_sd --output_dir DIR [--bf16] ...`` (HfArgumentParser)."""
    from transformers import HfArgumentParser

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    (args,) = HfArgumentParser(SynthWorldSDConfig).parse_args_into_dataclasses(args=argv)
    summary = train_synthworld_sd(args)
    print(json.dumps({k: summary[k] for k in summary if k != "recipe"}, indent=1, default=str))
    return summary
