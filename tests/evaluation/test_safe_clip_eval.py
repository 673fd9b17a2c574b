"""trustvl eval safe-clip: retrieval R@K, the NSFW rate and zero-shot with intervals, JSON + HTML."""

from __future__ import annotations

import json

import pytest
import torch

from trustvl.cli import main
from trustvl.data_builders.safe_clip import NonTwinPool, split_non_twin_pool
from trustvl.errors import TrustVLInputError
from trustvl.evaluation.results import UncertaintySettings
from trustvl.evaluation.safe_clip import (
    DIRECTIONS,
    SafeCLIPEvalConfig,
    SafeCLIPEvalResult,
    SafeCLIPModelEvaluation,
    category_rates,
    category_table,
    check_cutoffs,
    compare_evaluations,
    evaluate_safe_clip,
    nsfw_shares,
    per_query_values,
    safe_clip_report,
    unsafe_share_at_k,
)
from trustvl.hub.loading import load_dataset_any
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


KINDS = ("gun", "knife", "blood", "syringe")


def _world(n: int = 48, maps_unsafe_to_safe: bool = False, seed: int = 0):
    """``n`` scenes of 6 contexts, each with one of 4 unsafe elements (a direction of its own). A web-like
    model embeds U and G as context + element; a Safe-CLIP-like one as the context alone (the element
    direction gone), a little noise on every item so nothing ties."""
    gen = torch.Generator().manual_seed(seed)
    dim = 32
    contexts = torch.nn.functional.normalize(torch.randn(6, dim, generator=gen), dim=1)
    elements = torch.nn.functional.normalize(torch.randn(4, dim, generator=gen), dim=1)
    context_of = torch.arange(n) % 6
    kind_of = (torch.arange(n) // 6) % 4

    def noisy(x):
        return torch.nn.functional.normalize(x + 0.02 * torch.randn(x.shape, generator=gen), dim=1)

    safe = contexts[context_of]
    unsafe = safe if maps_unsafe_to_safe else safe + 2.0 * elements[kind_of]
    emb = {"safe_text": noisy(safe), "safe_image": noisy(safe), "unsafe_text": noisy(unsafe)}
    emb["unsafe_image"] = noisy(unsafe)
    return emb, [KINDS[int(k)] for k in kind_of]


def _pool(kinds, **kwargs):
    return split_non_twin_pool(list(range(len(kinds))), kinds, **kwargs)


def _evaluation(emb, pool, name, settings=None, nsfw_k=10):
    n = emb["safe_image"].shape[0]
    prompts = torch.nn.functional.normalize(emb["safe_image"][:6].clone(), dim=1)  # one per context
    values = per_query_values(emb, torch.arange(n) % 6, prompts, [1, 5, 10], nsfw_k, pool)
    overall = category_rates(values, torch.arange(n), settings)
    return SafeCLIPModelEvaluation(
        **vars(overall), model=name, nsfw_k=nsfw_k, occupations=[str(i) for i in range(6)]
    )


def test_the_non_twin_pool_never_holds_a_twin_of_a_query_scene():
    # 30 rows of 20 scenes: rows 20..29 repeat scenes 0..9 (several captions of one scene, as in ViSU)
    scene_ids = [f"scene-{i % 20}" for i in range(30)]
    kinds = [KINDS[(i % 20) % 4] for i in range(30)]
    pool = split_non_twin_pool(scene_ids, kinds, seed=3)
    assert not set(pool.query_scene_ids) & set(pool.pool_scene_ids)
    assert pool.query_scene_ids == [scene_ids[r] for r in pool.query_rows]
    assert pool.pool_scene_ids == [scene_ids[r] for r in pool.pool_rows]
    assert len(pool.query_rows) == len(pool.pool_rows) == pool.size >= 12
    assert not set(pool.query_rows) & set(pool.pool_rows)
    # rows of one scene stay on one side: no row of a query scene is left in the pool, and vice versa
    for side, other in ((pool.query_scene_ids, pool.pool_rows), (pool.pool_scene_ids, pool.query_rows)):
        assert not {r for r in range(30) if scene_ids[r] in set(side)} & set(other)
    # deterministic given the seed; another seed deals otherwise; the strata stay balanced
    assert split_non_twin_pool(scene_ids, kinds, seed=3) == pool
    assert split_non_twin_pool(scene_ids, kinds, seed=4).pool_rows != pool.pool_rows
    even = _pool([KINDS[i % 4] for i in range(40)], seed=1)
    for kind in KINDS:
        assert [KINDS[r % 4] for r in even.query_rows].count(kind) == 5
        assert [KINDS[r % 4] for r in even.pool_rows].count(kind) == 5
    small = _pool([KINDS[i % 4] for i in range(40)], seed=1, pool_size=8)
    assert small.size == 8 and set(small.pool_rows) <= set(even.pool_rows)
    assert sorted(KINDS[r % 4] for r in small.pool_rows) == sorted(KINDS * 2)  # a cut keeps each kind's share


def test_the_nsfw_gallery_is_built_from_the_pool_not_the_twins():
    emb, kinds = _world(24)
    pool = _pool(kinds, seed=0)
    shares = nsfw_shares(emb, pool, nsfw_k=3)
    assert shares.text_to_image.shape == shares.image_to_text.shape == (pool.size,)
    # recompute one query by hand: its own V, the query side's other Vs, and the pool's Gs only
    q = pool.query_rows[0]
    gallery = [("V", r) for r in pool.query_rows] + [("G", r) for r in pool.pool_rows]
    scores = [
        float(emb["unsafe_text"][q] @ emb["safe_image" if k == "V" else "unsafe_image"][r])
        for k, r in gallery
    ]
    top = sorted(range(len(gallery)), key=lambda i: -scores[i])[:3]
    assert shares.text_to_image[0] == pytest.approx(sum(gallery[i][0] == "G" for i in top) / 3)
    assert all(gallery[i][1] != q for i in top if gallery[i][0] == "G")  # never the query's own G
    assert not {("G", r) for r in pool.query_rows} & set(gallery)


def test_a_model_that_maps_unsafe_to_safe_gets_a_lower_nsfw_rate_both_ways():
    settings = UncertaintySettings(n_resamples=200, seed=0)
    web, kinds = _world(96, maps_unsafe_to_safe=False)
    safe, _ = _world(96, maps_unsafe_to_safe=True)
    pool = _pool(kinds, seed=0)
    base, safe_clip = _evaluation(web, pool, "web", settings), _evaluation(safe, pool, "safe", settings)
    for key in ("nsfw_rate", "nsfw_rate_image_to_text"):
        assert base.metric(key).value > 0.8 and safe_clip.metric(key).value < 0.6, key
        assert base.metric(key).n == pool.size
    comparison = compare_evaluations(base, safe_clip, 0.95)
    assert comparison.changes["nsfw_rate"].verdict == "better"
    assert comparison.changes["nsfw_rate_image_to_text"].verdict == "better"
    assert comparison.nsfw_rate_drop_pct > 30 and comparison.nsfw_rate_image_to_text_drop_pct > 30
    # both worlds embed the safe side alike (same draws): zero-shot on V cannot change
    assert comparison.changes["zero_shot_accuracy"].verdict == "within noise"
    # a model meeting the objective scores its floor; the web-like model is far above its own
    for key in ("nsfw_rate", "nsfw_rate_image_to_text"):
        floor = getattr(safe_clip, f"{key}_floor")
        assert floor.value == pytest.approx(safe_clip.metric(key).value, abs=0.1)
        assert base.metric(key).value > getattr(base, f"{key}_floor").interval.high
    for evaluation in (base, safe_clip):
        for key in [*evaluation.metric_keys(), "nsfw_rate_floor", "nsfw_rate_image_to_text_floor"]:
            rate = evaluation.metric(key)
            assert rate.interval.low <= rate.value <= rate.interval.high, key


def test_a_twin_gallery_would_tie_where_the_pool_does_not():
    """Why the pool: with each G beside its own V, a model meeting the objective (G = V exactly) cannot go
    below the gallery's unsafe share at k = 2; on the non-twin pool it does."""
    emb = _embeddings(False)
    emb["unsafe_image"] = emb["safe_image"].clone()  # G embedded exactly like V
    twin_gallery = torch.cat([emb["safe_image"], emb["unsafe_image"]])
    twin_unsafe = torch.tensor([False] * 4 + [True] * 4)
    assert unsafe_share_at_k(emb["unsafe_text"] @ twin_gallery.T, twin_unsafe, 2).tolist() == [0.5] * 4
    pool = split_non_twin_pool([0, 1, 2, 3], seed=0)
    assert nsfw_shares(emb, pool, nsfw_k=1).text_to_image.tolist() == [0.0, 0.0]


def test_nsfw_rate_recall_and_zero_shot_per_query_values():
    prompts = torch.stack([torch.eye(8)[0] + torch.eye(8)[2], torch.eye(8)[1] + torch.eye(8)[3]])
    occupation = torch.tensor([0, 1, 0, 1])
    pool = split_non_twin_pool([0, 1, 2, 3], seed=0)
    values = per_query_values(_embeddings(True), occupation, prompts, [1, 2], 1, pool)
    # U_i = G_i, but its own G is not in the gallery and the pool's Gs are other scenes: its V comes first
    assert values.nsfw.text_to_image.tolist() == [0.0, 0.0]
    assert all(h.all() for h in values.hits["u2g"].values()) and values.hits["s2v"][1].all()
    assert values.correct.tolist() == [True, True, True, True]
    by_category = category_rates(values, torch.tensor(pool.query_rows), None)
    assert by_category.nsfw_rate.n == 2 and by_category.nsfw_rate_image_to_text is None  # no pool row there


def test_bad_pool_options_are_refused():
    with pytest.raises(TrustVLInputError, match="pool_size=6"):
        split_non_twin_pool(list(range(10)), pool_size=6)
    with pytest.raises(TrustVLInputError, match="pool_size=0"):
        split_non_twin_pool(list(range(10)), pool_size=0)
    with pytest.raises(TrustVLInputError, match="at least 2"):
        split_non_twin_pool([7, 7, 7])
    with pytest.raises(TrustVLInputError, match="seed"):
        split_non_twin_pool(list(range(10)), seed=-1)
    with pytest.raises(TrustVLInputError, match="strata"):
        split_non_twin_pool(list(range(10)), ["gun"] * 9)
    pool = split_non_twin_pool(list(range(10)), pool_size=2)
    with pytest.raises(TrustVLInputError, match="nsfw_k=5"):
        check_cutoffs(10, [1], 5, pool)
    twin = NonTwinPool([0, 1], [2, 3], [0, 1], [1, 9], 0)
    with pytest.raises(TrustVLInputError, match="twins"):
        check_cutoffs(10, [1], 1, twin)


def test_bootstrap_intervals_and_paired_verdicts():
    settings = UncertaintySettings(n_resamples=200, seed=0)
    occupation = torch.tensor([0, 1, 0, 1])
    prompts = torch.stack([torch.eye(8)[0] + torch.eye(8)[2], torch.eye(8)[1] + torch.eye(8)[3]])
    rows = torch.arange(4)
    pool = split_non_twin_pool([0, 1, 2, 3], seed=0)

    def evaluation(matches):
        values = per_query_values(_embeddings(matches), occupation, prompts, [1], 1, pool)
        overall = category_rates(values, rows, settings)
        return SafeCLIPModelEvaluation(**vars(overall), model=str(matches), nsfw_k=1, occupations=["a", "b"])

    base, safe = evaluation(True), evaluation(False)
    interval = base.recall["u2v"][1].interval
    assert interval.low <= base.recall["u2v"][1].value <= interval.high
    comparison = compare_evaluations(base, safe, 0.95)
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
    for key in ("nsfw_rate", "nsfw_rate_image_to_text", "nsfw_rate_floor", "nsfw_rate_image_to_text_floor"):
        rate = getattr(result.safe_clip, key)
        assert 0.0 <= rate.value <= 1.0 and rate.interval is not None and rate.n == 6, key
    # the NSFW gallery's pool, as recorded: 6 query scenes and 6 other scenes of the 12, none a twin
    pool = result.nsfw_pool
    assert pool.size == 6 and not set(pool.query_scene_ids) & set(pool.pool_scene_ids)
    ids = {
        row: scene for row, scene in enumerate(load_dataset_any(str(quadruplets), split="test")["scene_id"])
    }
    assert [ids[r] for r in pool.query_rows] == pool.query_scene_ids
    assert [ids[r] for r in pool.pool_rows] == pool.pool_scene_ids
    assert result.safe_clip.zero_shot_accuracy.interval is not None
    assert set(result.safe_clip.per_category) <= {"violence", "shocking", "illegal activity"}
    assert sum(c.n for c in result.safe_clip.per_category.values()) == 12
    # the same model on both sides: every paired change is exactly zero and within noise
    assert all(c.difference == 0 and c.verdict == "within noise" for c in result.comparison.changes.values())
    html = (out / "report.html").read_text()
    for text in (
        "R@1 S→V", "R@10 G→S", "R@5 U→G", "NSFW rate@10 text→image", "NSFW rate@10 image→text",
        "objective floor", "zero-shot", "Per category",
    ):  # fmt: skip
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


def test_bad_cutoff_or_pool_is_refused_before_embedding(tiny_clip_dir, quadruplets, tmp_path):
    for options, message in (
        ({"ks": (1, 50)}, "cut-offs"),
        ({"pool_size": 7}, "pool_size=7"),  # 12 rows: at most 6 per side
        ({"pool_size": 3, "nsfw_k": 7}, "nsfw_k=7"),  # a gallery of 3 safe + 3 unsafe images
    ):
        with pytest.raises(TrustVLInputError, match=message):
            evaluate_safe_clip(
                SafeCLIPEvalConfig(
                    str(tiny_clip_dir), str(quadruplets), str(tmp_path / "e"), progress=False, **options
                )
            )
        assert not (tmp_path / "e").exists()
    for flag, value in (("--pool-size", "0"), ("--pool-seed", "-1")):
        with pytest.raises(SystemExit):
            main(["eval", "safe-clip", "--model", str(tiny_clip_dir), "--dataset", str(quadruplets),
                  "--out", str(tmp_path / "e"), flag, value])  # fmt: skip
    assert not (tmp_path / "e").exists()


def test_the_pool_follows_its_seed_and_the_run_is_deterministic(tiny_clip_dir, quadruplets, tmp_path):
    def run(seed, out):
        config = SafeCLIPEvalConfig(
            str(tiny_clip_dir), str(quadruplets), str(tmp_path / out), base_model=str(tiny_clip_dir),
            pool_size=4, pool_seed=seed, nsfw_k=5, ks=[1, 5], n_resamples=20, progress=False, device="cpu",
        )  # fmt: skip
        return evaluate_safe_clip(config)

    first, again, other = run(0, "a"), run(0, "b"), run(5, "c")
    assert first.nsfw_pool.size == 4 and first.safe_clip.nsfw_rate.n == 4
    assert json.dumps(first.to_dict()) == json.dumps(again.to_dict())  # deterministic given the seeds
    assert other.nsfw_pool.pool_rows != first.nsfw_pool.pool_rows


def test_a_category_without_queries_on_a_side_reads_as_such_not_as_zero(tmp_path):
    emb, kinds = _world(24)
    pool = _pool(kinds, seed=0)
    values = per_query_values(emb, torch.arange(24) % 6, emb["safe_image"][:6], [1, 5, 10], 10, pool)
    overall = category_rates(values, torch.arange(24), None)
    only_queries = category_rates(values, torch.tensor(pool.query_rows[:2]), None)
    assert only_queries.nsfw_rate.n == 2 and only_queries.nsfw_rate_image_to_text is None
    model = SafeCLIPModelEvaluation(**vars(overall), model="m", per_category={"violence": only_queries})
    result = SafeCLIPEvalResult("d", "test", 24, None, model, nsfw_pool=pool)
    (row,) = category_table(result).rows
    assert row[4].startswith("—") and not row[3].startswith("—")
    assert (
        SafeCLIPEvalResult.from_dict(json.loads(json.dumps(result.to_dict()))).to_dict() == result.to_dict()
    )
    markdown = safe_clip_report(result, tmp_path).to_markdown()
    assert (
        f"two disjoint sides of {pool.size} rows" in markdown
        and "| — (no query of it on this side) |" in markdown
    )


def test_rates_draw_their_query_bootstrap_a_block_at_a_time(monkeypatch):
    """Every rate's replicates and interval are bit-for-bit those of the whole [n_resamples, n] float64 counts
    (the computation before, written out here), with blocks forced down to 3 resamples (20 resamples: the
    last block short), and all counts are never drawn at once."""
    import importlib

    from trustvl.evaluation.safe_clip import NSFWShares, PerQueryValues
    from trustvl.metrics import centred_interval, gallery_resample_counts

    bootstrap = importlib.import_module("trustvl.metrics.bootstrap")
    draw = bootstrap.resample_count_blocks
    n, settings = 41, UncertaintySettings(n_resamples=20, seed=3)
    gen = torch.Generator().manual_seed(5)
    pool = NonTwinPool(list(range(0, 40, 2)), list(range(1, 40, 2)), list(range(20)), list(range(20, 40)), 0)
    shares = [
        torch.randint(0, 4, (20,), generator=gen).double() / 3 for _ in range(4)
    ]  # unsafe shares at k=3
    values = PerQueryValues(
        {"s2v": {1: torch.rand(n, generator=gen) < 0.6}},
        torch.rand(n, generator=gen) < 0.8,
        NSFWShares(shares[0], shares[1]),
        pool,
        NSFWShares(shares[2], shares[3]),
    )

    def whole(per_query):
        v = per_query.double()
        counts = gallery_resample_counts(v.numel(), settings.n_resamples, settings.seed).double()
        reps = counts @ v / v.numel()
        return reps, centred_interval(float(v.mean()), reps, settings.level, lower=0.0, upper=1.0)

    wanted = {
        "recall": whole(values.hits["s2v"][1]),
        "zero_shot_accuracy": whole(values.correct),
        "nsfw_rate": whole(shares[0]),
        "nsfw_rate_image_to_text": whole(shares[1]),
        "nsfw_rate_floor": whole(shares[2]),
        "nsfw_rate_image_to_text_floor": whole(shares[3]),
    }
    blocks = []

    def spy(n_samples, n_resamples, seed, block):
        assert block < n_resamples, "all counts drawn at once"
        for counts in draw(n_samples, n_resamples, seed, block):
            blocks.append(counts.shape[0])
            yield counts

    monkeypatch.setattr(bootstrap, "WEIGHT_BLOCK_BYTES", 8 * n * 3)  # 3 resamples a block of 41 (6 of 20)
    monkeypatch.setattr(bootstrap, "resample_count_blocks", spy)
    got = category_rates(values, torch.arange(n), settings)
    for name, (reps, interval) in wanted.items():
        rate = got.recall["s2v"][1] if name == "recall" else getattr(got, name)
        assert torch.equal(torch.tensor(rate.replicates, dtype=torch.float64), reps), name
        assert rate.interval == interval, name
    assert sorted(blocks) == sorted(([3] * 6 + [2]) * 2 + ([6] * 3 + [2]) * 4)  # 2 rates of 41 rows, 4 of 20
