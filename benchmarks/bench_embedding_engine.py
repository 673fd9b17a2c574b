"""Benchmark of the embedding engine (issue 28 item 1): end-to-end images/s vs the model's own forward.

For each CLIP image-tower shape (random weights; ``vit-b16``: ViT-B/16, ``vit-l14``: ViT-L/14, ``tiny``: a
smoke-test shape for CPU) it measures, in one run:

* ``forward``: the image tower on device-resident ``pixel_values`` (no decoding, no preprocessing), images/s;
* ``end_to_end``: :class:`trustvl.modeling.embedding.ImageEmbedder` over a ``datasets`` gallery of encoded
  images (PNG, ``--source-size`` px: decoded by ``--num-workers`` DataLoader workers, resized/normalised on
  the device), images/s, and its share of ``forward``;
* the model's FLOPs per image (``torch.utils.flop_counter``), the achieved TFLOP/s and the MFU against the
  card's peak (``--peak-tflops``; default: measured here on a square bf16 matmul, as the issue did).

The issue's goal (one 16-core H100): end to end >= 80 % of forward for ViT-L/14 at 224 px, >= 50 % for
ViT-B/16. Run on the GPU machine:

    python benchmarks/bench_embedding_engine.py --shapes vit-b16 vit-l14 --n-images 20000 \
        --batch-size 256 --num-workers 14 --autocast bf16 --out bench-engine.json

CPU smoke test (numbers mean nothing for the goal):

    python benchmarks/bench_embedding_engine.py --shapes tiny --n-images 64 --batch-size 16 --device cpu
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

SHAPES = {
    # hidden, layers, heads, mlp, patch, projection
    "vit-b16": (768, 12, 12, 3072, 16, 512),
    "vit-l14": (1024, 24, 16, 4096, 14, 768),
    "tiny": (64, 2, 2, 128, 16, 32),
}


def build_model(shape: str, resolution: int, device: torch.device, dtype: torch.dtype):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    hidden, layers, heads, mlp, patch, proj = SHAPES[shape]
    config = CLIPConfig(
        text_config={
            "hidden_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 128,
        },
        vision_config={
            "hidden_size": hidden,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "intermediate_size": mlp,
            "patch_size": patch,
            "image_size": resolution,
        },
        projection_dim=proj,
    )
    torch.manual_seed(0)
    model = CLIPModel(config).to(device=device, dtype=dtype).eval()
    processor = CLIPImageProcessor(size={"shortest_edge": resolution}, crop_size=resolution)
    return model, processor


def build_gallery(n: int, size: int, folder: Path):
    """A ``datasets`` gallery of ``n`` PNG images of ``size`` px (smooth random content), saved to disk and
    memory-mapped back, as a real audit reads one."""
    from datasets import Dataset, Features, Image, load_from_disk
    from PIL import Image as PILImage

    path = folder / f"gallery-{n}-{size}"
    if not path.is_dir():
        rng = np.random.default_rng(0)

        def rows():
            for _ in range(n):
                small = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
                img = PILImage.fromarray(small).resize((size, size), PILImage.Resampling.BILINEAR)
                buf = io.BytesIO()
                img.save(buf, format="PNG")
                yield {"image": {"bytes": buf.getvalue(), "path": None}}

        Dataset.from_generator(rows, features=Features({"image": Image()})).save_to_disk(str(path))
    return load_from_disk(str(path))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_matmul_tflops(device: torch.device, dtype: torch.dtype) -> float:
    n = 8192 if device.type == "cuda" else 512
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    reps = 20 if device.type == "cuda" else 3
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e12


def flops_per_image(engine, resolution: int, device: torch.device) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, resolution, resolution, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        engine.forward(x)
    return float(counter.get_total_flops())


def time_forward(engine, n: int, batch_size: int, resolution: int, device: torch.device) -> float:
    """images/s of the forward on device-resident pixels (warm-up batches excluded)."""
    x = torch.randn(batch_size, 3, resolution, resolution, device=device)
    for _ in range(3):
        engine.forward(x)
    sync(device)
    steps = max(1, n // batch_size)
    t = time.perf_counter()
    for _ in range(steps):
        engine.forward(x)
    sync(device)
    return steps * batch_size / (time.perf_counter() - t)


def time_end_to_end(engine, gallery, device: torch.device) -> float:
    from trustvl.modeling.image_loading import ImageRows

    warm = ImageRows(gallery, range(min(len(gallery), 2 * engine.batch_size)), column="image")
    engine.embed(warm, progress=False)  # worker start-up and kernels compiled once, as in a long audit
    sync(device)
    t = time.perf_counter()
    emb = engine.embed(ImageRows(gallery, column="image"), progress=False)
    sync(device)
    assert emb.shape[0] == len(gallery)
    return len(gallery) / (time.perf_counter() - t)


def main() -> None:
    from trustvl.modeling.embedding import ImageEmbedder

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", nargs="+", default=["vit-b16", "vit-l14"], choices=sorted(SHAPES))
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--source-size", type=int, default=None, help="gallery image size (default: --resolution)")
    p.add_argument("--n-images", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-workers", type=int, default=min(14, os.cpu_count() or 1))
    p.add_argument("--autocast", default="bf16", choices=["bf16", "fp16", "none"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--peak-tflops", type=float, default=None, help="the card's peak (default: measured matmul)"
    )
    p.add_argument("--data-dir", default="/tmp/trustvl-bench-engine")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args()

    device = torch.device(args.device)
    autocast = None if args.autocast == "none" else args.autocast
    amp_dtype = torch.float16 if autocast == "fp16" else torch.bfloat16
    peak = args.peak_tflops or peak_matmul_tflops(device, amp_dtype)
    gallery = build_gallery(args.n_images, args.source_size or args.resolution, Path(args.data_dir))
    rows = []
    for shape in args.shapes:
        model, processor = build_model(shape, args.resolution, device, torch.float32)
        engine = ImageEmbedder(
            model, processor, batch_size=args.batch_size, num_workers=args.num_workers, autocast=autocast
        )
        flops = flops_per_image(engine, args.resolution, device)
        fwd = time_forward(engine, args.n_images, args.batch_size, args.resolution, device)
        e2e = time_end_to_end(engine, gallery, device)
        row = {
            "shape": shape,
            "resolution": args.resolution,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "cpu_cores": os.cpu_count(),
            "num_workers": args.num_workers,
            "batch_size": args.batch_size,
            "autocast": autocast,
            "n_images": len(gallery),
            "gflop_per_image": flops / 1e9,
            "forward_images_per_s": fwd,
            "end_to_end_images_per_s": e2e,
            "end_to_end_share_of_forward": e2e / fwd,
            "forward_tflops": fwd * flops / 1e12,
            "end_to_end_tflops": e2e * flops / 1e12,
            "peak_tflops": peak,
            "forward_mfu": fwd * flops / 1e12 / peak,
            "end_to_end_mfu": e2e * flops / 1e12 / peak,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        del model, engine
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(
        "\n| shape | images/s end to end | images/s forward | % of forward | GFLOP/img | TFLOP/s (e2e) | MFU (e2e) |"
        "\n|---|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['shape']} | {r['end_to_end_images_per_s']:,.0f} | {r['forward_images_per_s']:,.0f} |"
            f" {100 * r['end_to_end_share_of_forward']:.0f} % | {r['gflop_per_image']:.1f} |"
            f" {r['end_to_end_tflops']:.1f} | {100 * r['end_to_end_mfu']:.1f} % |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
