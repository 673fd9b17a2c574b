"""Skin-tone Fair Diffusion sweep on the SynthWorld SD (4 levels, uniform target): edit scale × weight of
the away-concepts × threshold × warm-up, 8 occupations × 64 images each, on the GPU. Writes
``$OUT/skin_sweep.json`` (one row per setting: mean |share − target| with and without the instruction,
prompts within ±0.1, occupation recognition drop, each with its interval).

    OUT=/tmp python benchmarks/sweep_fair_diffusion_skin.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_fair_diffusion_effect as bench  # noqa: E402

from trustvl.data_builders.synthworld import OCCUPATIONS  # noqa: E402

SETTINGS = [  # (edit scale, away weight, threshold, warm-up steps)
    (7, 1.0, 0.95, 2), (12, 1.0, 0.95, 2), (7, 0.3, 0.95, 2), (12, 0.3, 0.95, 2), (7, 0.0, 0.95, 2),
    (12, 0.0, 0.95, 2), (12, 0.3, 0.9, 2), (20, 0.3, 0.95, 2), (12, 0.3, 0.95, 0),
]  # fmt: skip


def main() -> None:
    sd = bench.load_sd_pipeline(None, device="cuda", dtype=None)
    judge = bench.OutcomeClassifier(None, device="cuda", batch_size=1024)
    heads, prompts, occupations = judge.heads, bench.default_prompts(), list(OCCUPATIONS)
    common = dict(seed=0, num_inference_steps=20, guidance_scale=8.0, batch_size=1024, progress=False)
    gender = bench.FairnessInstruction.synthworld("gender")
    pipe = bench.FairGenerationPlan(tuple(bench.resolve_outcomes([gender], heads)), 0.5, 0.6).pipeline(sd)
    plain = bench.generate_and_read(pipe, judge, prompts, 64, None, **common)
    rows = []
    for scale, away, threshold, warmup in SETTINGS:
        instruction = bench.FairnessInstruction.synthworld(
            "skin_tone", guidance_scale=scale, warmup_steps=warmup, threshold=threshold, away_weight=away
        )
        plan = bench.FairGenerationPlan(tuple(bench.resolve_outcomes([instruction], heads)), 0.5, 0.6)
        fair = bench.generate_and_read(pipe, judge, prompts, 64, plan, **common)
        result = bench.summarise(
            plan, prompts, plain, fair, expected_occupations=occupations, n_resamples=200, seed=0
        )
        summary = bench._scenario_summary(result)
        row = {"scale": scale, "away_weight": away, "threshold": threshold, "warmup": warmup}
        row.update({k: v for k, v in summary.items() if not k.startswith("per_occ")})
        rows.append(row)
        print(json.dumps(row), flush=True)
    Path(os.environ["OUT"], "skin_sweep.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
