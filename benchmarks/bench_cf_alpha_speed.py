"""CF_α speed on the machine at hand: LoRA layer forms and training steps, each pair measured interleaved.

1. One LoRA linear layer of the SynthWorld CLIP's MLP shape (``[tokens, 256] → [tokens, 1024]``, the tokens of
   64 images), r = 8: the branch form ``W x + s·B(A x)`` against the merged form ``(W + s·B·A) x`` that
   :class:`~trustvl.modeling.cf_alpha.CFAlphaLoRALinear` now uses, without and with backward.
2. CF_α training steps on counterfactual sets of the demo's shape (16 sets × 4 variants, β_s = 20), median
   seconds per step of each setting, steps of the settings interleaved so machine noise hits all alike:

   * ``branch, all layers, from pixels``: the forward of the demo before this change (LoRA branch form);
   * ``merged, all layers, from pixels``;
   * ``merged, layers 2-5, cached prefix``: the demo's recipe (patch embedding and layers 0-1 computed once).

    python benchmarks/bench_cf_alpha_speed.py --steps 12 --json-out benchmarks/results/cf_alpha_speed_cpu2.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def _layer_forms(tokens: int, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    x = torch.randn(tokens, 256, requires_grad=True)
    w, b = torch.randn(1024, 256) * 0.05, torch.zeros(1024)
    a = (torch.randn(8, 256) * 0.05).requires_grad_()
    bb = (torch.randn(1024, 8) * 0.05).requires_grad_()

    def branch(v):
        return F.linear(v, w, b) + F.linear(F.linear(v, a), bb) * 1.0

    def merged(v):
        return F.linear(v, torch.addmm(w, bb, a, alpha=1.0), b)

    times: dict[str, list[float]] = {}
    for i in range(2 * repeats + 2):
        for name, fn in (("branch", branch), ("merged", merged)):
            for mode in ("inference", "with backward"):
                t = time.perf_counter()
                if mode == "inference":
                    with torch.no_grad():
                        fn(x)
                else:
                    fn(x).sum().backward()
                if i >= 2:
                    times.setdefault(f"{name}, {mode}", []).append(time.perf_counter() - t)
    return {k: round(statistics.median(v) * 1000, 2) for k, v in times.items()}


def _training_steps(n_steps: int, n_bases: int) -> dict[str, float]:
    from transformers import AutoProcessor, CLIPModel

    from trustvl.data_builders.cf_alpha.synthworld_stages import (
        build_synthworld_counterfactuals,
        synthworld_counterfactual_config,
    )
    from trustvl.data_builders.synthworld import SynthWorldConfig, SynthWorldRenderer
    from trustvl.hub.loading import load_dataset_any, load_pretrained
    from trustvl.jobs.demo import DEMO_LORA_TARGETS
    from trustvl.modeling.cf_alpha import CFAlphaCLIPModel
    from trustvl.modeling.synthworld_clip import default_clip_path
    from trustvl.training.cf_alpha import (
        VISION_LORA_TARGETS,
        CFAlphaLoss,
        CounterfactualSetCollator,
        CounterfactualSets,
        PrefixCachedSets,
        collate_prefix_cached_sets,
    )

    tmp = Path(tempfile.mkdtemp())
    renderer = SynthWorldRenderer(SynthWorldConfig(), seed=0)
    cfg = synthworld_counterfactual_config(renderer, variants_per_base=4, n_base_per_prompt=n_bases, seed=0)
    build_synthworld_counterfactuals(tmp / "cf", cfg, renderer=renderer, progress=False, scene_captions=True)
    sets = CounterfactualSets(load_dataset_any(str(tmp / "cf"), split="train"), variants_per_set=4)
    processor = load_pretrained(AutoProcessor, str(default_clip_path()))
    base = load_pretrained(CLIPModel, str(default_clip_path()))
    loss_fn = CFAlphaLoss(beta_score=20.0)
    settings = {}
    for name, targets, cached, merged in (
        ("branch, all layers, from pixels", VISION_LORA_TARGETS, False, False),
        ("merged, all layers, from pixels", VISION_LORA_TARGETS, False, True),
        ("merged, layers 2-5, cached prefix", DEMO_LORA_TARGETS, True, True),
    ):
        model = CFAlphaCLIPModel.from_clip(base, lora_target_modules=targets).train()
        model.mark_only_lora_trainable()
        if not merged:
            for layer in model.lora_layers().values():
                layer._merge_in_forward = lambda _x: False
        data, collate = sets, CounterfactualSetCollator(processor)
        t = time.perf_counter()
        if cached:
            data, collate = PrefixCachedSets(sets, model, processor), collate_prefix_cached_sets
        setup = time.perf_counter() - t
        optimizer = torch.optim.AdamW(list(model.lora_parameters()), lr=1e-3)
        settings[name] = (model, data, collate, optimizer, setup)
    times: dict[str, list[float]] = {name: [] for name in settings}
    for step in range(n_steps + 2):
        idx = [(step * 16 + j) % len(sets) for j in range(16)]
        for name, (model, data, collate, optimizer, _) in settings.items():
            t = time.perf_counter()
            batch = collate([data[i] for i in idx])  # data loading is part of a step
            loss, _ = loss_fn(model, batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if step >= 2:
                times[name].append(time.perf_counter() - t)
    out = {name: round(statistics.median(v), 3) for name, v in times.items()}
    out["cache build (s), layers 2-5"] = round(settings["merged, layers 2-5, cached prefix"][4], 1)
    out["images in the cache"] = len(sets) * sets.v
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--n-base-per-occupation", type=int, default=96)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    report = {
        "machine": {"platform": platform.platform(), "threads": torch.get_num_threads()},
        "lora_layer_ms (median, 64 images x 65 tokens)": _layer_forms(64 * 65, repeats=8),
        "training_step_s (median)": _training_steps(args.steps, args.n_base_per_occupation),
    }
    steps = report["training_step_s (median)"]
    base = steps["branch, all layers, from pixels"]
    report["speedup vs branch, all layers"] = {
        k: round(base / v, 2) for k, v in steps.items() if k.startswith(("merged", "branch"))
    }
    print(json.dumps(report, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
