"""The counterfactual and Safe-CLIP quadruplet builders under ``torchrun`` (2 gloo processes on CPU): the
processes split the shards and write the bytes of one process; a kill of one rank mid-build is followed by
a ``--resume`` with no duplicate and no gap (issue 29).

The kill is ``TRUSTVL_FAULT`` (:mod:`trustvl.utils.faults`) set for one rank only: torchrun runs this file
as its entry point, which sets the fault when ``RANK`` is the one named in ``KILL_RANK`` and then runs the
``trustvl`` command line unchanged.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trustvl.cli import main
from trustvl.hub.loading import load_dataset_any

SRC = str(Path(__file__).resolve().parents[2] / "src")

# 8 occupations x 8 bases x 2 variants in shards of 16 bases: 4 shards, 2 per rank
COUNTERFACTUALS = ["build", "counterfactuals", "--synthworld", "--n_base_per_prompt", "8"]
COUNTERFACTUALS += ["--variants_per_base", "2", "--quiet"]
# 24 + 8 + 8 rows in shards of 8: train 0-2, validation 0, test 0; rank 0 builds train 0, 2 and test 0
QUADRUPLETS = ["build", "safe-clip-quadruplets", "--n_train", "24", "--n_validation", "8", "--n_test", "8"]
QUADRUPLETS += ["--resolution", "32", "--shard_size", "8", "--quiet"]


def _torchrun(argv: list[str], kill: tuple[int, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TRUSTVL_FAULT", None)
    if kill is not None:
        env["KILL_RANK"], env["KILL_AT"] = str(kill[0]), kill[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__]
    return subprocess.run(cmd + argv, env=env, capture_output=True, text=True, timeout=300)


def _files(folder: Path) -> dict[str, bytes]:
    """Every file of a dataset folder but the build record, the card without its wall-time line."""
    out = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    out.pop("build_config.json")  # holds this run's seconds and shard counts (per process)
    card = out["README.md"].decode().splitlines()
    out["README.md"] = "\n".join(line for line in card if "build time" not in line).encode()
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "n_shards", "fault"),
    [
        # rank 1 builds shards 1 and 3: killed before shard 3's rename, shard 1 is on disk
        (COUNTERFACTUALS, 4, "atomic-write:before-rename:2"),
        # rank 1 builds train 1 and validation 0: killed just after train 1's rename
        (QUADRUPLETS, 5, "atomic-write:after-rename:1"),
    ],
    ids=["counterfactuals", "safe-clip-quadruplets"],
)
def test_two_processes_build_the_bytes_of_one_and_survive_a_killed_rank(tmp_path, argv, n_shards, fault):
    assert main([*argv, "--num_proc", "1", "--out", str(tmp_path / "one")]) == 0
    one = _files(tmp_path / "one")
    assert len([name for name in one if name.endswith(".parquet")]) == n_shards

    proc = _torchrun([*argv, "--out", str(tmp_path / "two")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _files(tmp_path / "two") == one  # same shard names, same bytes, same card
    # each process prints its summary: together they built every shard once
    built = [int(n) for n in re.findall(r'n_shards_built"?[=:] ?(\d+)', proc.stdout)]
    assert len(built) == 2 and sum(built) == n_shards and min(built) > 0

    killed = tmp_path / "killed"
    proc = _torchrun([*argv, "--out", str(killed)], kill=(1, fault))
    assert proc.returncode != 0 and "exitcode  : 137" in proc.stderr, proc.stderr[-3000:]
    assert not (killed / "README.md").exists()  # the card is written last, by rank 0 after every shard
    with pytest.raises(Exception, match="unfinished build"):
        load_dataset_any(killed, split="train")
    on_disk = sorted(p.name for p in (killed / "data").glob("*.parquet"))
    assert 0 < len(on_disk) < n_shards  # rank 1 had written a shard, and not all were done

    proc = _torchrun([*argv, "--out", str(killed), "--resume"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _files(killed) == one  # no duplicate, no gap, no stray temporary file
    rows = load_dataset_any(killed, split="train")
    key = ("base_id", "variant_id") if "base_id" in rows.column_names else ("scene_id",)
    ids = [tuple(r[k] for k in key) for r in rows.select_columns(list(key))]
    assert len(ids) == len(set(ids)) == len(load_dataset_any(tmp_path / "one", split="train"))


def test_only_rank_0_refuses_a_non_empty_output_folder(tmp_path, monkeypatch):
    """A slower rank must not refuse the folder that rank 0 has started to write (a race under torchrun)."""
    from trustvl.commands._common import check_output_dir
    from trustvl.errors import TrustVLInputError

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "build_config.json").write_text("{}")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(TrustVLInputError, match="exists and is not empty"):
        check_output_dir(tmp_path / "out")
    monkeypatch.setenv("RANK", "1")
    assert check_output_dir(tmp_path / "out") == tmp_path / "out"
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrustVLInputError, match="existing file"):  # every other check still applies
        check_output_dir(tmp_path / "file")


if __name__ == "__main__":  # the entry point of every torchrun process of the test above
    if os.environ.get("KILL_RANK") == os.environ["RANK"]:
        os.environ["TRUSTVL_FAULT"] = os.environ["KILL_AT"]
    sys.exit(main(sys.argv[1:]))
