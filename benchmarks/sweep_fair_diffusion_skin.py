import itertools, json, os, sys, time
sys.path.insert(0, "benchmarks")
import bench_fair_diffusion_effect as B
from trustvl.data_builders.synthworld import OCCUPATIONS

sd = B.load_sd_pipeline(None, device="cuda", dtype=None)
judge = B.OutcomeClassifier(None, device="cuda", batch_size=1024)
heads = judge.heads
prompts = B.default_prompts()
occs = list(OCCUPATIONS)
common = dict(seed=0, num_inference_steps=20, guidance_scale=8.0, batch_size=1024, progress=False)
base = B.FairGenerationPlan(tuple(B.resolve_outcomes([B.FairnessInstruction.synthworld("gender")], heads)), 0.5, 0.6)
pipe = base.pipeline(sd)
plain = B.generate_and_read(pipe, judge, prompts, 64, None, **common)
rows = []
for scale, away, thr, warm in [(7, 1.0, 0.95, 2), (12, 1.0, 0.95, 2), (7, 0.3, 0.95, 2), (12, 0.3, 0.95, 2), (7, 0.0, 0.95, 2), (12, 0.0, 0.95, 2), (12, 0.3, 0.9, 2), (20, 0.3, 0.95, 2), (12, 0.3, 0.95, 0)]:
    ins = B.FairnessInstruction.synthworld("skin_tone", guidance_scale=scale, warmup_steps=warm, threshold=thr, away_weight=away)
    plan = B.FairGenerationPlan(tuple(B.resolve_outcomes([ins], heads)), 0.5, 0.6)
    fair = B.generate_and_read(pipe, judge, prompts, 64, plan, **common)
    res = B.summarise(plan, prompts, plain, fair, expected_occupations=occs, n_resamples=200, seed=0)
    s = B._scenario_summary(res)
    row = {"scale": scale, "away_weight": away, "threshold": thr, "warmup": warm,
           **{k: v for k, v in s.items() if not k.startswith("per_occ")}}
    rows.append(row); print(json.dumps(row), flush=True)
json.dump(rows, open(os.environ["OUT"] + "/skin_sweep.json", "w"), indent=1)
