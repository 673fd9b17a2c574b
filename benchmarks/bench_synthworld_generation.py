"""Benchmark of the SynthWorld text-to-image model, judged by the outcome classifier (SPEC §7).

For every probe prompt (:func:`~trustvl.data_builders.synthworld.generation_captions.generation_prompts`:
per occupation a context-only prompt, one per gender, one per skin tone, one per unsafe element) it
generates ``--n`` images (seeds ``0..n-1``) and reads them with the outcome classifier. Reported:

- context-only prompts: occupation recognised; female share per occupation and the mean
  ``|female share - 0.5|`` (planted bias visible), its direction vs the training world's preferred gender;
  the share showing any unsafe element (safe prompts);
- appearance prompts: share obeying the requested gender / skin tone, overall and counter-stereotypical
  (a level that is not the occupation's preferred one in the training world);
- unsafe prompts: share showing the named element (and any element);
- throughput: images/s at the given steps (``--throughput-n`` images, batch ``--batch-size``).

    python benchmarks/bench_synthworld_generation.py --out benchmarks/results/synthworld_generation.json
    python benchmarks/bench_synthworld_generation.py --device cpu --threads 2 --n 8 --guidance 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import defaultdict

import numpy as np
import torch

from trustvl.data_builders.generated_images import image_grid
from trustvl.data_builders.synthworld import OCCUPATIONS, SynthWorldConfig
from trustvl.data_builders.synthworld.generation_captions import generation_prompts
from trustvl.modeling.outcome_classifier import OutcomeClassifier
from trustvl.modeling.synthworld_sd import load_sd_pipeline
from trustvl.pipelines.generation import generate_images


def planted_world() -> SynthWorldConfig:
    """The biased training world of the shipped model (``SynthWorldSDConfig`` defaults)."""
    from trustvl.training.synthworld_sd import SynthWorldSDConfig

    fields = SynthWorldSDConfig.__dataclass_fields__
    gender = fields["gender_strength"].default
    skin = fields["skin_strength"].default
    return SynthWorldConfig(strength={"gender_presentation": gender, "skin_tone": skin})


def _mean(xs: list[float]) -> float:
    return float(np.mean(xs)) if xs else float("nan")


def run(args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = load_sd_pipeline(args.model, device=args.device, dtype=args.dtype)
    if args.throughput_only:
        return {"settings": _settings(args, pipe), "machine": _machine(pipe), "summary": None,
                "throughput_images_per_s": _throughput(args, pipe, "a photo of a nurse")}  # fmt: skip
    judge = OutcomeClassifier(args.classifier, device=args.device)
    world = planted_world()
    occupations = list(OCCUPATIONS)
    preferred = {
        a: {o: world.preferred_level(a, o) for o in occupations} for a in ("gender_presentation", "skin_tone")
    }
    prompts = generation_prompts(occupations, preferred, world.attributes["skin_tone"])
    per_prompt = []
    grid_rows = []
    t0 = time.perf_counter()
    for gp in prompts:
        images = generate_images(
            pipe, gp.prompt, args.n, seed=args.seed, num_inference_steps=args.steps,
            guidance_scale=args.guidance, batch_size=args.batch_size,
        )  # fmt: skip
        readings = judge.read([g.image for g in images])
        row = {
            "prompt": gp.prompt,
            "kind": gp.kind,
            "occupation": gp.occupation,
            "requested": gp.requested,
            "counter_stereotypical": gp.counter_stereotypical,
            "occupation_recognised": _mean([r.occupation == gp.occupation for r in readings]),
            "female_share": _mean([r.gender_presentation == "feminine" for r in readings]),
            "any_unsafe": _mean([r.unsafe != "none" for r in readings]),
        }
        if gp.requested:
            ((head, value),) = gp.requested.items()
            row["obeyed"] = _mean([r.get(head) == value for r in readings])
        per_prompt.append(row)
        if gp.kind == "context":
            grid_rows.append([g.image for g in images[: args.grid_cols]])
    seconds = time.perf_counter() - t0

    by_kind = defaultdict(list)
    for row in per_prompt:
        by_kind[row["kind"]].append(row)
    context = by_kind["context"]
    bias = {
        r["occupation"]: {
            "female_share": r["female_share"],
            "planted_preferred": preferred["gender_presentation"][r["occupation"]],
        }
        for r in context
    }
    direction = _mean(
        [(b["female_share"] > 0.5) == (b["planted_preferred"] == "feminine") for b in bias.values()]
    )
    appearance = by_kind["gender"] + by_kind["skin"]
    summary = {
        "context_occupation_recognised": _mean([r["occupation_recognised"] for r in context]),
        "context_mean_abs_female_share_minus_half": _mean([abs(r["female_share"] - 0.5) for r in context]),
        "context_bias_direction_agrees": direction,
        "safe_prompts_unsafe_share": _mean([r["any_unsafe"] for r in context + appearance]),
        "appearance_obeyed": _mean([r["obeyed"] for r in appearance]),
        "appearance_obeyed_counter_stereotypical": _mean(
            [r["obeyed"] for r in appearance if r["counter_stereotypical"]]
        ),
        "gender_obeyed": _mean([r["obeyed"] for r in by_kind["gender"]]),
        "gender_obeyed_counter_stereotypical": _mean(
            [r["obeyed"] for r in by_kind["gender"] if r["counter_stereotypical"]]
        ),
        "skin_obeyed": _mean([r["obeyed"] for r in by_kind["skin"]]),
        "skin_obeyed_counter_stereotypical": _mean(
            [r["obeyed"] for r in by_kind["skin"] if r["counter_stereotypical"]]
        ),
        "unsafe_element_shown": _mean([r["obeyed"] for r in by_kind["unsafe"]]),
        "unsafe_prompts_any_element": _mean([r["any_unsafe"] for r in by_kind["unsafe"]]),
        "unsafe_prompts_occupation_recognised": _mean(
            [r["occupation_recognised"] for r in by_kind["unsafe"]]
        ),
    }

    throughput = _throughput(args, pipe, prompts[0].prompt)

    if args.grid:
        rows = [im for row in grid_rows for im in row]
        image_grid(rows, args.grid_cols).save(args.grid)
    return {
        "benchmark": "synthworld_generation",
        "model": args.model or "default (synthworld-sd)",
        "settings": _settings(args, pipe),
        "machine": _machine(pipe),
        "summary": summary,
        "bias_per_occupation": bias,
        "throughput_images_per_s": throughput,
        "throughput_batch_size": args.batch_size,
        "seconds_total": seconds,
        "per_prompt": per_prompt,
    }


def _settings(args: argparse.Namespace, pipe: object) -> dict:
    return {
        "n_per_prompt": args.n,
        "steps": args.steps,
        "guidance_scale": args.guidance,
        "seed": args.seed,
        "scheduler": type(pipe.scheduler).__name__,
        "dtype": str(pipe.unet.dtype),
    }


def _machine(pipe: object) -> dict:
    device = str(pipe.device)
    return {
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if "cuda" in device else None,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def _throughput(args: argparse.Namespace, pipe: object, prompt: str) -> float:
    """Images/s at the benchmark's settings, after one warm-up batch."""
    cuda = "cuda" in str(pipe.device)
    generate_images(pipe, prompt, 1, 0, args.steps, args.guidance, 1)
    if cuda:
        torch.cuda.synchronize()
    t = time.perf_counter()
    generate_images(pipe, prompt, args.throughput_n, 10_000, args.steps, args.guidance, args.batch_size)
    if cuda:
        torch.cuda.synchronize()
    return args.throughput_n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="SD pipeline id or folder (default: the shipped one)")
    p.add_argument("--classifier", default=None, help="outcome classifier (default: the shipped one)")
    p.add_argument("--n", type=int, default=64, help="images per prompt")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--throughput-n", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default=None, help="float32 (default), float16, bfloat16 or auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--throughput-only", action="store_true", help="only measure images/s")
    p.add_argument("--grid", default=None, help="write a grid PNG of the context prompts here")
    p.add_argument("--grid-cols", type=int, default=8)
    p.add_argument("--out", default=None, help="write the JSON here too")
    args = p.parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=1)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(json.dumps({k: result[k] for k in ("settings", "summary", "throughput_images_per_s")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
