"""Speed of trustvl's FairDiffusionPipeline against diffusers' SemanticStableDiffusionPipeline, in one process.

Both pipelines share one SD-1.5-architecture set of components with random weights built from SD-1.5's
published config values (nothing is downloaded; the tokenizer is trustvl's offline byte-level BPE), in bf16 at
512x512, 50 DDIM steps, ``output_type="latent"``. Measured (images/s over timed calls after one warm-up call,
and the peak GPU memory of the timed calls):

* ``plain_sd``: ``StableDiffusionPipeline``, batch 8 (context: the cost of classifier-free guidance alone);
* ``diffusers_sega`` / ``trustvl_sega``: the same whole-batch edit, batch 8, 2 concepts (Fair Diffusion's
  knobs: toward "female person", away from "male person", scale 4, warmup 5, threshold 0.95, momentum 0.5,
  β 0.6); ``*_channels_last``: the same with the shared UNet in channels-last memory format;
* the Fair Diffusion use case, 8 images whose directions differ per image: ``diffusers_sega_per_image_calls``
  runs one call per image as the public Fair Diffusion code does; ``trustvl_fairness_batched`` runs one call
  with ``fairness=`` (every image's own concepts in one batched UNet call per step);
* with ``--compile``: the same after ``torch.compile`` of the shared UNet, on top of channels-last (the warm-up
  call, which includes the compilation, is reported apart as ``warmup_s``).

Usage::

    python benchmarks/bench_fair_diffusion_speed.py --out results.json            # GPU, full size
    python benchmarks/bench_fair_diffusion_speed.py --tiny --out /tmp/tiny.json   # CPU smoke test

Results are written to ``--out`` after every phase, so a run cut short keeps what it measured.
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

PROMPT = "a photo of the face of a firefighter"
CONCEPTS = dict(
    editing_prompt=["female person", "male person"],
    reverse_editing_direction=[False, True],
    edit_guidance_scale=4.0,
    edit_warmup_steps=5,
    edit_threshold=0.95,
    edit_momentum_scale=0.5,
    edit_mom_beta=0.6,
)


def build_components(tiny: bool, device: torch.device, dtype: torch.dtype) -> dict:
    """SD-1.5-architecture components with random weights (or the tiny test sizes), on ``device``."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from trustvl.modeling.clip_components import clip_text_config
    from trustvl.modeling.tokenization import build_byte_level_bpe

    tokenizer = build_byte_level_bpe(model_max_length=77)
    if tiny:
        unet_cfg = dict(
            sample_size=16,
            block_out_channels=(16, 32),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            layers_per_block=1,
            cross_attention_dim=32,
            attention_head_dim=4,
            norm_num_groups=8,
        )
        vae_cfg = dict(block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8, sample_size=32)
        text = dict(hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4)
    else:  # SD 1.5's published config values
        unet_cfg = dict(
            sample_size=64,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            layers_per_block=2,
            cross_attention_dim=768,
            attention_head_dim=8,
            norm_num_groups=32,
        )
        vae_cfg = dict(
            block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32, sample_size=512
        )
        text = dict(hidden_size=768, intermediate_size=3072, num_layers=12, num_heads=12)
    n_vae = len(vae_cfg["block_out_channels"])
    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel(in_channels=4, out_channels=4, **unet_cfg)
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * n_vae,
            up_block_types=("UpDecoderBlock2D",) * n_vae,
            latent_channels=4,
            **vae_cfg,
        )
        text_config = clip_text_config(tokenizer, max_length=77, projection_dim=text["hidden_size"], **text)
        text_encoder = CLIPTextModel(CLIPTextConfig(**text_config, hidden_act="quick_gelu"))
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return dict(
        unet=unet.to(dtype).eval(),
        vae=vae.to(dtype).eval(),
        text_encoder=text_encoder.to(dtype).eval(),
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, run, images_per_call: int, calls: int, device: torch.device, warmup=None) -> dict:
    """Warm up once (``warmup()``, default ``run()``), then time ``calls`` calls of ``run``.

    Returns images/s, the warm-up time (which includes any compilation) and the peak GPU memory of the timed
    calls (weights included).
    """
    start = time.perf_counter()
    (warmup or run)()
    _sync(device)
    first = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    start = time.perf_counter()
    for _ in range(calls):
        out = run()
    _sync(device)
    seconds = time.perf_counter() - start
    result = {
        "name": name,
        "images_per_s": images_per_call * calls / seconds,
        "seconds_per_call": seconds / calls,
        "timed_calls": calls,
        "images_per_call": images_per_call,
        "warmup_s": first,
        "finite": bool(torch.isfinite(out.float()).all()),
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        result["memory_before_gib"] = base / 2**30
    print(json.dumps(result), flush=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes on CPU (a smoke test of this script)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 50; 3 with --tiny)")
    parser.add_argument("--batch", type=int, default=None, help="images per call (default 8; 2 with --tiny)")
    parser.add_argument("--calls", type=int, default=2, help="timed calls per measurement")
    parser.add_argument(
        "--per-image-calls", type=int, default=None, help="single-image calls timed (default batch)"
    )
    parser.add_argument("--compile", action="store_true", help="also measure after torch.compile of the UNet")
    parser.add_argument(
        "--time-budget", type=float, default=1e9, help="skip later phases past this many seconds"
    )
    parser.add_argument(
        "--compile-budget",
        type=float,
        default=1e9,
        help="skip compiled follow-up phases past this many seconds",
    )
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    args = parser.parse_args(argv)

    from diffusers import SemanticStableDiffusionPipeline, StableDiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    from trustvl.pipelines import FairDiffusionPipeline, FairnessInstruction

    diffusers_logging.set_verbosity_error()
    begin = time.perf_counter()
    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    steps = args.steps or (3 if args.tiny else 50)
    batch = args.batch or (2 if args.tiny else 8)
    size = 32 if args.tiny else 512
    per_image_calls = args.per_image_calls or batch
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    report = {
        "settings": {
            "tiny": args.tiny,
            "device": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor() or "cpu",
            "dtype": str(dtype).removeprefix("torch."),
            "size": size,
            "steps": steps,
            "batch": batch,
            "concepts": 2,
            "guidance_scale": 7.0,
            "torch": torch.__version__,
            "diffusers": __import__("diffusers").__version__,
            "python": sys.version.split()[0],
            "command": " ".join(sys.argv),
        },
        "results": [],
    }

    def save(result=None):
        if result is not None:
            report["results"].append(result)
        report["elapsed_s"] = time.perf_counter() - begin
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    components = build_components(args.tiny, device, dtype)
    report["build_s"] = time.perf_counter() - begin
    plain = StableDiffusionPipeline(**components)
    reference = SemanticStableDiffusionPipeline(**components)
    ours = FairDiffusionPipeline(**components)
    for pipe in (plain, reference, ours):
        pipe.set_progress_bar_config(disable=True)
    common = dict(
        height=size, width=size, num_inference_steps=steps, guidance_scale=7.0, output_type="latent"
    )

    def gen(seed=0):
        return torch.Generator(device).manual_seed(seed)

    def plain_call():
        return plain(PROMPT, num_images_per_prompt=batch, generator=gen(), **common).images

    def reference_call():
        return reference(PROMPT, num_images_per_prompt=batch, generator=gen(), **CONCEPTS, **common).images

    def ours_call():
        return ours(PROMPT, num_images_per_prompt=batch, generator=gen(), **CONCEPTS, **common).images

    fairness = FairnessInstruction(
        "gender",
        {"female person": 0.5, "male person": 0.5},
        guidance_scale=4.0,
        warmup_steps=5,
        threshold=0.95,
    )

    def reference_per_image():
        # the public Fair Diffusion code: one call per image, its direction chosen per image
        outs = []
        for k in range(per_image_calls):
            reverse = [False, True] if k % 2 == 0 else [True, False]
            kwargs = dict(CONCEPTS, reverse_editing_direction=reverse)
            outs.append(
                reference(PROMPT, num_images_per_prompt=1, generator=gen(k), **kwargs, **common).images
            )
        return torch.cat(outs)

    def ours_fair_batched():
        return ours(PROMPT, num_images_per_prompt=batch, fairness=fairness, generator=gen(), **common).images

    def in_budget(phase: str, budget: float | None = None) -> bool:
        if time.perf_counter() - begin > (args.time_budget if budget is None else budget):
            report.setdefault("skipped", []).append(phase)
            save()
            print(f"skipped {phase}: past the time budget", flush=True)
            return False
        return True

    save(measure("diffusers_sega", reference_call, batch, args.calls, device))
    save(measure("trustvl_sega", ours_call, batch, args.calls, device))
    save(
        measure(
            "diffusers_sega_per_image_calls",
            reference_per_image,
            per_image_calls,
            1,
            device,
            warmup=lambda: reference(PROMPT, generator=gen(), **CONCEPTS, **common),
        )
    )
    save(measure("trustvl_fairness_batched", ours_fair_batched, batch, args.calls, device))
    if in_budget("plain_sd"):
        save(measure("plain_sd", plain_call, batch, args.calls, device))
    if in_budget("channels_last"):
        components["unet"].to(memory_format=torch.channels_last)
        save(measure("trustvl_sega_channels_last", ours_call, batch, args.calls, device))
        save(measure("diffusers_sega_channels_last", reference_call, batch, args.calls, device))
    if args.compile and in_budget("compile"):
        try:
            components["unet"].compile()
            save(measure("trustvl_sega_channels_last_compiled", ours_call, batch, args.calls, device))
            if in_budget("compile_fairness", args.compile_budget):
                save(
                    measure("trustvl_fairness_batched_compiled", ours_fair_batched, batch, args.calls, device)
                )
            if in_budget("compile_reference", args.compile_budget):
                save(
                    measure(
                        "diffusers_sega_channels_last_compiled", reference_call, batch, args.calls, device
                    )
                )
        except Exception as error:  # a failed compilation must not lose the numbers measured so far
            report["compile_error"] = f"{type(error).__name__}: {error}"[:2000]
            save()

    by_name = {r["name"]: r["images_per_s"] for r in report["results"]}

    def ratio(a, b):
        return by_name[a] / by_name[b] if a in by_name and b in by_name else None

    report["ratios"] = {
        "trustvl_sega / diffusers_sega": ratio("trustvl_sega", "diffusers_sega"),
        "trustvl_sega_channels_last / diffusers_sega": ratio("trustvl_sega_channels_last", "diffusers_sega"),
        "trustvl_sega_channels_last_compiled / diffusers_sega": ratio(
            "trustvl_sega_channels_last_compiled", "diffusers_sega"
        ),
        "trustvl_sega_channels_last / diffusers_sega_channels_last": ratio(
            "trustvl_sega_channels_last", "diffusers_sega_channels_last"
        ),
        "trustvl_sega_channels_last_compiled / diffusers_sega_channels_last_compiled": ratio(
            "trustvl_sega_channels_last_compiled", "diffusers_sega_channels_last_compiled"
        ),
        "trustvl_fairness_batched / diffusers_sega_per_image_calls": ratio(
            "trustvl_fairness_batched", "diffusers_sega_per_image_calls"
        ),
        "trustvl_fairness_batched_compiled / diffusers_sega_per_image_calls": ratio(
            "trustvl_fairness_batched_compiled", "diffusers_sega_per_image_calls"
        ),
    }
    save()
    print(json.dumps(report["ratios"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
