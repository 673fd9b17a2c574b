"""Multi-process runs against one process (issue 29): training, dataset building and the audit, each through
the real ``trustvl`` command launched by ``torchrun`` on ``--nproc`` processes (one per GPU), compared with
the same command in one plain process. Writes one JSON (``--out``).

a) **Training** -- ``trustvl train cf-alpha`` on a SynthWorld counterfactual set and ``trustvl train
   safe-clip`` on SynthWorld quadruplets, with the same global batch (``--global-batch`` = 1 process ×
   G = N processes × G/N) and the same steps: the largest absolute difference of the loss (and of each
   logged term) over the logged steps, the final losses, the largest difference of the adapter weights,
   the final metrics (CF_α: a 1-process ``trustvl audit`` of each trained model on the gallery; Safe-CLIP: the
   validation recalls the run reports) and the Trainer's samples/s of each run and their ratio. Each loss
   is also run on N processes with ``--gather_across_devices false`` (per-process negatives), to show what
   the global-batch loss buys.
a') **RaVL training** -- ``trustvl train ravl`` (LoRA, the default loss: masked-image alignment, uniform +
   counterfactual terms) on spurious digits (``trustvl build spurious-digits``, V = 0.9, class 7), with the
   flags of a ``trustvl discover`` run of the model on the test split, compared the same way (losses and
   terms per step, adapter, samples/s, per-process negatives), plus the final metrics: zero-shot overall and
   worst-group accuracy (class × rectangle) of each trained model on the test split, in this process. When
   discovery keeps no cluster (an untuned model), the runs act on the 2nd to 4th largest clusters, given
   with ``--clusters`` (the largest is the empty cells), so that regions are flagged: it checks the
   multi-process path, not mitigation.
b) **Builders** -- ``trustvl build counterfactuals --synthworld`` and ``trustvl build
   safe-clip-quadruplets`` on 1 and N processes: the data shards compared **byte for byte** (and the card,
   but for its build-time line; ``build_config.json`` records each run's seconds and per-process counts, so
   it is left out); then a build in which the last rank is killed (``TRUSTVL_FAULT``, :mod:`trustvl.utils.faults`,
   set for that rank only: ``os._exit(137)`` just before the rename of its second shard) and a ``--resume``
   on N processes, compared with the 1-process build the same way, with its rows checked for duplicates
   and gaps.
c) **Audit** -- ``trustvl audit --axes bias`` of the base CLIP on a SynthWorld gallery (``trustvl build
   synthworld``), 1 and N processes: metrics.json identical but for its timings, embedding images/s.

Environment: ``--device cuda --backend nccl`` sets ``NCCL_NVLS_ENABLE=0``, ``TORCH_SYMM_MEM_DISABLE_MULTICAST=1``
and ``NVSHMEM_DISABLE_NVLS=1`` (NVLink multicast off) for every run. ``--device cpu`` hides the GPUs
(``CUDA_VISIBLE_DEVICES=``) and runs every process on one core (``OMP_NUM_THREADS=1``): N processes are N
"devices", so the 1-process baseline is one core too. ``--backend`` is the training's ``--ddp_backend``; the
builders and the audit take accelerate's default for the device (NCCL on GPUs, gloo on CPU). The model is
the embedded SynthWorld CLIP unless ``--model``. The training compares fp32 runs without LoRA dropout
(``--lora-dropout``, default 0): dropout draws differ per process, so curves would then differ by noise.

Commands (one process per GPU; the JSON's ``commands`` lists every command that ran; ``--only`` runs some
of the jobs ``builders``, ``cf_alpha``, ``safe_clip``, ``ravl``, ``audit``)::

    python benchmarks/bench_multi_gpu.py --nproc 2 --backend gloo --device cpu \\
        --out benchmarks/results/multi_gpu_cpu_gloo2.json          # a few minutes on 2 CPU cores
    python benchmarks/bench_multi_gpu.py --nproc 2 --backend gloo --device cpu --only ravl \\
        --out benchmarks/results/multi_gpu_cpu_gloo2_ravl.json
    python benchmarks/bench_multi_gpu.py --nproc 4 --backend nccl --device cuda \\
        --global-batch 256 --steps 50 --cf-bases-per-prompt 256 --quad-train 8192 --gallery 20000 \\
        --out benchmarks/results/multi_gpu_h100x4.json

Needs the full trustvl install (``datasets`` and ``accelerate`` included) in every process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NVLINK_MULTICAST_OFF = {
    "NCCL_NVLS_ENABLE": "0",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
    "NVSHMEM_DISABLE_NVLS": "1",
}
# the killed rank dies just before its second shard is renamed into place: one shard of its own is on disk
KILL_AT = "atomic-write:before-rename:2"
TIMING_KEYS = ("seconds", "seconds_embedding")
JOBS = ("builders", "cf_alpha", "safe_clip", "ravl", "audit")


# ---------------------------------------------------------------------------------------------- running
class Launcher:
    """Runs ``trustvl`` commands in one plain process or under ``torchrun`` and keeps every command line."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.nproc, self.backend = args.nproc, args.backend
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        self.env.pop("TRUSTVL_FAULT", None)
        if args.device == "cpu":
            self.env.update({"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"})
        if args.device == "cuda" and args.backend == "nccl":
            self.env.update(NVLINK_MULTICAST_OFF)
        self.commands: list[str] = []

    def run(self, argv: list[str], nproc: int = 1, kill_rank: int | None = None) -> tuple[str, float]:
        """Run ``trustvl argv`` on ``nproc`` processes; return its stdout and wall seconds. A run with
        ``kill_rank`` must end with that rank killed (exit 137); any other run must succeed."""
        env = dict(self.env)
        if nproc == 1:
            cmd = [sys.executable, "-m", "trustvl.cli", *argv]
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
            if kill_rank is None:
                cmd += ["-m", "trustvl.cli", *argv]
            else:  # this file as the entry point: it sets the fault for one rank, then runs trustvl unchanged
                cmd += [__file__, "--cli", *argv]
                env.update({"BENCH_KILL_RANK": str(kill_rank), "BENCH_KILL_AT": KILL_AT})
        shown = ["trustvl"] if nproc == 1 else ["torchrun", "--standalone", f"--nproc_per_node={nproc}"]
        if nproc > 1:
            shown += (
                ["-m", "trustvl.cli"] if kill_rank is None else ["benchmarks/bench_multi_gpu.py", "--cli"]
            )
        note = "" if kill_rank is None else f"  # TRUSTVL_FAULT={KILL_AT} on rank {kill_rank}"
        self.commands.append(shlex.join([*shown, *argv]) + note)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if kill_rank is None and proc.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        if kill_rank is not None and not re.search(r"exitcode\s*:\s*137", proc.stderr):
            raise RuntimeError(f"rank {kill_rank} was not killed by the fault:\n{proc.stderr[-4000:]}")
        return proc.stdout, seconds


# ---------------------------------------------------------------------------------------------- helpers
def dataset_files(folder: Path) -> dict[str, bytes]:
    """A dataset folder's files to compare: the data shards and the card without its build-time line."""
    out = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    out.pop("build_config.json", None)
    if "README.md" in out:
        out["README.md"] = "\n".join(
            line for line in out["README.md"].decode().splitlines() if "build time" not in line
        ).encode()
    return out


def compare_files(a: dict[str, bytes], b: dict[str, bytes]) -> dict[str, Any]:
    names = sorted(set(a) | set(b))
    return {
        "identical_bytes": a == b,
        "n_files": len(names),
        "differing": [n for n in names if a.get(n) != b.get(n)],
    }


def row_keys(folder: Path, columns: tuple[str, ...]) -> dict[str, list[tuple]]:
    """Per split, the key of every row (to count duplicates and gaps)."""
    from trustvl.hub.loading import load_dataset_any

    out = {}
    for path in sorted((folder / "data").glob("*.parquet")):
        split = path.name.split("-")[0]
        if split not in out:
            ds = load_dataset_any(folder, split=split).select_columns(list(columns))
            out[split] = [tuple(row[c] for c in columns) for row in ds]
    return out


def duplicates_and_gaps(resumed: dict[str, list[tuple]], reference: dict[str, list[tuple]]) -> dict[str, int]:
    dup = sum(len(rows) - len(set(rows)) for rows in resumed.values())
    gaps = sum(len(set(reference[s]) - set(resumed.get(s, []))) for s in reference)
    return {"duplicate_rows": dup, "missing_rows": gaps}


def flat_numbers(value: Any, prefix: str = "") -> dict[str, float]:
    """Every number in a JSON value, keyed by its path."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flat_numbers(item, f"{prefix}{key}.").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flat_numbers(item, f"{prefix}{i}.").items()}
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return {}
    return {prefix.rstrip("."): float(value)}


def max_abs_diff(a: dict[str, float], b: dict[str, float]) -> float | None:
    keys = set(a) & set(b)
    diffs = [abs(a[k] - b[k]) for k in keys if math.isfinite(a[k]) and math.isfinite(b[k])]
    return max(diffs) if diffs else None


def audit_metrics(folder: Path) -> dict[str, Any]:
    data = json.loads((folder / "metrics.json").read_text())
    for key in TIMING_KEYS:
        data.pop(key, None)
    return data


# ---------------------------------------------------------------------------------------------- b) builders
def bench_builder(
    launcher: Launcher, work: Path, name: str, argv: list[str], key_columns: tuple[str, ...]
) -> dict[str, Any]:
    n = launcher.nproc
    one, _ = launcher.run([*argv, "--num_proc", "1", "--out", str(work / f"{name}-1")])
    _, seconds_one = launcher.run([*argv, "--num_proc", "1", "--out", str(work / f"{name}-1b")])  # warm
    printed, seconds_n = launcher.run([*argv, "--out", str(work / f"{name}-{n}")], nproc=n)
    # every process prints its summary, with the shards it built
    built = [int(x) for x in re.findall(r'n_shards_built"?[=:] ?(\d+)', printed)]
    reference = dataset_files(work / f"{name}-1")
    shards = [f for f in reference if f.endswith(".parquet")]

    killed = work / f"{name}-killed"
    launcher.run([*argv, "--out", str(killed)], nproc=n, kill_rank=n - 1)
    after_kill = sorted(p.name for p in (killed / "data").glob("*.parquet"))
    card_after_kill = (killed / "README.md").exists()
    launcher.run([*argv, "--out", str(killed), "--resume"], nproc=n)
    ref_rows = row_keys(work / f"{name}-1", key_columns)
    return {
        "command": ["trustvl", *argv],
        "n_shards": len(shards),
        "n_rows": {split: len(rows) for split, rows in ref_rows.items()},
        "compared": "data shards byte for byte, and the card but for its build-time line",
        f"{n}_processes_vs_1": compare_files(reference, dataset_files(work / f"{name}-{n}")),
        "shards_built_per_process": built,
        "seconds_1_process": round(seconds_one, 2),
        f"seconds_{n}_processes": round(seconds_n, 2),
        "seconds_note": "wall time of the whole command (interpreter start and imports included)",
        "kill_and_resume": {
            "killed_rank": n - 1,
            "fault": KILL_AT,
            "shards_on_disk_after_kill": len(after_kill),
            "card_after_kill": card_after_kill,
            "resumed_vs_1_process": compare_files(reference, dataset_files(killed)),
            **duplicates_and_gaps(row_keys(killed, key_columns), ref_rows),
        },
    }


# ---------------------------------------------------------------------------------------------- a) training
def _history(run: Path) -> tuple[list[dict[str, float]], dict[str, Any]]:
    summary = json.loads((run / "train_summary.json").read_text())
    steps = [
        {k: float(v) for k, v in e.items() if k == "loss" or k.endswith("_loss") or k.startswith("term")}
        for e in summary["log_history"]
        if "loss" in e
    ]
    timing = next((e for e in summary["log_history"] if "train_samples_per_second" in e), {})
    return steps, {**summary, "timing": timing}


def _curve_diff(a: list[dict[str, float]], b: list[dict[str, float]]) -> dict[str, Any]:
    if len(a) != len(b):
        return {"logged_steps": [len(a), len(b)], "max_abs_loss_diff": None}
    per_key = {k: max(abs(x[k] - y[k]) for x, y in zip(a, b)) for k in a[0]} if a else {}
    return {
        "logged_steps": len(a),
        "max_abs_loss_diff": per_key.get("loss"),
        "max_rel_loss_diff": max(abs(x["loss"] - y["loss"]) / abs(x["loss"]) for x, y in zip(a, b))
        if a
        else None,
        "max_abs_diff_per_term": per_key,
    }


def _adapter_diff(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "adapter_model.safetensors")), load_file(str(b / "adapter_model.safetensors"))
    return max((wa[k] - wb[k]).abs().max().item() for k in wa)


def bench_training(
    launcher: Launcher, work: Path, name: str, argv: list[str], global_batch: int
) -> dict[str, Any]:
    n = launcher.nproc
    if global_batch % n:
        raise SystemExit(f"--global-batch {global_batch} is not a multiple of --nproc {n}")
    several = [
        *argv,
        "--ddp_backend",
        launcher.backend,
        "--per_device_train_batch_size",
        str(global_batch // n),
    ]
    runs = {
        "1": ([*argv, "--per_device_train_batch_size", str(global_batch)], 1),
        str(n): (several, n),
        f"{n}_per_process_negatives": ([*several, "--gather_across_devices", "false"], n),
    }
    results = {}
    for label, (args, nproc) in runs.items():
        launcher.run([*args, "--out", str(work / f"{name}-{label}")], nproc=nproc)
        results[label] = _history(work / f"{name}-{label}")
    (base, base_summary), (multi, multi_summary) = results["1"], results[str(n)]
    speed_1 = base_summary["timing"].get("train_samples_per_second")
    speed_n = multi_summary["timing"].get("train_samples_per_second")
    return {
        "command": ["trustvl", *argv],
        "global_batch": global_batch,
        "per_device_batch": {"1": global_batch, str(n): global_batch // n},
        f"{n}_processes_vs_1": _curve_diff(base, multi),
        f"{n}_processes_per_process_negatives_vs_1": _curve_diff(
            base, results[f"{n}_per_process_negatives"][0]
        ),
        "final_loss": {"1": base_summary["final_loss"], str(n): multi_summary["final_loss"]},
        "max_abs_adapter_weight_diff": _adapter_diff(
            work / f"{name}-1" / "adapter", work / f"{name}-{n}" / "adapter"
        ),
        "final_eval": {"1": base_summary.get("final_eval"), str(n): multi_summary.get("final_eval")},
        "train_samples_per_second": {"1": speed_1, str(n): speed_n},
        "throughput_ratio": round(speed_n / speed_1, 3) if speed_1 and speed_n else None,
        "train_runtime_seconds": {
            "1": base_summary["timing"].get("train_runtime"),
            str(n): multi_summary["timing"].get("train_runtime"),
        },
    }


# ---------------------------------------------------------------------------------------------- a') RaVL
def prepare_ravl(
    launcher: Launcher, work: Path, model: str, args: argparse.Namespace
) -> tuple[list[str], dict[str, Any]]:
    """Spurious digits and a discovery of ``model`` on them; the ``trustvl train ravl`` arguments (without
    batch size and output) and what the flags act on."""
    digits, disc = work / "digits", work / "ravl-discovery"
    launcher.run(
        ["build", "spurious-digits", "--cramers_v", "0.9", "--spurious_class", "7"]
        + ["--n_train", str(args.digits_train), "--n_test", str(args.digits_test)]
        + ["--image_size", str(args.resolution), "--quiet", "--out", str(digits)]
    )
    device = "cpu" if args.device == "cpu" else "auto"
    launcher.run(
        ["discover", "--model", model, "--dataset", str(digits), "--device", device, "--quiet"]
        + ["--out", str(disc)]
    )
    found = json.loads((disc / "discovery.json").read_text())
    argv = ["train", "ravl", "--dataset", str(digits), "--base_model", model, "--discovery", str(disc)]
    flags: dict[str, Any] = {"kept_clusters": [c["cluster_id"] for c in found["all_clusters"] if c["kept"]]}
    if not flags["kept_clusters"]:
        by_size = sorted(found["all_clusters"], key=lambda c: (-c["size"], c["cluster_id"]))
        flags["explicit_clusters"] = [c["cluster_id"] for c in by_size[1:4]]
        flags["why"] = (
            "discovery kept no cluster: the 2nd-4th largest clusters (the largest is the empty cells)"
        )
        argv += ["--clusters", *map(str, flags["explicit_clusters"])]
    return argv, {"dataset": str(digits), "discovery": str(disc), "k": found["k"], **flags}


def ravl_final_metrics(work: Path, name: str, n: int, digits: str) -> dict[str, Any]:
    """Zero-shot overall and worst-group accuracy (class × rectangle) of each RaVL run's model, in this process."""
    from trustvl.evaluation.ravl import evaluate_group_accuracy

    metrics = {
        label: evaluate_group_accuracy(str(work / f"{name}-{label}" / "model"), digits, device="cpu")
        for label in ("1", str(n))
    }
    keys = ("overall_accuracy", "worst_group_accuracy")
    return {
        "evaluation": "zero-shot accuracy on the spurious-digits test split (groups: class x rectangle), 1 process",
        **{k: {label: m[k] for label, m in metrics.items()} for k in keys},
        "max_abs_per_group_diff": max_abs_diff(metrics["1"]["per_group"], metrics[str(n)]["per_group"]),
    }


# ---------------------------------------------------------------------------------------------- c) audit
def bench_audit(launcher: Launcher, work: Path, argv: list[str], n_images: int) -> dict[str, Any]:
    n = launcher.nproc
    out = {}
    for label, nproc in (("1", 1), (str(n), n)):
        folder = work / f"audit-{label}"
        launcher.run(
            [*argv, "--out", str(folder), "--cache_dir", str(work / f"audit-cache-{label}")], nproc=nproc
        )
        data = json.loads((folder / "metrics.json").read_text())
        out[label] = (audit_metrics(folder), data.get("seconds_embedding"))
    (m1, s1), (mn, sn) = out["1"], out[str(n)]
    differing = sorted(k for k in set(m1) | set(mn) if m1.get(k) != mn.get(k))
    return {
        "command": ["trustvl", *argv],
        "n_images": n_images,
        "identical_metrics": m1 == mn,
        "compared": f"metrics.json but for {list(TIMING_KEYS)}",
        "differing_keys": differing,
        "max_abs_metric_diff": max_abs_diff(flat_numbers(m1), flat_numbers(mn)),
        "images_per_second_embedding": {
            "1": round(n_images / s1, 1) if s1 else None,
            str(n): round(n_images / sn, 1) if sn else None,
        },
        "scaling": round(s1 / sn, 3) if s1 and sn else None,
        "seconds_embedding_note": "metrics.json's seconds_embedding (rank 0's, the gallery's embedding pass)",
    }


def final_metrics_of_trained(launcher: Launcher, work: Path, name: str, argv: list[str]) -> dict[str, Any]:
    """A 1-process audit of the model each CF_α run trained: their final fairness/accuracy metrics."""
    n = launcher.nproc
    metrics = {}
    for label in ("1", str(n)):
        folder = work / f"{name}-{label}-audit"
        model = str(work / f"{name}-{label}" / "model")
        launcher.run([*argv, "--model", model, "--out", str(folder), "--no-cache"])
        metrics[label] = audit_metrics(folder)
    flat = [flat_numbers(m) for m in metrics.values()]
    return {
        "audit": "trustvl audit --axes bias of each trained model, 1 process",
        "max_abs_metric_diff": max_abs_diff(*flat),
        "zero_shot_top1": {k: m["evaluation"].get("zero_shot_top1") for k, m in metrics.items()},
    }


# ---------------------------------------------------------------------------------------------- main
def machine(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if args.device == "cuda"
        else []
    )
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_cores": os.cpu_count(),
        "gpus": gpus,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--nproc", type=int, required=True, help="processes (one per GPU), at least 2")
    p.add_argument("--backend", choices=["nccl", "gloo"], default="nccl", help="the training's --ddp_backend")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--out", required=True, help="the JSON to write")
    p.add_argument(
        "--model", default=None, help="CLIP folder or Hub id; default: the embedded SynthWorld CLIP"
    )
    p.add_argument("--workdir", default=None, help="where the runs go (default: a temporary folder)")
    p.add_argument(
        "--global-batch",
        type=int,
        default=8,
        help="sets (CF_α) / quadruplets (Safe-CLIP) / images (RaVL) per step",
    )
    p.add_argument("--steps", type=int, default=8, help="optimiser steps of each training run")
    p.add_argument("--lora-dropout", type=float, default=0.0, help="Safe-CLIP's LoRA dropout (recipe: 0.1)")
    p.add_argument("--cf-bases-per-prompt", type=int, default=None, help="default: 4·nproc (2 shards a rank)")
    p.add_argument("--cf-variants", type=int, default=2, help="counterfactual variants per base")
    p.add_argument("--quad-train", type=int, default=None, help="quadruplet train rows; default 16·nproc")
    p.add_argument(
        "--resolution", type=int, default=64, help="SynthWorld image side of the quadruplets/gallery"
    )
    p.add_argument("--gallery", type=int, default=256, help="SynthWorld test images audited")
    p.add_argument("--digits-train", type=int, default=64, help="spurious-digits training images (RaVL)")
    p.add_argument(
        "--digits-test", type=int, default=64, help="spurious-digits test images (discovery, metrics)"
    )
    p.add_argument(
        "--only",
        default=",".join(JOBS),
        help=f"comma-separated jobs to run, of {','.join(JOBS)} (default: all)",
    )
    p.add_argument(
        "--audit-shard-size", type=int, default=32, help="embedding shard (the unit split over ranks)"
    )
    args = p.parse_args(argv)
    if args.nproc < 2:
        p.error(f"--nproc {args.nproc}: expected at least 2 (the baseline is the 1-process run)")
    args.only = [j.strip() for j in args.only.split(",") if j.strip()]
    if not args.only or set(args.only) - set(JOBS):
        p.error(f"--only {','.join(args.only)!r}: expected some of {','.join(JOBS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from trustvl.modeling.synthworld_clip import default_clip_path

    model = args.model or str(default_clip_path())
    launcher = Launcher(args)
    n = args.nproc
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-multi-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    train_flags = ["--logging_steps", "1", "--save_strategy", "no", "--quiet"]
    train_flags += ["--max_steps", str(args.steps), "--seed", "0"] + (
        ["--use_cpu"] if args.device == "cpu" else []
    )
    audit_device = "cpu" if args.device == "cpu" else "auto"
    t0 = time.perf_counter()

    # the data the runs share (and part b: the two builders)
    bases = args.cf_bases_per_prompt or 4 * n
    cf_argv = ["build", "counterfactuals", "--synthworld", "--n_base_per_prompt", str(bases)]
    cf_argv += ["--variants_per_base", str(args.cf_variants), "--quiet"]
    quad_argv = ["build", "safe-clip-quadruplets", "--n_train", str(args.quad_train or 16 * n)]
    quad_argv += ["--n_validation", "8", "--n_test", "8", "--shard_size", "8"]
    quad_argv += ["--resolution", str(args.resolution), "--quiet"]
    jobs = set(args.only)
    builders: dict[str, Any] = {}
    if jobs & {
        "builders",
        "cf_alpha",
        "safe_clip",
    }:  # the two trainings train on the builders' 1-process data
        builders = {
            "counterfactuals": bench_builder(launcher, work, "cf", cf_argv, ("base_id", "variant_id")),
            "safe_clip_quadruplets": bench_builder(launcher, work, "quad", quad_argv, ("scene_id",)),
        }
    gallery = work / "gallery"
    if jobs & {"cf_alpha", "audit"}:
        launcher.run(
            ["build", "synthworld", "--n_train", "8", "--n_test", str(args.gallery)]
            + ["--resolution", str(args.resolution), "--quiet", "--out", str(gallery)]
        )
    audit_argv = ["audit", "--dataset", str(gallery), "--axes", "bias", "--device", audit_device, "--quiet"]
    audit_argv += ["--shard_size", str(args.audit_shard_size), "--label_column", "occupation"]

    cf_train = ["train", "cf-alpha", "--dataset", str(work / "cf-1"), "--base_model", model]
    cf_train += ["--variants_per_set", str(args.cf_variants), "--warmup_steps", "0", *train_flags]
    safe_train = ["train", "safe-clip", "--dataset", str(work / "quad-1"), "--base_model", model]
    safe_train += ["--eval_strategy", "no", "--lora_dropout", str(args.lora_dropout), *train_flags]
    safe_train += ["--reference_cache_dir", str(work / "safe-clip-references")]
    training: dict[str, Any] = {}
    if "cf_alpha" in jobs:
        training["cf_alpha"] = bench_training(launcher, work, "cf-alpha", cf_train, args.global_batch)
        training["cf_alpha"]["final_metrics"] = final_metrics_of_trained(
            launcher, work, "cf-alpha", audit_argv
        )
    if "safe_clip" in jobs:
        training["safe_clip"] = bench_training(launcher, work, "safe-clip", safe_train, args.global_batch)
    if "ravl" in jobs:
        ravl_argv, ravl_flags = prepare_ravl(launcher, work, model, args)
        ravl_train = [*ravl_argv, "--warmup_steps", "0", *train_flags]
        runs = bench_training(launcher, work, "ravl", ravl_train, args.global_batch)
        runs.pop("final_eval")  # RaVL reports none; its final metrics follow
        # the flags: embedded by one process, or split over the N processes and gathered
        ravl_flags["spurious_region_fraction"] = {
            label: json.loads((work / f"ravl-{label}" / "train_summary.json").read_text())[
                "spurious_region_fraction"
            ]
            for label in ("1", str(n))
        }
        training["ravl"] = {
            "data_and_flags": ravl_flags,
            **runs,
            "final_metrics": ravl_final_metrics(work, "ravl", n, ravl_flags["dataset"]),
        }
    audit = (
        bench_audit(launcher, work, [*audit_argv, "--model", model], args.gallery)
        if "audit" in jobs
        else None
    )

    result = {
        "what": (
            "CPU functional run (gloo, one core per process): checks the multi-process paths, not a GPU measurement"
            if args.device == "cpu"
            else f"{n}-GPU run ({args.backend})"
        ),
        "issue": 29,
        "machine": machine(args),
        "command": shlex.join([sys.executable, *sys.argv]),
        "nproc": n,
        "jobs": args.only,
        "backend": {"training": args.backend, "builders_and_audit": "accelerate's default for the device"},
        "device": args.device,
        "env": {k: launcher.env[k] for k in (*NVLINK_MULTICAST_OFF, "OMP_NUM_THREADS") if k in launcher.env},
        "model": model,
        "training": training,
        "builders": builders,
        "audit": audit,
        "commands": launcher.commands,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("what", "nproc", "seconds")}))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--cli"]:  # a torchrun process of a kill run: the fault for one rank, then trustvl
        if os.environ.get("BENCH_KILL_RANK") == os.environ.get("RANK"):
            os.environ["TRUSTVL_FAULT"] = os.environ["BENCH_KILL_AT"]
        from trustvl.cli import main as trustvl_main

        sys.exit(trustvl_main(sys.argv[2:]))
    sys.exit(main())
