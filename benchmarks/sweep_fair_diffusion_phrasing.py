"""Which guidance text steers the SynthWorld SD's skin tone? Fair Diffusion (4 levels, uniform target) with
the same knobs and different texts per group, 8 occupations × 64 images each, on the GPU.

Texts (``FairnessInstruction.prompts``; ``{subject}`` is the prompt's occupation):

* ``noun``: "person with very dark skin" (the default bare phrase);
* ``skinned``: "very dark-skinned person";
* ``context``: "a photo of a very dark-skinned {subject}" (``contextual=True``; SynthWorld's appearance caption);
* ``context_worker``: "a person with very dark skin working as a {subject}" (the grammar's other phrasing);
* ``prompt_suffix``: "a photo of a {subject}, very dark-skinned person" (the prompt plus a bare phrase).

``context`` also runs at other edit scales, thresholds and warm-ups. Writes ``$OUT/fair_diffusion_phrasing.json``
(one row per setting: mean |share − target| with its interval, how often an image shows its assigned level,
prompts within ±0.1, occupation recognition drop).

    OUT=/tmp python benchmarks/sweep_fair_diffusion_phrasing.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_fair_diffusion_effect as bench  # noqa: E402

from trustvl.data_builders.synthworld import OCCUPATIONS  # noqa: E402
from trustvl.data_builders.synthworld.captions import SKIN_PHRASES  # noqa: E402
from trustvl.data_builders.synthworld.generation_captions import SKIN_NOUN_PHRASES  # noqa: E402

TEXTS = {
    "noun": None,  # the instruction's default
    "skinned": "{skinned} person",
    "context": "a photo of a {skinned} {{subject}}",
    "context_worker": "a person with {noun} working as a {{subject}}",
    "prompt_suffix": "a photo of a {{subject}}, {skinned} person",
}
SETTINGS = [  # (text, edit scale, warm-up, threshold)
    ("noun", 7, 2, 0.95), ("skinned", 7, 2, 0.95), ("context", 4, 2, 0.95), ("context", 7, 2, 0.95),
    ("context", 10, 2, 0.95), ("context", 7, 2, 0.9), ("context", 7, 2, 0.8), ("context", 7, 0, 0.95),
    ("context_worker", 7, 2, 0.95), ("prompt_suffix", 7, 2, 0.95),
]  # fmt: skip


def instruction(text: str, scale: float, warmup: int, threshold: float) -> bench.FairnessInstruction:
    base = bench.FairnessInstruction.synthworld("skin_tone", guidance_scale=scale, warmup_steps=warmup,
                                                threshold=threshold)  # fmt: skip
    if TEXTS[text] is None:
        return base
    prompts = {
        group: TEXTS[text].format(skinned=SKIN_PHRASES[value], noun=SKIN_NOUN_PHRASES[value])
        for group, value in base.outcome_values.items()
    }
    return bench.dataclasses.replace(base, prompts=prompts)


def main() -> None:
    sd = bench.load_sd_pipeline(None, device="cuda", dtype=None)
    judge = bench.OutcomeClassifier(None, device="cuda", batch_size=1024)
    heads, prompts, occupations = judge.heads, bench.default_prompts(), list(OCCUPATIONS)
    common = dict(seed=0, num_inference_steps=20, guidance_scale=8.0, batch_size=1024, progress=False)
    plain_plan = bench.FairGenerationPlan(
        tuple(bench.resolve_outcomes([instruction("noun", 7, 2, 0.95)], heads))
    )
    pipe = plain_plan.pipeline(sd)
    plain = bench.generate_and_read(pipe, judge, prompts, 64, None, **common)
    rows = []
    for text, scale, warmup, threshold in SETTINGS:
        plan = bench.FairGenerationPlan(
            tuple(bench.resolve_outcomes([instruction(text, scale, warmup, threshold)], heads)), 0.5, 0.6
        )
        start = time.perf_counter()
        fair = bench.generate_and_read(pipe, judge, prompts, 64, plan, **common)
        result = bench.summarise(
            plan, prompts, plain, fair, expected_occupations=occupations, n_resamples=200, seed=0
        )
        row = {"text": text, "example": plan.instructions[0].prompt_of("person with very dark skin", "nurse"),
               "scale": scale, "warmup": warmup, "threshold": threshold,
               "seconds": round(time.perf_counter() - start, 1), **bench._scenario_summary(result)}  # fmt: skip
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if not k.startswith("per_occ")}), flush=True)
        Path(os.environ["OUT"], "fair_diffusion_phrasing.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
