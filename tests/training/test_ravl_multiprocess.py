"""RaVL training under ``torchrun`` (2 gloo processes on CPU) with the same global batch as one process
(issue 29).

``L_CLIP`` takes its negatives from the batch and the region terms are means over rows whose number differs
between processes, so each process computes ``L_CLIP`` on the gathered global batch and its share of each
region term's global mean (``gather_across_devices``, the default).

* the loss and the DDP gradient of 2 processes × 4 rows equal the 1-process loss and gradient of the 8 rows
  for every form of the loss (masked-image or crop alignment, uniform / counterfactual / both, score
  weights), with the processes holding different numbers of spurious regions (3 and 1); with per-process
  negatives (``gather_across_devices=False``) they do not;
* ``trustvl train ravl`` on 2 processes × 4 trains the 1-process run of batch 8: the same loss and terms
  at every logged step, the same adapter, the same flags (split over the processes), outputs written once.

Tolerances: loss and terms ``rel=1e-5`` (one step; measured up to 2e-6) / ``rel=1e-4`` (3 AdamW steps),
gradients ``rtol=1e-4, atol=1e-5`` (the largest entries are about 3, measured differences up to 1.7e-6:
float summation order), adapter weights ``atol=1e-5``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

SRC = str(Path(__file__).resolve().parents[2] / "src")
N_ROWS, WORLD = 8, 2
GRAD_ATOL = 1e-5
# spurious cells of the 8 rows: rows 0-3 (process 0) hold 3, rows 4-7 (process 1) hold 1; row 2's second
# flag has weight 0.5 in the score-weighted variant
FLAGS = np.zeros((N_ROWS, 4), dtype=np.float32)
FLAGS[0, 1] = FLAGS[2, 0] = FLAGS[5, 2] = 1.0
FLAGS[2, 3] = 0.5
VARIANTS = {
    "masked_both": ({}, True),  # the defaults: masked-image alignment, uniform + counterfactual
    "regions_mean_both": ({"align_input": "regions"}, True),
    "regions_max_uniform": (
        {"align_input": "regions", "align_pooling": "max", "uninf_mode": "uniform"},
        True,
    ),
    "masked_counterfactual_weighted": ({"uninf_mode": "counterfactual"}, False),
    "diagonal_clip": ({"clip_positives": "diagonal"}, True),
}


def _batch(clip_dir: str, digits: str, rows: range, weighted: bool) -> dict[str, torch.Tensor]:
    from datasets import load_dataset
    from transformers import CLIPProcessor

    from trustvl.training.ravl import RaVLCollator, RegionImageDataset

    processor = CLIPProcessor.from_pretrained(clip_dir)
    ds = load_dataset(digits, split="train").select(range(N_ROWS))
    flags = FLAGS if weighted else FLAGS > 0
    data = RegionImageDataset(ds, processor, region_flags=flags, with_regions=True, with_masked=True)
    return RaVLCollator(processor, data.prompts)([data[i] for i in rows])


def _loss_and_grads(model, loss_fn, batch) -> dict[str, torch.Tensor]:
    """The loss, its terms and every parameter's gradient of one forward/backward."""
    model.zero_grad(set_to_none=True)
    loss, extras = loss_fn(model, batch)
    loss.backward()
    from trustvl.training.core import unwrap_model

    named = unwrap_model(model).named_parameters()
    out = {
        "loss": loss.detach().reshape(1),
        **{f"term/{k}": v.detach().reshape(1) for k, v in extras.items()},
    }
    return {**out, **{f"grad/{k}": p.grad.detach().clone() for k, p in named if p.grad is not None}}


def _worker(clip_dir: str, digits: str, out: str) -> None:
    """One torchrun process: its 4 rows of the 8 under DDP; writes the mean over processes of the loss and
    terms and the (DDP-averaged) gradients of every variant, with and without global-batch negatives."""
    import torch.distributed as dist
    from transformers import CLIPModel

    from trustvl.training.ravl import RaVLLoss

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    rows = range(rank * N_ROWS // WORLD, (rank + 1) * N_ROWS // WORLD)
    model = torch.nn.parallel.DistributedDataParallel(CLIPModel.from_pretrained(clip_dir))
    for name, (kwargs, binary) in VARIANTS.items():
        batch = _batch(clip_dir, digits, rows, weighted=not binary)
        for gather in (True, False):
            values = _loss_and_grads(model, RaVLLoss(**kwargs, gather_across_devices=gather), batch)
            for key, value in values.items():
                if not key.startswith("grad/"):  # the trainer logs the mean over processes
                    dist.all_reduce(value)
                    values[key] = value / WORLD
            save_file(values, f"{out}/{name}-{'global' if gather else 'local'}-rank{rank}.safetensors")
    dist.barrier()  # gloo: a process tearing down its group while the other one still works can hang it
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from trustvl.data_builders.ravl.spurious_digits import build_spurious_digits

    return build_spurious_digits(
        tmp_path_factory.mktemp("digits") / "sd",
        cramers_v=0.9,
        spurious_class=7,
        classes=[1, 7],
        n_train=24,
        n_test=8,
        image_size=32,
        seed=0,
        progress=False,
    )


def _torchrun(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_ravl_loss_and_gradient_on_two_processes_are_the_global_batch_ones(tiny_clip_dir, digits, tmp_path):
    from transformers import CLIPModel

    from trustvl.training.ravl import RaVLLoss

    proc = _torchrun([__file__, str(tiny_clip_dir), str(digits), str(tmp_path)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = CLIPModel.from_pretrained(tiny_clip_dir)
    for name, (kwargs, binary) in VARIANTS.items():
        batch = _batch(str(tiny_clip_dir), str(digits), range(N_ROWS), weighted=not binary)
        one = _loss_and_grads(model, RaVLLoss(**kwargs), batch)
        two = load_file(str(tmp_path / f"{name}-global-rank0.safetensors"))
        # DDP kept the processes' gradients equal
        other = load_file(str(tmp_path / f"{name}-global-rank1.safetensors"))
        assert all(torch.equal(two[k], other[k]) for k in two), name
        assert two.keys() == one.keys(), name
        for key in one:
            if key.startswith("grad/"):
                torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=GRAD_ATOL, msg=f"{name} {key}")
            else:
                assert two[key].item() == pytest.approx(one[key].item(), rel=1e-5, abs=1e-7), (name, key)
        assert one["term/uninf_loss"].item() > 0 and one["term/align_loss"].item() > 0
        # per-process negatives and per-process means: another objective, far beyond the tolerance
        local = load_file(str(tmp_path / f"{name}-local-rank0.safetensors"))
        # (the rows alternate the two classes, so L_CLIP's value barely moves; its gradient and the region
        # terms do: measured 0.016-0.028 on the gradients, 2-25 % on L_uninf)
        assert (
            max((local[k] - one[k]).abs().max().item() for k in one if k.startswith("grad/"))
            > 100 * GRAD_ATOL
        )
        uninf = one["term/uninf_loss"].item()
        assert abs(local["term/uninf_loss"].item() - uninf) > 1e-2 * uninf, name


def _discovery(clip_dir: Path, digits: Path, folder: Path) -> Path:
    """Medoids = embeddings of the 4 quadrants of training image 0 (the one holding the digit flagged)."""
    from datasets import load_dataset
    from transformers import CLIPModel, CLIPProcessor

    from trustvl.modeling.embedding import embed_images
    from trustvl.training.ravl import SpuriousMedoids, region_crops

    model, processor = CLIPModel.from_pretrained(clip_dir).eval(), CLIPProcessor.from_pretrained(clip_dir)
    image = load_dataset(str(digits), split="train")[0]
    emb = embed_images(model, processor, region_crops(image["image"]), progress=False).numpy()
    kept = np.arange(4) == image["digit_quadrant"]
    SpuriousMedoids(emb, kept, np.where(kept, 0, -1), None).save(folder / "spurious_medoids.npz")
    return folder


@pytest.mark.slow
def test_train_ravl_on_two_processes_trains_the_one_process_run(tiny_clip_dir, digits, tmp_path):
    from trustvl.cli import main

    disc = _discovery(tiny_clip_dir, digits, tmp_path / "disc")
    argv = ["train", "ravl", "--dataset", str(digits), "--base_model", str(tiny_clip_dir)]
    argv += ["--discovery", str(disc), "--max_steps", "3", "--warmup_steps", "0", "--learning_rate", "0.01"]
    argv += ["--logging_steps", "1", "--save_strategy", "no", "--use_cpu", "--quiet"]
    assert main([*argv, "--per_device_train_batch_size", "8", "--out", str(tmp_path / "one")]) == 0
    proc = _torchrun(
        ["-m", "trustvl.cli", *argv, "--per_device_train_batch_size", "4", "--out", str(tmp_path / "two")]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    one, two = (json.loads((tmp_path / d / "train_summary.json").read_text()) for d in ("one", "two"))
    # the flags, embedded half by each process, are the 1-process flags
    assert 0 < one["spurious_region_fraction"] == two["spurious_region_fraction"] < 1
    losses = [
        [{k: v for k, v in e.items() if k.endswith("loss")} for e in s["log_history"] if "loss" in e]
        for s in (one, two)
    ]
    assert len(losses[0]) == len(losses[1]) == 3
    for a, b in zip(*losses):
        assert a.keys() == b.keys() >= {"loss", "clip_loss", "align_loss", "uninf_loss"}
        assert b == pytest.approx(a, rel=1e-4, abs=1e-7)
    wa = load_file(str(tmp_path / "one" / "adapter" / "adapter_model.safetensors"))
    wb = load_file(str(tmp_path / "two" / "adapter" / "adapter_model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)
    assert max(wa[k].abs().max().item() for k in wa if "lora_B" in k) > 1e-3  # training moved the adapter
    # process 0 alone wrote the run: the same files as one process, no staging folder left behind
    files = {
        d: sorted(str(p.relative_to(tmp_path / d)) for p in (tmp_path / d).rglob("*")) for d in ("one", "two")
    }
    assert files["one"] == files["two"]
    # every process returns the run's summary (rank 0's log history: the losses of the global batch)
    printed = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 2 and printed[0]["final_loss"] == printed[1]["final_loss"] == two["final_loss"]


if __name__ == "__main__":  # entry point of the torchrun processes of the loss test
    _worker(*sys.argv[1:4])
