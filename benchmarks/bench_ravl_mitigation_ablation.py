"""RaVL mitigation ablation (issue 27): which discovered clusters mitigation acts on (``flag_clusters``).

The spurious-digits benchmark's 10 settings (Cramér's V in 0.7, 0.8, 0.9, 0.95, 0.99 x spurious class 3, 7;
digits 1, 3, 7, 8; :mod:`bench_ravl_spurious_digits`) x seeds (default 0, 1, 2) x flag strategies
(:mod:`trustvl.training.ravl.flag_strategies`: ``top1``, ``top_per_class``, ``all_kept``, ``score_weighted``,
``gap_test``, ``gap_test_or_top1``, ``gap_test_two_sided``, ``top1_similar``) x, optionally, the loss variants
(``--loss-variants``; default the loss's defaults only).

Per (setting, seed) — one *task* — the data build, the standard fine-tuning (the spuriously correlated VLM and
the comparison's baseline), discovery on a held-out balanced split and the embedding of the training regions
are done once; then each strategy selects clusters, flags the training regions by nearest medoid and runs
one mitigation fine-tune from the same start (the SynthWorld CLIP) with the same data, steps and seed.
Fine-tunes are cached on :func:`flag_key` — the acted-on cluster set (ids and weights), the loss variant and
the seed: within a task everything else is fixed and training is deterministic given the seed, so a strategy
that flags the same clusters as an earlier run of the task (this call's or a result file's, any strategy)
reuses it (``"reused_from"``; its ``seconds`` are those of the run it reuses) instead of training again.
When a strategy selects no cluster, ``trustvl train ravl`` refuses to train (with ``--allow_empty`` it trains
standard fine-tuning): the user keeps the standard fine-tuned model, which is what the row records
(``"no_selection": true``).

Tasks run as parallel single-thread processes (``--jobs``). Each finished (setting, seed, strategy, loss) is a
JSON file in ``--out-dir`` and is never recomputed (``--fresh`` to redo), so an interrupted run resumes; a
task's shared work (data, discovery, region embeddings; under ``<out-dir>/work``) is kept until its last
strategy is done. ``--report-only`` re-aggregates the files.

Report per strategy (and loss variant), over all (setting, seed) runs: worst-group and overall test accuracy
(groups = class x rectangle present, balanced test split) with **seed-level 95 % intervals** (the mean over
settings per seed, then mean ± t(0.975, n_seeds − 1)·SD/√n_seeds over the seeds), the gain over standard
fine-tuning (same construction), the settings whose worst-group or overall accuracy ends below standard
fine-tuning beyond noise (per setting, the t interval over seeds of the paired difference lies below 0),
flag precision/recall against the planted rectangle (training regions), and seconds. The issue's goals are
checked per row: mean worst-group gain >= +60 points, no setting worse beyond noise, mean flag precision
>= 0.8 at recall >= 0.9. Writes one JSON (``--out``) and its markdown table (``--markdown``).

    python benchmarks/bench_ravl_mitigation_ablation.py --jobs 16             # 10 settings x 3 seeds
    python benchmarks/bench_ravl_mitigation_ablation.py --quick --jobs 2      # smoke: 2 settings, 1 seed, tiny
    python benchmarks/bench_ravl_mitigation_ablation.py --report-only         # aggregate what is there

``--discovery-only`` trains no mitigation: per task it runs the shared work (data, standard fine-tuning,
discovery, region embeddings) and writes ``<out-dir>/<task>/clusters.json`` (:func:`cluster_facts`), from which
``benchmarks/ravl_flag_rules_offline.py`` grades flag rules' precision/recall without any fine-tune.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling benchmark whose settings this ablation shares
from bench_ravl_spurious_digits import add_setting_arguments  # noqa: E402

from trustvl.training.ravl.flag_strategies import FLAG_STRATEGIES  # noqa: E402

STRATEGIES = FLAG_STRATEGIES
#: the loss variants already implemented (RaVLLoss): name -> RaVLConfig fields
LOSS_VARIANTS = {
    "ravl": {},  # the defaults: masked-image alignment, uniform + counterfactual L_uninf
    "ravl_crops": {"align_input": "regions", "uninf_mode": "uniform"},
    "ravl_uniform": {"uninf_mode": "uniform"},
    "ravl_counterfactual": {"uninf_mode": "counterfactual"},
}
GOAL_GAIN_POINTS, GOAL_PRECISION, GOAL_RECALL = 60.0, 0.8, 0.9
CLUSTER_FACTS_FILE = "clusters.json"


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _write_json(path: Path, obj: dict) -> None:
    """Atomic: a file that exists is complete (what resuming relies on)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def task_name(v: float, spurious: int, seed: int) -> str:
    return f"v{v}_s{spurious}_seed{seed}"


def result_path(out_dir: Path, task: str, strategy: str, variant: str) -> Path:
    return out_dir / task / f"{strategy}__{variant}.json"


def flag_key(acted_on_clusters: list[dict], variant: str, seed: int) -> str:
    """The cache key of one mitigation fine-tune inside a task: the acted-on cluster set (ids and weights),
    the loss variant and the seed. Within a task the data, discovery, medoids and region embeddings are fixed
    and training is deterministic given the seed, so two runs with one key give the same model."""
    ids = sorted((int(c["cluster_id"]), round(float(c.get("weight", 1.0)), 6)) for c in acted_on_clusters)
    return f"seed={seed}|loss={variant}|clusters=" + ",".join(f"{i}:{w:g}" for i, w in ids)


def trained_runs(task_dir: Path) -> dict[str, dict]:
    """``flag_key -> result row`` of the runs a task already has, whatever their strategy (older files
    without a stored key get it from their acted-on clusters); a key maps to the run that trained it."""
    runs: dict[str, dict] = {}
    for path in sorted(task_dir.glob("*__*.json")):
        row = json.loads(path.read_text())
        key = row.get("flag_key") or flag_key(row["acted_on_clusters"], row["loss_variant"], row["seed"])
        if key not in runs or (runs[key].get("reused_from") and not row.get("reused_from")):
            runs[key] = row
    return runs


def reuse_row(row: dict, prev: dict) -> dict:
    """``row`` completed with the results of ``prev``, an earlier run with the same :func:`flag_key`."""
    row.update({k: prev[k] for k in ("mitigated", "no_selection", "seconds", "cpu_seconds")})
    row["reused_from"] = prev.get("reused_from") or prev["strategy"]
    return row


# ----------------------------------------------------------------------------------------------- one task
def _group_eval(model, data, processor, device) -> dict:
    from trustvl.evaluation.ravl import evaluate_group_accuracy

    ev = evaluate_group_accuracy(model, str(data), processor=processor, device=device)
    return {k: ev[k] for k in ("overall_accuracy", "worst_group_accuracy", "worst_group", "per_group")}


def _base(args, v: float, spurious: int, seed: int, work: Path, base_file: Path) -> dict:
    """Build, standard fine-tuning, discovery, training-region embeddings; writes ``base.json`` and the
    files the strategies need (``work/``)."""
    import torch
    from datasets import load_dataset
    from transformers import AutoProcessor

    from trustvl.data_builders.ravl.spurious_digits import build_spurious_digits, rectangle_region_truth
    from trustvl.evaluation.ravl import run_discovery
    from trustvl.modeling.synthworld_clip import default_clip_path
    from trustvl.training.ravl import CLIPFinetuneConfig, embed_region_grid, finetune_clip

    w0, t0 = time.perf_counter(), time.process_time()
    base = str(default_clip_path())
    data = build_spurious_digits(
        work / "data",
        cramers_v=v,
        spurious_class=spurious,
        classes=args.classes,
        n_train=args.n_train,
        n_test=args.n_test,
        seed=seed,
        overwrite=True,
        progress=False,
    )
    disc_data = build_spurious_digits(
        work / "disc_data",
        cramers_v=v,
        spurious_class=spurious,
        classes=args.classes,
        n_train=8 * len(args.classes),
        n_test=args.n_discovery,
        seed=seed + 1000,
        overwrite=True,
        progress=False,
    )
    info = json.loads((Path(data) / "build_info.json").read_text())
    w, c = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    std = finetune_clip(
        CLIPFinetuneConfig(
            base_model=base,
            dataset=str(data),
            output_dir=str(work / "std"),
            save_model=False,
            disable_tqdm=True,
            logging_steps=max(args.steps // 5, 1),
            **_train_kwargs(args, seed),
        )
    )
    std_seconds, std_cpu = time.perf_counter() - w, time.process_time() - c
    vlm = std.pop("model")
    processor = AutoProcessor.from_pretrained(base)
    ev_std = _group_eval(vlm, data, processor, args.device)

    w = time.perf_counter()
    disc_dir = work / "discovery"
    result = run_discovery(
        (vlm, processor),
        str(disc_data),
        disc_dir,
        split="test",
        seed=seed,
        progress=False,
        device=args.device,
    )
    disc_seconds = time.perf_counter() - w
    dsum = json.loads((disc_dir / "summary.json").read_text())
    disc_ds = load_dataset(str(disc_data), split="test")
    disc_truth = rectangle_region_truth(disc_ds, result.regions)

    train = load_dataset(str(data), split="train")
    emb = embed_region_grid(vlm, processor, list(train["image"]), grid_n=2)
    np.save(work / "train_region_embeds.npy", emb)
    np.save(work / "train_region_truth.npy", rectangle_region_truth(train).reshape(len(train), 4))
    row = {
        "task": task_name(v, spurious, seed),
        "setting": f"v{v}_s{spurious}",
        "cramers_v": v,
        "spurious_class": spurious,
        "seed": seed,
        "train_cramers_v_measured": info["splits"]["train"]["cramers_v"],
        "standard": {
            **ev_std,
            "final_loss": std["final_loss"],
            "seconds": round(std_seconds, 1),
            "cpu_seconds": round(std_cpu, 1),
        },
        "discovery": {
            "precision_at_10": dsum.get("precision_at_10"),
            "k": dsum["k"],
            "n_kept_clusters": dsum["n_kept_clusters"],
            "kept_clusters": [
                {
                    "cluster_id": int(c.cluster_id),
                    "rank": r,
                    "score": round(float(c.score), 4),
                    "influence": round(float(c.influence), 4),
                    "size": int(c.size),
                    "rectangle_fraction": round(float(disc_truth[c.region_indices].mean()), 4),
                }
                for r, c in enumerate(result.clusters)
            ],
            "seconds": round(disc_seconds, 1),
        },
        "base_seconds": round(time.perf_counter() - w0, 1),
        "base_cpu_seconds": round(time.process_time() - t0, 1),
    }
    _write_json(base_file, row)
    return row


def _train_kwargs(args, seed: int) -> dict:
    kw = dict(
        learning_rate=args.lr,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        warmup_steps=args.warmup,
        seed=seed,
        use_lora=args.lora,
    )
    if args.device == "cpu":
        kw["use_cpu"] = True
    return kw


def cluster_facts(task: str, medoids, emb: np.ndarray, truth: np.ndarray) -> dict:
    """Per discovery cluster, what a flag rule reads and what grades it, so that any rule's flag precision and
    recall on the training regions can be computed offline (no fine-tune): discovery's statistics (score, rank,
    per-class gap, sides, influence), the cosine similarity of the medoids, and how many training regions go
    to the cluster by nearest medoid (``n_regions``) and how many of those hold the planted rectangle
    (``n_rectangle``; the ground truth, only for grading)."""
    n_rect = int(truth.sum())
    if medoids is None:
        return {"task": task, "n_regions": int(truth.size), "n_rectangle": n_rect, "clusters": []}
    assigned = medoids.assign(emb)
    flat = truth.reshape(-1)
    st = medoids.statistics
    clusters = []
    for j in range(medoids.k):
        row = {
            "cluster_id": j,
            "kept": bool(medoids.kept[j]),
            "rank": int(medoids.rank[j]),
            "n_regions": int((assigned == j).sum()),
            "n_rectangle": int(flat[assigned == j].sum()),
        }
        if st is not None:
            row["score"] = float(st.score[j])
            for name in ("gap", "n_in", "n_out", "acc_in", "acc_out", "influence_per_class"):
                row[name] = [
                    None if not np.isfinite(x) else float(x) for x in np.asarray(getattr(st, name)[j], float)
                ]
        clusters.append(row)
    return {
        "task": task,
        "n_regions": int(truth.size),
        "n_rectangle": n_rect,
        "min_influence": None if st is None else st.min_influence,
        "medoid_cosine": np.round(medoids.medoid_embeds @ medoids.medoid_embeds.T, 5).tolist(),
        "clusters": clusters,
    }


def _flag_stats(weights: np.ndarray, truth: np.ndarray) -> dict:
    flags = weights > 0
    return {
        "region_fraction": float(flags.mean()),
        "images_with_flag": float(flags.any(axis=1).mean()),
        "precision": float(truth[flags].mean()) if flags.any() else None,
        "recall": float(flags[truth].mean()) if truth.any() else None,
    }


def run_task(args, v: float, spurious: int, seed: int) -> None:
    """Every missing (strategy, loss variant) result of one (setting, seed)."""
    import torch
    from datasets import disable_progress_bars
    from transformers import AutoProcessor

    from trustvl.modeling.synthworld_clip import default_clip_path
    from trustvl.training.ravl import MEDOIDS_FILE, FlagSelection, RaVLConfig, SpuriousMedoids, train_ravl

    disable_progress_bars()
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out_dir)
    task = task_name(v, spurious, seed)
    work = out_dir / "work" / task
    base_file = out_dir / task / "base.json"
    todo = [
        (s, var)
        for var in args.loss_variants
        for s in args.strategies
        if args.fresh or not result_path(out_dir, task, s, var).exists()
    ]
    if args.discovery_only:
        todo = [] if (out_dir / task / CLUSTER_FACTS_FILE).exists() and not args.fresh else [("facts", "")]
    if not todo and base_file.exists():
        _log(f"{task}: done")
        return
    have_work = (work / "train_region_embeds.npy").exists() and (work / "discovery").is_dir()
    if args.fresh or not base_file.exists() or not have_work:
        base = _base(args, v, spurious, seed, work, base_file)
    else:
        base = json.loads(base_file.read_text())
    _log(
        f"{task}: standard worst {base['standard']['worst_group_accuracy']:.3f}"
        f" overall {base['standard']['overall_accuracy']:.3f}; {base['discovery']['n_kept_clusters']} kept"
    )
    # no medoids file: discovery found nothing to cluster (every image right); no strategy has a cluster
    have_medoids = (work / "discovery" / MEDOIDS_FILE).is_file()
    medoids = SpuriousMedoids.load(work / "discovery") if have_medoids else None
    emb = np.load(work / "train_region_embeds.npy")
    truth = np.load(work / "train_region_truth.npy")
    if args.discovery_only:  # no mitigation fine-tune: what an offline flag rule needs, then the work goes
        _write_json(out_dir / task / CLUSTER_FACTS_FILE, cluster_facts(task, medoids, emb, truth))
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
        return
    data = work / "data"
    processor = AutoProcessor.from_pretrained(str(default_clip_path()))
    # flag_key -> the run that trained it: every strategy's earlier runs of this task, then this call's
    seen = {} if args.fresh else trained_runs(out_dir / task)
    for strategy, variant in [(s, var) for var in args.loss_variants for s in args.strategies]:
        path = result_path(out_dir, task, strategy, variant)
        if path.exists() and not args.fresh:
            continue
        if medoids is None:
            selection = FlagSelection(strategy, np.zeros(0), [])
            weights = np.zeros(truth.shape, dtype=np.float32)
        else:
            selection = medoids.select(strategy, allow_empty=True)
            weights = medoids.region_weights(emb, selection).reshape(truth.shape)
        acted_on = [c.to_dict() for c in selection.clusters]
        key = flag_key(acted_on, variant, seed)
        row = {
            "task": task,
            "setting": base["setting"],
            "seed": seed,
            "strategy": strategy,
            "loss_variant": variant,
            "acted_on_clusters": acted_on,
            "flag_key": key,
            "flags": _flag_stats(weights, truth),
        }
        if key in seen:
            reuse_row(row, seen[key])
        elif not selection.clusters:
            row.update(mitigated=None, no_selection=True, seconds=0.0, cpu_seconds=0.0)
        else:
            w, c = time.perf_counter(), time.process_time()
            cfg = RaVLConfig(
                base_model=str(default_clip_path()),
                dataset=str(data),
                discovery=str(work / "discovery"),
                output_dir=str(work / f"run_{strategy}_{variant}"),
                flag_clusters=strategy,
                lambda_align=args.lambda_align,
                lambda_uninf=args.lambda_uninf,
                save_strategy="no",
                save_model=False,
                disable_tqdm=True,
                logging_steps=max(args.steps // 5, 1),
                **LOSS_VARIANTS[variant],
                **_train_kwargs(args, seed),
            )
            torch.manual_seed(seed)
            flags = weights if selection.weighted else weights > 0
            summary = train_ravl(cfg, region_flags=flags, flag_selection=selection, return_model=True)
            ev = _group_eval(summary.pop("model"), data, processor, args.device)
            row.update(
                mitigated={**ev, "final_loss": summary["final_loss"]},
                no_selection=False,
                seconds=round(time.perf_counter() - w, 1),
                cpu_seconds=round(time.process_time() - c, 1),
            )
            shutil.rmtree(work / f"run_{strategy}_{variant}", ignore_errors=True)
        acc = row["mitigated"] or base["standard"]
        row["worst_group_gain_points"] = 100.0 * (
            acc["worst_group_accuracy"] - base["standard"]["worst_group_accuracy"]
        )
        row["overall_gain_points"] = 100.0 * (acc["overall_accuracy"] - base["standard"]["overall_accuracy"])
        _write_json(path, row)
        seen.setdefault(key, row)
        _log(
            f"{task}: {strategy}/{variant} clusters {[c['cluster_id'] for c in row['acted_on_clusters']]}"
            f" worst {acc['worst_group_accuracy']:.3f} overall {acc['overall_accuracy']:.3f}"
            f" flag P {row['flags']['precision']} R {row['flags']['recall']}"
            f"{' (reused ' + row['reused_from'] + ')' if 'reused_from' in row else ''}"
        )
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------------------ aggregation
#: t(0.975, df) for the seed-level intervals (df = seeds - 1)
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def seed_interval(values: list[float]) -> dict:
    """Mean over seeds and its 95 % t interval (``None`` bounds with a single seed)."""
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if x.size == 0:
        return {"mean": None, "low": None, "high": None, "n_seeds": 0}
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "low": None, "high": None, "n_seeds": 1}
    half = _T975.get(x.size - 1, 1.96) * float(x.std(ddof=1)) / np.sqrt(x.size)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n_seeds": int(x.size)}


def _per_seed_means(runs: list[dict], get) -> list[float | None]:
    """For each seed, the mean over settings of ``get(run)`` (runs where it is None left out)."""
    out = []
    for seed in sorted({r["seed"] for r in runs}):
        vals = [get(r) for r in runs if r["seed"] == seed]
        vals = [v for v in vals if v is not None]
        out.append(float(np.mean(vals)) if vals else None)
    return out


def summarise(bases: dict[str, dict], results: list[dict]) -> dict:
    base_rows = list(bases.values())
    std = {
        "worst_group_accuracy": seed_interval(
            _per_seed_means(base_rows, lambda r: r["standard"]["worst_group_accuracy"])
        ),
        "overall_accuracy": seed_interval(
            _per_seed_means(base_rows, lambda r: r["standard"]["overall_accuracy"])
        ),
        "mean_seconds": float(np.mean([r["standard"]["seconds"] for r in base_rows])) if base_rows else None,
        "mean_cpu_seconds": float(np.mean([r["standard"]["cpu_seconds"] for r in base_rows]))
        if base_rows
        else None,
        "mean_task_base_cpu_seconds": float(np.mean([r["base_cpu_seconds"] for r in base_rows]))
        if base_rows
        else None,
        "mean_discovery_seconds": float(np.mean([r["discovery"]["seconds"] for r in base_rows]))
        if base_rows
        else None,
        "mean_kept_clusters": float(np.mean([r["discovery"]["n_kept_clusters"] for r in base_rows]))
        if base_rows
        else None,
    }
    rows = []
    for key in sorted(
        {(r["strategy"], r["loss_variant"]) for r in results}, key=lambda k: (k[1], STRATEGIES.index(k[0]))
    ):
        runs = [r for r in results if (r["strategy"], r["loss_variant"]) == key]

        def acc(r, name):
            return (r["mitigated"] or bases[r["task"]]["standard"])[name]

        worse = []
        per_setting = {}
        for setting in sorted({r["setting"] for r in runs}):
            sr = [r for r in runs if r["setting"] == setting]
            wg = seed_interval([r["worst_group_gain_points"] for r in sr])
            og = seed_interval([r["overall_gain_points"] for r in sr])
            per_setting[setting] = {"worst_group_gain_points": wg, "overall_gain_points": og}
            if (wg["high"] is not None and wg["high"] < 0) or (og["high"] is not None and og["high"] < 0):
                worse.append(setting)
        fresh = [r for r in runs if not r.get("reused_from") and not r["no_selection"]]
        precision = seed_interval(_per_seed_means(runs, lambda r: r["flags"]["precision"]))
        recall = seed_interval(_per_seed_means(runs, lambda r: r["flags"]["recall"]))
        gain = seed_interval(_per_seed_means(runs, lambda r: r["worst_group_gain_points"]))
        decided = all(v["worst_group_gain_points"]["n_seeds"] >= 2 for v in per_setting.values())
        rows.append(
            {
                "strategy": key[0],
                "loss_variant": key[1],
                "n_runs": len(runs),
                "n_settings": len(per_setting),
                "n_seeds": len({r["seed"] for r in runs}),
                "worst_group_accuracy": seed_interval(
                    _per_seed_means(runs, lambda r: acc(r, "worst_group_accuracy"))
                ),
                "overall_accuracy": seed_interval(
                    _per_seed_means(runs, lambda r: acc(r, "overall_accuracy"))
                ),
                "worst_group_gain_points": gain,
                "overall_gain_points": seed_interval(
                    _per_seed_means(runs, lambda r: r["overall_gain_points"])
                ),
                "settings_worse_beyond_noise": worse if decided else None,
                "settings_with_negative_mean_gain": sorted(
                    s
                    for s, v in per_setting.items()
                    if v["worst_group_gain_points"]["mean"] < 0 or v["overall_gain_points"]["mean"] < 0
                ),
                "flag_precision": precision,
                "flag_recall": recall,
                "mean_clusters_acted_on": float(np.mean([len(r["acted_on_clusters"]) for r in runs])),
                "runs_without_selection": int(sum(r["no_selection"] for r in runs)),
                "runs_reusing_identical_flags": int(sum(bool(r.get("reused_from")) for r in runs)),
                "mean_seconds_per_finetune": float(np.mean([r["seconds"] for r in fresh])) if fresh else None,
                "mean_cpu_seconds_per_finetune": float(np.mean([r["cpu_seconds"] for r in fresh]))
                if fresh
                else None,
                "seconds_total": round(float(sum(r["seconds"] for r in fresh)), 1),
                "per_setting": per_setting,
                "goals": {
                    "worst_group_gain_60": None if gain["mean"] is None else gain["mean"] >= GOAL_GAIN_POINTS,
                    "no_setting_worse_beyond_noise": (not worse) if decided else None,
                    "precision_0.8_at_recall_0.9": None
                    if precision["mean"] is None or recall["mean"] is None
                    else precision["mean"] >= GOAL_PRECISION and recall["mean"] >= GOAL_RECALL,
                },
            }
        )
    return {"standard_finetuning": std, "strategies": rows}


def _fmt(iv: dict, scale: float = 1.0, digits: int = 3) -> str:
    if iv["mean"] is None:
        return "n/a"
    text = f"{iv['mean'] * scale:.{digits}f}"
    if iv["low"] is not None:
        text += f" [{iv['low'] * scale:.{digits}f}, {iv['high'] * scale:.{digits}f}]"
    return text


def markdown(report: dict) -> str:
    """The ablation as markdown tables (what docs/ shows)."""
    s = report["summary"]
    std = s["standard_finetuning"]
    cfg = report["config"]
    lines = [
        "# RaVL mitigation ablation: which clusters to act on (`flag_clusters`)",
        "",
        f"{len(report['tasks'])} (setting, seed) tasks: Cramér's V {cfg['cramers_v']} x spurious class"
        f" {cfg['spurious_classes']}, seeds {cfg['seeds']}; digits {cfg['classes']}, {cfg['n_train']} training"
        f" images, {cfg['steps']} steps x {cfg['batch_size']}, lr {cfg['lr']}, {'LoRA' if cfg['lora'] else 'full'}"
        f" fine-tuning; device {cfg['device']}. Intervals: seed-level 95 % t intervals (mean over settings per"
        " seed). Command: `" + report["command"] + "`.",
        "",
        f"Standard fine-tuning: worst-group {_fmt(std['worst_group_accuracy'])}, overall"
        f" {_fmt(std['overall_accuracy'])}; discovery kept {std['mean_kept_clusters']:.1f} clusters on average.",
        "",
        "| flag_clusters | loss | worst-group acc | overall acc | worst-group gain (points) | overall gain"
        " (points) | settings worse beyond noise | flag precision | flag recall | clusters acted on |"
        " s (CPU s) / fine-tune | goals (gain ≥ 60, none worse, P ≥ 0.8 at R ≥ 0.9) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in s["strategies"]:
        worse = r["settings_worse_beyond_noise"]
        goals = r["goals"]
        secs = (
            "n/a"
            if r["mean_seconds_per_finetune"] is None
            else f"{r['mean_seconds_per_finetune']:.0f} ({r['mean_cpu_seconds_per_finetune']:.0f})"
        )
        lines.append(
            f"| `{r['strategy']}` | {r['loss_variant']} | {_fmt(r['worst_group_accuracy'])} |"
            f" {_fmt(r['overall_accuracy'])} | {_fmt(r['worst_group_gain_points'], digits=1)} |"
            f" {_fmt(r['overall_gain_points'], digits=1)} |"
            f" {'n/a (1 seed)' if worse is None else (', '.join(worse) or 'none')} |"
            f" {_fmt(r['flag_precision'], digits=2)} | {_fmt(r['flag_recall'], digits=2)} |"
            f" {r['mean_clusters_acted_on']:.1f} |"
            f" {secs} |"
            f" {' / '.join('n/a' if v is None else ('yes' if v else 'no') for v in goals.values())} |"
        )
    n_runs = sum(r["n_runs"] for r in s["strategies"])
    n_reused = sum(r["runs_reusing_identical_flags"] for r in s["strategies"])
    n_empty = sum(r["runs_without_selection"] for r in s["strategies"])
    lines += [
        "",
        f"Notes: fine-tunes are cached on (flagged cluster set with weights, loss, seed): within a task the data,"
        " discovery and region flags are fixed and training is deterministic given the seed, so a strategy that"
        f" flags the same clusters as another reuses its run (`reused_from` in the run files): {n_reused} of"
        f" {n_runs} runs here; the per-fine-tune seconds count each fine-tune once. {n_empty} runs selected no"
        " cluster and keep the standard fine-tuned model (a run with no region flagged is standard fine-tuning).",
    ]
    settings = sorted({k for r in s["strategies"] for k in r["per_setting"]})
    for name, title in (("worst_group_gain_points", "worst-group"), ("overall_gain_points", "overall")):
        lines += [
            "",
            f"Mean {title} gain (points) per setting, over seeds:",
            "",
            "| setting | "
            + " | ".join(f"`{r['strategy']}` ({r['loss_variant']})" for r in s["strategies"])
            + " |",
            "| --- |" + " --- |" * len(s["strategies"]),
        ]
        for setting in settings:
            cells = []
            for r in s["strategies"]:
                v = r["per_setting"].get(setting)
                cells.append("" if v is None else _fmt(v[name], digits=1))
            lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def collect(out_dir: Path) -> tuple[dict[str, dict], list[dict]]:
    bases, results = {}, []
    for path in sorted(out_dir.glob("*/base.json")):
        row = json.loads(path.read_text())
        bases[row["task"]] = row
    for path in sorted(out_dir.glob("*/*__*.json")):
        row = json.loads(path.read_text())
        if row["task"] in bases:
            results.append(row)
    return bases, results


# ------------------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 settings, 1 seed, tiny sizes (smoke run)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument(
        "--loss-variants",
        nargs="+",
        default=["ravl"],
        choices=sorted(LOSS_VARIANTS),
        help="loss variants (axis); ravl = the loss's defaults, ravl_crops about 5x the cost",
    )
    add_setting_arguments(ap)
    ap.add_argument("--device", default="cpu", help="cpu (default: each job single-threaded) or cuda")
    ap.add_argument("--jobs", type=int, default=1, help="tasks run in parallel, one process each")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per job")
    ap.add_argument("--out-dir", default=None, help="per-run result files (resumable); default next to --out")
    ap.add_argument("--out", default=None, help="the report JSON")
    ap.add_argument("--markdown", default=None, help="the report's markdown tables")
    ap.add_argument("--fresh", action="store_true", help="recompute results that exist")
    ap.add_argument("--keep-work", action="store_true", help="keep each task's data and discovery")
    ap.add_argument("--report-only", action="store_true", help="aggregate the existing result files")
    ap.add_argument(
        "--discovery-only",
        action="store_true",
        help="no mitigation fine-tune: per task, standard fine-tuning and discovery, then the per-cluster facts"
        f" ({CLUSTER_FACTS_FILE}) that grade flag rules offline",
    )
    ap.add_argument("--task", default=None, help=argparse.SUPPRESS)  # internal: run one task (v,s,seed)
    args = ap.parse_args(argv)
    if args.quick:
        args.cramers_v, args.spurious_classes, args.seeds = [0.95], [3, 7], [0]
        args.n_train, args.n_test, args.n_discovery, args.steps = 192, 96, 96, 6
        args.classes = [1, 3, 7]
    stem = "ravl_mitigation_ablation" + ("_quick" if args.quick else "")
    args.out = args.out or str(HERE / "results" / f"{stem}.json")
    args.out_dir = args.out_dir or (
        str(Path(tempfile.gettempdir()) / f"{stem}_runs")
        if args.quick
        else str(HERE / "results" / f"{stem}_runs")
    )
    args.markdown = args.markdown or str(
        Path(args.out_dir) / f"{stem}.md" if args.quick else Path(args.out).with_suffix(".md")
    )
    return args


def main(argv: list[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw)
    if args.task is not None:
        v, s, seed = args.task.split(",")
        run_task(args, float(v), int(s), int(seed))
        return 0
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = [(v, s, seed) for seed in args.seeds for s in args.spurious_classes for v in args.cramers_v]
    t0 = time.perf_counter()
    failed = []
    if not args.report_only:
        (out_dir / "logs").mkdir(exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
        if args.device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        env["PYTHONPATH"] = os.pathsep.join(
            [str(HERE.parent / "src"), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
        )

        def launch(task: tuple) -> tuple[tuple, int]:
            name = task_name(*task)
            with open(out_dir / "logs" / f"{name}.log", "a") as log:
                rc = subprocess.run(
                    [sys.executable, __file__, *raw, "--task", ",".join(map(str, task))],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                ).returncode
            _log(f"{name}: {'finished' if rc == 0 else f'FAILED (rc {rc}, see logs/{name}.log)'}")
            return task, rc

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for task, rc in pool.map(launch, tasks):
                if rc != 0:
                    failed.append(task_name(*task))
    if args.discovery_only:
        _log(f"cluster facts in {out_dir}/*/{CLUSTER_FACTS_FILE}" + (f"; failed {failed}" if failed else ""))
        return 1 if failed else 0
    bases, results = collect(out_dir)
    wanted = {task_name(*t) for t in tasks}
    bases = {k: v for k, v in bases.items() if k in wanted}
    results = [
        r
        for r in results
        if r["task"] in bases and r["strategy"] in args.strategies and r["loss_variant"] in args.loss_variants
    ]
    import torch

    report = {
        "benchmark": "ravl_mitigation_ablation",
        "command": "python benchmarks/bench_ravl_mitigation_ablation.py " + " ".join(raw),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "config": {
            k: v
            for k, v in vars(args).items()
            if k not in ("out", "out_dir", "markdown", "task", "fresh", "report_only", "keep_work")
        },
        "tasks": sorted(bases),
        "missing_tasks": sorted(wanted - set(bases)),
        "failed_tasks": failed,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "base_seconds_total": round(sum(b["base_seconds"] for b in bases.values()), 1),
        "cpu_seconds_total": round(
            sum(b["base_cpu_seconds"] for b in bases.values())
            + sum(r["cpu_seconds"] for r in results if not r.get("reused_from")),
            1,
        ),
        "summary": summarise(bases, results),
    }
    _write_json(Path(args.out), report)
    Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
    Path(args.markdown).write_text(markdown(report))
    print(markdown(report))
    _log(f"wrote {args.out} and {args.markdown}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
