"""RaVL discovery (SPEC §3): hand-computed toy, clustering, bad input, plumbing with a tiny CLIP."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trustvl.discovery import (
    NOTHING_TO_DISCOVER,
    Region,
    assign_to_medoids,
    cluster_embeddings,
    crop_regions,
    discover,
    discover_spurious_images,
    discover_spurious_regions,
    grid_regions,
    k_candidates,
    make_regions,
    plot_cluster_exemplars,
    precision_at_k,
    select_k,
    write_discovery_json,
    zero_shot_scores,
)
from trustvl.errors import TrustVLInputError

# ---------------------------------------------------------------- the hand-made toy
# 2 classes, 20 images of 2 regions each. Region kinds: A (class-0 content), B (class-1 content),
# S (a spurious artefact that pushes predictions to class 1), E (a background that goes with class-0
# predictions), T (a harmless texture). Each kind is one exact direction, so k=5 recovers the kinds.
A, B, S, E, T = range(5)
SCORES = {A: (0.7, 0.1), B: (0.1, 0.7), S: (0.0, 0.9), E: (0.8, 0.0), T: (0.2, 0.2)}
# (label, region kinds, predictions of the images of this group)
GROUPS = [
    (0, (A, S), [1, 1, 1, 1]),  # class 0 with the artefact: all predicted 1
    (0, (A, E), [0, 0, 0]),
    (0, (A, T), [0, 0, 1]),
    (1, (B, S), [1, 1, 1, 1]),
    (1, (B, E), [1, 0, 0]),
    (1, (B, T), [1, 1, 1]),
]


def toy(jitter: float = 0.0, seed: int = 0):
    labels, preds, img, kinds = [], [], [], []
    for lab, pair, group_preds in GROUPS:
        for p in group_preds:
            i = len(labels)
            labels.append(lab)
            preds.append(p)
            for kind in pair:
                img.append(i)
                kinds.append(kind)
    kinds = np.array(kinds)
    emb = np.eye(5, dtype=np.float32)[kinds]
    if jitter:
        emb = emb + jitter * np.random.default_rng(seed).normal(size=emb.shape).astype(np.float32)
    scores = np.array([SCORES[k] for k in kinds], dtype=np.float32)
    return emb, np.array(img), np.array(labels), np.array(preds), scores, kinds


def by_kind(result, kinds):
    return {int(kinds[c.medoid_index]): c for c in result.all_clusters}


def test_toy_gaps_influence_and_ranking_are_exact():
    emb, img, labels, preds, scores, kinds = toy()
    res = discover_spurious_regions(emb, img, labels, preds, scores, 2, k=5, seed=0)
    assert res.k == 5 and len(res.all_clusters) == 5
    c = by_kind(res, kinds)
    assert sorted(c) == [A, B, S, E, T]
    for kind, cl in c.items():  # K-medoids recovered the kinds exactly
        assert set(kinds[cl.region_indices]) == {kind}
    # S: class 0 in 4 (acc 0) vs out 6 (acc 5/6); class 1 in 4 (acc 1) vs out 6 (acc 4/6)
    np.testing.assert_allclose(c[S].gap, [0.8 * (0 - 5 / 6), 0.8 * (1 - 4 / 6)])
    np.testing.assert_array_equal(c[S].n_in, [4, 4])
    np.testing.assert_array_equal(c[S].n_out, [6, 6])
    np.testing.assert_allclose(c[S].acc_in, [0.0, 1.0])
    np.testing.assert_allclose(c[S].acc_out, [5 / 6, 4 / 6])
    # influence: 4 misclassified class-0 images have a region in S (the 5th, an (A, T) image, has none and
    # is not counted); the top region for the predicted class 1 is S in all 4
    np.testing.assert_allclose(c[S].influence_per_class, [1.0, 0.0])
    assert c[S].influence == pytest.approx(1.0)
    assert c[S].score == pytest.approx(2 / 3 + 4 / 15)
    # E: class 0 in 3 (acc 1) vs out 7 (acc 2/7); class 1 in 3 (acc 1/3) vs out 7 (acc 1)
    np.testing.assert_allclose(c[E].gap, [0.6 * (1 - 2 / 7), 0.6 * (1 / 3 - 1)])
    np.testing.assert_allclose(c[E].influence_per_class, [0.0, 1.0])
    assert c[E].score == pytest.approx(0.6 * 5 / 7 + 0.4)
    # T: both gaps positive -> dropped; A and B: every image of a class is "in" -> gaps defined 0
    np.testing.assert_allclose(c[T].gap, [0.6 * (2 / 3 - 3 / 7), 0.6 * (1 - 5 / 7)])
    assert not c[T].kept and c[T].influence == 0.0
    for kind in (A, B):
        np.testing.assert_array_equal(c[kind].gap, [0.0, 0.0])
        assert not c[kind].kept
    assert np.isnan(c[A].acc_out[0]) and np.isnan(c[A].acc_in[1])
    # ranking: S first (0.9333), then E (0.8286)
    assert [int(kinds[cl.medoid_index]) for cl in res.clusters] == [S, E]
    assert res.clusters[0].score > res.clusters[1].score
    # precision@10: the 8 S regions, then 2 E regions
    assert precision_at_k(res, kinds == S, k=10) == pytest.approx(0.8)
    assert precision_at_k(res, kinds == S, k=5) == 1.0
    assert precision_at_k(res, kinds == S, k=100) == pytest.approx(8 / 100)  # always divided by k


def test_influence_threshold_and_min_regions():
    emb, img, labels, preds, scores, kinds = toy()
    res = discover_spurious_regions(emb, img, labels, preds, scores, 2, k=5, min_influence=1.0)
    assert [int(kinds[c.medoid_index]) for c in res.clusters] == [S, E]
    res = discover_spurious_regions(emb, img, labels, preds, scores, 2, k=5, min_influence=1.01)
    assert res.clusters == []
    # requiring 3 regions per image makes every influence 0 -> nothing kept
    res = discover_spurious_regions(emb, img, labels, preds, scores, 2, k=5, min_regions_for_influence=3)
    assert res.clusters == [] and all(c.influence == 0 for c in res.all_clusters)


# A second hand-checked example with the clusters given: X (an artefact), Y (class-0 content), Z (class-1
# content), W (a background). Image: (label, prediction, [(cluster, score for class 0, score for class 1)]).
X, Y, Z, W = range(4)
HAND = [
    (0, 1, [(Y, 0.6, 0.2), (X, 0.1, 0.9)]),  # i0: wrong, top region for class 1 is X
    (0, 1, [(Y, 0.3, 0.8), (X, 0.1, 0.5)]),  # i1: wrong, top region Y
    (0, 1, [(Y, 0.6, 0.2), (W, 0.2, 0.5)]),  # i2: wrong, top region W; no region in X
    (0, 0, [(Y, 0.6, 0.2), (W, 0.2, 0.5)]),  # i3: right
    (0, 1, [(X, 0.1, 0.9)]),  # i4: wrong, a single region: not counted by step 4
    (1, 1, [(Z, 0.1, 0.7), (X, 0.1, 0.9)]),  # i5: right
    (1, 0, [(Z, 0.3, 0.7), (W, 0.6, 0.1)]),  # i6: wrong, top region for class 0 is W
    (1, 1, [(Z, 0.1, 0.7), (W, 0.2, 0.5)]),  # i7: right
]


def hand_result(min_influence: float = 0.25):
    from trustvl.discovery import KMedoidsClustering

    img = [i for i, (_, _, regs) in enumerate(HAND) for _ in regs]
    clusters = np.array([c for _, _, regs in HAND for c, _, _ in regs])
    scores = np.array([(s0, s1) for _, _, regs in HAND for _, s0, s1 in regs], dtype=np.float32)
    labels = np.array([lab for lab, _, _ in HAND])
    preds = np.array([p for _, p, _ in HAND])
    emb = np.eye(4, dtype=np.float32)[clusters]
    medoids = np.array([int(np.flatnonzero(clusters == j)[0]) for j in range(4)])
    clustering = KMedoidsClustering(clusters, medoids, np.ones(len(clusters), np.float32), k=4)
    return discover_spurious_regions(
        emb, img, labels, preds, scores, 2, clustering=clustering, min_influence=min_influence
    )


def test_influence_counts_only_images_with_a_region_in_the_cluster():
    res = hand_result()
    x, w = res.all_clusters[X], res.all_clusters[W]
    # X, class 0: in {i0, i1, i4} acc 0, out {i2, i3} acc 1/2; class 1: in {i5} acc 1, out {i6, i7} acc 1/2
    np.testing.assert_allclose(x.gap, [0.8 * (0 - 0.5), 2 / 3 * (1 - 0.5)])
    # influence, class 0: misclassified class-0 images with > 1 region and a region in X are i0 and i1
    # (i2 has none in X, i4 a single region); the top region lies in X for i0 only -> 1/2. (Dividing by
    # every eligible misclassified class-0 image, i0, i1 and i2, would give 1/3.)
    np.testing.assert_allclose(x.influence_per_class, [0.5, 0.0])
    # W, class 1: i6 is the only misclassified class-1 image, its top region for class 0 is W -> 1
    np.testing.assert_allclose(w.gap, [0.8 * (0.5 - 0), 2 / 3 * (0.5 - 1)])
    np.testing.assert_allclose(w.influence_per_class, [0.0, 1.0])
    assert [c.cluster_id for c in hand_result(min_influence=0.5).clusters] == [W, X]
    assert [c.cluster_id for c in hand_result(min_influence=0.51).clusters] == [W]


def test_equal_scores_tie_break():
    res = hand_result()
    x, w = res.all_clusters[X], res.all_clusters[W]
    assert x.score == pytest.approx(w.score)  # 0.4 + 1/3 both
    # equal scores: the higher influence (W: 1 > X: 0.5) ranks first
    assert [c.cluster_id for c in res.clusters] == [W, X]
    # equal score and influence: the larger cluster, then the lower medoid region index
    from trustvl.discovery.ravl import rank_key

    w.influence = x.influence
    w.size = x.size + 1
    assert sorted([x, w], key=rank_key)[0] is w
    w.size = x.size
    assert x.medoid_index < w.medoid_index
    assert sorted([x, w], key=rank_key)[0] is x and sorted([w, x], key=rank_key)[0] is x


def test_regions_ranked_by_similarity_to_medoid():
    emb, img, labels, preds, scores, kinds = toy(jitter=0.05)
    res = discover_spurious_regions(emb, img, labels, preds, scores, 2, k=5, seed=3)
    for cl in res.all_clusters:
        x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        sims = x[cl.region_indices] @ x[cl.medoid_index]
        np.testing.assert_allclose(cl.region_similarity, sims, atol=1e-5)
        assert np.all(np.diff(cl.region_similarity) <= 1e-7)
        assert cl.region_indices[0] == cl.medoid_index
    assert int(kinds[res.clusters[0].medoid_index]) == S


def test_nothing_to_discover():
    emb, img, labels, _, scores, _ = toy()
    res = discover_spurious_regions(emb, img, labels, labels.copy(), scores, 2)
    assert res.clusters == [] and res.all_clusters == [] and res.message == NOTHING_TO_DISCOVER
    assert res.message.startswith("nothing to discover")
    assert precision_at_k(res, np.zeros(len(emb), bool)) == 0.0
    assert json.loads(res.to_json())["ranked_clusters"] == []


def test_json_and_png(tmp_path):
    emb, img, labels, preds, scores, kinds = toy()
    res = discover_spurious_regions(emb, img, labels, preds, scores, 2, k=5, class_names=["zero", "one"])
    d = json.loads(res.to_json(tmp_path / "r.json"))
    assert d["ranked_clusters"][0]["gap"] == pytest.approx([-2 / 3, 4 / 15])
    assert len(d["all_clusters"]) == 5
    assert any(None in c["acc_in"] + c["acc_out"] for c in d["all_clusters"])  # NaN accuracies -> null
    assert json.loads((tmp_path / "r.json").read_text())["k"] == 5
    write_discovery_json(res, tmp_path / "w.json")
    assert json.loads((tmp_path / "w.json").read_text())["n_regions"] == 40
    from PIL import Image

    images = [Image.new("RGB", (16, 8), (i * 10, 0, 0)) for i in range(20)]
    res.regions = make_regions(images, [[(0, 0, 8, 8), (8, 0, 16, 8)]] * 20)
    pic = plot_cluster_exemplars(res, images, tmp_path / "ex.png", n_per_cluster=3, thumb_size=16)
    assert (tmp_path / "ex.png").stat().st_size > 0 and pic.size[0] > 0


def test_whole_image_baseline():
    emb, img, labels, preds, scores, kinds = toy()
    # image embedding: mean of its regions; image score: mean of region scores
    n = len(labels)
    iemb = np.stack([emb[img == i].mean(0) for i in range(n)])
    iscore = np.stack([scores[img == i].mean(0) for i in range(n)])
    res = discover_spurious_images(iemb, labels, preds, iscore, 2, k=6)
    assert res.n_regions == n and res.params["min_regions_for_influence"] == 1
    has_s = np.array([S in kinds[img == i] for i in range(n)])
    assert 0.0 <= precision_at_k(res, has_s) <= 1.0
    # the 6 image groups are the 6 clusters; each holds one class, so no cluster has gaps of both signs
    assert res.k == 6 and res.clusters == []
    assert all(np.count_nonzero(c.gap) <= 1 for c in res.all_clusters)
    assert any(c.influence > 0 for c in res.all_clusters)  # single-region images do count in step 4


# ---------------------------------------------------------------- clustering
def blobs(n_per: int, centres: int, dim: int = 16, noise: float = 0.05, seed: int = 0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim))
    lab = np.repeat(np.arange(centres), n_per)
    return (c[lab] + noise * rng.normal(size=(len(lab), dim))).astype(np.float32), lab


def test_kmedoids_deterministic_and_k_range():
    x, truth = blobs(25, 8)
    a = cluster_embeddings(x, 3, seed=5)
    b = cluster_embeddings(x, 3, seed=5)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.medoids, b.medoids)
    assert a.k in k_candidates(3) and sorted(a.silhouette) == list(range(6, 15))
    assert a.k == 8  # 8 well separated blobs: the silhouette picks them
    # the clusters are the blobs
    assert all(len(set(truth[a.labels == j])) == 1 for j in range(a.k))
    k, scores = select_k(x, 3, seed=5)
    assert k == 8 and max(scores, key=scores.get) == 8


def plain_sweep(dist: np.ndarray, ks: list[int], seed: int):
    """The documented sweep written plainly: fresh sums at every round, scikit-learn's silhouette."""
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    n, out = len(dist), {}
    trials = 2 + int(np.log(ks[0]))
    medoids = [int(rng.integers(n))]  # k-medoids++ seeding of the first k
    while len(medoids) < ks[0]:
        nearest = dist[medoids].min(axis=0).astype(np.float64) ** 2
        cum = np.cumsum(nearest)
        cand = np.minimum(np.searchsorted(cum, rng.random(trials) * cum[-1]), n - 1)
        pots = [np.minimum(nearest, dist[c].astype(np.float64) ** 2).sum() for c in cand]
        medoids.append(int(cand[int(np.argmin(pots))]))
    for k in ks:
        while len(medoids) < k:  # BUILD steps over 32 k-means++ draws
            nearest = dist[medoids].min(axis=0).astype(np.float64)
            cum = np.cumsum(nearest**2)
            cand = np.minimum(np.searchsorted(cum, rng.random(32) * cum[-1]), n - 1)
            gain = [np.maximum(nearest - dist[c], 0).sum() for c in cand]
            medoids.append(int(cand[int(np.argmax(gain))]))
        med = np.array(medoids)
        while True:
            labels = dist[med].argmin(axis=0)
            new = med.copy()
            for j in range(k):
                members = np.flatnonzero(labels == j)
                cost = dist[np.ix_(members, members)].astype(np.float64).sum(axis=1)
                best = int(np.argmin(cost))
                if med[j] not in members or cost[best] < cost[members == med[j]][0]:
                    new[j] = members[best]
            if np.array_equal(new, med):
                break
            med = new
        medoids = med.tolist()
        out[k] = (med, labels, silhouette_score(dist, labels, metric="precomputed"))
    best_k = max(ks, key=lambda k: (out[k][2], -k))
    return best_k, out


@pytest.mark.parametrize("seed,noise", [(0, 0.3), (1, 0.8), (2, 1.5)])
def test_exact_sweep_equals_plain_sweep(seed, noise):
    from trustvl.discovery import cosine_distance_matrix, kmedoids_sweep

    x, _ = blobs(40, 9, dim=8, noise=noise, seed=seed)
    dist = cosine_distance_matrix(x)
    ks = list(range(6, 15))
    fast = kmedoids_sweep(dist, ks, seed=seed)
    best_k, ref = plain_sweep(dist, ks, seed)
    assert fast.k == best_k
    np.testing.assert_array_equal(fast.medoids, ref[best_k][0])
    np.testing.assert_array_equal(fast.labels, ref[best_k][1])
    for k in ks:
        assert fast.silhouette[k] == pytest.approx(ref[k][2], abs=1e-6)
    # and through the public entry point, exact mode
    res = cluster_embeddings(x, 3, seed=seed, max_exact=None)
    assert res.method == "exact" and res.k == best_k
    np.testing.assert_array_equal(res.labels, ref[best_k][1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_exact_sweep_same_on_gpu():
    x, _ = blobs(300, 12, dim=32, noise=1.0, seed=4)
    cpu = cluster_embeddings(x, 4, seed=4, max_exact=None, device="cpu")
    gpu = cluster_embeddings(x, 4, seed=4, max_exact=None, device="cuda")
    assert cpu.k == gpu.k
    np.testing.assert_array_equal(cpu.labels, gpu.labels)
    np.testing.assert_array_equal(cpu.medoids, gpu.medoids)


def test_subsample_path_assigns_to_nearest_medoid():
    x, _ = blobs(60, 7, seed=1)
    res = cluster_embeddings(x, 3, seed=0, max_exact=200)
    assert res.method == "subsample+assign" and res.n_fit == 200 and res.n_select == 200
    assert res.k in range(6, 15)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = xn @ xn[res.medoids].T
    np.testing.assert_array_equal(res.labels, sims.argmax(1))
    np.testing.assert_array_equal(res.labels[res.medoids], np.arange(res.k))
    again = cluster_embeddings(x, 3, seed=0, max_exact=200)
    np.testing.assert_array_equal(res.labels, again.labels)


def test_assign_to_medoids_batched():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(103, 8)).astype(np.float32)
    m = rng.normal(size=(5, 8)).astype(np.float32)
    lab, sim = assign_to_medoids(x, m, "cpu", batch_size=7)
    xn, mn = x / np.linalg.norm(x, axis=1, keepdims=True), m / np.linalg.norm(m, axis=1, keepdims=True)
    np.testing.assert_array_equal(lab, (xn @ mn.T).argmax(1))
    np.testing.assert_allclose(sim, (xn @ mn.T).max(1), atol=1e-5)


# ---------------------------------------------------------------- bad input
def test_bad_inputs():
    emb, img, labels, preds, scores, _ = toy()
    with pytest.raises(TrustVLInputError, match="regions"):  # fewer regions than clusters (k in [4, 10))
        discover_spurious_regions(emb[:3], [0, 0, 1], labels, preds, scores[:3], 2)
    with pytest.raises(TrustVLInputError, match="k=50"):
        discover_spurious_regions(emb, img, labels, preds, scores, 2, k=50)
    with pytest.raises(TrustVLInputError, match="n_classes=1"):
        discover_spurious_regions(emb, img, labels, preds, scores[:, :1], 1)
    with pytest.raises(TrustVLInputError, match="single class"):
        discover_spurious_regions(emb, img, np.zeros_like(labels), preds, scores, 2)
    with pytest.raises(TrustVLInputError, match="19 entries.*20"):
        discover_spurious_regions(emb, img, labels, preds[:19], scores, 2)
    bad = emb.copy()
    bad[3, 1] = np.nan
    with pytest.raises(TrustVLInputError, match="non-finite"):
        discover_spurious_regions(bad, img, labels, preds, scores, 2)
    with pytest.raises(TrustVLInputError, match="region_class_scores has shape"):
        discover_spurious_regions(emb, img, labels, preds, scores[:, :1], 2)
    with pytest.raises(TrustVLInputError, match="region_image_index"):
        discover_spurious_regions(emb, img + 100, labels, preds, scores, 2)
    with pytest.raises(TrustVLInputError, match="image_preds has values"):
        discover_spurious_regions(emb, img, labels, preds + 5, scores, 2)
    with pytest.raises(TrustVLInputError, match="region_is_spurious"):
        precision_at_k(discover_spurious_regions(emb, img, labels, preds, scores, 2, k=5), [True])


# ---------------------------------------------------------------- regions
def test_grid_and_regions():
    assert grid_regions(64) == [(0, 0, 32, 32), (32, 0, 64, 32), (0, 32, 32, 64), (32, 32, 64, 64)]
    cells = grid_regions((5, 7), 3)
    area = sum((r - left) * (b - t) for left, t, r, b in cells)
    assert len(cells) == 9 and area == 35
    with pytest.raises(TrustVLInputError):
        grid_regions(64, 0)
    from PIL import Image

    arr = np.full((8, 8, 3), 200, np.uint8)
    images = [Image.fromarray(arr), Image.fromarray(arr)]
    regs = make_regions(images, "grid")
    assert len(regs) == 8 and regs[5].image_index == 1 and regs[5].box == (4, 0, 8, 4)
    with pytest.raises(TrustVLInputError, match="outside"):
        make_regions(images, [[(0, 0, 9, 4)], []])

    def segmenter(image):
        m = np.zeros((8, 8), bool)
        m[2:5, 3:7] = True
        m[2, 3] = False
        return [m, np.zeros((8, 8), bool)]  # the empty mask is skipped

    regs = make_regions(images, segmenter)
    assert len(regs) == 2 and regs[0].box == (3, 2, 7, 5) and regs[0].mask.shape == (3, 4)
    crop = np.asarray(crop_regions(images, regs)[0])
    assert crop.shape == (3, 4, 3) and crop[0, 0].tolist() == [0, 0, 0] and crop[1, 1].tolist() == [200] * 3
    boxes = make_regions(images, [Region(0, (0, 0, 2, 2))])
    assert boxes[0].box == (0, 0, 2, 2)


def test_zero_shot_scores():
    e = np.array([[1, 0], [0, 2], [1, 1]], np.float32)
    t = np.array([[2, 0], [0, 1]], np.float32)
    np.testing.assert_allclose(zero_shot_scores(e, t), [[1, 0], [0, 1], [2**-0.5, 2**-0.5]], atol=1e-6)
    with pytest.raises(TrustVLInputError, match="non-finite"):
        zero_shot_scores(np.array([[np.inf, 0]]), t)


# ---------------------------------------------------------------- end to end with a tiny CLIP
def test_discover_end_to_end_tiny_clip(tiny_clip_dir, tmp_path):
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(tiny_clip_dir).eval()
    processor = CLIPProcessor.from_pretrained(tiny_clip_dir)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(12)]
    labels = [i % 3 for i in range(12)]
    prompts = ["a photo of a cat", ["a photo of a dog", "a dog"], "a photo of a car"]
    res = discover(model, processor, images, labels, prompts, k=6, progress=False, batch_size=16)
    assert res.n_regions == 48 and len(res.regions) == 48 and res.n_images == 12
    assert res.image_preds is not None and len(res.image_preds) == 12
    if res.message != NOTHING_TO_DISCOVER:
        assert res.k == 6 and sum(c.size for c in res.all_clusters) == 48
    json.loads(res.to_json())
    plot_cluster_exemplars(res, images, tmp_path / "ex.png", n_per_cluster=2, thumb_size=16)
    assert (tmp_path / "ex.png").exists()
