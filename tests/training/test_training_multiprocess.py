"""``trustvl train cf-alpha`` and ``trustvl train safe-clip`` under ``torchrun`` (2 gloo processes on CPU)
with the same global batch as one process: the same loss at every logged step and the same adapter
(issue 29). Both losses take their contrastive negatives from the global batch (``gather_across_devices``,
the default), so the two runs optimise one objective; only floating-point summation order differs.

Tolerances: losses within ``rel=1e-4`` of each other, adapter weights within ``atol=1e-5`` (AdamW, 4 steps;
measured differences are about 1e-7).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from trustvl.cli import main

SRC = str(Path(__file__).resolve().parents[2] / "src")
LOSS_RTOL, WEIGHT_ATOL = 1e-4, 1e-5


def _torchrun(argv: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.run(
        [*cmd, "-m", "trustvl.cli", *argv], env=env, capture_output=True, text=True, timeout=300
    )


def _losses(run: Path) -> list[dict[str, float]]:
    history = json.loads((run / "train_summary.json").read_text())["log_history"]
    return [
        {k: v for k, v in e.items() if k.endswith("loss") or k.startswith("term")}
        for e in history
        if "loss" in e
    ]


def _assert_same_run(one: Path, two: Path, steps: int) -> None:
    a, b = _losses(one), _losses(two)
    assert len(a) == len(b) == steps
    for x, y in zip(a, b):
        assert x.keys() == y.keys() and y == pytest.approx(x, rel=LOSS_RTOL, abs=1e-7)
    wa = load_file(str(one / "adapter" / "adapter_model.safetensors"))
    wb = load_file(str(two / "adapter" / "adapter_model.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(torch.allclose(wa[k], wb[k], atol=WEIGHT_ATOL) for k in wa)
    # LoRA's B factors start at zero: training moved them, far beyond the tolerance
    assert max(wa[k].abs().max().item() for k in wa if "lora_B" in k) > 100 * WEIGHT_ATOL


@pytest.fixture(scope="module")
def counterfactuals(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "cf"
    argv = [
        "build",
        "counterfactuals",
        "--synthworld",
        "--n_base_per_prompt",
        "1",
        "--variants_per_base",
        "2",
    ]
    assert main([*argv, "--num_proc", "1", "--quiet", "--out", str(out)]) == 0  # 8 sets of 2
    return out


@pytest.mark.slow
def test_cf_alpha_on_two_processes_trains_the_one_process_run(tiny_clip_dir, counterfactuals, tmp_path):
    argv = ["train", "cf-alpha", "--dataset", str(counterfactuals), "--base_model", str(tiny_clip_dir)]
    argv += ["--variants_per_set", "2", "--max_steps", "4", "--warmup_steps", "0", "--learning_rate", "0.01"]
    argv += ["--logging_steps", "1", "--save_strategy", "no", "--use_cpu", "--quiet"]
    assert main([*argv, "--per_device_train_batch_size", "4", "--out", str(tmp_path / "one")]) == 0
    proc = _torchrun([*argv, "--per_device_train_batch_size", "2", "--out", str(tmp_path / "two")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_same_run(tmp_path / "one", tmp_path / "two", steps=4)


@pytest.mark.slow
def test_safe_clip_on_two_processes_trains_the_one_process_run(tiny_clip_dir, tmp_path):
    from trustvl.testing.safe_clip import tiny_quadruplet_dataset

    data = tiny_quadruplet_dataset(tmp_path / "quadruplets", 16, seed=0, resolution=32)
    argv = ["train", "safe-clip", "--dataset", str(data), "--base_model", str(tiny_clip_dir)]
    argv += ["--max_steps", "4", "--learning_rate", "0.01", "--lora_alpha", "16", "--lora_dropout", "0"]
    argv += ["--eval_strategy", "no", "--logging_steps", "1", "--save_strategy", "no", "--use_cpu", "--quiet"]
    # each run computes its references into its own cache (both processes of the second one write it)
    one = [*argv, "--reference_cache_dir", str(tmp_path / "cache-one"), "--out", str(tmp_path / "one")]
    assert main([*one, "--per_device_train_batch_size", "8"]) == 0
    two = [*argv, "--reference_cache_dir", str(tmp_path / "cache-two"), "--out", str(tmp_path / "two")]
    proc = _torchrun([*two, "--per_device_train_batch_size", "4"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_same_run(tmp_path / "one", tmp_path / "two", steps=4)
    summaries = [json.loads((tmp_path / d / "train_summary.json").read_text()) for d in ("one", "two")]
    assert summaries[0]["final_eval"] == summaries[1]["final_eval"]
