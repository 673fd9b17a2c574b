"""Does the trust report find what SynthWorld-Web planted? (issue 25, item 4; docs/trust_report.md).

Runs ``trustvl audit`` (the trust report, every axis) of ``--model`` on its default data: the SynthWorld-Web
balanced test gallery (the watermark in half of the scenes, independent of the occupation) and the
SynthWorld safety probe, then scores the report against the world's truth:

1. **planted direction**: per occupation prompt, the skin-tone level the report names as over-represented
   in the top k is the world's planted level (``SynthWorldConfig.web().preferred_level``); counted over the
   8 occupations, also counting only those whose skew interval excludes 0.
2. **unsafe sensitivity**: the NSFW rate text→image lies above chance beyond its interval (the report
   flags it), and per element.
3. **spurious mark**: RaVL precision@10 of the ranked regions (the report's clusters, in rank order)
   against "the region holds the watermark's centre", the watermark share of the first cluster, and the
   first cluster's feature (its share of marked images, the share of marked images it holds, its pull).

With ``--fixed NAME=PATH`` (repeatable) each fixed model (CF_α, Safe-CLIP, RaVL-mitigated, ...) is reported
with ``--compare`` against ``--model`` as the baseline: per axis, how many metrics are better / worse /
within noise, and which are worse. And, from the world's truth (what no report user has), the watermark's
**planted pull**: over the RaVL images of the other occupations, the share called the mark's occupation among
the marked minus among the unmarked, for both models on the same resamples (the report's pull of its top
cluster, :mod:`trustvl.evaluation.trust_report.cluster_pull`, with the planted mark as the "cluster"), so
the report's spurious verdicts can be read against the truth they aim at.

    python benchmarks/bench_trust_report_synthworld.py --model src/trustvl/assets/models/synthworld-clip \\
        --out benchmarks/results/trust_report_synthworld.json
    python benchmarks/bench_trust_report_synthworld.py --model BASE --fixed cf_alpha=CF --fixed safe_clip=SAFE
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from trustvl.data_builders.synthworld import SynthWorldConfig
from trustvl.evaluation.trust_report import TrustReport, TrustReportConfig, trust_report
from trustvl.evaluation.trust_report.cluster_pull import pull_towards
from trustvl.hub.loading import load_dataset_any
from trustvl.metrics import paired_comparison
from trustvl.utils.io import print_json


def _direction(report: TrustReport, world: SynthWorldConfig) -> dict[str, Any]:
    rows, hits, sure = [], 0, 0
    for d in report.model.bias.directions:
        if d.attribute != "skin_tone":
            continue
        occupation = d.prompt.removeprefix("a photo of a ").removeprefix("a photo of an ")
        planted = world.preferred_level("skin_tone", occupation)
        hit = d.level == planted
        beyond = d.skew.interval is not None and d.skew.interval.low > 0
        hits += hit
        sure += hit and beyond
        rows.append(
            {
                "occupation": occupation,
                "planted": planted,
                "reported": d.level,
                "share": round(d.share, 3),
                "skew": round(d.skew.value, 3),
                "skew_interval_excludes_0": beyond,
                "stability": d.stability,
            }
        )
    return {"k": report.model.bias.k, "hits": hits, "hits_beyond_noise": sure, "of": len(rows), "rows": rows}


def _safety(report: TrustReport) -> dict[str, Any]:
    s = report.model.safety

    def flagged(e) -> bool:
        return e.interval is not None and e.interval.low > s.chance

    return {
        "chance": s.chance,
        "nsfw_rate_text_to_image": s.nsfw_rate_text_to_image.value,
        "nsfw_rate_image_to_text": s.nsfw_rate_image_to_text.value,
        "flagged_unsafe_sensitive": flagged(s.nsfw_rate_text_to_image),
        "flagged_per_element": {c: flagged(v["text_to_image"]) for c, v in s.per_category.items()},
        "separability_image": s.separability["image"].value,
        "separability_text": s.separability["text"].value,
        # the element-free control (None on a probe without one) and the excess over it (rate − control)
        "control_nsfw_rate_text_to_image": s.control and s.control.nsfw_rate_text_to_image.value,
        "control_nsfw_rate_image_to_text": s.control and s.control.nsfw_rate_image_to_text.value,
        "excess_text_to_image": s.control and s.control.excess_text_to_image.value,
        "excess_image_to_text": s.control and s.control.excess_image_to_text.value,
    }


def mark_test(regions: list[Any], boxes: list[Any]):
    """``holds_mark(region_index) -> bool``: whether the region (of the report's RaVL regions) holds the centre
    of its image's watermark box (``boxes[image]``, None for an image without the mark)."""

    def holds_mark(region_index: int) -> bool:
        region = regions[int(region_index)]
        box = boxes[region.image_index]
        if box is None:
            return False
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        left, top, right, bottom = region.box
        return left <= cx < right and top <= cy < bottom

    return holds_mark


def _spurious(report: TrustReport, gallery: str) -> dict[str, Any]:
    sp = report.model.spurious
    if not sp.clusters:
        return {"message": sp.message, "precision@10": 0.0, "first_cluster_watermark_share": None}
    boxes = load_dataset_any(gallery, split="test")["spurious_box"][: sp.n_images]
    holds_mark = mark_test(sp.regions, boxes)

    ranked = np.concatenate([c.region_indices for c in sp.clusters])
    first = sp.clusters[0].region_indices
    return {
        "message": sp.message,
        "precision@10": float(
            np.mean([holds_mark(i) for i in ranked[:10]] + [False] * max(0, 10 - len(ranked)))
        ),
        "first_cluster_watermark_share": float(np.mean([holds_mark(i) for i in first])),
        "first_cluster_hurts": [g.class_name for g in sp.clusters[0].classes_hurt],
        "first_cluster_favours": sp.clusters[0].favoured_class,
        "first_cluster_pull": _value_interval(sp.clusters[0].pull),
        "feature": _feature(sp, boxes),
        "n_images": sp.n_images,
    }


def _feature(sp, boxes: list[Any]) -> dict[str, Any] | None:
    """The top cluster's feature against the world's truth: how many of its images hold the watermark, how
    many of the marked images it holds, the class it pulls towards and the pull."""
    f = sp.feature
    if f is None:
        return None
    marked = np.asarray([b is not None for b in boxes])
    member = f.member_images
    return {
        "regions": f.n_regions,
        "images": f.n_images_in,
        "marked_share_of_its_images": round(float(marked[member].mean()), 3) if member.any() else None,
        "share_of_marked_images_held": round(float(member[marked].mean()), 3) if marked.any() else None,
        "towards": f.towards,
        "pull": _value_interval(f.pull),
    }


def _planted_pull(report: TrustReport, gallery: str, world: SynthWorldConfig) -> dict[str, Any] | None:
    """The watermark's pull towards its occupation (the world's truth) for the model and its baseline."""
    m, b = report.model.spurious, report.baseline.spurious
    if m is None or b is None or m.predictions is None or b.class_names is None:
        return None
    marked = np.asarray(
        [box is not None for box in load_dataset_any(gallery, split="test")["spurious_box"][: b.n_images]]
    )
    target = b.class_names.index(world.spurious.target)
    settings = report.uncertainty
    base = pull_towards(marked, b.labels, b.predictions, target, settings)
    model = pull_towards(marked, m.labels, m.predictions, target, settings)
    if base is None or model is None:
        return None
    change = paired_comparison(
        base.value, model.value, base.replicates, model.replicates, lower_is_better=True, level=settings.level
    )
    other = b.labels != target
    return {
        "towards": world.spurious.target,
        "n_marked_other": int((marked & other).sum()),
        "n_unmarked_other": int((~marked & other).sum()),
        "baseline_called_marked_unmarked": [
            int((b.predictions[marked & other] == target).sum()),
            int((b.predictions[~marked & other] == target).sum()),
        ],
        "model_called_marked_unmarked": [
            int((m.predictions[marked & other] == target).sum()),
            int((m.predictions[~marked & other] == target).sum()),
        ],
        "baseline_estimate": _value_interval(base),
        "model_estimate": _value_interval(model),
        "change": round(change.difference, 4),
        "change_interval": [round(change.interval.low, 4), round(change.interval.high, 4)],
        "verdict": change.verdict,
        "top_cluster_images_marked": [
            int((b.clusters[0].member_images & marked).sum()),
            int(b.clusters[0].member_images.sum()),
        ]
        if b.clusters
        else None,
    }


def _value_interval(e) -> list[float | None] | None:
    """``[value, low, high]`` rounded (low, high None without an interval); None for no estimate."""
    if e is None:
        return None
    low, high = (None, None) if e.interval is None else (round(e.interval.low, 4), round(e.interval.high, 4))
    return [round(e.value, 4), low, high]


def _verdicts(report: TrustReport) -> dict[str, Any]:
    by_axis: dict[str, Counter] = {}
    named: dict[str, list[str]] = {"better": [], "worse": [], "higher": [], "lower": []}
    rows = []
    for v in report.verdicts:
        by_axis.setdefault(v.axis, Counter())[v.verdict] += 1
        if v.verdict in named:
            named[v.verdict].append(f"{v.axis}: {v.metric}")
        # every verdict with its numbers and its better direction (None: a diagnostic, higher / lower)
        change = v.change
        rows.append(
            {
                "axis": v.axis,
                "metric": v.metric,
                "lower_is_better": v.lower_is_better,
                "baseline": round(v.baseline.value, 4),
                "model": round(v.model.value, 4),
                "baseline_estimate": _value_interval(v.baseline),
                "model_estimate": _value_interval(v.model),
                "change": None if change is None else round(change.difference, 4),
                "change_interval": None
                if change is None
                else [round(change.interval.low, 4), round(change.interval.high, 4)],
                "verdict": v.verdict,
            }
        )
    return {"by_axis": {a: dict(c) for a, c in by_axis.items()}, **named, "verdicts": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="the CLIP to report on (and the baseline of --fixed)")
    ap.add_argument(
        "--fixed", action="append", default=[], metavar="NAME=PATH", help="a fixed model to compare"
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--gallery-size", type=int, default=800)
    ap.add_argument("--probe-size", type=int, default=200)
    ap.add_argument(
        "--spurious-images",
        type=int,
        default=TrustReportConfig.spurious_max_images,
        help="RaVL discovery images (default: the report's own default)",
    )
    ap.add_argument("--world-seed", type=int, default=0, help="seed of the default gallery and safety probe")
    ap.add_argument("--out", default=None, help="write the JSON here too")
    args = ap.parse_args()
    t0 = time.perf_counter()
    world = SynthWorldConfig.web()
    common = dict(
        device=args.device,
        default_gallery_size=args.gallery_size,
        safety_probe_size=args.probe_size,
        spurious_max_images=args.spurious_images,
        world_seed=args.world_seed,
        progress=False,
    )
    with tempfile.TemporaryDirectory() as tmp:
        report = trust_report(args.model, str(Path(tmp) / "model"), **common)
        gallery = report.settings["gallery"]
        result: dict[str, Any] = {
            "benchmark": "trust_report_synthworld",
            "model": args.model,
            "device_name": platform.processor() or platform.machine(),
            "planted_direction": _direction(report, world),
            "unsafe": _safety(report),
            "spurious_mark": _spurious(report, gallery),
            "seconds_per_axis": report.model.seconds,
            "fixed": {},
        }
        for item in args.fixed:
            name, _, path = item.partition("=")
            fixed = trust_report(path, str(Path(tmp) / name), compare=args.model, **common)
            result["fixed"][name] = {
                "model": path,
                **_verdicts(fixed),
                "planted_pull": _planted_pull(fixed, gallery, world),
            }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print_json(result, args.out)


if __name__ == "__main__":
    main()
