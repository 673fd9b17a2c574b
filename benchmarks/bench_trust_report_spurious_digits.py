"""Does the trust report's spurious axis rank the planted rectangle first on the spurious-digits models?
(issue 25, item 4; docs/trust_report.md, "Ground truth on SynthWorld").

Per setting (Cramér's V x spurious class, the settings and knobs of ``bench_ravl_spurious_digits.py``):

1. build spurious digits and the held-out build whose balanced test split is the **discovery split**
   (:func:`bench_ravl_spurious_digits.build_setting_data`);
2. **standard fine-tuning** of the embedded SynthWorld CLIP on the train split, ``L_CLIP`` alone
   (:func:`bench_ravl_spurious_digits.standard_finetune`): the spuriously correlated VLM, saved (safetensors)
   into the work folder; its worst-group test accuracy (groups = class x rectangle present) shows the reliance;
3. the **trust report** of that VLM, spurious axis only, on the discovery split (the API behind
   ``trustvl audit --model VLM --dataset DISC --split test --axes spurious --label-column label
   --prompt-template "a photo of the digit {}"``), scored against the rectangle
   (:func:`~trustvl.data_builders.ravl.spurious_digits.rectangle_region_truth` of the report's own regions):
   precision@10 of the report's ranked regions (its clusters' regions in rank order), the first cluster's
   rectangle share, the classes the report says the first cluster hurts (gap < 0, with intervals) and the
   spurious class's own gap. The prompt template is the one the VLM was fine-tuned with and that
   ``run_discovery`` uses; with ``--audit-template-too`` the report also runs with ``trustvl audit``'s default
   template (``"a photo of a {}"``), what a user who does not pass ``--prompt-template`` gets;
4. the **consistency check**: ``bench_ravl_spurious_digits.py``'s own discovery
   (:func:`~trustvl.evaluation.ravl.run_discovery`) on the same model and split, its precision@10, and whether
   both found the same number of clusters and the same first cluster (same regions).

Each finished setting is one JSON file in ``--runs-dir`` and is never recomputed (``--fresh`` to redo), so an
interrupted run resumes; ``--report-only`` re-aggregates the files into ``--out``.

    python benchmarks/bench_trust_report_spurious_digits.py --threads 1          # 10 settings
    python benchmarks/bench_trust_report_spurious_digits.py --cramers-v 0.7 0.99 --spurious-classes 3
    python benchmarks/bench_trust_report_spurious_digits.py --report-only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from trustvl.data_builders.ravl.spurious_digits import rectangle_region_truth  # noqa: E402
from trustvl.evaluation.results import Estimate, UncertaintySettings  # noqa: E402
from trustvl.evaluation.trust_report import trust_report  # noqa: E402
from trustvl.evaluation.trust_report.schema import SpuriousAxis  # noqa: E402
from trustvl.evaluation.trust_report.spurious_axis import cluster_score  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling benchmark whose settings, build and fine-tuning this one reuses
from bench_ravl_spurious_digits import (  # noqa: E402
    add_setting_arguments,
    build_setting_data,
    standard_finetune,
)

#: the class prompts the VLM was fine-tuned with (the dataset's captions) and that run_discovery uses
DIGIT_TEMPLATE = "a photo of the digit {}"
#: ``trustvl audit``'s default prompt template
AUDIT_TEMPLATE = "a photo of a {}"
TOP_K = 10


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _write_json(path: Path, obj: dict) -> None:
    """Atomic: a file that exists is complete (what resuming relies on)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _estimate(e: Estimate) -> dict[str, Any]:
    iv = e.interval
    return {
        "value": round(float(e.value), 4),
        "low": None if iv is None else round(float(iv.low), 4),
        "high": None if iv is None else round(float(iv.high), 4),
    }


def ranked_regions(axis: SpuriousAxis) -> np.ndarray:
    """The report's ranked regions: its clusters' regions concatenated in rank order (what precision@k reads,
    as :func:`trustvl.discovery.precision_at_k` reads a discovery result)."""
    if not axis.clusters:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.asarray(c.region_indices, dtype=np.int64) for c in axis.clusters])


def score_spurious_axis(
    axis: SpuriousAxis,
    rectangle_boxes: Sequence[Sequence[int]],
    class_names: Sequence[str],
    spurious_class: str,
    uncertainty: UncertaintySettings | None,
) -> dict[str, Any]:
    """The report's spurious axis against the planted rectangle.

    ``rectangle_boxes``: the ``rectangle_box`` column of the audited split (the report audits its first
    ``axis.n_images`` rows); ``spurious_class``: the class name the rectangle was associated with in training.
    Precision@10 is always divided by 10 (fewer ranked regions count as misses), as for run_discovery.
    """
    boxes = [list(b) for b in rectangle_boxes][: axis.n_images]
    truth = rectangle_region_truth({"rectangle_box": boxes}, axis.regions)
    ranked = ranked_regions(axis)
    out: dict[str, Any] = {
        "message": axis.message,
        "n_images": axis.n_images,
        "n_regions": axis.n_regions,
        "k": axis.n_clusters,
        "n_ranked_clusters_shown": len(axis.clusters),
        "image_accuracy": _estimate(axis.image_accuracy),
        "precision_at_10": float(truth[ranked[:TOP_K]].sum()) / TOP_K,
        # every shown cluster in rank order: where the rectangle's cluster ranks, and by how much
        "cluster_rectangle_shares": [
            round(float(truth[np.asarray(c.region_indices, dtype=np.int64)].mean()), 4) for c in axis.clusters
        ],
        "cluster_scores": [_estimate(c.score) for c in axis.clusters],
        "first_cluster": None,
    }
    if not axis.clusters:
        return out
    first = axis.clusters[0]
    first_regions = np.asarray(first.region_indices, dtype=np.int64)
    # every class's gap for the first cluster (the report lists only those below 0): is the spurious class
    # hurt, or helped (the rectangle pushes predictions towards it)?
    _, gaps = cluster_score(first.member_images, axis.labels, axis.correct, len(class_names), uncertainty)
    hurt = [g.class_name for g in first.classes_hurt]
    out["first_cluster"] = {
        "cluster_id": first.cluster_id,
        "size": first.size,
        "n_images_in": first.n_images_in,
        "rectangle_share": float(truth[first_regions].mean()),
        "score": _estimate(first.score),
        "classes_hurt": [{"class": g.class_name, "gap": _estimate(g.gap)} for g in first.classes_hurt],
        "spurious_class_hurt": spurious_class in hurt,
        "spurious_class_gap": _estimate(gaps[list(class_names).index(spurious_class)]),
        "region_indices": sorted(int(i) for i in first_regions),
    }
    return out


def _agreement(report: dict[str, Any], discovery: dict[str, Any], first_regions: list[int] | None) -> dict:
    mine = (report["first_cluster"] or {}).get("region_indices")
    return {
        "same_precision_at_10": report["precision_at_10"] == discovery["precision_at_10"],
        "same_k": report["k"] == discovery["k"],
        "same_first_cluster_regions": None
        if mine is None or first_regions is None
        else mine == first_regions,
    }


def _save_vlm(model: Any, processor: Any, folder: Path) -> Path:
    """The VLM as a model folder (safetensors) that ``trustvl audit --model`` loads."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    processor.save_pretrained(str(folder))
    return folder


def run_setting(args: argparse.Namespace, v: float, spurious: int, work: Path) -> dict[str, Any]:
    """Steps 1-4 of one setting (see the module docstring)."""
    import torch
    from datasets import disable_progress_bars, load_dataset
    from transformers import AutoProcessor

    from trustvl.evaluation.ravl import evaluate_group_accuracy, run_discovery
    from trustvl.modeling.synthworld_clip import default_clip_path

    disable_progress_bars()
    torch.set_num_threads(args.threads)
    w_setting, c_setting = time.perf_counter(), time.process_time()
    name = f"v{v}_s{spurious}"
    data, disc_data, info = build_setting_data(args, v, spurious, work)
    disc = load_dataset(str(disc_data), split="test")
    class_names = disc.features["label"].names
    spurious_name = class_names[disc["label"][disc["digit"].index(spurious)]]

    w, c = time.perf_counter(), time.process_time()
    std = standard_finetune(args, data, work, name)
    ft_seconds, ft_cpu = time.perf_counter() - w, time.process_time() - c
    vlm = std.pop("model")
    processor = AutoProcessor.from_pretrained(str(default_clip_path()))
    ev = evaluate_group_accuracy(vlm, str(data), processor=processor, device="cpu")
    model_dir = _save_vlm(vlm, processor, work / f"vlm_{name}")
    _log(f"{name}: standard FT {ft_seconds:.0f}s, worst group {ev['worst_group_accuracy']:.3f}")

    reports: dict[str, Any] = {}
    templates = {"digit_template": DIGIT_TEMPLATE}
    if args.audit_template_too:
        templates["audit_default_template"] = AUDIT_TEMPLATE
    for tag, template in templates.items():
        w, c = time.perf_counter(), time.process_time()
        report = trust_report(
            str(model_dir),
            str(work / f"report_{name}_{tag}"),
            dataset=str(disc_data),
            split="test",
            axes=["spurious"],
            label_column="label",
            prompt_template=template,
            spurious_max_images=args.n_discovery,
            device="cpu",
            overwrite=True,
            progress=False,
        )
        scored = score_spurious_axis(
            report.model.spurious, disc["rectangle_box"], class_names, spurious_name, report.uncertainty
        )
        scored.update(
            prompt_template=template,
            seconds=round(time.perf_counter() - w, 1),
            cpu_seconds=round(time.process_time() - c, 1),
        )
        reports[tag] = scored
        fc = scored["first_cluster"] or {}
        _log(
            f"{name}: trust report ({tag}) P@10 {scored['precision_at_10']:.2f}, first cluster rectangle share"
            f" {fc.get('rectangle_share')}, hurts {[g['class'] for g in fc.get('classes_hurt', [])]}"
        )

    w, c = time.perf_counter(), time.process_time()
    disc_dir = work / f"discovery_{name}"
    result = run_discovery(
        (vlm, processor), str(disc_data), disc_dir, split="test", seed=args.seed, progress=False, device="cpu"
    )
    dsum = json.loads((disc_dir / "summary.json").read_text())
    disc_truth = rectangle_region_truth(disc, result.regions)
    silhouette = {} if result.clustering is None else result.clustering.silhouette
    discovery = {
        "precision_at_10": dsum.get("precision_at_10"),
        # the first 3 ranked clusters, and the two best k of the silhouette sweep (how near the choice was)
        "top_clusters": [
            {
                "score": round(float(c.score), 4),
                "size": int(c.size),
                "rectangle_share": round(float(disc_truth[c.region_indices].mean()), 4),
            }
            for c in result.clusters[:3]
        ],
        "silhouette_best_two": {
            str(k): round(float(silhouette[k]), 5)
            for k in sorted(silhouette, key=lambda k: -silhouette[k])[:2]
        },
        "top_cluster_rectangle_fraction": dsum.get("top_cluster_rectangle_fraction"),
        "k": dsum["k"],
        "n_kept_clusters": dsum["n_kept_clusters"],
        "image_accuracy": dsum["image_accuracy"],
        "seconds": round(time.perf_counter() - w, 1),
        "cpu_seconds": round(time.process_time() - c, 1),
    }
    first_regions = sorted(int(i) for i in result.clusters[0].region_indices) if result.clusters else None
    _log(f"{name}: run_discovery P@10 {discovery['precision_at_10']}, k {discovery['k']}")
    agreement = _agreement(reports["digit_template"], discovery, first_regions)
    for scored in reports.values():  # compared above; hundreds of indices are no reading for the JSON
        (scored["first_cluster"] or {}).pop("region_indices", None)
    return {
        "setting": name,
        "cramers_v": v,
        "spurious_class": spurious,
        "spurious_class_name": spurious_name,
        "class_names": class_names,
        "train_cramers_v_measured": info["splits"]["train"]["cramers_v"],
        "standard": {
            "overall_accuracy": ev["overall_accuracy"],
            "worst_group_accuracy": ev["worst_group_accuracy"],
            "worst_group": ev["worst_group"],
            "final_loss": std["final_loss"],
            "seconds": round(ft_seconds, 1),
            "cpu_seconds": round(ft_cpu, 1),
        },
        "trust_report": reports,
        "run_discovery": discovery,
        "agreement": agreement,
        "seconds_setting": round(time.perf_counter() - w_setting, 1),
        "cpu_seconds_setting": round(time.process_time() - c_setting, 1),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def _mean(values: list) -> float | None:
    vals = [float(x) for x in values if x is not None]
    return float(np.mean(vals)) if vals else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over the settings, how many reach the bar, how many agree with run_discovery."""
    out: dict[str, Any] = {"n_settings": len(rows), "settings": [r["setting"] for r in rows]}
    for tag in sorted({t for r in rows for t in r["trust_report"]}):
        reps = [r["trust_report"][tag] for r in rows if tag in r["trust_report"]]
        firsts = [x["first_cluster"] for x in reps if x["first_cluster"]]
        out[tag] = {
            "mean_precision_at_10": _mean([x["precision_at_10"] for x in reps]),
            "settings_precision_at_10_ge_0.8": int(sum(x["precision_at_10"] >= 0.8 for x in reps)),
            "mean_first_cluster_rectangle_share": _mean([f["rectangle_share"] for f in firsts]),
            "settings_spurious_class_hurt": int(sum(f["spurious_class_hurt"] for f in firsts)),
            "of": len(reps),
        }
    out["run_discovery_mean_precision_at_10"] = _mean([r["run_discovery"]["precision_at_10"] for r in rows])
    for key in ("same_precision_at_10", "same_k", "same_first_cluster_regions"):
        out[f"agreement_{key}"] = int(sum(bool(r["agreement"][key]) for r in rows))
    out["mean_seconds_per_setting"] = _mean([r["seconds_setting"] for r in rows])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_setting_arguments(ap)
    ap.add_argument("--quick", action="store_true", help="1 setting, tiny sizes (smoke run)")
    ap.add_argument(
        "--audit-template-too",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the report with trustvl audit's default prompt template",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs-dir", default=str(HERE / "results" / "trust_report_spurious_digits_runs"))
    ap.add_argument("--out", default=str(HERE / "results" / "trust_report_spurious_digits_cpu.json"))
    ap.add_argument("--fresh", action="store_true", help="recompute settings whose file exists")
    ap.add_argument("--report-only", action="store_true", help="aggregate the files in --runs-dir")
    args = ap.parse_args(argv)
    if args.quick:
        args.cramers_v, args.spurious_classes, args.classes = [0.95], [3], [1, 3, 7]
        args.n_train, args.n_test, args.n_discovery, args.steps = 128, 48, 48, 4

    runs = Path(args.runs_dir)
    if not args.report_only:
        for s in args.spurious_classes:
            for v in args.cramers_v:
                path = runs / f"v{v}_s{s}.json"
                if path.exists() and not args.fresh:
                    _log(f"v{v}_s{s}: done ({path})")
                    continue
                work = Path(tempfile.mkdtemp(prefix="trust_digits_"))
                try:
                    row = run_setting(args, v, s, work)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                row["config"] = {
                    k: val
                    for k, val in vars(args).items()
                    if k not in ("out", "runs_dir", "fresh", "report_only")
                }
                _write_json(path, row)
    rows = [json.loads(p.read_text()) for p in sorted(runs.glob("v*_s*.json"))]
    rows.sort(key=lambda r: (r["spurious_class"], r["cramers_v"]))
    import torch

    report = {
        "benchmark": "trust_report_spurious_digits",
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "summary": summarise(rows),
        "settings": rows,
    }
    _write_json(Path(args.out), report)
    print(json.dumps(report["summary"], indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
