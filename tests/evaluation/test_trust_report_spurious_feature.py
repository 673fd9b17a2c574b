"""The top cluster's feature (issue 25 item 4): regions carrying the top cluster's direction in any cluster,
and the paired verdict on its pull where the spurious errors lie outside the top cluster (as SynthWorld-Web's
watermark errors do: docs/trust_report.md)."""

from __future__ import annotations

import numpy as np
import pytest

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.results import UncertaintySettings
from trustvl.evaluation.trust_report import ModelTrustReport, SpuriousAxis, TrustReport
from trustvl.evaluation.trust_report.cluster_pull import pull_towards
from trustvl.evaluation.trust_report.compare import compare_reports
from trustvl.evaluation.trust_report.estimates import weighted_mean
from trustvl.evaluation.trust_report.spurious_feature import feature_regions, spurious_feature

CLASSES = ["doctor", "nurse", "chef"]
SETTINGS = UncertaintySettings(n_resamples=200, seed=0)
N_IMAGES, DIM = 600, 32


def _regions(seed: int = 0):
    """4 regions per image; every other image holds the mark in its region 0. The mark's regions sit on two
    kinds of background (even / odd marked images), so a clustering splits them: ``top`` are the first kind.
    Returns region embeddings, each region's image, the mark mask and the top cluster's region indices."""
    rng = np.random.default_rng(seed)
    backgrounds = rng.normal(size=(8, DIM))
    mark = rng.normal(size=DIM) * 1.5
    region_image = np.repeat(np.arange(N_IMAGES), 4)
    kind = rng.integers(0, 8, size=len(region_image))
    embeds = backgrounds[kind] + 0.3 * rng.normal(size=(len(region_image), DIM))
    marked_image = np.arange(N_IMAGES) % 2 == 0
    holds_mark = marked_image[region_image] & (np.arange(len(region_image)) % 4 == 0)
    on_a = holds_mark & (region_image % 4 == 0)  # marked images 0, 4, 8, ...: background 0
    on_b = holds_mark & (region_image % 4 == 2)  # marked images 2, 6, 10, ...: background 5
    embeds[on_a] = backgrounds[0] + mark + 0.3 * rng.normal(size=(on_a.sum(), DIM))
    embeds[on_b] = backgrounds[5] + mark + 0.3 * rng.normal(size=(on_b.sum(), DIM))
    return embeds, region_image, holds_mark, np.flatnonzero(on_a), marked_image


def test_feature_follows_the_mark_across_clusters():
    embeds, _, holds_mark, top, _ = _regions()
    got = feature_regions(embeds, top)
    assert got[top].all()
    # every mark region, on either background; of the others, at most a few on the top cluster's background
    # (the cluster's direction holds some of its background too)
    assert got[holds_mark].all() and got[~holds_mark].mean() < 0.01
    assert len(top) == holds_mark.sum() // 2  # the top cluster alone holds half of the mark's regions
    assert not feature_regions(embeds, top, share=1.0)[np.flatnonzero(~holds_mark)].any()
    with pytest.raises(TrustVLInputError, match=r"share=0; expected a number in \(0, 1\]"):
        feature_regions(embeds, top, share=0)
    with pytest.raises(TrustVLInputError, match="top_regions is empty"):
        feature_regions(embeds, np.array([], dtype=np.int64))


def _report(name, embeds, region_image, top, labels, preds) -> ModelTrustReport:
    correct = (preds == labels).astype(np.float64)
    feature = spurious_feature(embeds, region_image, 7, top, labels, preds, CLASSES, SETTINGS)
    axis = SpuriousAxis(
        "hand-made",
        "occupation",
        len(labels),
        len(region_image),
        2,
        weighted_mean(correct, SETTINGS),
        "ok",
        [],
        class_names=CLASSES,
        feature=feature,
        labels=labels,
        correct=correct,
        predictions=preds,
    )
    return ModelTrustReport(name, spurious=axis)


def test_compare_reads_a_fix_of_errors_outside_the_top_cluster():
    """The mark pulls other classes' images towards doctor only where it sits on the second background,
    outside the top cluster: the top cluster's own pull sees nothing, the feature's sees the pull and its
    fix, beyond noise."""
    embeds, region_image, _, top, marked = _regions()
    labels = np.arange(N_IMAGES) % 3
    labels = labels[np.random.default_rng(1).permutation(N_IMAGES)]
    outside_top = marked & (np.arange(N_IMAGES) % 4 == 2)
    pulled = np.flatnonzero(outside_top & (labels != 0))[::3]
    base_preds = labels.copy()
    base_preds[pulled] = 0
    fixed_preds = labels.copy()
    base = _report("base", embeds, region_image, top, labels, base_preds)
    fixed = _report("fixed", embeds, region_image, top, labels, fixed_preds)

    f = base.spurious.feature
    assert f.towards == "doctor" and abs(f.n_images_in - marked.sum()) <= 3 and f.pull.interval.low > 0
    top_images = np.zeros(N_IMAGES, dtype=bool)
    top_images[region_image[top]] = True
    assert pull_towards(top_images, labels, base_preds, 0, SETTINGS).value < 0  # the top cluster alone: none

    verdicts = [v for v in compare_reports(fixed, base, SETTINGS) if v.metric.startswith("pull")]
    assert len(verdicts) == 1
    v = verdicts[0]
    assert v.verdict == "better" and v.model.value == 0 and v.change.interval.high < 0
    assert "feature (cluster 7 and alike) towards doctor" in v.metric
    # written and read back: the feature's numbers survive, its images stay in memory only
    again = TrustReport.from_dict(TrustReport(fixed, SETTINGS, base, [v]).to_dict())
    assert again.baseline.spurious.feature.towards == "doctor"
    assert again.baseline.spurious.feature.member_images is None
    assert again.baseline.spurious.feature.pull.value == pytest.approx(f.pull.value)
