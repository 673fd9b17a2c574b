"""The one evaluator (trustvl.evaluation.evaluator): equal to direct metric calls; typed results round-trip
through JSON; the report writer renders one report to Markdown and HTML."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import trustvl.metrics.fairness as F
from trustvl.errors import TrustVLInputError
from trustvl.evaluation.dataset_columns import AttributeColumn
from trustvl.evaluation.evaluator import evaluate_embeddings, fairness_by_attribute
from trustvl.evaluation.report import Figure, Links, Report, Table
from trustvl.evaluation.results import (
    AlphaPoint,
    AlphaSweepResult,
    AttributeEffect,
    ConfidenceInterval,
    EvaluationResult,
    UncertaintySettings,
)
from trustvl.evaluation.tables import (
    effect_table,
    fairness_summary_table,
    per_prompt_table,
    sweep_change_table,
    sweep_table,
)
from trustvl.metrics import (
    gallery_target,
    max_skew,
    min_skew,
    ndkl,
    rank_labels,
    recall_at_k,
    uniform_target,
    worst_group_accuracy,
    zero_shot_accuracy,
)


def _normed(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


@pytest.fixture
def gallery():
    gen = torch.Generator().manual_seed(0)
    n, d, n_classes = 60, 8, 3
    images = _normed(torch.randn(n, d, generator=gen))
    prompts = _normed(torch.randn(n_classes, d, generator=gen))
    captions = _normed(images[:20] + 0.5 * torch.randn(20, d, generator=gen))
    labels = torch.randint(0, n_classes, (n,), generator=gen).numpy()
    tone = AttributeColumn("tone", torch.randint(0, 4, (n,), generator=gen).numpy(), ["a", "b", "c", "d"])
    gender = AttributeColumn("gender", torch.randint(0, 2, (n,), generator=gen).numpy(), ["f", "m"])
    return {
        "images": images,
        "prompts": prompts,
        "captions": captions,
        "labels": labels,
        "attributes": [tone, gender],
        "names": ["x", "y", "z"],
    }


def _evaluate(g, target="uniform", **kw):
    return evaluate_embeddings(
        g["images"],
        g["prompts"],
        prompts=["p x", "p y", "p z"],
        attributes=g["attributes"],
        ks=[5, 20],
        target=target,
        labels=g["labels"],
        class_names=g["names"],
        caption_embeds=g["captions"],
        recall_ks=(1, 5, 50),
        **kw,
    )


@pytest.mark.parametrize("target", ["uniform", "gallery"])
def test_evaluator_equals_direct_metric_calls(gallery, target, monkeypatch):
    monkeypatch.setattr(F, "_CPU_BLOCK_ELEMENTS", 50)  # several blocks of queries
    res = _evaluate(gallery, target)
    scores = gallery["prompts"] @ gallery["images"].T
    for attr in gallery["attributes"]:
        labels = torch.as_tensor(attr.values)
        q = (
            uniform_target(len(attr.names))
            if target == "uniform"
            else gallery_target(labels, len(attr.names))
        )
        ranked = rank_labels(scores, labels)
        got = res.fairness[attr.name]
        assert got.target == pytest.approx(q.tolist()) and got.values == attr.names
        assert got.ndkl_per_query == ndkl(ranked, q).tolist() and got.ndkl == float(ndkl(ranked, q).mean())
        for k in (5, 20):
            assert got.at_k[k].max_skew_per_query == max_skew(ranked, q, k).tolist()
            assert got.at_k[k].min_skew_per_query == min_skew(ranked, q, k).tolist()
            assert got.at_k[k].max_skew == float(max_skew(ranked, q, k).mean())
            shares = np.asarray(got.at_k[k].top_k_shares)
            assert shares.shape == (3, len(attr.names)) and np.allclose(shares.sum(1), 1.0)
        assert got.gallery_share == pytest.approx(np.bincount(attr.values, minlength=len(attr.names)) / 60)
    correct = scores.argmax(0).numpy() == gallery["labels"]
    assert res.zero_shot_top1 == zero_shot_accuracy(scores.T, torch.as_tensor(gallery["labels"]))
    for attr in gallery["attributes"]:
        assert res.worst_group_accuracy[attr.name] == worst_group_accuracy(
            correct, gallery["labels"], attr.values
        )
    for i, name in enumerate(gallery["names"]):
        assert res.per_class_accuracy[name] == pytest.approx(correct[gallery["labels"] == i].mean())
    sim = gallery["captions"] @ gallery["images"][:20].T
    assert res.recall.n_pairs == 20 and set(res.recall.text_to_image) == {1, 5}  # 50 > 20 pairs: skipped
    assert res.recall.text_to_image[5] == recall_at_k(sim, 5)
    assert res.recall.image_to_text[1] == recall_at_k(sim, 1, direction="image_to_text")
    assert res.class_prompts == ["p x", "p y", "p z"]
    # uncertainty is on by default: every mean has an interval, a floor and 200 replicates
    assert res.uncertainty == UncertaintySettings(200, 0, 0.95, "class labels")
    for a in res.fairness.values():
        assert a.ndkl_interval.contains(a.ndkl) and a.ndkl_interval.low >= 0 and a.ndkl_floor > 0
        assert len(a.ndkl_replicates) == 200
        for s in a.at_k.values():
            assert s.max_skew_interval.level == 0.95 and s.min_skew_interval.contains(s.min_skew)
            assert s.max_skew_interval.contains(s.max_skew) and s.max_skew_interval.low >= 0
            assert s.max_skew_floor >= 0 and s.min_skew_floor <= 0
            assert len(s.max_skew_replicates) == len(s.min_skew_replicates) == 200


def test_uncertainty_adds_fields_and_keeps_point_values(gallery):
    with_ci, without = _evaluate(gallery), _evaluate(gallery, uncertainty=None)
    assert without.uncertainty is None
    for name, a in without.fairness.items():
        b = with_ci.fairness[name]
        assert (a.ndkl, a.ndkl_per_query, a.ndkl_interval) == (b.ndkl, b.ndkl_per_query, None)
        for k, s in a.at_k.items():
            assert (s.max_skew, s.min_skew, s.top_k_shares) == (
                b.at_k[k].max_skew,
                b.at_k[k].min_skew,
                b.at_k[k].top_k_shares,
            )
            assert s.max_skew_floor is None and s.max_skew_replicates is None
    assert _evaluate(gallery).to_dict() == with_ci.to_dict()  # seeded: identical reruns
    assert EvaluationResult.from_dict(with_ci.to_dict()) == with_ci


def test_effect_carries_paired_verdicts(gallery):
    ev = _evaluate(gallery)
    same = AttributeEffect.between(ev.fairness["tone"], ev.fairness["tone"], 5)
    assert same.max_skew_change.verdict == same.ndkl_change.verdict == "within noise"
    assert (
        same.max_skew_change.difference == 0.0
        and same.max_skew_floor == ev.fairness["tone"].at_k[5].max_skew_floor
    )
    assert AttributeEffect.from_dict(same.to_dict()) == same


def test_separate_class_prompts_score_zero_shot(gallery):
    other = _normed(torch.randn(3, 8, generator=torch.Generator().manual_seed(5)))
    res = _evaluate(gallery, class_prompts=["c x", "c y", "c z"], class_prompt_embeds=other)
    expected = zero_shot_accuracy((other @ gallery["images"].T).T, torch.as_tensor(gallery["labels"]))
    assert res.zero_shot_top1 == expected and res.class_prompts == ["c x", "c y", "c z"]
    assert res.fairness == _evaluate(gallery).fairness  # the fairness prompts are unchanged


def test_evaluation_result_round_trips_through_json(gallery):
    res = _evaluate(gallery)
    res.fairness["tone"].at_k[5].max_skew_interval = ConfidenceInterval(0.1, 0.3)
    res.fairness["tone"].ndkl_floor = 0.01
    text = json.dumps(res.to_dict())
    back = EvaluationResult.from_dict(json.loads(text))
    assert back == res
    assert isinstance(back.fairness["tone"].at_k[5].max_skew_interval, ConfidenceInterval)
    assert list(json.loads(text)["fairness"]["tone"]["at_k"]) == ["5", "20"]
    no_labels = evaluate_embeddings(
        gallery["images"],
        gallery["prompts"],
        prompts=["a", "b", "c"],
        attributes=gallery["attributes"],
        ks=[5],
    )
    assert no_labels.zero_shot_top1 is None and no_labels.recall is None
    assert EvaluationResult.from_dict(json.loads(json.dumps(no_labels.to_dict()))) == no_labels


def test_alpha_sweep_result_round_trips_and_tabulates(gallery):
    ev = _evaluate(gallery)
    sweep = AlphaSweepResult(
        "m", "d", "test", 60, [5, 20], "tone", [AlphaPoint(0.0, ev), AlphaPoint(1.0, ev)]
    )
    assert AlphaSweepResult.from_dict(json.loads(json.dumps(sweep.to_dict()))) == sweep
    assert sweep.k_shown == 20 and sweep.at_alpha(1) is ev
    with pytest.raises(KeyError, match="alpha=0.5"):
        sweep.at_alpha(0.5)
    table = sweep_table(sweep)
    assert (
        table.headers[:3] == ["α", "zero-shot top-1", "R@5 text→image"] and "tone MaxSkew@20" in table.headers
    )
    at20 = ev.fairness["tone"].at_k[20]
    low, high = at20.max_skew_interval.low, at20.max_skew_interval.high
    assert table.rows[1][:2] == ["1", ev.zero_shot_top1]
    note = (
        " (near the sampling floor at this gallery size)" if at20.max_skew_interval.bootstrap_biased else ""
    )
    assert table.rows[1][3] == f"{at20.max_skew:.3f} [{low:.3f}, {high:.3f}]{note}"
    assert table.rows[-1][0] == "floor" and table.rows[-1][3] == f"{at20.max_skew_floor:.3f}"
    changes = sweep_change_table(sweep)
    assert changes.rows == [["1", *["+0.000 [+0.000, +0.000], within noise"] * 2]]
    assert sweep.best_alpha("tone") == 0.0 and set(sweep.effects()) == {1.0}
    effect = AttributeEffect.between(ev.fairness["tone"], ev.fairness["tone"], 20)
    assert effect.max_skew_drop_pct == 0.0 and effect.base_ndkl == ev.fairness["tone"].ndkl


def test_sweep_monotonicity_flags_only_rises_beyond_noise(gallery, tmp_path):
    from trustvl.evaluation.cf_alpha import write_sweep_report

    fair = _evaluate(gallery)
    # at α = 0.5 every prompt prefers tone "a": MaxSkew@k of tone jumps far beyond the bootstrap noise
    tone_a = torch.as_tensor(gallery["attributes"][0].values == 0)
    biased_images = gallery["images"].clone()
    biased_images[tone_a] += 3 * gallery["prompts"].sum(0)
    biased = _evaluate({**gallery, "images": _normed(biased_images)})
    sweep = AlphaSweepResult(
        "m",
        "d",
        "test",
        60,
        [5, 20],
        "tone",
        [AlphaPoint(0.0, fair), AlphaPoint(0.5, biased), AlphaPoint(1.0, fair)],
    )
    rises = sweep.rises()
    assert sweep.monotone is False
    assert ("tone", "max_skew") in {(r.attribute, r.metric) for r in rises}
    assert {(r.alpha, r.previous_alpha) for r in rises} == {(0.5, 0.0)}  # the step 0.5 → 1 gets fairer
    assert all(r.change.verdict == "worse" and r.change.interval.low > 0 for r in rises)
    flat = AlphaSweepResult(
        "m", "d", "test", 60, [5, 20], "tone", [AlphaPoint(0.0, fair), AlphaPoint(1.0, fair)]
    )
    assert flat.monotone is True and flat.rises() == []

    data = json.loads(json.dumps(sweep.to_dict()))
    assert data["monotone"] is False and {r["alpha"] for r in data["rises"]} == {0.5}
    assert [c["alpha"] for c in data["changes_vs_previous"]] == [0.5, 1.0]
    assert AlphaSweepResult.from_dict(data) == sweep
    steps = sweep_change_table(sweep, against="previous")
    assert [row[0] for row in steps.rows] == ["0 → 0.5", "0.5 → 1"]
    assert steps.rows[0][1].endswith("worse") and steps.rows[1][1].endswith("better")
    with pytest.raises(TrustVLInputError, match="against='next'"):
        sweep_change_table(sweep, against="next")
    write_sweep_report(tmp_path, sweep)
    report = (tmp_path / "report.md").read_text()
    assert "**Not monotone**" in report and "tone MaxSkew@20 rises from α = 0 to 0.5" in report
    write_sweep_report(tmp_path / "flat", flat)
    assert "**Monotone within noise**" in (tmp_path / "flat" / "report.md").read_text()


def test_bad_input_is_a_clear_error(gallery):
    with pytest.raises(TrustVLInputError, match="target='fair'"):
        _evaluate(gallery, target="fair")
    with pytest.raises(TrustVLInputError, match="k=61 exceeds the gallery size 60"):
        evaluate_embeddings(
            gallery["images"],
            gallery["prompts"],
            prompts=["a"] * 3,
            attributes=gallery["attributes"],
            ks=[61],
        )
    short = AttributeColumn("short", np.zeros(59, dtype=np.int64), ["a", "b"])
    with pytest.raises(TrustVLInputError, match="59 entries but scores rank 60"):
        fairness_by_attribute(gallery["prompts"] @ gallery["images"].T, [short], [5])
    with pytest.raises(TrustVLInputError, match="class_names"):
        evaluate_embeddings(
            gallery["images"],
            gallery["prompts"],
            prompts=["a"] * 3,
            attributes=gallery["attributes"],
            ks=[5],
            labels=gallery["labels"],
        )
    negative = AttributeColumn("g", np.r_[np.zeros(59, dtype=np.int64), -1], ["a", "b"])
    with pytest.raises(TrustVLInputError, match=r"attribute 'g' has value -1 at image 59; expected ids 0..1"):
        fairness_by_attribute(gallery["prompts"] @ gallery["images"].T, [negative], [5])
    absent = AttributeColumn("absent", np.zeros(60, dtype=np.int64) * 2, ["a", "b"])
    with pytest.raises(TrustVLInputError, match=r"target\[1\] = 0"):  # gallery target of an absent value
        fairness_by_attribute(gallery["prompts"] @ gallery["images"].T, [absent], [5], target="gallery")


def test_report_renders_markdown_and_html(gallery, tmp_path):
    ev = _evaluate(gallery)
    report = Report("A **bold** title", intro=["Model `m` on <data>."])
    report.add("Summary", fairness_summary_table(ev), per_prompt_table(ev, "tone", 5))
    report.add("Plots", Figure("plots/x.png", "a plot"), Links(["metrics.json"]), "plain text")
    report.write(tmp_path)
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    assert (
        md.startswith("# A **bold** title")
        and "| attribute | metric | mean over prompts [95% interval] |" in md
        and "![a plot](plots/x.png)" in md
    )
    assert "- [metrics.json](metrics.json)" in md and "Model `m` on <data>." in md
    assert "<code>m</code> on &lt;data&gt;" in html and "<img src='plots/x.png' alt='a plot'>" in html
    assert "<td>p x</td>" in html and "<a href='metrics.json'>" in html
    assert math.isclose(
        float(md.split("| tone | MaxSkew@5 | ")[1].split(" ")[0]),
        ev.fairness["tone"].at_k[5].max_skew,
        abs_tol=1e-3,
    )
    table = Table(["a"], [[1.23456]])
    Report("t", sections=[]).add("s", table)
    only_md = tmp_path / "md"
    only_md.mkdir()
    report.write(only_md, html_name=None)
    assert (only_md / "report.md").exists() and not (only_md / "report.html").exists()


def test_report_shows_verdicts_in_plain_words(gallery, tmp_path):
    # a second "model" whose prompts reverse every ranking, on the same gallery (so the same resamples)
    flat = AttributeColumn("skin_tone", gallery["attributes"][0].values, ["a", "b", "c", "d"])
    g = dict(gallery, attributes=[flat])
    base = _evaluate(g)
    shifted = dict(g, prompts=-gallery["prompts"])
    after = _evaluate(shifted)
    effect = {
        "skin_tone": AttributeEffect.between(base.fairness["skin_tone"], after.fairness["skin_tone"], 20)
    }
    table = effect_table(effect)
    assert table.headers == [
        "attribute",
        "metric",
        "base [95%]",
        "CF_α (α = 1) [95%]",
        "change [95%]",
        "verdict",
        "floor",
    ]
    assert [r[:2] for r in table.rows] == [["skin tone", "MaxSkew@20"], ["skin tone", "NDKL"]]
    assert {r[5] for r in table.rows} <= {"better", "worse", "within noise"}
    assert table.rows[0][4].startswith(("+", "-"))
    report = Report("r")
    report.add("Effect", table)
    report.write(tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert "skin tone" in html and table.rows[0][5] in html and "skin_tone" not in html


def test_job_uncertainty_settings():
    assert UncertaintySettings.of(0, 0) is None  # off
    assert UncertaintySettings.of(300, 7) == UncertaintySettings(300, 7)
    with pytest.raises(TrustVLInputError, match="n_resamples = 1"):
        UncertaintySettings.of(1, 0)
