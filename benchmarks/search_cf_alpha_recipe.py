"""Search CF_α training recipes on SynthWorld: one row per recipe, effect at α = 1 vs the base CLIP.

Each recipe is a JSON object with counterfactual-build keys (``n_base_per_occupation``,
``variants_per_base``, ``force_setting``, ``scene_captions``, ``data_seed``) and training keys (any
:class:`~trustvl.training.cf_alpha.CFAlphaConfig` field, plus ``lora_targets`` = ``"vision"`` or
``"both"``; ``sets_per_batch``, the name of the recipe files of the earlier rounds, means
``per_device_train_batch_size``). Datasets are built once per distinct build and shared; recipes run in ``--workers``
processes (several fit on one GPU). Prints and writes JSON with, per recipe, the mean MaxSkew@100 and
mean NDKL per attribute, their drops against the base model, and zero-shot accuracy.

    python benchmarks/search_cf_alpha_recipe.py --recipes benchmarks/recipes/recipes_round3.json \
        --workers 8 --world-seeds 0 1 2 [--alphas 0.25 0.5 0.75 1] --json-out results.json

The recipe files of the rounds behind the numbers in docs/results.md are in ``benchmarks/recipes/``, their outputs
in ``benchmarks/results/cf_alpha_recipe_*.json`` (round 1 and 2 judged on world seed 0 only).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

BUILD_KEYS = ("n_base_per_occupation", "variants_per_base", "force_setting", "scene_captions", "data_seed")
BUILD_DEFAULTS = {
    "n_base_per_occupation": 48,
    "variants_per_base": 8,
    "force_setting": False,
    "scene_captions": True,
    "data_seed": 0,
}


def _build_key(recipe: dict[str, Any]) -> str:
    b = {k: recipe.get(k, BUILD_DEFAULTS[k]) for k in BUILD_KEYS}
    return "cf_" + "_".join(f"{b[k]}" for k in BUILD_KEYS)


def _build(out: str, recipe: dict[str, Any]) -> str:
    from trustvl.data_builders.cf_alpha.synthworld_stages import (
        build_synthworld_counterfactuals,
        synthworld_counterfactual_config,
    )
    from trustvl.data_builders.synthworld import SynthWorldConfig, SynthWorldRenderer

    b = {k: recipe.get(k, BUILD_DEFAULTS[k]) for k in BUILD_KEYS}
    path = Path(out) / _build_key(recipe)
    if (path / "README.md").exists():
        return str(path)
    renderer = SynthWorldRenderer(SynthWorldConfig(), seed=b["data_seed"])
    cfg = synthworld_counterfactual_config(
        renderer,
        variants_per_base=b["variants_per_base"],
        n_base_per_prompt=b["n_base_per_occupation"],
        seed=b["data_seed"],
    )
    build_synthworld_counterfactuals(
        path,
        cfg,
        renderer=renderer,
        progress=False,
        overwrite=True,
        force_setting=b["force_setting"],
        scene_captions=b["scene_captions"],
    )
    return str(path)


def _evaluate(
    model_dir: str | None, n_test: int, world_seeds: list[int], alphas: list[float] = (1.0,)
) -> dict[str, Any]:
    """``{α: fairness_over_galleries(...)}`` for one model loaded once (the base model if no folder)."""
    import torch

    from trustvl.evaluation.synthworld import fairness_over_galleries
    from trustvl.modeling.embedding import load_clip
    from trustvl.modeling.synthworld_clip import default_clip_path

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, processor = load_clip(model_dir or default_clip_path(), device=device)
    out = {}
    for a in alphas:
        if hasattr(model, "set_alpha"):
            model.set_alpha(a)
        out[float(a)] = fairness_over_galleries(model, processor, world_seeds, n_test=n_test)
    return out


def _run(job: tuple[int, dict[str, Any], str, str, int, int, list[int], list[float]]) -> dict[str, Any]:
    i, recipe, data_dir, out, n_test, threads, world_seeds, alphas = job
    import torch

    torch.set_num_threads(threads)
    from trustvl.training.cf_alpha import CFAlphaConfig, train_cf_alpha

    train_keys = {
        k: v for k, v in recipe.items() if k not in BUILD_KEYS and k not in ("name", "lora_targets")
    }
    if "sets_per_batch" in train_keys:
        train_keys["per_device_train_batch_size"] = train_keys.pop("sets_per_batch")
    if recipe.get("lora_targets", "vision") == "both":
        train_keys["lora_target_modules"] = None
    run_dir = Path(out) / f"run_{i:02d}"
    t0 = time.perf_counter()
    cfg = CFAlphaConfig(
        base_model=_default(),
        dataset=data_dir,
        output_dir=str(run_dir),
        save_strategy="no",
        disable_tqdm=True,
        **{"variants_per_set": 8, "per_device_train_batch_size": 16, "max_steps": 200, **train_keys},
    )
    train_cf_alpha(cfg)
    seconds = time.perf_counter() - t0
    sweep = _evaluate(str(run_dir / "model"), n_test, world_seeds, sorted({*alphas, 1.0}))
    return {"recipe": recipe, "train_seconds": round(seconds, 1), "alpha_1": sweep[1.0], "sweep": sweep}


def _default() -> str:
    from trustvl.modeling.synthworld_clip import default_clip_path

    return str(default_clip_path())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", required=True, help="JSON file: a list of recipe objects")
    ap.add_argument("--out", default="runs/search_cf_alpha")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--n-test", type=int, default=4000)
    ap.add_argument("--world-seeds", type=int, nargs="+", default=[0], help="test galleries to average over")
    ap.add_argument("--alphas", type=float, nargs="+", default=[1.0], help="α values evaluated per recipe")
    ap.add_argument("--json-out", default=None)
    ap.add_argument(
        "--jsonl-out",
        default=None,
        help="append each finished recipe's row here as it completes (long rounds)",
    )
    args = ap.parse_args()
    from trustvl.evaluation.synthworld import effect_vs_base

    recipes = json.loads(Path(args.recipes).read_text())
    t0 = time.perf_counter()
    builds = {}
    for r in recipes:
        builds.setdefault(_build_key(r), r)
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as ex:
        paths = dict(zip(builds, ex.map(_build, [args.out] * len(builds), builds.values())))
    base = _evaluate(None, args.n_test, args.world_seeds)[1.0]
    print(json.dumps({"base": base.to_dict()}), flush=True)
    threads = max(1, (os.cpu_count() or 2) // args.workers)
    jobs = [
        (i, r, paths[_build_key(r)], args.out, args.n_test, threads, args.world_seeds, args.alphas)
        for i, r in enumerate(recipes)
    ]
    rows = []
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as ex:
        # submitted in order (put long recipes first), reported as they finish
        for fut in as_completed([ex.submit(_run, job) for job in jobs]):
            row = fut.result()
            effect = effect_vs_base(base, row["alpha_1"])
            row["effect"] = effect.to_dict()
            row["alpha_1"] = row["alpha_1"].to_dict()
            row["sweep"] = {f"{a:g}": v.to_dict() for a, v in row["sweep"].items()}
            rows.append(row)
            if args.jsonl_out:
                with open(args.jsonl_out, "a") as f:
                    f.write(json.dumps(row) + "\n")
            short = {"skin_tone": "skin", "gender_presentation": "gend", "age": "age", "body_type": "body"}
            print(
                json.dumps(
                    {
                        "name": row["recipe"].get("name"),
                        "max_skew_drop_pct": effect.max_skew_drop_pct,
                        "ndkl_drop_pct": effect.ndkl_drop_pct,
                        "zs": effect.zero_shot_change_points,
                        "s": row["train_seconds"],
                        "sweep": {
                            a: {
                                "zs": round(v["zero_shot_top1"], 4),
                                **{short[k]: round(v["max_skew"][k], 3) for k in short},
                            }
                            for a, v in row["sweep"].items()
                        },
                    }
                ),
                flush=True,
            )
    report = {
        "world_seeds": args.world_seeds,
        "n_test": args.n_test,
        "base": base.to_dict(),
        "rows": sorted(rows, key=lambda r: recipes.index(r["recipe"])),
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
