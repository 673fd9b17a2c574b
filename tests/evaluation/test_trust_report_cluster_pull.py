"""The trust report's second spurious measure (issue 25 item 4): the pull of a cluster (towards the class its
gaps favour) and of the top cluster's feature (towards the class it pulls most; the one ``--compare`` reads),
on hand-made predictions where the pull and the RaVL gap disagree, its skip, its paired interval and its rows
on the page. Here the feature's images are the cluster's (``test_trust_report_spurious_feature.py`` builds
features from region embeddings)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trustvl.evaluation.results import UncertaintySettings
from trustvl.evaluation.trust_report import ModelTrustReport, SpuriousAxis, TrustReport
from trustvl.evaluation.trust_report.cluster_pull import cluster_pull, favoured_class, pull_towards
from trustvl.evaluation.trust_report.compare import compare_reports
from trustvl.evaluation.trust_report.estimates import weighted_mean
from trustvl.evaluation.trust_report.render import glance_table, trust_report_page, verdict_table
from trustvl.evaluation.trust_report.schema import ClusterFinding
from trustvl.evaluation.trust_report.spurious_axis import cluster_score
from trustvl.evaluation.trust_report.spurious_feature import feature_pull
from trustvl.evaluation.trust_report.summary import summary_lines
from trustvl.metrics import gallery_resample_counts

CLASSES = ["doctor", "nurse", "chef"]
SETTINGS = UncertaintySettings(n_resamples=200, seed=0)
N = 600  # 200 images per class; the even images hold the cluster


def _world():
    labels = np.repeat(np.arange(3), N // 3)
    member = np.arange(N) % 2 == 0
    return labels, member


def _baseline_predictions(labels, member, doctors_out_right: float = 0.8, pulled: float = 0.2):
    """Doctors holding the cluster all right, the others ``doctors_out_right``; other classes' images holding
    it called doctor at the rate ``pulled``, right otherwise (the cluster is the doctors' mark)."""
    preds = labels.copy()
    for c in range(3):
        idx = np.flatnonzero(labels == c)
        if c == 0:
            out = idx[~member[idx]]
            preds[out[int(doctors_out_right * len(out)) :]] = 1
        else:
            inside = idx[member[idx]]
            preds[inside[: int(pulled * len(inside))]] = 0
    return preds


def _axis(name, labels, member, preds) -> ModelTrustReport:
    correct = (preds == labels).astype(np.float64)
    score, gaps = cluster_score(member, labels, correct, 3, SETTINGS)
    pulled = cluster_pull(member, labels, preds, gaps, SETTINGS, CLASSES)
    finding = ClusterFinding(
        rank=1,
        cluster_id=7,
        score=score,
        influence=1.0,
        size=int(member.sum()),
        n_images_in=int(member.sum()),
        classes_hurt=[],
        favoured_class=None if pulled.favoured is None else CLASSES[pulled.favoured],
        pull=pulled.pull,
        pull_note=pulled.reason,
        member_images=member,
    )
    axis = SpuriousAxis(
        "hand-made",
        "occupation",
        len(labels),
        len(labels),
        1,
        weighted_mean(correct, SETTINGS),
        "ok",
        [finding],
        class_names=CLASSES,
        feature=feature_pull(
            member, labels, preds, CLASSES, SETTINGS, top_cluster_id=7, n_regions=int(member.sum())
        ),
        labels=labels,
        correct=correct,
        predictions=preds,
    )
    return ModelTrustReport(name, spurious=axis)


def _verdicts(model: ModelTrustReport, base: ModelTrustReport) -> dict[str, object]:
    out = {}
    for v in compare_reports(model, base, SETTINGS):
        key = "pull" if v.metric.startswith("pull") else "gap" if v.metric.startswith("RaVL gap") else "acc"
        out[key] = v
    return out


def test_pull_falls_where_the_gap_does_not():
    labels, member = _world()
    base_preds = _baseline_predictions(labels, member)
    # the fix: the pulled nurses and chefs are still wrong, but no longer called doctor (nurse <-> chef)
    fixed_preds = base_preds.copy()
    swapped = (labels != 0) & (base_preds == 0)
    fixed_preds[swapped] = 3 - labels[swapped]
    base, fixed = _axis("base", labels, member, base_preds), _axis("fixed", labels, member, fixed_preds)
    assert base.spurious.clusters[0].favoured_class == "doctor"
    assert base.spurious.clusters[0].pull.value == pytest.approx(0.2)
    v = _verdicts(fixed, base)
    assert v["gap"].change.difference == 0 and v["gap"].verdict == "within noise"
    assert v["acc"].verdict == "within noise"
    assert v["pull"].model.value == pytest.approx(0.0) and v["pull"].verdict == "better"
    assert v["pull"].lower_is_better is True
    assert (
        "towards doctor (share of other classes' images called doctor, with the feature minus without)"
        in v["pull"].metric
    )
    assert base.spurious.feature.towards == "doctor" and base.spurious.feature.pull.value == pytest.approx(
        0.2
    )
    # the other way round the baseline's feature pulls towards nurse (its chefs called nurse): that class is
    # compared, and the model that pulls to doctor instead reads better on it
    back = _verdicts(base, fixed)["pull"]
    assert fixed.spurious.feature.towards in ("nurse", "chef") and back.verdict == "better"


def test_gap_falls_where_the_pull_does_not():
    labels, member = _world()
    base_preds = _baseline_predictions(labels, member, doctors_out_right=0.4, pulled=0.1)
    # the fix: doctors without the cluster now right too; other classes' images untouched
    fixed_preds = base_preds.copy()
    fixed_preds[labels == 0] = 0
    base, fixed = _axis("base", labels, member, base_preds), _axis("fixed", labels, member, fixed_preds)
    v = _verdicts(fixed, base)
    assert v["gap"].verdict == "better" and v["gap"].change.difference < -0.5
    assert v["pull"].change.difference == 0 and v["pull"].verdict == "within noise"


def test_a_cluster_favouring_no_class_can_still_pull(tmp_path):
    """Nurses holding the cluster are called chef: no class's gap is above 0, so the cluster favours none, but
    its feature pulls other classes' images towards chef, and that is what the compare reads."""
    labels, member = _world()
    preds = labels.copy()
    preds[member & (labels == 1)] = 2
    base = _axis("base", labels, member, preds)
    top = base.spurious.clusters[0]
    assert top.favoured_class is None and top.pull is None and "favours none" in top.pull_note
    feature = base.spurious.feature
    assert feature.towards == "chef" and feature.pull.value == pytest.approx(0.5)
    report = TrustReport(base, SETTINGS, base, compare_reports(base, base, SETTINGS))
    assert [v.metric.split(" ")[0] for v in report.verdicts] == ["zero-shot", "RaVL", "pull"]
    assert report.verdicts[-1].verdict == "within noise" and "towards chef" in report.verdicts[-1].metric
    assert favoured_class(np.array([-0.1, 0.0, -0.3])) is None and favoured_class([0.1, 0.3, -0.2]) == 1


def test_a_feature_that_pulls_nothing_is_not_compared(tmp_path):
    """The gap favours doctor, but the other classes' images holding the cluster are called doctor *less*
    often (pull < 0) and no class's pull is above 0: a fix that brings the pull back to 0 undoes nothing
    spurious and must not read worse."""
    labels, member = _world()
    base_preds = _baseline_predictions(labels, member, pulled=0.0)
    away = np.flatnonzero((labels != 0) & ~member)[::10]  # 10 % of the others without the cluster: "doctor"
    base_preds[away] = 0
    fixed_preds = base_preds.copy()
    fixed_preds[away] = labels[away]
    base, fixed = _axis("base", labels, member, base_preds), _axis("fixed", labels, member, fixed_preds)
    top = base.spurious.clusters[0]
    assert (
        top.favoured_class == "doctor"
        and top.pull.value == pytest.approx(-0.1)
        and top.pull.interval.high < 0
    )
    assert "pull" not in _verdicts(fixed, base)
    report = TrustReport(fixed, SETTINGS, base, compare_reports(fixed, base, SETTINGS))
    html = trust_report_page(report, tmp_path).to_html().replace("&#x27;", "'")
    assert base.spurious.feature.towards == "chef" and base.spurious.feature.pull.value == 0
    assert (
        "The pull of the baseline's top-cluster feature (cluster 7) is not compared: it does not pull other"
        " classes' images towards any class beyond noise (largest: chef 0.000 [" in html
    )


def test_pull_is_undefined_without_other_class_images_on_both_sides():
    labels, member = _world()
    member = labels == 0  # only doctors hold the cluster
    assert pull_towards(member, labels, labels, 0, SETTINGS) is None
    gaps = np.array([0.2, -0.1, 0.0])
    got = cluster_pull(member, labels, labels, gaps, SETTINGS, CLASSES)
    assert got.favoured == 0 and got.pull is None and "other than doctor" in got.reason


def test_pull_interval_is_paired_on_the_gaps_resamples():
    labels, member = _world()
    base_preds = _baseline_predictions(labels, member)
    fixed_preds = base_preds.copy()
    fixed_preds[(labels != 0) & (base_preds == 0)] = labels[(labels != 0) & (base_preds == 0)]
    base, fixed = _axis("base", labels, member, base_preds), _axis("fixed", labels, member, fixed_preds)
    v = _verdicts(fixed, base)["pull"]
    # each replicate is the pull of the resampled images, on the very resamples the gap's interval uses
    counts = gallery_resample_counts(N, SETTINGS.n_resamples, SETTINGS.seed)
    for r in (0, 17, 199):
        idx = torch.repeat_interleave(torch.arange(N), counts[r].long()).numpy()
        lab, mem, pred = labels[idx], member[idx], base_preds[idx]
        other = lab != 0
        want = (pred[other & mem] == 0).mean() - (pred[other & ~mem] == 0).mean()
        assert v.baseline.replicates[r] == pytest.approx(want)
    # paired: the change's interval comes from the per-resample differences, far narrower than the two
    # models' intervals side by side would give
    diffs = np.asarray(v.model.replicates) - np.asarray(v.baseline.replicates)
    assert v.change.interval.high - v.change.interval.low == pytest.approx(2 * 1.959964 * diffs.std(ddof=1))
    assert v.change.interval.high < 0


def test_pull_rows_on_the_page(tmp_path):
    labels, member = _world()
    base_preds = _baseline_predictions(labels, member)
    fixed_preds = base_preds.copy()
    fixed_preds[(labels != 0) & (base_preds == 0)] = labels[(labels != 0) & (base_preds == 0)]
    base, fixed = _axis("base", labels, member, base_preds), _axis("fixed", labels, member, fixed_preds)
    report = TrustReport(fixed, SETTINGS, base, compare_reports(fixed, base, SETTINGS))
    row = next(r for r in verdict_table(report).rows if r[1].startswith("pull"))
    assert row[1] == (
        "pull of the baseline's top-cluster feature (cluster 7 and alike) towards doctor"
        " (share of other classes' images called doctor, with the feature minus without)"
    )
    assert row[2] == "lower" and row[3].startswith("0.200 [") and row[4].startswith("0.000")
    assert row[5].startswith("−0.200 [") or row[5].startswith("-0.200 [")
    assert "better" in row[5]
    glance = {r[1]: r for r in glance_table(report).rows}
    assert glance["top cluster's feature: pull towards doctor (with minus without)"][3].startswith("0.200 [")
    html = trust_report_page(report, tmp_path).to_html()
    assert "favours: pull [95%]" in html and "doctor 0.200 [" in html
    assert "It pulls other classes' images towards doctor most: 0.200 [" in html
    spurious_line = next(
        line for line in summary_lines(TrustReport(base, SETTINGS)) if line.startswith("spurious:")
    )
    assert "; its feature (300 images) pulls towards doctor 0.200 [" in spurious_line
    # the JSON keeps the finding's pull and class names (additive fields, same schema version)
    again = TrustReport.from_dict(report.to_dict())
    assert again.baseline.spurious.clusters[0].pull.value == pytest.approx(0.2)
    assert again.baseline.spurious.class_names == CLASSES
    assert again.baseline.spurious.feature.pull.value == pytest.approx(0.2)
    assert (
        again.baseline.spurious.feature.towards == "doctor"
        and again.baseline.spurious.feature.n_images_in == 300
    )
