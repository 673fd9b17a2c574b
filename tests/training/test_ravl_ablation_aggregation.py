"""The RaVL mitigation ablation's aggregation (benchmarks/bench_ravl_mitigation_ablation.py) on synthetic
runs: seed-level intervals, settings worse beyond noise, runs without a selection, the markdown table."""

from __future__ import annotations

import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_ravl_mitigation_ablation")


def test_seed_interval(bench):
    iv = bench.seed_interval([0.5, 0.6, 0.7])
    assert iv["mean"] == pytest.approx(0.6) and iv["n_seeds"] == 3
    assert iv["high"] - iv["mean"] == pytest.approx(4.303 * 0.1 / 3**0.5)
    single = bench.seed_interval([0.4, None])
    assert single == {"mean": 0.4, "low": None, "high": None, "n_seeds": 1}


def _runs():
    """Settings A and B x seeds 0-2; standard worst 0.1 / overall 0.6 everywhere. Strategy ``good`` lifts
    both settings; ``bad`` lifts A but makes B worse in every seed; ``none`` selects nothing in B."""
    bases, results = {}, []
    for setting in ("A", "B"):
        for seed in range(3):
            task = f"{setting}_seed{seed}"
            bases[task] = {
                "task": task,
                "setting": setting,
                "seed": seed,
                "standard": {
                    "worst_group_accuracy": 0.1,
                    "overall_accuracy": 0.6,
                    "seconds": 1.0,
                    "cpu_seconds": 1.0,
                },
                "discovery": {"seconds": 1.0, "n_kept_clusters": 2},
                "base_seconds": 3.0,
                "base_cpu_seconds": 3.0,
            }
            for strategy, worst, overall in (
                ("top1", 0.8 + 0.01 * seed, 0.8),
                ("all_kept", 0.7 if setting == "A" else 0.05 - 0.01 * seed, 0.7 if setting == "A" else 0.5),
                ("gap_test", None if setting == "B" else 0.9, None if setting == "B" else 0.85),
            ):
                mitigated = (
                    None if worst is None else {"worst_group_accuracy": worst, "overall_accuracy": overall}
                )
                acc = mitigated or bases[task]["standard"]
                results.append(
                    {
                        "task": task,
                        "setting": setting,
                        "seed": seed,
                        "strategy": strategy,
                        "loss_variant": "ravl",
                        "acted_on_clusters": [] if mitigated is None else [{"cluster_id": 0}],
                        "flags": {"precision": None if mitigated is None else 1.0, "recall": 0.5},
                        "mitigated": mitigated,
                        "no_selection": mitigated is None,
                        "seconds": 0.0 if mitigated is None else 10.0,
                        "cpu_seconds": 0.0 if mitigated is None else 9.0,
                        "worst_group_gain_points": 100 * (acc["worst_group_accuracy"] - 0.1),
                        "overall_gain_points": 100 * (acc["overall_accuracy"] - 0.6),
                    }
                )
    return bases, results


def test_summary_finds_settings_worse_beyond_noise_and_keeps_standard_without_selection(bench):
    bases, results = _runs()
    summary = bench.summarise(bases, results)
    rows = {r["strategy"]: r for r in summary["strategies"]}
    assert [r["strategy"] for r in summary["strategies"]] == ["top1", "all_kept", "gap_test"]
    assert rows["top1"]["settings_worse_beyond_noise"] == []
    assert rows["top1"]["worst_group_gain_points"]["mean"] == pytest.approx(71.0)
    assert rows["top1"]["goals"]["worst_group_gain_60"] is True
    assert rows["all_kept"]["settings_worse_beyond_noise"] == ["B"]
    assert rows["all_kept"]["goals"]["no_setting_worse_beyond_noise"] is False
    # no selection in B: the user keeps the standard model there (gain 0), which is not worse
    gap = rows["gap_test"]
    assert gap["runs_without_selection"] == 3 and gap["settings_worse_beyond_noise"] == []
    assert gap["worst_group_accuracy"]["mean"] == pytest.approx((0.9 + 0.1) / 2)
    assert gap["mean_seconds_per_finetune"] == 10.0 and gap["flag_precision"]["mean"] == 1.0
    assert summary["standard_finetuning"]["worst_group_accuracy"]["mean"] == pytest.approx(0.1)
    table = bench.markdown(
        {
            "summary": summary,
            "config": {
                "cramers_v": [0.9],
                "spurious_classes": [3],
                "seeds": [0, 1, 2],
                "classes": [1, 3],
                "n_train": 10,
                "steps": 1,
                "batch_size": 2,
                "lr": 1e-4,
                "lora": False,
                "device": "cpu",
            },
            "tasks": sorted(bases),
            "command": "python benchmarks/bench_ravl_mitigation_ablation.py",
        }
    )
    assert "| `all_kept` | ravl |" in table and "| B | " in table and "yes / yes / no" in table
    n_runs = sum(r["n_runs"] for r in summary["strategies"])
    assert f"reuses its run (`reused_from` in the run files): 0 of {n_runs} runs here" in table
    assert "3 runs selected no cluster" in table


def test_runs_are_cached_on_the_flagged_cluster_set_loss_and_seed(bench, tmp_path):
    """Two strategies that act on the same clusters (same weights) with the same loss and seed share one
    fine-tune; another weight, loss or seed is another run; older files without a stored key still match."""
    a = [{"cluster_id": 3, "weight": 1.0}, {"cluster_id": 1, "weight": 1.0}]
    key = bench.flag_key(a, "ravl", 0)
    assert key == bench.flag_key(list(reversed(a)), "ravl", 0) == "seed=0|loss=ravl|clusters=1:1,3:1"
    assert key != bench.flag_key(
        [{"cluster_id": 3, "weight": 1.0}, {"cluster_id": 1, "weight": 0.5}], "ravl", 0
    )
    assert key != bench.flag_key(a, "ravl_uniform", 0) and key != bench.flag_key(a, "ravl", 1)
    assert bench.flag_key([], "ravl", 0) == "seed=0|loss=ravl|clusters="

    task = tmp_path / "v0.8_s7_seed0"
    trained = {"strategy": "top_per_class", "loss_variant": "ravl", "seed": 0, "acted_on_clusters": a}
    trained.update(mitigated={"overall_accuracy": 0.8}, no_selection=False, seconds=12.0, cpu_seconds=11.0)
    reused = bench.reuse_row(
        {"strategy": "all_kept", "loss_variant": "ravl", "seed": 0, "acted_on_clusters": a}, trained
    )
    bench._write_json(task / "all_kept__ravl.json", reused)  # sorts first: a reuse must not hide the original
    bench._write_json(task / "top_per_class__ravl.json", trained)  # no stored flag_key (an older file)
    runs = bench.trained_runs(task)
    assert list(runs) == [key] and runs[key]["strategy"] == "top_per_class"
    again = bench.reuse_row({"strategy": "gap_test_or_top1"}, runs[key])
    assert again["reused_from"] == "top_per_class" and again["mitigated"] == {"overall_accuracy": 0.8}
    # a reuse of a reuse names the run that trained
    assert bench.reuse_row({"strategy": "x"}, reused)["reused_from"] == "top_per_class"


def test_the_ablation_covers_every_flag_strategy(bench):
    from trustvl.training.ravl import FLAG_STRATEGIES

    assert tuple(bench.STRATEGIES) == tuple(FLAG_STRATEGIES)


def test_cluster_facts_grade_flag_rules_offline(bench):
    """--discovery-only's per-cluster facts give the flag precision/recall a fine-tune run reports, for any
    rule, including the medoid strategies (medoids rebuilt from the stored cosines)."""
    import numpy as np

    from trustvl.training.ravl import ClusterStatistics, SpuriousMedoids

    offline = load_benchmark("ravl_flag_rules_offline")
    # clusters 0 (top) and 2 are the "rectangle", 2 split off near 0; 1 is far; 3 is not kept
    medoids = np.array([[1.0, 0, 0, 0], [0.2, 0.98, 0, 0], [0.9, 0, 0.436, 0], [0, 0, 0, 1.0]])
    k, c = 4, 2
    stats = ClusterStatistics(
        score=[1.0, 0.6, 0.4, 0.0],
        gap=[[-0.3, 0.5], [0.2, -0.1], [-0.1, 0.2], [0, 0]],
        n_in=np.full((k, c), 10),
        n_out=np.full((k, c), 30),
        acc_in=np.full((k, c), 0.5),
        acc_out=np.full((k, c), 0.5),
        influence_per_class=np.full((k, c), 0.5),
    )
    sm = SpuriousMedoids(medoids, [True, True, True, False], [0, 1, 2, -1], "toy", stats)
    # 10 images x 2 regions: which medoid each region sits on, and which hold the rectangle
    on = np.array([0, 1, 0, 3, 2, 1, 0, 3, 1, 1, 2, 3, 0, 1, 3, 3, 0, 1, 1, 3])
    truth = np.isin(on, [0, 2]).reshape(10, 2)
    truth[0, 0] = False  # one region of cluster 0 without the rectangle
    truth[1, 1] = True  # one rectangle region that went to cluster 3
    facts = bench.cluster_facts("t", sm, medoids[on] + 0.01, truth)
    assert facts["n_rectangle"] == int(truth.sum()) == 7
    assert [cl["n_regions"] for cl in facts["clusters"]] == [int((on == j).sum()) for j in range(k)]
    assert [cl["n_rectangle"] for cl in facts["clusters"]] == [4, 0, 2, 1]
    facts = json_round_trip(facts)
    graded = offline.grade(facts, [0, 2])  # 6 rectangle regions of 7 flagged; 6 of the 7 rectangle regions
    assert graded["precision"] == pytest.approx(6 / 7) and graded["recall"] == pytest.approx(6 / 7)
    rules = offline.candidate_rules()
    assert rules["top1"](facts) == [0]
    assert rules["all_kept"](facts) == [0, 1, 2]
    assert sorted(rules["top1_similar"](facts)) == sorted(sm.select("top1_similar").cluster_ids) == [0, 2]
    rebuilt = offline.medoid_embeds(facts)
    unit = rebuilt / np.linalg.norm(rebuilt, axis=1, keepdims=True)
    np.testing.assert_allclose(unit @ unit.T, sm.medoid_embeds @ sm.medoid_embeds.T, atol=1e-4)


def json_round_trip(obj):
    import json

    return json.loads(json.dumps(obj))
