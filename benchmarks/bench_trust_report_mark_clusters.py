"""Where the watermark's errors sit among the trust report's RaVL clusters (issue 25 item 4; docs/trust_report.md).

Runs the report's spurious axis of ``--model`` on its default SynthWorld-Web gallery, ranking ``--top``
clusters, and for each: its watermark share of regions (the planted box's centre in the region), its images,
how many are marked, how many are the errors the mark causes (marked images of other occupations called the
mark's occupation), the class its gaps favour and its pull towards it. The planted boxes are the world's
truth, which a report user does not have.

    python benchmarks/bench_trust_report_mark_clusters.py --model src/trustvl/assets/models/synthworld-clip \\
        --out benchmarks/results/trust_report_mark_clusters_v4_cpu.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from trustvl.data_builders.synthworld import SynthWorldConfig
from trustvl.evaluation.trust_report import trust_report
from trustvl.hub.loading import load_dataset_any
from trustvl.utils.io import print_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trust_report_synthworld import mark_test  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--top", type=int, default=20, help="clusters to rank")
    ap.add_argument("--gallery-size", type=int, default=800)
    ap.add_argument("--world-seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report = trust_report(
            args.model,
            str(Path(tmp) / "r"),
            axes=["spurious"],
            default_gallery_size=args.gallery_size,
            spurious_max_images=args.gallery_size,
            spurious_top=args.top,
            world_seed=args.world_seed,
            progress=False,
        )
    sp = report.model.spurious
    boxes = load_dataset_any(report.settings["gallery"], split="test")["spurious_box"][: sp.n_images]
    holds_mark = mark_test(sp.regions, boxes)

    target = sp.class_names.index(SynthWorldConfig.web().spurious.target)
    marked = np.asarray([b is not None for b in boxes])
    mark_errors = marked & (sp.labels != target) & (sp.predictions == target)
    clusters: list[dict[str, Any]] = []
    for c in sp.clusters:
        member = c.member_images
        clusters.append(
            {
                "rank": c.rank,
                "cluster_id": c.cluster_id,
                "regions": c.size,
                "watermark_share": round(float(np.mean([holds_mark(i) for i in c.region_indices])), 3),
                "images": int(member.sum()),
                "marked_images": int((member & marked).sum()),
                "mark_errors": int((member & mark_errors).sum()),
                "score": round(c.score.value, 4),
                "favoured_class": c.favoured_class,
                "pull": None if c.pull is None else round(c.pull.value, 4),
            }
        )
    result = {
        "benchmark": "trust_report_mark_clusters",
        "model": args.model,
        "message": sp.message,
        "mark_class": sp.class_names[target],
        "marked_images": int(marked.sum()),
        "mark_errors": int(mark_errors.sum()),
        "mark_errors_in_a_ranked_cluster": int(
            (mark_errors & np.any([c.member_images for c in sp.clusters], axis=0)).sum()
        )
        if sp.clusters
        else 0,
        "clusters": clusters,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print_json(result, args.out)


if __name__ == "__main__":
    main()
