"""Training-step speed of Safe-CLIP on a ViT-L/14-architecture CLIP: trustvl's configuration vs the public recipe's.

The model is a ``CLIPModel`` built from ViT-L/14's published config values (text: width 768, 12 layers, 12
heads, 77 positions, vocabulary 49,408; vision: width 1024, 24 layers, 16 heads, 224 px, patch 14;
projection 768) with random weights: nothing is downloaded. Both configurations train the same peft LoRA
adapter (SPEC §4: r 16, lora_alpha 1, dropout 0.1 on k/v/out_proj, fc1, fc2, patch_embedding) with Adam at
lr 1e-3 and :class:`trustvl.training.safe_clip.SafeCLIPLoss`, on random quadruplet batches:

* ``public_recipe``: fp32 (TF32 off, PyTorch's default), batch 16, the references ``Tref(S)``/``Vref(V)``
  recomputed in every step by forward passes of a frozen copy of the original model;
* ``trustvl``: bf16 autocast (fp32 master weights, as ``TrainingArguments(bf16=True)``), a larger batch
  (``--batch-size``, halved until it fits), references read from the batch (trustvl computes them once per
  dataset and caches them).

One step = loss (one forward of the adapted model, plus the reference forwards for the public recipe),
backward and the optimiser step; samples/s = quadruplets per second over ``--steps`` timed steps after
``--warmup`` steps. Also checked: at fp32 the two ways give the same loss on the same batch (cached
references computed one row at a time vs references recomputed batched), to 1e-5.

Usage::

    python benchmarks/bench_safe_clip_speed.py --device cuda --out results/safe_clip_speed.json   # GPU
    python benchmarks/bench_safe_clip_speed.py --smoke --out /tmp/safe_clip_speed.json          # CPU, tiny

The JSON is rewritten after every phase, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import platform
import time
from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPModel

from trustvl.modeling.lora import add_lora, clip_lora_config
from trustvl.training.safe_clip import SAFE_CLIP_LORA_TARGETS, SafeCLIPLoss, reference_embeddings_from_model

VIT_L_14 = dict(
    text=dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
              max_position_embeddings=77, eos_token_id=49407, bos_token_id=49406, pad_token_id=1),
    vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=224,
                patch_size=14),
    projection_dim=768,
)  # fmt: skip
TINY = dict(
    text=dict(vocab_size=1000, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
              max_position_embeddings=16, eos_token_id=999, bos_token_id=998, pad_token_id=1),
    vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8),
    projection_dim=32,
)  # fmt: skip


def build_clip(sizes: dict, seed: int = 0) -> CLIPModel:
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=sizes["text"], vision_config=sizes["vision"], projection_dim=sizes["projection_dim"]
    )
    return CLIPModel(config).eval()


def random_batch(sizes: dict, n: int, device: torch.device, seed: int) -> dict[str, torch.Tensor]:
    """``n`` random quadruplets as a collated batch: 2n token rows (S then U) and 2n images (V then G)."""
    g = torch.Generator().manual_seed(seed)
    text, vision = sizes["text"], sizes["vision"]
    length = text["max_position_embeddings"]
    ids = torch.randint(2, text["vocab_size"] - 2, (2 * n, length), generator=g)
    ids[:, 0], ids[:, -1] = text["bos_token_id"], text["eos_token_id"]
    pixels = torch.randn(2 * n, 3, vision["image_size"], vision["image_size"], generator=g)
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "pixel_values": pixels.to(device),
    }


def lora_model(base: CLIPModel, seed: int = 0):
    torch.manual_seed(seed)
    return add_lora(
        copy.deepcopy(base),
        clip_lora_config(r=16, lora_alpha=1, lora_dropout=0.1, target_modules=list(SAFE_CLIP_LORA_TARGETS)),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(model, loss_fn, batch, *, steps: int, warmup: int, bf16: bool, device: torch.device) -> dict:
    """Samples/s of full training steps (loss, backward, Adam step) on one fixed batch."""
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    n = batch["pixel_values"].shape[0] // 2
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step():
        with autocast:
            loss, _ = loss_fn(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    _sync(device)
    seconds = time.perf_counter() - t0
    return {
        "batch_quadruplets": n,
        "steps": steps,
        "seconds": round(seconds, 4),
        "samples_per_s": round(n * steps / seconds, 2),
        "last_loss": float(loss.detach()),
        "peak_memory_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if device.type == "cuda"
        else None,
    }


def same_loss_check(base: CLIPModel, reference: CLIPModel, sizes: dict, device: torch.device) -> dict:
    """fp32 loss with cached references (computed one row at a time, as a one-off pass would) vs references
    recomputed batched by the frozen model inside the loss, on the same batch and adapter weights."""
    model = lora_model(base).to(device).eval()
    with torch.no_grad():  # a non-trivial adapter, so the check covers an adapted model
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02, generator=torch.Generator(device=device).manual_seed(1))
    batch = random_batch(sizes, 8, device, seed=123)
    n = 8
    rows = [
        reference_embeddings_from_model(reference, {k: v[[i, n + i]] for k, v in batch.items()})
        for i in range(n)
    ]
    cached = dict(batch, ref_text=torch.cat([r[0] for r in rows]), ref_image=torch.cat([r[1] for r in rows]))
    with torch.no_grad():
        loss_cached, _ = SafeCLIPLoss()(model, cached)
        loss_recomputed, _ = SafeCLIPLoss(reference=reference)(model, batch)
    diff = abs(float(loss_cached) - float(loss_recomputed))
    return {
        "loss_cached": float(loss_cached),
        "loss_recomputed": float(loss_recomputed),
        "abs_diff": diff,
        "ok": diff <= 1e-5,
    }


def machine() -> dict:
    import peft
    import transformers

    info = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "platform": platform.platform()}  # fmt: skip
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--smoke", action="store_true", help="tiny CLIP on CPU")
    parser.add_argument(
        "--batch-size", type=int, default=128, help="trustvl's batch (quadruplets); halved until it fits"
    )
    parser.add_argument("--public-batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default="safe_clip_speed.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.device, sizes = "cpu", TINY
        args.batch_size, args.steps, args.warmup = min(args.batch_size, 32), min(args.steps, 3), 1
    else:
        sizes = VIT_L_14
    device = torch.device(args.device)
    out = Path(args.out)
    results: dict = {"machine": machine(), "model": "ViT-L/14 architecture, random weights" if not args.smoke else "tiny CLIP",
                     "device": str(device)}  # fmt: skip

    def save():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")

    base = build_clip(sizes).to(device)
    reference = copy.deepcopy(base).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    results["n_parameters"] = sum(p.numel() for p in base.parameters())
    results["same_loss_fp32"] = same_loss_check(base, reference, sizes, device)
    print("same loss:", results["same_loss_fp32"])
    save()

    public = lora_model(base).to(device)
    batch = random_batch(sizes, args.public_batch_size, device, seed=0)
    results["public_recipe"] = {"dtype": "float32", "references": "recomputed every step",
                                **time_steps(public, SafeCLIPLoss(reference=reference), batch, steps=args.steps,
                                             warmup=args.warmup, bf16=False, device=device)}  # fmt: skip
    print("public:", results["public_recipe"])
    del public
    save()

    size = args.batch_size
    model = batch = None
    while True:
        try:
            model = lora_model(base).to(device)
            batch = random_batch(sizes, size, device, seed=0)
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
                text, image = reference_embeddings_from_model(reference, batch)  # the cache's contents
            batch.update(ref_text=text.float(), ref_image=image.float())
            timing = time_steps(
                model, SafeCLIPLoss(), batch, steps=args.steps, warmup=args.warmup, bf16=True, device=device
            )
            break
        except torch.OutOfMemoryError:
            model = batch = None
            torch.cuda.empty_cache()
            if size <= args.public_batch_size:
                raise
            size //= 2
            print(f"out of memory; batch {size}")
    results["trustvl"] = {
        "dtype": "bfloat16 autocast",
        "references": "cached (read from the batch)",
        **timing,
    }
    ratio = results["trustvl"]["samples_per_s"] / results["public_recipe"]["samples_per_s"]
    results["speedup"] = round(ratio, 2)
    results["goal_speedup_3x"] = ratio >= 3.0
    print("trustvl:", results["trustvl"], "speedup:", results["speedup"])
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
