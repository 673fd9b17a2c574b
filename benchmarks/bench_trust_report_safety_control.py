"""Does a model's NSFW rate change because of the unsafe content or because of the scenes? (issue 25 item 4;
the "Compare" paragraph of docs/trust_report.md).

For ``--model`` and its ``--baseline`` on the SynthWorld safety probe drawn with each of ``--seeds``: the
safety axis of both (the NSFW rates, their element-free control: the same scenes without the unsafe element
and phrase, and the excess = rate − control per query) and the paired verdicts of the compare. A fix whose
rates fall with the control, whatever the probe draw, changed how it matches the scenes, not how it treats
unsafe content; one whose excess falls ranks the unsafe items lower for unsafe queries. The **safe-query
shift** tells whether for them alone: for the probe's *safe* queries, the unsafe share of their top k with
the element minus without it (the same galleries as the excess). An excess that falls with the safe-query
shift means the element's items are demoted for every query, safe or unsafe, not kept from the unsafe ones;
``excess − shift`` is what is left for unsafe queries alone.

    python benchmarks/bench_trust_report_safety_control.py --model /tmp/demo-compare/merged \\
        --out benchmarks/results/trust_report_safety_control_cf_alpha_demo_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

from trustvl.evaluation.results import UncertaintySettings
from trustvl.evaluation.trust_report.compare import compare_reports
from trustvl.evaluation.trust_report.safety_axis import safety_axis
from trustvl.evaluation.trust_report.safety_probe import synthworld_probe
from trustvl.evaluation.trust_report.schema import Estimate, ModelTrustReport, SafetyAxis
from trustvl.modeling.embedding import load_clip
from trustvl.modeling.synthworld_clip import default_clip_path
from trustvl.utils.io import print_json


def _value(e: Estimate) -> dict[str, Any]:
    i = e.interval
    return {
        "value": round(e.value, 4),
        "interval": None if i is None else [round(i.low, 4), round(i.high, 4)],
    }


def _axis(s: SafetyAxis) -> dict[str, Any]:
    c = s.control
    return {
        "nsfw_rate_text_to_image": _value(s.nsfw_rate_text_to_image),
        "nsfw_rate_image_to_text": _value(s.nsfw_rate_image_to_text),
        "control_text_to_image": _value(c.nsfw_rate_text_to_image),
        "control_image_to_text": _value(c.nsfw_rate_image_to_text),
        "excess_text_to_image": _value(c.excess_text_to_image),
        "excess_image_to_text": _value(c.excess_image_to_text),
        "safe_query_shift_text_to_image": _value(c.safe_query_shift_text_to_image),
        "safe_query_shift_image_to_text": _value(c.safe_query_shift_image_to_text),
        "separability_image": _value(s.separability["image"]),
        "separability_text": _value(s.separability["text"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="the fixed model (e.g. trustvl demo's merged CF_α model)")
    ap.add_argument("--baseline", default=str(default_clip_path()), help="default: the embedded CLIP")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="probe draws (world seeds)")
    ap.add_argument("--probe-size", type=int, default=200)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="write the JSON here too")
    args = ap.parse_args()
    t0 = time.perf_counter()
    settings = UncertaintySettings.of(200, 0)  # the trust report's defaults
    models = {
        "model": load_clip(args.model, device=args.device),
        "baseline": load_clip(args.baseline, device=args.device),
    }
    draws = []
    for seed in args.seeds:
        probe = synthworld_probe(args.probe_size, seed)
        reports = {
            who: ModelTrustReport(who, safety=safety_axis(m, p, probe, uncertainty=settings))
            for who, (m, p) in models.items()
        }
        verdicts = compare_reports(reports["model"], reports["baseline"], settings)
        draws.append(
            {
                "seed": seed,
                "chance": reports["model"].safety.chance,
                **{who: _axis(r.safety) for who, r in reports.items()},
                "verdicts": [
                    {
                        "metric": v.metric,
                        "lower_is_better": v.lower_is_better,
                        "change": round(v.change.difference, 4),
                        "change_interval": [
                            round(v.change.interval.low, 4),
                            round(v.change.interval.high, 4),
                        ],
                        "verdict": v.verdict,
                    }
                    for v in verdicts
                ],
            }
        )
        print(json.dumps({k: draws[-1][k] for k in ("seed", "model", "baseline")}), flush=True)
    result = {
        "benchmark": "trust_report_safety_control",
        "model": args.model,
        "baseline": args.baseline,
        "probe_size": args.probe_size,
        "device_name": platform.processor() or platform.machine(),
        "draws": draws,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print_json(result, args.out)


if __name__ == "__main__":
    main()
