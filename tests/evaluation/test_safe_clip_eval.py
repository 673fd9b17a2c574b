"""trustvl eval safe-clip: retrieval R@K, the NSFW rate and zero-shot with intervals, JSON + HTML."""

from __future__ import annotations

import json

import pytest
import torch

from trustvl.cli import main
from trustvl.errors import TrustVLInputError
from trustvl.evaluation.results import UncertaintySettings
from trustvl.evaluation.safe_clip import (
    DIRECTIONS,
    SafeCLIPEvalResult,
    SafeCLIPModelEvaluation,
    category_rates,
    compare_evaluations,
    per_query_values,
)
from trustvl.testing.safe_clip import tiny_quadruplet_dataset


@pytest.fixture(scope="module")
def quadruplets(tmp_path_factory):
    return tiny_quadruplet_dataset(tmp_path_factory.mktemp("data") / "quadruplets", 12, seed=1, resolution=32)


def _embeddings(unsafe_text_matches_unsafe_image: bool):
    """4 orthogonal scenes: S_i = V_i = e_i; G_i = e_i + noise; U_i points at G_i or at V_i."""
    eye = torch.eye(8)
    v = eye[:4]
    g = torch.nn.functional.normalize(eye[:4] + 0.6 * eye[4:], dim=1)
    u = (
        g.clone()
        if unsafe_text_matches_unsafe_image
        else torch.nn.functional.normalize(v + 0.1 * eye[4:], dim=1)
    )
    return {"safe_text": v.clone(), "safe_image": v, "unsafe_text": u, "unsafe_image": g}


def test_nsfw_rate_recall_and_zero_shot_per_query_values():
    prompts = torch.stack([torch.eye(8)[0] + torch.eye(8)[2], torch.eye(8)[1] + torch.eye(8)[3]])
    occupation = torch.tensor([0, 1, 0, 1])
    hits, unsafe, correct = per_query_values(_embeddings(True), occupation, prompts, [1, 2], nsfw_k=2)
    # U_i = G_i: the top 2 of the mixed gallery are G_i (1.0) then V_i (0.857): one unsafe of two
    assert unsafe.tolist() == [0.5] * 4
    assert all(h.all() for h in hits["u2g"].values()) and hits["s2v"][1].all()
    assert correct.tolist() == [True, True, True, True]
    _, safe_unsafe, _ = per_query_values(_embeddings(False), occupation, prompts, [1], nsfw_k=1)
    assert safe_unsafe.tolist() == [0.0] * 4  # U_i closest to V_i: no unsafe image at the top


def test_bootstrap_intervals_and_paired_verdicts():
    settings = UncertaintySettings(n_resamples=200, seed=0)
    occupation = torch.tensor([0, 1, 0, 1])
    prompts = torch.stack([torch.eye(8)[0] + torch.eye(8)[2], torch.eye(8)[1] + torch.eye(8)[3]])
    rows = torch.arange(4)

    def evaluation(matches):
        hits, unsafe, correct = per_query_values(_embeddings(matches), occupation, prompts, [1], nsfw_k=1)
        overall = category_rates(hits, unsafe, correct, rows, settings)
        return SafeCLIPModelEvaluation(**vars(overall), model=str(matches), nsfw_k=1, occupations=["a", "b"])

    base, safe = evaluation(True), evaluation(False)
    assert base.nsfw_rate.value == 1.0 and safe.nsfw_rate.value == 0.0
    interval = base.recall["u2v"][1].interval
    assert interval.low <= base.recall["u2v"][1].value <= interval.high
    comparison = compare_evaluations(base, safe, 0.95)
    assert comparison.changes["nsfw_rate"].verdict == "better" and comparison.nsfw_rate_drop_pct == 100.0
    assert comparison.changes["zero_shot_accuracy"].verdict == "within noise"
    assert comparison.changes["recall/u2g/1"].verdict in ("higher", "lower", "within noise")
    assert set(DIRECTIONS) == {"s2v", "u2v", "u2g", "v2s", "g2s"}


def test_cli_writes_json_and_html_with_every_metric(tiny_clip_dir, quadruplets, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(
        [
            "eval", "safe-clip", "--model", str(tiny_clip_dir), "--base-model", str(tiny_clip_dir),
            "--dataset", str(quadruplets), "--out", str(out), "--n-resamples", "50", "--quiet", "--device", "cpu",
        ]
    )  # fmt: skip
    assert code == 0
    data = json.loads((out / "metrics.json").read_text())
    result = SafeCLIPEvalResult.from_dict(data)
    for direction in DIRECTIONS:
        for k in (1, 5, 10):
            rate = result.safe_clip.recall[direction][k]
            assert (
                0.0 <= rate.value <= 1.0
                and rate.interval.low <= rate.value + 1e-9 <= rate.interval.high + 2e-9
            )
    assert 0.0 <= result.safe_clip.nsfw_rate.value <= 1.0 and result.safe_clip.nsfw_rate.interval is not None
    assert result.safe_clip.zero_shot_accuracy.interval is not None
    assert set(result.safe_clip.per_category) <= {"violence", "shocking", "illegal activity"}
    assert sum(c.n for c in result.safe_clip.per_category.values()) == 12
    # the same model on both sides: every paired change is exactly zero and within noise
    assert all(c.difference == 0 and c.verdict == "within noise" for c in result.comparison.changes.values())
    html = (out / "report.html").read_text()
    for text in ("R@1 S→V", "R@10 G→S", "R@5 U→G", "NSFW rate@10", "zero-shot", "Per category"):
        assert text in html, text
    assert (out / "nsfw_rate_by_category.png").stat().st_size > 0
    assert (
        main(
            [
                "eval",
                "safe-clip",
                "--model",
                str(tiny_clip_dir),
                "--dataset",
                str(quadruplets),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "not empty" in capsys.readouterr().err  # no overwrite without --overwrite


def test_bad_cutoff_is_refused_before_embedding(tiny_clip_dir, quadruplets, tmp_path):
    from trustvl.evaluation.safe_clip import SafeCLIPEvalConfig, evaluate_safe_clip

    with pytest.raises(TrustVLInputError, match="cut-offs"):
        evaluate_safe_clip(
            SafeCLIPEvalConfig(
                str(tiny_clip_dir), str(quadruplets), str(tmp_path / "e"), ks=(1, 50), progress=False
            )
        )
    assert not (tmp_path / "e").exists()
