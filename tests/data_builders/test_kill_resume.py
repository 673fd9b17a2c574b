"""A kill at any moment of a build is followed by a resume that ends with the same bytes (issue #15).

Kills are injected with ``TRUSTVL_FAULT`` (:mod:`trustvl.utils.faults`): the child process ends with
``os._exit(137)``, as under ``kill -9``, at the n-th pass of a point: just before or just after one of the
atomic renames every record, shard and card goes through. Each case then checks that trustvl refuses the
half-built folder and that ``--resume`` finishes it with files identical to an uninterrupted build.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trustvl.errors import TrustVLInputError
from trustvl.hub.loading import load_dataset_any

SRC = str(Path(__file__).resolve().parents[2] / "src")
BUILDS = {
    # 40 + 8 scenes in shards of 8: the record, 6 shards and the card are 8 atomic writes
    "synthworld": (
        "from trustvl.data_builders.synthworld import SynthWorldConfig, build_synthworld_dataset;"
        "import sys; build_synthworld_dataset(sys.argv[1], SynthWorldConfig(), n_train=40, n_test=8, seed=3,"
        " shard_size=8, progress=False, num_proc=int(sys.argv[2]) if sys.argv[2:] else None)"
    ),
    # 8 occupations x 1 base x 2 variants in shards of 2 bases: the record, 4 shards, the card, the record
    "counterfactuals": (
        "from trustvl.data_builders.cf_alpha.synthworld_stages import build_synthworld_counterfactuals,"
        " synthworld_counterfactual_config; from trustvl.data_builders.synthworld import SynthWorldRenderer,"
        " SynthWorldConfig; import sys; r = SynthWorldRenderer(SynthWorldConfig(), seed=0);"
        " build_synthworld_counterfactuals(sys.argv[1], synthworld_counterfactual_config(r, variants_per_base=2,"
        " n_base_per_prompt=1, shard_size=2, seed=0), renderer=r, progress=False,"
        " num_proc=int(sys.argv[2]) if sys.argv[2:] else None)"
    ),
}
SPLIT = {"synthworld": ("train", 40), "counterfactuals": ("train", 16)}


def _build(out: Path, fault: str | None = None, kind: str = "synthworld") -> int:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("TRUSTVL_FAULT", None)
    if fault:
        env["TRUSTVL_FAULT"] = fault
    # a fault counts its passes per process: the killed run renders in one process, so the n-th write is
    # the same one every time; the straight run and the resume use every core (the same bytes)
    argv = [str(out)] + (["1"] if fault else [])
    return subprocess.run([sys.executable, "-c", BUILDS[kind], *argv], env=env, timeout=300).returncode


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


_STRAIGHT: dict[str, dict[str, bytes]] = {}


def _without_timing(files: dict[str, bytes]) -> dict[str, bytes]:
    out = {k: v for k, v in files.items() if k != "build_config.json"}
    card = out["README.md"].decode().splitlines()
    out["README.md"] = "\n".join(line for line in card if "build time of the last run" not in line).encode()
    return out


def _straight(kind: str, tmp_path_factory) -> dict[str, bytes]:
    if kind not in _STRAIGHT:
        out = tmp_path_factory.mktemp(f"straight-{kind}") / "data"
        assert _build(out, kind=kind) == 0
        _STRAIGHT[kind] = _files(out)
    return _STRAIGHT[kind]


@pytest.mark.parametrize(
    ("kind", "fault"),
    [("synthworld", "atomic-write:before-rename:1"), ("synthworld", "atomic-write:after-rename:1"),
     ("synthworld", "atomic-write:before-rename:4"), ("synthworld", "atomic-write:after-rename:6"),
     ("synthworld", "atomic-write:before-rename:8"),
     ("counterfactuals", "atomic-write:after-rename:1"), ("counterfactuals", "atomic-write:before-rename:3"),
     ("counterfactuals", "atomic-write:after-rename:4"), ("counterfactuals", "atomic-write:before-rename:6")],
)  # fmt: skip
def test_a_killed_build_resumes_to_identical_files(tmp_path, tmp_path_factory, kind, fault):
    straight = _straight(kind, tmp_path_factory)
    out = tmp_path / "data"
    assert _build(out, fault, kind) == 137  # killed where the fault says
    assert "README.md" not in _files(out)  # the card is written last
    if (out / "synthworld_config.json").is_file() or (out / "build_config.json").is_file():
        with pytest.raises(TrustVLInputError, match="unfinished build"):
            load_dataset_any(out, split="train")
    assert _build(out, kind=kind) == 0  # the resume
    resumed = _files(out)
    if kind == "counterfactuals":  # its record and card state this run's wall time: compare the rest
        resumed, straight = _without_timing(resumed), _without_timing(straight)
    assert resumed == straight  # same names, same bytes: no duplicate, no gap, no stray temp file
    split, n = SPLIT[kind]
    assert len(load_dataset_any(out, split=split)) == n
