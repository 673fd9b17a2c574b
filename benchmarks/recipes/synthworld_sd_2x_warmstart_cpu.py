"""Toy CPU check behind synthworld_sd_2x_h100.sh: does the 2x-down UNet grown from the shipped 4x-down one
(``grow_unet_weights``) learn faster than a fresh one, on the same new VAE, data and steps?

Renders 1,000 scenes of the SD worlds, trains a 2x-down VAE briefly, then trains the UNet twice (grown, fresh;
same seed, batch, schedule) and prints the epsilon MSE on 64 held-out scenes (fixed noise) along the way.
Not a benchmark of the shipped model; ~12 minutes on one busy CPU core:

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/recipes/synthworld_sd_2x_warmstart_cpu.py 150 120
"""

from __future__ import annotations

import json
import sys
import time

import torch
from diffusers import UNet2DConditionModel

from trustvl.data_builders.synthworld import SynthWorldRenderer
from trustvl.modeling.synthworld_clip import default_clip_path
from trustvl.modeling.synthworld_sd import build_unet, build_vae, grow_unet_weights, load_clip_text_tower
from trustvl.training.synthworld_sd import (
    CaptionedLatents,
    DiffusionLoss,
    PoolPixels,
    ScenePool,
    SynthWorldSDConfig,
    TokenizingCollator,
    UNetTrainingModule,
    VAELoss,
    VAETrainingModule,
    encode_pool,
)

N_BIASED, N_APPEARANCE, N_EVAL, BATCH = 600, 400, 64, 16
SHIPPED_UNET = "src/trustvl/assets/models/synthworld-sd/unet"


def main(vae_steps: int, unet_steps: int) -> dict:
    cfg = SynthWorldSDConfig(
        output_dir="unused", world_seed=300, unsafe_prob=0.5, unsafe_kinds=["weapon", "blood", "drugs"],
        vae_channels=[32, 64], unet_channels=[64, 64, 96, 128], unet_plain_levels=1,
        unsafe_region_weights=["knife=8"],
    )  # fmt: skip
    arch, t0 = cfg.architecture, time.time()
    biased = ScenePool.render(SynthWorldRenderer(cfg.biased_world(), seed=300), "train", N_BIASED)
    appearance = ScenePool.render(SynthWorldRenderer(cfg.appearance_world(), seed=301), "train", N_APPEARANCE)
    images = torch.cat([biased.images, appearance.images])

    torch.manual_seed(0)
    vae = build_vae(arch)
    vae_module, vae_loss = VAETrainingModule(vae), VAELoss(1e-6)
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    pixels, g = PoolPixels(images), torch.Generator().manual_seed(0)
    for _ in range(vae_steps):
        idx = torch.randint(0, len(pixels), (BATCH,), generator=g)
        loss, _ = vae_loss(
            vae_module, {"pixel_values": torch.stack([pixels[int(i)]["pixel_values"] for i in idx])}
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    latents, recons = encode_pool(vae, images, torch.device("cpu"), batch_size=64)
    result: dict = {"vae_steps": vae_steps, "unet_steps": unet_steps}
    result["vae_recon_mae"] = float((recons.float() - images.float()).abs().mean() / 255)
    print(
        f"VAE: {vae_steps} steps, recon MAE {result['vae_recon_mae']:.4f}, {time.time() - t0:.0f}s",
        flush=True,
    )

    text_encoder, tokenizer = load_clip_text_tower(default_clip_path())
    data = CaptionedLatents(
        latents, biased.specs, appearance.specs, 4, 0.1, 0, unsafe_boxes=biased.unsafe_boxes + appearance.unsafe_boxes,
        region_weight=4.0, image_size=64, element_region_weights=cfg.element_region_weights(),
    )  # fmt: skip
    collate, criterion = TokenizingCollator(tokenizer), DiffusionLoss(5.0)
    n_scenes = len(data.specs)
    n_train = n_scenes - N_EVAL  # the last 64 scenes (appearance pool) are held out
    eval_batch = collate([data[i] for i in range(n_train, n_scenes)])

    def held_out_mse(module: UNetTrainingModule) -> float:
        module.eval()
        torch.manual_seed(123)  # the same noise and timesteps at every evaluation
        with torch.no_grad():
            out = module(latents=eval_batch["latents"], input_ids=eval_batch["input_ids"])
        module.train()
        return float((out["pred"] - out["target"]).pow(2).mean())

    shipped = UNet2DConditionModel.from_pretrained(SHIPPED_UNET, dtype=torch.float32)
    for init in ("grown", "fresh"):
        torch.manual_seed(0)
        unet = build_unet(text_encoder.config.hidden_size, arch)
        if init == "grown":
            grow_unet_weights(unet, shipped)
        module = UNetTrainingModule(unet, text_encoder, float(1 / latents.std()))
        opt = torch.optim.AdamW(unet.parameters(), lr=5e-4, weight_decay=0.01)
        warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10))
        g = torch.Generator().manual_seed(1)
        curve = [(0, held_out_mse(module))]
        for step in range(1, unet_steps + 1):
            rows = torch.randint(0, n_train * data.passes, (BATCH,), generator=g).tolist()
            batch = collate([data[r % n_train + (r // n_train) * n_scenes] for r in rows])
            loss, _ = criterion(module, batch)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            opt.step()
            warmup.step()
            if step % max(1, unet_steps // 4) == 0:
                curve.append((step, held_out_mse(module)))
                print(init, curve[-1], f"{time.time() - t0:.0f}s", flush=True)
        result[init] = curve
    return result


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]))))
