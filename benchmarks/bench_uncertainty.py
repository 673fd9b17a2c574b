"""Cost of the fairness uncertainty (SPEC §1): gallery bootstrap + sampling floor on the demo's gallery.

The demo evaluates 1,500 images x 8 occupation prompts x 4 attributes at k in {10, 100}. This times the
evaluator's fairness path (:func:`trustvl.evaluation.evaluator.fairness_by_attribute`) on random scores of
that shape without uncertainty and with it (200 resamples + 200 random rankings, seed 0, 8 classes), and
prints one JSON object: the median of ``--repeats`` runs of each and the difference (the cost added per
evaluation; the demo evaluates 6 times: the audit and 5 α values).

    python benchmarks/bench_uncertainty.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import torch

from trustvl.evaluation.dataset_columns import AttributeColumn
from trustvl.evaluation.evaluator import fairness_by_attribute
from trustvl.evaluation.results import UncertaintySettings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gallery", type=int, default=1500)
    p.add_argument("--queries", type=int, default=8)
    p.add_argument("--attributes", type=int, default=4)
    p.add_argument("--values", type=int, default=4)
    p.add_argument("--ks", type=int, nargs="+", default=[10, 100])
    p.add_argument("--resamples", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    scores = torch.rand(args.queries, args.gallery, generator=torch.Generator().manual_seed(0))
    classes = rng.integers(0, args.queries, args.gallery)
    attributes = [
        AttributeColumn(
            f"a{j}", rng.integers(0, args.values, args.gallery), [str(v) for v in range(args.values)]
        )
        for j in range(args.attributes)
    ]
    settings = UncertaintySettings(n_resamples=args.resamples)

    def timed(uncertainty) -> float:
        runs = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fairness_by_attribute(scores, attributes, args.ks, uncertainty=uncertainty, classes=classes)
            runs.append(time.perf_counter() - t)
        return statistics.median(runs)

    without, with_uncertainty = timed(None), timed(settings)
    print(
        json.dumps(
            {
                "gallery": args.gallery,
                "queries": args.queries,
                "attributes": args.attributes,
                "ks": args.ks,
                "resamples": args.resamples,
                "threads": args.threads,
                "cpu_count": os.cpu_count(),
                "machine": platform.processor() or platform.machine(),
                "seconds_without": round(without, 3),
                "seconds_with": round(with_uncertainty, 3),
                "seconds_added_per_evaluation": round(with_uncertainty - without, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
