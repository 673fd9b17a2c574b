"""The `evaluate` modules in evaluate_metrics/ load offline from their folders and agree with trustvl.metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from trustvl.metrics import max_skew, min_skew, ndkl

evaluate = pytest.importorskip("evaluate")

MODULES = Path(__file__).resolve().parents[2] / "evaluate_metrics"


@pytest.fixture(scope="module")
def loaded():
    return {name: evaluate.load(str(MODULES / name)) for name in ("ndkl", "max_skew", "min_skew")}


@pytest.mark.parametrize("name", ["ndkl", "max_skew", "min_skew"])
def test_module_folder_is_complete(name):
    folder = MODULES / name
    assert (folder / f"{name}.py").is_file()
    assert (folder / "requirements.txt").read_text().split() == ["datasets", "evaluate", "numpy"]
    assert (folder / "app.py").is_file() and (folder / "_fairness_core.py").is_file()
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n") and "sdk:" in card and "- metric" in card
    for section in (
        "## Metric Description",
        "## How to Use",
        "### Inputs",
        "### Output Values",
        "### Examples",
    ):
        assert section in card
    assert "## Limitations" in card and "## Citation" in card
    # evaluate's dependency parser breaks on `import a, b`: keep one import per line
    for line in (folder / f"{name}.py").read_text().splitlines():
        assert not (line.startswith("import ") and "," in line), line


def _random_inputs(seed: int, m: int, n_queries: int, n: int):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, m, size=(n_queries, n))
    q = rng.random(m) + 0.05
    return labels.tolist(), (q / q.sum()).tolist()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ndkl_module_matches_library(loaded, seed):
    metric = loaded["ndkl"]
    assert metric is not None  # bool(metric) is False for evaluate modules
    predictions, target = _random_inputs(seed, m=2 + seed, n_queries=5, n=40)
    result = metric.compute(predictions=predictions, target=target)
    expected = ndkl(predictions, target)
    assert set(result) == {"ndkl", "per_query"}
    assert result["per_query"] == pytest.approx(expected.tolist(), rel=1e-12)
    assert result["ndkl"] == pytest.approx(float(expected.mean()), rel=1e-12)


@pytest.mark.parametrize("name,fn", [("max_skew", max_skew), ("min_skew", min_skew)])
@pytest.mark.parametrize("seed", [0, 1])
def test_skew_modules_match_library(loaded, name, fn, seed):
    metric = loaded[name]
    assert metric is not None
    predictions, target = _random_inputs(seed, m=3, n_queries=6, n=30)
    for k in (1, 7, 30):
        result = metric.compute(predictions=predictions, target=target, k=k)
        expected = fn(predictions, target, k)
        assert set(result) == {name, "per_query"}
        assert result["per_query"] == pytest.approx(expected.tolist(), rel=1e-12, abs=1e-15)
        assert result[name] == pytest.approx(float(expected.mean()), rel=1e-12, abs=1e-15)


def test_modules_accept_rankings_of_different_lengths(loaded):
    predictions = [[0, 1, 0], [1, 1, 0, 0, 1]]
    result = loaded["ndkl"].compute(predictions=predictions, target=[0.5, 0.5])
    expected = [float(ndkl(p, [0.5, 0.5])[0]) for p in predictions]
    assert result["per_query"] == pytest.approx(expected)
    skewed = loaded["max_skew"].compute(predictions=predictions, target=[0.5, 0.5], k=2)
    assert skewed["per_query"] == pytest.approx([float(max_skew(p, [0.5, 0.5], 2)[0]) for p in predictions])


def test_module_reports_bad_input_like_the_library(loaded):
    # a plain ValueError (the module runs without trustvl) with trustvl's message
    with pytest.raises(ValueError, match=r"target sums to"):
        loaded["ndkl"].compute(predictions=[[0, 1]], target=[0.5, 0.6])
    with pytest.raises(ValueError, match=r"needs `target`"):
        loaded["min_skew"].compute(predictions=[[0, 1]], k=1)


def test_module_add_batch_then_compute(loaded):
    metric = loaded["min_skew"]
    metric.add_batch(predictions=[[0, 1, 1], [1, 1, 1]])
    metric.add(predictions=[0, 0, 1])
    result = metric.compute(target=[0.5, 0.5], k=3)
    expected = min_skew(torch.tensor([[0, 1, 1], [1, 1, 1], [0, 0, 1]]), [0.5, 0.5], 3)
    assert result["per_query"] == pytest.approx(expected.tolist())
