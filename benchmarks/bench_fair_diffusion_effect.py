"""Fair Diffusion's measured effect on the SynthWorld text-to-image model (issue #11, item 4; SPEC §5).

On the embedded SynthWorld SD, judged by the embedded outcome classifier, for "a photo of a {occupation}" and
SynthWorld's 8 occupations, ``--n`` images per occupation (plain and guided, the same seeds):

(a) gender 50/50 ("female person" / "male person"): mean |female share − 0.5| plain vs guided, its relative
    drop (goal ≥ 75 %) and the share of occupations within ±0.1 of parity (goal ≥ 90 %);
(b) skin tone, 4 levels uniform (very light, light, dark, very dark: SynthWorld's 5 levels without medium,
    which sits between its neighbours), mean |share − 0.25| (goal ≤ 0.1);
(c) gender 0.3 female / 0.7 male, mean |share − target| (goal ≤ 0.1);
(d) occupation recognition, plain vs guided, drop in points (goal ≤ 5), for each of (a)–(c);
each with two guidance texts: the paper's bare phrases ("female person", "person with very dark skin") and
the group in the prompt's context ("a photo of a female {subject}", ``contextual=True``; the subject is the
prompt's occupation), with the same knobs;
all with the paired image-bootstrap intervals of :mod:`trustvl.evaluation.fair_diffusion`. The plain run is
generated once and shared by (a)–(c).

``--sweep`` instead tries a few edit scales and warmups for gender 50/50 on a subset (4 occupations × 32
images), so that the defaults can be chosen on the GPU (about 2 min on one H200).

    python benchmarks/bench_fair_diffusion_effect.py --device cuda --out benchmarks/results/fair_diffusion_effect_h200.json
    python benchmarks/bench_fair_diffusion_effect.py --device cuda --sweep --out benchmarks/results/fair_diffusion_sweep_h200.json
    python benchmarks/bench_fair_diffusion_effect.py --smoke --out /tmp/fd_smoke.json     # tiny, CPU
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import time

import torch

from trustvl.data_builders.synthworld import OCCUPATIONS
from trustvl.evaluation.fair_diffusion import (
    FairDiffusionEvaluation,
    default_prompts,
    generate_and_read,
    resolve_outcomes,
    summarise,
)
from trustvl.modeling.outcome_classifier import OutcomeClassifier
from trustvl.modeling.synthworld_sd import load_sd_pipeline
from trustvl.pipelines.fair_diffusion import FairGenerationPlan
from trustvl.pipelines.fairness_instruction import FairnessInstruction

GOALS = {
    "gender_relative_drop": 0.75,
    "gender_within_0.1": 0.90,
    "skin_tone_mean_abs_gap": 0.10,
    "gender_30_70_mean_abs_gap": 0.10,
    "occupation_drop_points": 5.0,
}


def _machine(device: str) -> dict:
    return {
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def _ci(interval) -> list[float] | None:
    return None if interval is None else [round(interval.low, 4), round(interval.high, 4)]


def _scenario_summary(result: FairDiffusionEvaluation) -> dict:
    a = result.attributes[0]
    out = {
        "mean_abs_gap_plain": a.mean_abs_gap.plain,
        "mean_abs_gap_plain_ci": _ci(a.mean_abs_gap.plain_interval),
        "mean_abs_gap_fair": a.mean_abs_gap.fair,
        "mean_abs_gap_fair_ci": _ci(a.mean_abs_gap.fair_interval),
        "relative_drop": a.relative_gap_drop,
        "relative_drop_ci": _ci(a.relative_gap_drop_interval),
        "within_0.1_plain": a.within_tolerance.plain,
        "within_0.1_fair": a.within_tolerance.fair,
        "within_0.1_fair_ci": _ci(a.within_tolerance.fair_interval),
        "kl_plain": a.kl.plain,
        "kl_fair": a.kl.fair,
        "obeyed": a.obeyed,
        "per_occupation_fair_shares": {
            pp.prompt: {g.outcome: round(g.fair, 4) for g in pp.groups} for pp in a.per_prompt
        },
        "per_occupation_plain_shares": {
            pp.prompt: {g.outcome: round(g.plain, 4) for g in pp.groups} for pp in a.per_prompt
        },
    }
    if result.content is not None:
        c = result.content
        out.update(
            occupation_recognised_plain=c.recognised.plain,
            occupation_recognised_fair=c.recognised.fair,
            occupation_drop_points=c.drop_points,
            occupation_drop_points_ci=_ci(c.drop_points_interval),
        )
    return out


FORMS = {"bare": False, "context": True}  # guidance text: the paper's bare phrase, or the group in context


def _scenarios(knobs: dict) -> dict[str, FairnessInstruction]:
    out = {}
    for form, contextual in FORMS.items():
        suffix = "" if form == "bare" else "_context"
        kw = dict(knobs, contextual=contextual)
        out["gender_50_50" + suffix] = FairnessInstruction.synthworld("gender", **kw)
        out["skin_tone_4_uniform" + suffix] = FairnessInstruction.synthworld("skin_tone", **kw)
        out["gender_30_70" + suffix] = FairnessInstruction.synthworld(
            "gender", {"feminine": 0.3, "masculine": 0.7}, **kw
        )
    return out


def _goals(scenarios: dict, suffix: str) -> tuple[dict, dict]:
    g, s, n37 = (scenarios[k + suffix] for k in ("gender_50_50", "skin_tone_4_uniform", "gender_30_70"))
    measured = {
        "gender_relative_drop": g["relative_drop"],
        "gender_within_0.1": g["within_0.1_fair"],
        "skin_tone_mean_abs_gap": s["mean_abs_gap_fair"],
        "gender_30_70_mean_abs_gap": n37["mean_abs_gap_fair"],
        "occupation_drop_points": max(sc["occupation_drop_points"] for sc in (g, s, n37)),
    }
    met = {
        k: (v >= GOALS[k] if k in ("gender_relative_drop", "gender_within_0.1") else v <= GOALS[k])
        for k, v in measured.items()
    }
    return measured, met


def run(args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cpu" if args.smoke else args.device
    sd = load_sd_pipeline(args.model, device=device, dtype=args.dtype)
    judge = OutcomeClassifier(args.classifier, device=device, batch_size=1024)
    heads = judge.heads
    occupations = list(OCCUPATIONS)[: args.occupations]
    prompts = default_prompts()[: args.occupations]
    knobs = dict(guidance_scale=args.edit_scale, warmup_steps=args.warmup, threshold=args.threshold)
    base_plan = FairGenerationPlan(tuple(resolve_outcomes([FairnessInstruction.synthworld("gender", **knobs)], heads)),
                                   args.momentum, args.momentum_beta)  # fmt: skip
    pipe = base_plan.pipeline(sd)
    common = dict(seed=args.seed, num_inference_steps=args.steps, guidance_scale=args.guidance,
                  batch_size=args.batch_size, progress=not args.quiet)  # fmt: skip
    settings = {"n_per_occupation": args.n, "occupations": occupations, "steps": args.steps,
                "guidance_scale": args.guidance, "momentum": args.momentum, "momentum_beta": args.momentum_beta,
                "seed": args.seed, "batch_size": args.batch_size, "scheduler": type(pipe.scheduler).__name__,
                "dtype": str(pipe.unet.dtype), "n_resamples": args.n_resamples}  # fmt: skip
    # warm-up (CUDA kernels, allocator) outside the timings
    generate_and_read(pipe, judge, prompts[:1], 2, base_plan, **{**common, "progress": False})
    t0 = time.perf_counter()
    plain = generate_and_read(pipe, judge, prompts, args.n, None, desc="plain", **common)
    if args.sweep:
        return _sweep(args, pipe, judge, heads, prompts, occupations, plain, common, settings, t0)
    scenarios = {}
    for name, instruction in _scenarios(knobs).items():
        plan = FairGenerationPlan(
            tuple(resolve_outcomes([instruction], heads)), args.momentum, args.momentum_beta
        )
        fair = generate_and_read(pipe, judge, prompts, args.n, plan, desc=name, **common)
        result = summarise(plan, prompts, plain, fair, expected_occupations=occupations,
                           n_resamples=args.n_resamples, seed=args.seed)  # fmt: skip
        scenarios[name] = {
            "instruction": dataclasses.asdict(plan.instructions[0]),
            "seconds": round(fair.seconds, 2),
            "images_per_second": round(len(prompts) * args.n / fair.seconds, 2),
            **_scenario_summary(result),
        }
    seconds = time.perf_counter() - t0
    measured, met = {}, {}
    for form in FORMS:
        measured[form], met[form] = _goals(scenarios, "" if form == "bare" else "_context")
    return {
        "benchmark": "fair_diffusion_effect",
        "model": args.model or "default (synthworld-sd)",
        "classifier": args.classifier or "default (synthworld-outcome-classifier)",
        "smoke": args.smoke,
        "settings": {
            **settings,
            "edit_scale": args.edit_scale,
            "warmup": args.warmup,
            "threshold": args.threshold,
        },
        "machine": _machine(device),
        "goals": GOALS,
        "measured": measured,
        "goals_met": met,
        "plain_seconds": round(plain.seconds, 2),
        "plain_images_per_second": round(len(prompts) * args.n / plain.seconds, 2),
        "scenarios": scenarios,
        "seconds_total": round(seconds, 2),
    }


def _sweep(args, pipe, judge, heads, prompts, occupations, plain, common, settings, t0) -> dict:
    """Gender 50/50 for a grid of edit scales × warmups (threshold and momentum fixed) on the given subset."""
    rows = []
    for scale, warmup in itertools.product(args.sweep_scales, args.sweep_warmups):
        instruction = FairnessInstruction.synthworld("gender", guidance_scale=scale, warmup_steps=warmup,
                                                     threshold=args.threshold)  # fmt: skip
        plan = FairGenerationPlan(
            tuple(resolve_outcomes([instruction], heads)), args.momentum, args.momentum_beta
        )
        fair = generate_and_read(
            pipe, judge, prompts, args.n, plan, desc=f"scale {scale} warmup {warmup}", **common
        )
        result = summarise(plan, prompts, plain, fair, expected_occupations=occupations,
                           n_resamples=args.n_resamples, seed=args.seed)  # fmt: skip
        summary = _scenario_summary(result)
        rows.append({"edit_scale": scale, "warmup": warmup, "seconds": round(fair.seconds, 2),
                     **{k: v for k, v in summary.items() if not k.startswith("per_occupation")}})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return {
        "benchmark": "fair_diffusion_effect_sweep",
        "settings": {**settings, "threshold": args.threshold},
        "machine": _machine(str(pipe.device)),
        "rows": rows,
        "seconds_total": round(time.perf_counter() - t0, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None)
    p.add_argument("--classifier", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default=None, help="float32 (default), float16, bfloat16")
    p.add_argument(
        "--n", type=int, default=None, help="images per occupation (default 128; sweep 32; smoke 4)"
    )
    p.add_argument(
        "--occupations", type=int, default=None, help="first K occupations (default 8; sweep 4; smoke 2)"
    )
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=8.0)
    p.add_argument("--edit-scale", type=float, default=4.0, help="paper: 4")
    p.add_argument("--warmup", type=int, default=5, help="paper: 5")
    p.add_argument("--threshold", type=float, default=0.95, help="paper: 0.95")
    p.add_argument("--momentum", type=float, default=0.5, help="paper: 0.5")
    p.add_argument("--momentum-beta", type=float, default=0.6, help="paper: 0.6")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=1024, help="images per pipeline call (prompts mixed)")
    p.add_argument("--n-resamples", type=int, default=1000)
    p.add_argument(
        "--sweep", action="store_true", help="try edit scales × warmups for gender 50/50 on a subset"
    )
    p.add_argument("--sweep-scales", type=float, nargs="+", default=[2.0, 4.0, 7.0, 10.0])
    p.add_argument("--sweep-warmups", type=int, nargs="+", default=[2, 5])
    p.add_argument("--smoke", action="store_true", help="tiny run on CPU (checks the script)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.smoke:
        args.n, args.occupations, args.steps = args.n or 4, args.occupations or 2, min(args.steps, 4)
        args.n_resamples, args.batch_size = min(args.n_resamples, 100), min(args.batch_size, 16)
        args.warmup = min(args.warmup, 1)  # so that 4 steps still apply the guidance
        args.sweep_warmups = [min(w, 1) for w in args.sweep_warmups]
        if args.sweep:
            args.sweep_scales, args.sweep_warmups = args.sweep_scales[:2], args.sweep_warmups[:1]
    elif args.sweep:
        args.n, args.occupations = args.n or 32, args.occupations or 4
    args.n, args.occupations = args.n or 128, args.occupations or 8
    result = run(args)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)
    for form, values in result.get("measured", {}).items():
        for key, value in values.items():
            ok = result["goals_met"][form][key]
            print(
                f"{form} guidance text, {key}: {value:.4f} (goal {GOALS[key]}, {'met' if ok else 'MISSED'})"
            )
    print(f"{result['seconds_total']:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
