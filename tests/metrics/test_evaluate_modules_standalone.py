"""The `evaluate` modules work where trustvl is not installed, and compute exactly what trustvl.metrics does.

Each module folder ships a copy of ``src/trustvl/metrics/_fairness_core.py`` (the numpy maths that
trustvl's torch metrics build on). Here: the copies are byte-identical to the source; ``evaluate.load`` of
every folder and its ``compute`` run in a subprocess where importing trustvl raises ImportError (a
meta-path finder) and ``src/`` is not on the path, and give trustvl.metrics' values computed in this
process; each folder's ``app.py`` (the metric Space) imports there too and builds its Gradio page without
launching it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trustvl.metrics import max_skew, min_skew, ndkl, ragged_per_query

pytest.importorskip("evaluate")

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "evaluate_metrics"
CORE = ROOT / "src" / "trustvl" / "metrics" / "_fairness_core.py"
NAMES = ("max_skew", "min_skew", "ndkl")
LIBRARY = {"max_skew": max_skew, "min_skew": min_skew, "ndkl": ndkl}

# Runs before the child's script: any import of trustvl fails, as in an environment without it.
BLOCK_TRUSTVL = """
import importlib.abc
import sys

class _NoTrustVL(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "trustvl" or name.startswith("trustvl."):
            raise ImportError(f"trustvl is not installed here ({name})")
        return None

sys.meta_path.insert(0, _NoTrustVL())
"""


def _run_without_trustvl(script: str, tmp_path: Path, timeout: float = 240) -> dict:
    """Run ``script`` (which prints one JSON line last) in a child that cannot import trustvl."""
    src = str(ROOT / "src")
    path = [p for p in sys.path if p and Path(p).resolve() != Path(src).resolve()]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(path),
        "HF_MODULES_CACHE": str(tmp_path / "modules"),  # a fresh copy of the module and its core
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    code = BLOCK_TRUSTVL + script + "\nassert not [m for m in sys.modules if m.split('.')[0] == 'trustvl']\n"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _random_case(seed: int, ragged: bool):
    rng = np.random.default_rng(seed)
    m = 2 + seed % 3
    lengths = rng.integers(5, 40, size=6) if ragged else np.full(6, 30)
    predictions = [rng.integers(0, m, size=int(n)).tolist() for n in lengths]
    q = rng.random(m) + 0.05
    return predictions, (q / q.sum()).tolist(), int(rng.integers(1, int(lengths.min()) + 1))


CASES = [_random_case(seed, ragged=seed % 2 == 1) for seed in range(4)]


@pytest.mark.parametrize("name", NAMES)
def test_shipped_core_is_identical_to_the_source(name):
    copy = MODULES / name / CORE.name
    assert copy.read_bytes() == CORE.read_bytes(), f"run: python scripts/sync_evaluate_modules.py ({copy})"
    # the module imports it relatively, on one line, so evaluate's dependency parser copies it along
    assert "from ._fairness_core import per_query\n" in (MODULES / name / f"{name}.py").read_text()


def test_app_is_identical_in_every_folder():
    apps = {name: (MODULES / name / "app.py").read_bytes() for name in NAMES}
    assert len(set(apps.values())) == 1, "run: python scripts/sync_evaluate_modules.py"


def test_sync_script_reports_no_stale_copy():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sync_evaluate_modules.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", NAMES)
def test_module_files_need_no_trustvl(name):
    folder = MODULES / name
    for path in folder.glob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            assert not line.lstrip().startswith(("import trustvl", "from trustvl")), (path, line)
    requirements = (folder / "requirements.txt").read_text().split()
    assert "trustvl" not in requirements and {"numpy", "evaluate", "datasets"} <= set(requirements)
    from huggingface_hub import metadata_load

    card = metadata_load(folder / "README.md")  # the Hub's own parser of the card's front matter
    assert card["sdk"] == "gradio" and card["app_file"] == "app.py" and card["sdk_version"]
    assert "metric" in card["tags"] and len(card["short_description"]) <= 60
    assert (folder / "app.py").is_file()


def test_modules_without_trustvl_give_trustvl_values(tmp_path):
    script = f"""
import json
import evaluate
cases = json.loads({json.dumps(json.dumps(CASES))})
out = {{}}
for name in {list(NAMES)!r}:
    metric = evaluate.load({str(MODULES)!r} + "/" + name)
    out[name] = []
    for predictions, target, k in cases:
        kwargs = {{}} if name == "ndkl" else {{"k": k}}
        out[name].append(metric.compute(predictions=predictions, target=target, **kwargs))
errors = {{}}
metric = evaluate.load({str(MODULES)!r} + "/max_skew")
for label, kwargs in {{
    "sum": dict(predictions=[[0, 1]], target=[0.5, 0.6], k=1),
    "range": dict(predictions=[[0, 2]], target=[0.5, 0.5], k=1),
    "zero": dict(predictions=[[0, 1]], target=[1.0, 0.0], k=1),
    "k": dict(predictions=[[0, 1]], target=[0.5, 0.5], k=3),
}}.items():
    try:
        metric.compute(**kwargs)
    except ValueError as exc:
        errors[label] = str(exc)
out["errors"] = errors
print(json.dumps(out))
"""
    out = _run_without_trustvl(script, tmp_path)
    for name in NAMES:
        for (predictions, target, k), result in zip(CASES, out[name], strict=True):
            args = (target,) if name == "ndkl" else (target, k)
            expected = ragged_per_query(LIBRARY[name], predictions, *args)
            assert set(result) == {name, "per_query"}
            assert result["per_query"] == pytest.approx(expected.tolist(), rel=1e-12, abs=1e-15)
            assert result[name] == pytest.approx(float(expected.mean()), rel=1e-12, abs=1e-15)
    # bad input: the same message as trustvl's (a ValueError there, TrustVLInputError here)
    library_errors = {}
    for label, (predictions, target, k) in {
        "sum": ([[0, 1]], [0.5, 0.6], 1),
        "range": ([[0, 2]], [0.5, 0.5], 1),
        "zero": ([[0, 1]], [1.0, 0.0], 1),
        "k": ([[0, 1]], [0.5, 0.5], 3),
    }.items():
        with pytest.raises(ValueError) as info:
            max_skew(predictions, target, k)
        library_errors[label] = str(info.value)
    assert out["errors"] == library_errors


def test_metric_spaces_build_without_trustvl(tmp_path):
    pytest.importorskip("gradio")
    script = f"""
import json
import runpy
import gradio as gr
out = {{}}
for name in {list(NAMES)!r}:
    ns = runpy.run_path({str(MODULES)!r} + "/" + name + "/app.py", run_name="space_app")  # not __main__: no launch
    assert isinstance(ns["demo"], gr.Blocks)
    result = ns["compute"](ns["metric"], "[[0, 0, 0, 1], [0, 1, 1, 0]]", "[0.5, 0.5]", 3)
    try:
        ns["compute"](ns["metric"], "[[0, 1]]", "[0.5, 0.6]", 1)
        message = None
    except gr.Error as exc:
        message = str(exc)
    out[name] = {{"result": result, "error": message, "card": "# Metric Card" in ns["card_text"]()}}
print(json.dumps(out))
"""
    out = _run_without_trustvl(script, tmp_path)
    predictions = [[0, 0, 0, 1], [0, 1, 1, 0]]
    for name in NAMES:
        args = ([0.5, 0.5],) if name == "ndkl" else ([0.5, 0.5], 3)
        expected = LIBRARY[name](predictions, *args)
        assert out[name]["result"]["per_query"] == pytest.approx(expected.tolist(), rel=1e-12, abs=1e-15)
        assert "target sums to" in out[name]["error"]
        assert out[name]["card"]
