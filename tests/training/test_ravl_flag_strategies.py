"""RaVL mitigation's flag strategies (``RaVLConfig.flag_clusters``) on a hand-made discovery result: which
clusters each strategy acts on and which regions get flagged; the option through the CLI; the card and the
Space list the acted-on clusters."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trustvl.discovery import DiscoveryResult, SpuriousCluster
from trustvl.errors import TrustVLInputError
from trustvl.training.ravl import (
    DEFAULT_FLAG_STRATEGY,
    FLAG_STRATEGIES,
    MEDOID_STRATEGIES,
    ClusterStatistics,
    RaVLLoss,
    RegionImageDataset,
    SpuriousMedoids,
    select_flag_clusters,
    selection_from_result,
)

NAMES = ["one", "three", "seven"]


def _cluster(cid, rank, n_in, acc_in, acc_out, influence, n=80):
    """A cluster whose gaps follow from its accuracies (step 3) with ``n`` images per class."""
    n_in = np.array(n_in)
    n_out = n - n_in
    acc_in, acc_out = np.array(acc_in, float), np.array(acc_out, float)
    gap = 2 * np.minimum(n_in, n_out) / n * (acc_in - acc_out)
    return SpuriousCluster(
        cluster_id=cid,
        score=float(np.abs(gap).sum()),
        influence=float(max(influence)),
        gap=gap,
        acc_in=acc_in,
        acc_out=acc_out,
        n_in=n_in,
        n_out=n_out,
        influence_per_class=np.array(influence, float),
        medoid_index=cid,
        size=10,
        kept=rank >= 0,
        region_indices=np.array([cid]),
        region_similarity=np.array([1.0]),
    )


def hand_made_result() -> DiscoveryResult:
    """Five clusters over classes one, three, seven (ranked by score, as step 5 would):

    * 0: rank 1, the rectangle-like cluster, hurts *one* (influence 0.6), large contrast: significant;
    * 1: rank 2, hurts *seven* (influence 0.4), 40 images each side: significant;
    * 2: rank 3, hurts *three* (influence 0.5) on 6 images only: not significant;
    * 4: rank 4, hurts *one* (influence 0.3, but cluster 0 ranks higher for *one*), 4 images: not significant;
    * 3: not kept.
    """
    c0 = _cluster(0, 0, [40, 40, 40], [0.3, 0.75, 0.95], [0.9, 0.8, 0.45], [0.6, 0.0, 0.0])
    c1 = _cluster(1, 1, [40, 40, 40], [0.95, 0.85, 0.5], [0.85, 0.85, 0.9], [0.0, 0.0, 0.4])
    c2 = _cluster(2, 2, [6, 6, 6], [5 / 6, 0.5, 1.0], [0.8, 0.8, 0.6], [0.0, 0.5, 0.0])
    c4 = _cluster(4, 3, [4, 4, 4], [0.5, 1.0, 0.75], [0.9, 0.85, 0.9], [0.3, 0.0, 0.1])
    c3 = _cluster(3, -1, [40, 40, 40], [0.8, 0.8, 0.8], [0.8, 0.8, 0.8], [0.0, 0.0, 0.0])
    ranked = [c0, c1, c2, c4]
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)
    return DiscoveryResult(
        clusters=ranked,
        all_clusters=[c0, c1, c2, c3, c4],
        n_regions=50,
        n_images=240,
        n_classes=3,
        message="hand-made",
        params={"min_influence": 0.25},
        class_names=NAMES,
    )


EXPECTED = {
    "top1": {0},
    "top_per_class": {0, 1, 2},
    "all_kept": {0, 1, 2, 4},
    "score_weighted": {0, 1, 2, 4},
    "gap_test": {0, 1},
    "gap_test_or_top1": {0, 1},
    "gap_test_two_sided": {0, 1, 2},  # cluster 2: seven right on all 6 images with a region vs 60 % without
    "top1_similar": {0},  # orthogonal medoids: no cluster is near the top one
}


@pytest.mark.parametrize("strategy", FLAG_STRATEGIES)
def test_each_strategy_selects_its_clusters_and_flags_their_regions(strategy):
    result = hand_made_result()
    stats = ClusterStatistics.from_result(result)
    kept = np.array([True, True, True, False, True])
    rank = np.array([0, 1, 2, -1, 3])
    medoids = SpuriousMedoids(np.eye(5, dtype=np.float32), kept, rank, "toy", stats)
    selection = medoids.select(strategy)
    assert set(selection.cluster_ids) == EXPECTED[strategy]
    assert selection.cluster_ids == sorted(selection.cluster_ids, key=lambda j: rank[j])  # rank order
    # the same answer straight from the result (what the Space uses)
    from_result = selection_from_result(result, strategy, medoid_embeds=np.eye(5))
    np.testing.assert_allclose(from_result.weights, selection.weights)

    # regions near each medoid (cluster ids 0..4, twice) are flagged iff their cluster is acted on
    kinds = np.array([0, 1, 2, 3, 4, 4, 3, 2, 1, 0])
    rng = np.random.default_rng(0)
    regions = np.eye(5, dtype=np.float32)[kinds] + 0.05 * rng.normal(size=(10, 5)).astype(np.float32)
    flags, assigned = medoids.flags(regions, strategy=strategy)
    np.testing.assert_array_equal(assigned, kinds)
    np.testing.assert_array_equal(flags, np.isin(kinds, sorted(EXPECTED[strategy])))
    weights = medoids.region_weights(regions, selection)
    np.testing.assert_array_equal(weights > 0, flags)
    if strategy == "score_weighted":
        scores = {c.cluster_id: c.score for c in result.clusters}
        expected = np.array([scores.get(k, 0.0) / scores[0] for k in kinds], dtype=np.float32)
        np.testing.assert_allclose(weights, expected, rtol=1e-6)
        assert selection.weighted and 0 < weights[kinds == 4][0] < weights[kinds == 1][0] < 1
    else:
        assert set(np.unique(weights)) <= {0.0, 1.0} and not selection.weighted


def _medoids_at_cosines(cosines: list[float]) -> np.ndarray:
    """Unit vectors (row = cluster id) whose cosine with row 0 is ``cosines[j]``."""
    out = np.zeros((len(cosines), len(cosines) + 1))
    for j, c in enumerate(cosines):
        out[j, 0], out[j, j + 1] = c, np.sqrt(1 - c * c)
    return out


def test_top1_similar_adds_the_kept_clusters_near_the_top_medoid():
    """Cluster 0 is the top one; 2 (rank 3) sits at cosine 0.9 of it (a split-off piece of the same feature),
    4 (rank 4) at 0.75, 1 (rank 2, the best-ranked after the top) at 0.3, and 3 at 0.95 but not kept."""
    result = hand_made_result()
    stats = ClusterStatistics.from_result(result)
    kept = np.array([True, True, True, False, True])
    rank = np.array([0, 1, 2, -1, 3])
    embeds = 2.0 * _medoids_at_cosines([1.0, 0.3, 0.9, 0.95, 0.75])  # the rule normalises
    medoids = SpuriousMedoids(embeds, kept, rank, "toy", stats)
    assert medoids.select("top1_similar").cluster_ids == [0, 2]  # not 1 (far), 3 (not kept), 4 (0.75 < 0.8)
    looser = select_flag_clusters(kept, rank, "top1_similar", medoid_embeds=embeds, similar_cosine=0.7)
    assert looser.cluster_ids == [0, 2, 4]
    assert select_flag_clusters(
        kept, rank, "top1_similar", medoid_embeds=embeds, similar_cosine=0.95
    ).cluster_ids == [0]
    # candidates restrict it like every ranked strategy: without cluster 0, cluster 1 is the top one
    cand = np.array([False, True, True, False, True])
    sel = select_flag_clusters(kept, rank, "top1_similar", medoid_embeds=embeds, candidates=cand)
    assert sel.cluster_ids == [1]  # 2 and 4 are at cosine 0.27 and 0.23 of cluster 1
    # regions go to their nearest medoid; those of clusters 0 and 2 are flagged
    flags, assigned = medoids.flags(medoids.medoid_embeds[[0, 1, 2, 3, 4, 2]], strategy="top1_similar")
    np.testing.assert_array_equal(assigned, [0, 1, 2, 3, 4, 2])
    np.testing.assert_array_equal(flags, [True, False, True, False, False, True])
    assert "top1_similar" in FLAG_STRATEGIES and "top1_similar" in MEDOID_STRATEGIES
    with pytest.raises(TrustVLInputError, match="medoid embeddings"):
        selection_from_result(result, "top1_similar")
    with pytest.raises(TrustVLInputError, match=r"expected a finite \[5, d\]"):
        select_flag_clusters(kept, rank, "top1_similar", medoid_embeds=embeds[:4])


def test_acted_on_clusters_carry_score_and_classes():
    selection = selection_from_result(hand_made_result(), "top_per_class")
    first, second, third = selection.clusters
    assert (first.cluster_id, first.rank, first.weight) == (0, 0, 1.0)
    assert first.hurt_classes == ["one", "three"] and first.favoured_classes == ["seven"]
    assert second.hurt_classes == ["seven"] and second.favoured_classes == ["one"]
    assert third.cluster_id == 2 and third.score == pytest.approx(hand_made_result().clusters[2].score)
    assert first.describe().startswith("cluster 0 (rank 1, score 1.150, weight 1): hurts one, three")
    assert selection.to_dict()["clusters"][0]["hurt_classes"] == ["one", "three"]


def test_gap_test_is_deterministic_and_follows_the_evidence():
    result = hand_made_result()
    a = selection_from_result(result, "gap_test")
    b = selection_from_result(result, "gap_test")
    np.testing.assert_array_equal(a.weights, b.weights)
    # the same small cluster with ten times the images on each side is no longer noise
    stats = ClusterStatistics.from_result(result)
    stats.n_in[2] *= 10
    stats.n_out[2] = 800 - stats.n_in[2]
    stats.gap[2] = 2 * np.minimum(stats.n_in[2], stats.n_out[2]) / 800 * (stats.acc_in[2] - stats.acc_out[2])
    kept = np.array([True, True, True, False, True])
    rank = np.array([0, 1, 2, -1, 3])
    sel = select_flag_clusters(kept, rank, "gap_test", statistics=stats)
    assert set(sel.cluster_ids) == {0, 1, 2}


def test_gap_test_or_top1_falls_back_to_the_top_ranked_candidate():
    result = hand_made_result()
    stats = ClusterStatistics.from_result(result)
    kept = np.array([True, True, True, False, True])
    rank = np.array([0, 1, 2, -1, 3])
    medoids = SpuriousMedoids(np.eye(5, dtype=np.float32), kept, rank, None, stats)
    # among clusters 2 and 4 no harm is beyond noise: gap_test acts on none, the fallback on the better ranked
    assert medoids.select("gap_test", clusters=[2, 4], allow_empty=True).cluster_ids == []
    assert medoids.select("gap_test_or_top1", clusters=[4, 2]).cluster_ids == [2]
    # when the test passes something, it is gap_test
    assert medoids.select("gap_test_or_top1").cluster_ids == medoids.select("gap_test").cluster_ids


def _two_class_stats(n_in, acc_in, acc_out, n=80):
    """Statistics of one cluster over two classes (gaps from the accuracies, ``n`` images per class)."""
    n_in, acc_in, acc_out = np.array([n_in]), np.array([acc_in], float), np.array([acc_out], float)
    gap = 2 * np.minimum(n_in, n - n_in) / n * (acc_in - acc_out)
    return ClusterStatistics(
        score=np.abs(gap).sum(axis=1),
        gap=gap,
        n_in=n_in,
        n_out=n - n_in,
        acc_in=acc_in,
        acc_out=acc_out,
        influence_per_class=np.full((1, 2), 0.5),
    )


@pytest.mark.parametrize(
    ("n_in", "acc_in", "acc_out", "harm_only", "two_sided"),
    [
        # a shortcut: a small harm (not beyond noise) and a large favour on 40 images each side
        ([40, 40], [0.8, 0.95], [0.85, 0.45], False, True),
        # a favour seen on 3 images, all right: no spread at accuracy 1 without the plus-two resampling
        ([3, 40], [1.0, 0.8], [0.9, 0.8], False, False),
        # a large harm on 40 images: both tests pass it
        ([40, 40], [0.3, 0.8], [0.9, 0.8], True, True),
    ],
)
def test_two_sided_gap_test_reads_favours_and_needs_more_than_a_few_images(
    n_in, acc_in, acc_out, harm_only, two_sided
):
    stats = _two_class_stats(n_in, acc_in, acc_out)
    kept, rank = np.array([True]), np.array([0])
    assert bool(select_flag_clusters(kept, rank, "gap_test", statistics=stats).mask[0]) is harm_only
    assert bool(select_flag_clusters(kept, rank, "gap_test_two_sided", statistics=stats).mask[0]) is two_sided


def test_candidates_errors_and_default():
    result = hand_made_result()
    stats = ClusterStatistics.from_result(result)
    kept = np.array([True, True, True, False, True])
    rank = np.array([0, 1, 2, -1, 3])
    medoids = SpuriousMedoids(np.eye(5, dtype=np.float32), kept, rank, None, stats)
    assert DEFAULT_FLAG_STRATEGY == "top1_similar"  # the ablation's choice (docs/methods/ravl.md)
    # candidates restrict every strategy: the top 2 kept; explicit ids
    assert medoids.select("top_per_class", top=2).cluster_ids == [0, 1]
    assert medoids.select("top1", clusters=[1, 2]).cluster_ids == [1]
    assert medoids.select("all_kept", clusters=[3]).cluster_ids == [3]  # an unranked cluster, explicitly
    with pytest.raises(TrustVLInputError, match="not ranked"):
        medoids.select("top1", clusters=[3])
    with pytest.raises(TrustVLInputError, match="flag_clusters='best'"):
        medoids.select("best")
    # an older medoids file without statistics: top1/all_kept still work, the others say what is missing
    old = SpuriousMedoids(np.eye(5, dtype=np.float32), kept, rank)
    assert old.select("top1").cluster_ids == [0]
    for strategy in ("top_per_class", "score_weighted", "gap_test"):
        with pytest.raises(TrustVLInputError, match="statistics"):
            old.select(strategy)
    # nothing selected: an error unless allow_empty
    noise_only = SpuriousMedoids(np.eye(5, dtype=np.float32), kept, rank, None, stats)
    with pytest.raises(TrustVLInputError, match="no spurious cluster"):
        noise_only.flags(np.eye(5, dtype=np.float32), strategy="gap_test", clusters=[2, 4])
    assert not noise_only.flags(
        np.eye(5, dtype=np.float32), strategy="gap_test", clusters=[2, 4], allow_empty=True
    )[0].any()


def test_statistics_round_trip_through_the_medoids_file(tmp_path):
    result = hand_made_result()
    stats = ClusterStatistics.from_result(result)
    kept = np.array([True, True, True, False, True])
    medoids = SpuriousMedoids(np.eye(5, dtype=np.float32), kept, np.array([0, 1, 2, -1, 3]), "m", stats)
    medoids.save(tmp_path / "spurious_medoids.npz")
    again = SpuriousMedoids.load(tmp_path)
    assert again.statistics is not None and again.statistics.class_names == NAMES
    np.testing.assert_allclose(again.statistics.gap, stats.gap)
    np.testing.assert_array_equal(again.statistics.n_in, stats.n_in)
    for strategy in FLAG_STRATEGIES:
        np.testing.assert_allclose(again.select(strategy).weights, medoids.select(strategy).weights)


# ------------------------------------------------------------------------------ score weights in the loss
def test_weighted_terms_reduce_to_the_unweighted_ones_and_scale():
    torch.manual_seed(0)
    loss = RaVLLoss()
    z, t = torch.randn(6, 1, 8), torch.randn(3, 8)
    ones = torch.ones(6, 1, dtype=torch.bool)
    scale = torch.tensor(10.0)
    plain = loss.uninformative_term(z, ones, t, scale)
    assert torch.allclose(loss.uninformative_term(z, ones, t, scale, torch.ones(6, 1)), plain)
    assert torch.allclose(loss.uninformative_term(z, ones, t, scale, torch.full((6, 1), 0.5)), plain / 2)
    v, m = torch.randn(4, 8), torch.randn(4, 8)
    cf = loss.counterfactual_term(v, m, t, scale)
    assert torch.allclose(loss.counterfactual_term(v, m, t, scale, torch.ones(4)), cf)
    w = torch.tensor([1.0, 0.0, 0.0, 0.0])
    assert torch.allclose(
        loss.counterfactual_term(v, m, t, scale, w), loss.counterfactual_term(v[:1], m[:1], t, scale) / 4
    )
    # masked-image L_align with weight w: w·CE(masked) + (1 - w)·CE(image)
    labels = torch.tensor([0, 1, 2, 0])
    ce = torch.nn.functional.cross_entropy
    n = torch.nn.functional.normalize
    ce_m = ce(scale * n(m) @ n(t).T, labels, reduction="none")
    ce_i = ce(scale * n(v) @ n(t).T, labels, reduction="none")
    iw = torch.tensor([1.0, 0.25, 0.0, 0.5])
    got = loss._weighted_align(m, v, iw, t, labels, scale)
    assert torch.allclose(got, (iw * ce_m + (1 - iw) * ce_i).mean())
    # crop mean pooling: a weight-1 region drops out exactly as an unweighted flag does
    regions, spur = (
        torch.randn(2, 4, 8),
        torch.tensor([[True, False, False, False], [False, True, True, False]]),
    )
    crops = RaVLLoss(align_input="regions")
    flagged = crops.align_term(regions, spur, t, labels[:2], scale)
    assert torch.allclose(crops.align_term(regions, spur, t, labels[:2], scale, spur.float()), flagged)
    half = crops.align_term(regions, spur, t, labels[:2], scale, spur.float() * 0.5)
    assert not torch.allclose(half, flagged)


def test_dataset_passes_fractional_weights_only():
    from PIL import Image

    images = [Image.new("RGB", (16, 16), (i * 40, 0, 0)) for i in range(3)]
    from datasets import Dataset

    data = Dataset.from_dict({"image": images, "label": [0, 1, 0], "caption": ["a", "b", "a"]})

    class _Processor:
        def __call__(self, images, return_tensors):
            return {"pixel_values": torch.zeros(len(images), 3, 4, 4)}

    binary = RegionImageDataset(
        data, _Processor(), class_names=["x", "y"], region_flags=np.eye(3, 4), with_masked=True
    )
    assert binary.weights is None and "region_weight" not in binary[0]
    w = np.zeros((3, 4), np.float32)
    w[0, 1], w[2, 3] = 0.4, 1.0
    weighted = RegionImageDataset(
        data, _Processor(), class_names=["x", "y"], region_flags=w, with_masked=True
    )
    np.testing.assert_array_equal(weighted.flags, w > 0)
    assert torch.allclose(weighted[0]["region_weight"], torch.tensor([0.0, 0.4, 0.0, 0.0]))
    with pytest.raises(TrustVLInputError, match="weights in"):
        RegionImageDataset(data, _Processor(), class_names=["x", "y"], region_flags=w * 3)


# ------------------------------------------------------------------------------------- CLI, card, Space
def test_flag_clusters_round_trips_through_the_cli_config(tmp_path):
    from trustvl.cli import build_parser
    from trustvl.commands._common import config_from_namespace
    from trustvl.training.ravl import RaVLConfig

    def parse(argv):
        args = build_parser().parse_args(argv)
        return config_from_namespace(args.config_class, args)

    base = ["train", "ravl", "--base_model", "m", "--dataset", "d", "--discovery", "x", "--output_dir", "o"]
    assert parse(base).flag_clusters == DEFAULT_FLAG_STRATEGY
    for strategy in FLAG_STRATEGIES:
        cfg = parse([*base, "--flag_clusters", strategy])
        assert isinstance(cfg, RaVLConfig) and cfg.flag_clusters == strategy
        assert cfg.to_dict()["flag_clusters"] == strategy
    as_json = tmp_path / "ravl.json"
    as_json.write_text(
        '{"base_model": "m", "dataset": "d", "discovery": "x", "output_dir": "o", "flag_clusters": "gap_test"}'
    )
    assert parse(["train", "ravl", "--config", str(as_json)]).flag_clusters == "gap_test"
    from trustvl.commands._common import UsageError

    with pytest.raises(UsageError, match="invalid choice: 'everything'"):
        parse([*base, "--flag_clusters", "everything"])
    with pytest.raises(TrustVLInputError, match="flag_clusters"):
        RaVLConfig(base_model="m", dataset="d", discovery="x", output_dir="o", flag_clusters="everything")


def test_space_lists_the_clusters_each_strategy_acts_on():
    path = Path(__file__).resolve().parents[2] / "spaces" / "ravl" / "app.py"
    spec = importlib.util.spec_from_file_location("space_ravl_flags", path)
    app = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = app
    spec.loader.exec_module(app)
    result = hand_made_result()
    # medoids as discover() returns them: cluster 4's lies next to the top cluster's (cosine 0.9), the others not
    result.medoid_embeds = np.eye(5, dtype=np.float32)
    result.medoid_embeds[4] = [0.9, 0.0, 0.0, 0.0, np.sqrt(1 - 0.81)]
    truth = np.zeros(50, dtype=bool)
    truth[0] = True
    headers, rows = app.cluster_rows(result, truth)
    col = headers.index("mitigation acts on it under flag_clusters =")
    by_id = {row[1]: row[col] for row in rows}
    assert by_id[0] == (
        "top1, top_per_class, all_kept, score_weighted, gap_test, gap_test_or_top1, gap_test_two_sided,"
        " top1_similar"
    )
    assert by_id[1].startswith("top_per_class, all_kept, score_weighted (0.") and by_id[1].endswith(
        "gap_test, gap_test_or_top1, gap_test_two_sided"
    )
    assert "top_per_class" not in by_id[4] and "gap_test" not in by_id[4] and "all_kept" in by_id[4]
    assert by_id[4].endswith("top1_similar")
    line = app.mitigation_line(result)
    # the default acts on the top-ranked cluster and the one whose medoid lies next to it
    assert "flag_clusters=top1_similar" in line and "cluster 0 (rank 1" in line and "hurts one, three" in line
    assert "cluster 4" in line and "cluster 1 " not in line
    # without medoid embeddings (a result built by hand) the medoid strategy is left out of the table
    result.medoid_embeds = None
    headers, rows = app.cluster_rows(result, truth)
    assert "top1_similar" not in {row[1]: row[col] for row in rows}[0]


# ------------------------------------------------------------------- nothing flagged = standard fine-tuning
def test_mitigation_with_nothing_flagged_is_standard_finetuning(tiny_clip_dir, tmp_path):
    """An empty selection (allow_empty) trains L_CLIP alone: the same weights as finetune_clip with the same
    data, steps and seed (the region terms, L_align on whole images, would otherwise still train)."""
    from trustvl.data_builders.ravl.spurious_digits import build_spurious_digits
    from trustvl.training.ravl import CLIPFinetuneConfig, RaVLConfig, finetune_clip, train_ravl

    data = build_spurious_digits(
        tmp_path / "sd",
        cramers_v=0.9,
        spurious_class=7,
        classes=[1, 7],
        n_train=16,
        n_test=8,
        image_size=32,
        seed=0,
        progress=False,
    )
    kept = np.zeros(4, dtype=bool)
    SpuriousMedoids(np.eye(4, 32, dtype=np.float32), kept, np.full(4, -1)).save(
        tmp_path / "disc" / "spurious_medoids.npz"
    )
    common = dict(
        base_model=str(tiny_clip_dir),
        dataset=str(data),
        max_steps=2,
        per_device_train_batch_size=8,
        learning_rate=1e-2,
        warmup_steps=0,
        use_lora=False,
        save_model=False,
        disable_tqdm=True,
        logging_steps=1,
    )
    flags = np.zeros((16, 4), dtype=bool)
    empty = train_ravl(
        RaVLConfig(
            output_dir=str(tmp_path / "ravl"),
            discovery=str(tmp_path / "disc"),
            allow_empty=True,
            save_strategy="no",
            **common,
        ),
        region_flags=flags,
        return_model=True,
    )
    standard = finetune_clip(CLIPFinetuneConfig(output_dir=str(tmp_path / "std"), **common))
    assert empty["region_terms"].startswith("off") and empty["last_log"]["align_loss"] == 0.0
    a, b = empty["model"].state_dict(), standard["model"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert empty["final_loss"] == standard["final_loss"]
    # one flagged region turns the region terms on, and the run differs
    flags[0, 0] = True
    flagged = train_ravl(
        RaVLConfig(
            output_dir=str(tmp_path / "ravl1"),
            discovery=str(tmp_path / "disc"),
            allow_empty=True,
            save_strategy="no",
            **common,
        ),
        region_flags=flags,
        return_model=True,
    )
    assert flagged["region_terms"] == "on"
    assert not all(torch.equal(flagged["model"].state_dict()[k], b[k]) for k in b)
