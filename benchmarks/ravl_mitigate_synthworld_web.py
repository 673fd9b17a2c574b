"""A RaVL-mitigated default CLIP, made the way a user would (issue 25, item 4; docs/trust_report.md).

The embedded default CLIP (SynthWorld-Web v4) learned a watermark (bottom-right, 30 % of the side) that
co-occurs with "doctor" in its pretraining. This recipe:

1. renders labelled scenes of world seed ``--seed`` (another seed than the trust report's gallery, 0):
   ``--n-train`` TRAIN-split scenes of the web world (``SynthWorldConfig.web()``: the mark co-occurs with
   doctor as in pretraining; labels = occupation) and ``--n-discovery`` TEST-split scenes of the report
   gallery's world (``web(unsafe=None)``; the mark in half of the scenes, independent of the occupation;
   ``--discovery-with-unsafe``: the web world as it is);
2. fine-tunes the default CLIP on the training scenes without the region-aware terms (``finetune_clip``,
   ``L_CLIP`` alone, LoRA: the control, ``<out-dir>/standard_ft/model``), so that a compare can separate
   "RaVL helped" from "fine-tuning changed things";
3. runs RaVL discovery on the test scenes (2 x 2 grid, prompts "a photo of a {name}") of the control (RaVL's
   order: audit the model fine-tuned on the user's data) or, ``--discover-on base``, of the default CLIP;
4. fine-tunes the default CLIP with the region-aware loss and the SAME data, steps and seed (``train_ravl``, as
   ``trustvl train ravl``: LoRA, flag strategy ``--flag-clusters``, default ``top1``; ``--act-on-mark``: an
   oracle acting on the clusters that mostly hold the mark), merged plain ``CLIPModel`` in
   ``<out-dir>/ravl/model``;
5. grades the flags against the mark (share of the flagged training regions that hold the watermark's
   centre, and of the watermark regions that are flagged) and measures each model's use of the mark on
   held-out test scenes of a third world seed: the share of marked / unmarked non-doctors that zero-shot
   calls "doctor", and zero-shot top-1.

``trustvl discover`` has no prompt-template option (its prompts are the digits'), hence a script; every
step calls the function behind the CLI command. The trust report's compare of the two models then runs
``benchmarks/bench_trust_report_synthworld.py --model DEFAULT --fixed ravl=OUT/ravl/model
--fixed standard_ft=OUT/standard_ft/model``.

    # the two runs of docs/trust_report.md (13-14 minutes each on one CPU thread of the shared 2-core VM,
    # the two side by side; --n-discovery 800, the default, was 400 before session 14)
    nice -n 10 env OMP_NUM_THREADS=1 python benchmarks/ravl_mitigate_synthworld_web.py \\
        --out-dir runs/ravl-top1-800 --discover-on base --discovery-with-unsafe \\
        --results benchmarks/results/ravl_mitigate_synthworld_web_800_discovery_with_unsafe_cpu.json
    nice -n 10 env OMP_NUM_THREADS=1 python benchmarks/ravl_mitigate_synthworld_web.py \\
        --out-dir runs/ravl-mark-800 --act-on-mark \\
        --results benchmarks/results/ravl_mitigate_synthworld_web_800_act_on_mark_cpu.json
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import binomtest

from trustvl.data_builders.synthworld import SynthWorldConfig, build_synthworld_dataset
from trustvl.data_builders.synthworld.captions import occupation_prompt
from trustvl.discovery import grid_regions, precision_at_k
from trustvl.evaluation.ravl import run_discovery
from trustvl.hub.loading import load_dataset_any
from trustvl.modeling.embedding import embed_images, embed_texts, load_clip
from trustvl.modeling.synthworld_clip import default_clip_path
from trustvl.training.ravl import (
    CLIPFinetuneConfig,
    RaVLConfig,
    SpuriousMedoids,
    compute_region_weights,
    finetune_clip,
    train_ravl,
)
from trustvl.utils.io import print_json

#: the occupation prompt of the trust report and the web CLIP's zero-shot ("a photo of a doctor")
PROMPT_TEMPLATE = "a photo of a {name}"


def _holds_mark(mark_box: Any, region_box: Any) -> bool:
    """The region holds the watermark's centre (the trust-report benchmark's truth)."""
    if mark_box is None:
        return False
    cx, cy = (mark_box[0] + mark_box[2]) / 2, (mark_box[1] + mark_box[3]) / 2
    left, top, right, bottom = region_box
    return left <= cx < right and top <= cy < bottom


def _mark_cells(boxes: list[Any], side: int, grid_n: int) -> np.ndarray:
    """``[n, grid_n²]`` bool: each grid cell (row-major, as the flags) holds the watermark's centre."""
    cells = grid_regions((side, side), grid_n)
    return np.asarray([[_holds_mark(box, cell) for cell in cells] for box in boxes], dtype=bool)


def _wilson(k: int, n: int) -> dict[str, Any]:
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson") if n else None
    return {
        "n": n,
        "k": k,
        "rate": round(k / n, 4) if n else None,
        "interval": None if ci is None else [round(float(ci.low), 4), round(float(ci.high), 4)],
    }


def _paired_difference(a: np.ndarray, b: np.ndarray, seed: int = 0, n_resamples: int = 2000) -> dict:
    """Mean of ``b − a`` over the same items with a seeded percentile bootstrap 95 % interval (paired)."""
    d = b.astype(float) - a.astype(float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_resamples, len(d)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {
        "difference": round(float(d.mean()), 4),
        "interval": [round(float(low), 4), round(float(high), 4)],
    }


def mark_use(models: dict[str, str], dataset: Path, names: list[str], target: str) -> dict[str, Any]:
    """Each model's zero-shot on the held-out test scenes: top-1, and the share of non-``target`` scenes
    called ``target`` with and without the mark (the mark's pull); with each model's paired change against
    the first."""
    ds = load_dataset_any(str(dataset), split="test")
    labels = np.asarray(ds["occupation"])
    marked = np.asarray([b is not None for b in ds["spurious_box"]])
    t = names.index(target)
    other = labels != t
    prompts = [occupation_prompt(n) for n in names]
    out: dict[str, Any] = {"n_images": len(ds), "n_marked": int(marked.sum())}
    first: dict[str, np.ndarray] | None = None
    for name, path in models.items():
        model, processor = load_clip(path, device="cpu")
        images = embed_images(model, processor, ds["image"], batch_size=256, progress=False)
        preds = (images @ embed_texts(model, processor, prompts).T).argmax(1).numpy()
        called = preds == t
        hits = preds == labels
        row: dict[str, Any] = {
            "zero_shot_top1": _wilson(int(hits.sum()), len(hits)),
            "non_target_called_target_with_mark": _wilson(
                int(called[other & marked].sum()), int((other & marked).sum())
            ),
            "non_target_called_target_without_mark": _wilson(
                int(called[other & ~marked].sum()), int((other & ~marked).sum())
            ),
        }
        if first is None:
            first = {"called": called, "hits": hits}
        else:
            row["change_vs_" + next(iter(models))] = {
                "zero_shot_top1": _paired_difference(first["hits"], hits),
                "non_target_called_target_with_mark": _paired_difference(
                    first["called"][other & marked], called[other & marked]
                ),
            }
        out[name] = row
    return out


def grade_flags(
    discovery_model: str,
    dataset: Path,
    discovery: Path,
    strategy: str,
    grid_n: int,
    clusters: list[int] | None = None,
) -> dict[str, Any]:
    """The training regions the strategy flags (as ``train_ravl`` computes them) against the watermark."""
    ds = load_dataset_any(str(dataset), split="train")
    medoids = SpuriousMedoids.load(discovery)
    selection = medoids.select(strategy, clusters)
    model, processor = load_clip(discovery_model, device="cpu")
    flags = compute_region_weights(model, processor, ds["image"], medoids, selection, grid_n=grid_n) > 0
    truth = _mark_cells(ds["spurious_box"], ds[0]["image"].size[0], grid_n)
    return {
        "acted_on_clusters": [c.cluster_id for c in selection.clusters],
        "flagged_regions": int(flags.sum()),
        "watermark_regions": int(truth.sum()),
        "precision": round(float(truth[flags].mean()), 4) if flags.any() else None,
        "recall": round(float(flags[truth].mean()), 4) if truth.any() else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", required=True, help="data, discovery and the two models go here")
    ap.add_argument(
        "--base", default=str(default_clip_path()), help="the CLIP to mitigate (default: embedded)"
    )
    ap.add_argument("--seed", type=int, default=1, help="world seed of the training and discovery scenes")
    ap.add_argument("--eval-seed", type=int, default=2, help="world seed of the held-out mark-use scenes")
    ap.add_argument("--n-train", type=int, default=2000)
    # 800, as the trust report's RaVL default: on 400 test scenes of seed 1 discovery ranked a cluster
    # without the watermark first (P@10 0.0, with the default CLIP and with the control); on 800 it ranks
    # the mark's cluster first with either (P@10 1.0; docs/trust_report.md, "Compare with RaVL")
    ap.add_argument(
        "--n-discovery",
        type=int,
        default=800,
        help="TEST-split scenes RaVL discovery runs on (800: the trust report's default)",
    )
    ap.add_argument("--n-eval", type=int, default=800)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument(
        "--lr", type=float, default=1e-3, help="LoRA learning rate (trustvl train ravl's default)"
    )
    ap.add_argument(
        "--discovery-with-unsafe",
        action="store_true",
        help="discovery scenes from the web world as it is (15 %% with an unsafe element), not the report's",
    )
    ap.add_argument(
        "--discover-on",
        choices=("standard_ft", "base"),
        default="standard_ft",
        help="the model discovery audits (and whose region embeddings the flags use): the control fine-tuned"
        " on the training scenes (RaVL's setting: a fine-tuned VLM), or the default CLIP itself",
    )
    ap.add_argument("--flag-clusters", default="top1")
    ap.add_argument(
        "--act-on-mark",
        action="store_true",
        help="oracle: act on the discovery clusters whose regions mostly hold the watermark (ground truth no"
        " user has; separates mitigation from discovery's ranking), instead of --flag-clusters",
    )
    ap.add_argument("--grid-n", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--results", default=None, help="write the JSON here too")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out_dir)
    times: dict[str, float] = {}
    t0 = time.perf_counter()

    world = SynthWorldConfig.web()
    names = list(world.occupations)
    data = build_synthworld_dataset(
        out / "data", world, n_train=args.n_train, n_test=0, seed=args.seed, progress=False, num_proc=1
    )
    # the discovery scenes: the test split of the trust report's gallery world (no unsafe element) unless
    # --discovery-with-unsafe (the web world as it is), same world seed as the training scenes
    discovery_world = world if args.discovery_with_unsafe else SynthWorldConfig.web(unsafe=None)
    discovery_data = build_synthworld_dataset(
        out / "discovery_data",
        discovery_world,
        n_train=0,
        n_test=args.n_discovery,
        seed=args.seed,
        progress=False,
        num_proc=1,
    )
    held_out = build_synthworld_dataset(
        out / "eval",
        SynthWorldConfig.web(unsafe=None),
        n_train=0,
        n_test=args.n_eval,
        seed=args.eval_seed,
        progress=False,
        num_proc=1,
    )
    times["render"] = time.perf_counter() - t0

    common: dict[str, Any] = dict(
        base_model=args.base,
        dataset=str(data),
        split="train",
        label_column="occupation",
        caption_column=None,  # the class prompt of each label: the labelled set a user has
        class_names=names,
        prompt_template=PROMPT_TEMPLATE,
        use_lora=True,
        learning_rate=args.lr,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        seed=0,
        save_strategy="no",
        disable_tqdm=True,
        report_to="none",
        use_cpu=True,
    )
    t = time.perf_counter()
    control = finetune_clip(CLIPFinetuneConfig(output_dir=str(out / "standard_ft"), **common))
    control.pop("model", None)
    times["standard_ft"] = time.perf_counter() - t

    t = time.perf_counter()
    # the paper's order: discovery audits the model fine-tuned on the user's data (the control), unless
    # --discover-on base (the default CLIP itself)
    discovery_model = str(out / "standard_ft" / "model") if args.discover_on == "standard_ft" else args.base
    result = run_discovery(
        discovery_model,
        str(discovery_data),
        out / "discovery",
        split="test",
        grid_n=args.grid_n,
        prompt_template=PROMPT_TEMPLATE,
        class_names=names,
        label_column="occupation",
        device="cpu",
        progress=False,
    )
    test_boxes = load_dataset_any(str(discovery_data), split="test")["spurious_box"]
    truth = np.asarray([_holds_mark(test_boxes[r.image_index], r.box) for r in result.regions])
    first = result.clusters[0] if result.clusters else None
    discovery = {
        "model": args.discover_on,
        "message": result.message,
        "kept_clusters": len(result.clusters),
        "k": result.k,
        "image_accuracy": round(float(result.image_accuracy), 4),
        "first_cluster": None
        if first is None
        else {
            "id": int(first.cluster_id),
            "size": int(first.size),
            "score": round(float(first.score), 4),
            "watermark_share": round(float(truth[first.region_indices].mean()), 4),
        },
        "precision@10": precision_at_k(result, truth, 10),
    }
    # oracle (--act-on-mark): the clusters most of whose regions hold the mark, kept or not, all acted on --
    # what mitigation does when it acts on the mark, apart from whether discovery ranks the mark first
    mark_clusters = [int(c.cluster_id) for c in result.all_clusters if truth[c.region_indices].mean() >= 0.5]
    discovery["mark_clusters"] = [
        {
            "id": int(c.cluster_id),
            "rank": next((r for r, k in enumerate(result.clusters) if k.cluster_id == c.cluster_id), None),
            "kept": bool(c.kept),
            "size": int(c.size),
            "score": round(float(c.score), 4),
            "watermark_share": round(float(truth[c.region_indices].mean()), 4),
        }
        for c in result.all_clusters
        if int(c.cluster_id) in mark_clusters
    ]
    strategy, clusters = ("all_kept", mark_clusters) if args.act_on_mark else (args.flag_clusters, None)
    times["discovery"] = time.perf_counter() - t

    t = time.perf_counter()
    ravl = train_ravl(
        RaVLConfig(
            output_dir=str(out / "ravl"),
            discovery=str(out / "discovery"),
            flag_clusters=strategy,
            clusters=clusters,
            grid_n=args.grid_n,
            **common,
        )
    )
    times["ravl"] = time.perf_counter() - t
    t = time.perf_counter()
    flags = grade_flags(discovery_model, data, out / "discovery", strategy, args.grid_n, clusters)
    use = mark_use(
        {
            "default": args.base,
            "standard_ft": str(out / "standard_ft" / "model"),
            "ravl": str(out / "ravl" / "model"),
        },
        held_out,
        names,
        world.spurious.target,
    )
    times["grade"] = time.perf_counter() - t
    keep = (
        "final_loss",
        "train_seconds",
        "spurious_region_fraction",
        "images_with_spurious_region",
        "region_terms",
    )
    print_json(
        {
            "benchmark": "ravl_mitigate_synthworld_web",
            "base": args.base,
            "device_name": platform.processor() or platform.machine(),
            "threads": args.threads,
            "settings": {k: v for k, v in vars(args).items() if k not in ("results",)},
            "models": {
                "ravl": str(out / "ravl" / "model"),
                "standard_ft": str(out / "standard_ft" / "model"),
            },
            "discovery": discovery,
            "flags": flags,
            "ravl_train": {k: ravl.get(k) for k in keep},
            "standard_ft_train": {k: control.get(k) for k in keep},
            "mark_use": use,
            "seconds": {k: round(v, 1) for k, v in times.items()},
            "total_seconds": round(time.perf_counter() - t0, 1),
        },
        args.results,
    )


if __name__ == "__main__":
    main()
