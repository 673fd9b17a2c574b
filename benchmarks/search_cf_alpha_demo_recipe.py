"""Search the demo's CF_α recipe for a monotone α knob (issue 26) on this machine's CPU.

Each recipe is a JSON object ``{"name": ..., "demo": {DemoConfig fields}, "cf_alpha": {CFAlphaConfig fields}}``;
it runs ``trustvl demo --config <recipe>`` (the demo's own pipeline: build, CF_α training, α sweep with paired
verdicts) in ``--out/<name>`` and is judged by what the issue asks of the default recipe:

- **monotone**: no step to a larger α makes any attribute's mean MaxSkew@100 or NDKL worse beyond noise
  (``AlphaSweepResult.rises``: paired verdict against the previous α, same bootstrap resamples);
- **effect**: the skin-tone MaxSkew@100 drop at α = 1 against α = 0 (goal ≥ 50 % on the benchmark), and no
  attribute worse at α = 1 beyond noise;
- **accuracy**: zero-shot top-1 within 1 point of α = 0 at every α;
- **time**: the demo's wall-clock seconds (goal ≤ 300 s on a 2-core CPU).

A finished recipe (its ``metrics.json`` exists) is not run again, so an interrupted search resumes. Writes one
JSON with a row per recipe (``--json-out``) and prints a table.

    python benchmarks/search_cf_alpha_demo_recipe.py --recipes benchmarks/recipes/recipes_demo_mono.json \
        --out runs/search_demo_mono --json-out benchmarks/results/cf_alpha_recipe_demo_mono_cpu2.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def run_recipe(recipe: dict[str, Any], out: Path) -> float | None:
    """Run one recipe's demo in ``out`` unless it finished before; returns the wall seconds it took (None:
    reused)."""
    if (out / "metrics.json").exists():
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    config = {**recipe.get("demo", {}), "cf_alpha": recipe.get("cf_alpha", {})}
    config_path = out.parent / f"{recipe['name']}.config.json"
    config_path.write_text(json.dumps(config, indent=1))
    cmd = [sys.executable, "-m", "trustvl.cli", "demo", "--config", str(config_path), "--out", str(out)]
    cmd += ["--overwrite", "--quiet"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


def judge(out: Path) -> dict[str, Any]:
    """The issue's criteria read from one demo run folder."""
    from trustvl.evaluation.results import AlphaSweepResult

    demo = json.loads((out / "metrics.json").read_text())
    sweep = AlphaSweepResult.from_dict(json.loads((out / "sweep" / "metrics.json").read_text()))
    base = sweep.baseline.evaluation
    zero_shot = {p.alpha: p.evaluation.zero_shot_top1 for p in sorted(sweep.points, key=lambda p: p.alpha)}
    worst_zero_shot_points = min(100 * (v - base.zero_shot_top1) for v in zero_shot.values())
    effect = demo["effect"]
    worse_at_one = [
        f"{a} {m}"
        for a, e in effect.items()
        for m in ("max_skew", "ndkl")
        if (e.get(f"{m}_change") or {}).get("verdict") == "worse"
    ]
    rises = sweep.rises()
    return {
        "monotone": sweep.monotone,
        "rises": [
            f"{r.attribute} {r.metric} {r.previous_alpha:g}→{r.alpha:g} {r.change.difference:+.3f}"
            f" [{r.change.interval.low:+.3f}, {r.change.interval.high:+.3f}]"
            for r in rises
        ],
        "skin_tone_max_skew@100": {
            f"{p.alpha:g}": p.evaluation.fairness["skin_tone"].at_k[100].max_skew
            for p in sorted(sweep.points, key=lambda p: p.alpha)
        },
        "skin_tone_drop_pct_at_1": effect["skin_tone"]["max_skew_drop_pct"],
        "worse_at_alpha_1": worse_at_one,
        "zero_shot_top1": {f"{a:g}": v for a, v in zero_shot.items()},
        "worst_zero_shot_change_points": round(worst_zero_shot_points, 2),
        "demo_seconds": demo["seconds"]["total"],
        "goals_met": bool(
            sweep.monotone
            and effect["skin_tone"]["max_skew_drop_pct"] >= 50
            and not worse_at_one
            and worst_zero_shot_points >= -1.0
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipes", required=True, help="JSON file: a list of recipe objects")
    ap.add_argument("--out", default="runs/search_cf_alpha_demo", help="one demo run folder per recipe")
    ap.add_argument("--only", nargs="*", default=None, help="run only these recipe names")
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    recipes = json.loads(Path(args.recipes).read_text())
    rows = []
    for recipe in recipes:
        if args.only and recipe["name"] not in args.only:
            continue
        out = Path(args.out) / recipe["name"]
        seconds = run_recipe(recipe, out)
        row = {"name": recipe["name"], "recipe": recipe, "wall_seconds": seconds, **judge(out)}
        rows.append(row)
        print(
            f"{row['name']:<28} monotone={row['monotone']!s:<5} skin drop {row['skin_tone_drop_pct_at_1']:5.1f} %"
            f"  zero-shot worst {row['worst_zero_shot_change_points']:+.2f} pt  demo {row['demo_seconds']:.0f} s"
            f"  rises: {'; '.join(row['rises']) or 'none'}",
            flush=True,
        )
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                {"benchmark": "search_cf_alpha_demo_recipe", "cpu_count": os.cpu_count(), "rows": rows},
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
