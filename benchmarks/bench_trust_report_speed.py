"""Wall time of the full three-axis trust report of the embedded SynthWorld CLIP on this machine's CPU
(issue 25 item 5: <= 120 s on 2 cores).

Two runs in a fresh cache folder: **cold** (the default SynthWorld-Web gallery rendered and written, every
image embedded) and **warm** (the gallery and its embeddings read from the cache; the probe and RaVL's
regions embedded again). Prints one JSON object with the wall seconds (per axis too), the process's CPU
seconds (all its threads) and the machine's load average before and after: on a shared machine other
processes inflate the wall time, not the CPU time; with 2 idle cores the wall time lies between CPU/2 and CPU.

    python benchmarks/bench_trust_report_speed.py --out benchmarks/results/trust_report_speed_cpu.json
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from trustvl.evaluation.trust_report import trust_report
from trustvl.modeling.synthworld_clip import default_clip_path
from trustvl.utils.io import print_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="default: the embedded SynthWorld CLIP")
    ap.add_argument("--out", default=None, help="write the JSON here too")
    args = ap.parse_args()
    model = args.model or str(default_clip_path())
    runs = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRUSTVL_CACHE"] = str(Path(tmp) / "cache")  # a fresh cache: the first run is cold
        for name in ("cold", "warm"):
            t0, c0 = time.perf_counter(), time.process_time()
            report = trust_report(model, str(Path(tmp) / name), device="cpu", progress=False)
            runs[name] = {
                "seconds": round(time.perf_counter() - t0, 1),
                # CPU seconds of this process (all its threads): what the run costs whatever else runs
                "cpu_seconds": round(time.process_time() - c0, 1),
                "per_axis": report.model.seconds,
            }
    result = {
        "benchmark": "trust_report_speed",
        "model": model,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "runs": runs,
    }
    print_json(result, args.out)


if __name__ == "__main__":
    main()
