"""RaVL flag rules graded offline (issue 27): flag precision and recall of candidate ``flag_clusters`` rules
on the ablation's tasks, without any mitigation fine-tune.

Input: the per-cluster facts that ``bench_ravl_mitigation_ablation.py --discovery-only`` writes per (setting,
seed) task (``<runs>/<task>/clusters.json``: discovery's statistics, the medoids' cosine similarities, and
per cluster the training regions it gets by nearest medoid and how many of them hold the planted rectangle).
A rule sees only what discovery gives (ranks, scores, gaps, counts, medoids); the rectangle counts only grade
it: flag precision = rectangle regions / regions in the acted-on clusters, recall = rectangle regions in
them / all rectangle regions (exactly what the ablation's ``flags`` report for the training regions).

Candidates, each with one threshold swept (the shipped strategies of
:mod:`trustvl.training.ravl.flag_strategies` are graded too, through ``select_flag_clusters``):

* ``score_ratio(r)``: the kept clusters with score >= r x the top score;
* ``medoid_cos(t)``: top1 + the kept clusters whose medoid has cosine >= t with the top cluster's;
* ``gap_corr(t)``: top1 + the kept clusters whose per-class gap vector has Pearson correlation >= t with
  the top cluster's (same shortcut: favours and hurts the same classes);
* ``gap_cos(t)``: as ``gap_corr`` with the cosine of the (uncentred) gap vectors;
* ``same_favoured``: top1 + the kept clusters whose most favoured class (largest positive gap) is the top
  cluster's (no threshold).

    python benchmarks/ravl_flag_rules_offline.py --runs /tmp/runs --out benchmarks/results/ravl_flag_rules_offline.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from trustvl.training.ravl.flag_strategies import (
    FLAG_STRATEGIES,
    MEDOID_STRATEGIES,
    ClusterStatistics,
    select_flag_clusters,
)

HERE = Path(__file__).resolve().parent
GOAL_PRECISION, GOAL_RECALL = 0.8, 0.9
_STATS = ("gap", "n_in", "n_out", "acc_in", "acc_out", "influence_per_class")


def statistics(facts: dict) -> ClusterStatistics:
    cl = facts["clusters"]
    arr = {
        n: np.array([[np.nan if x is None else x for x in c[n]] for c in cl], dtype=np.float64)
        for n in _STATS
    }
    for n in ("n_in", "n_out"):
        arr[n] = arr[n].astype(np.int64)
    return ClusterStatistics(
        score=np.array([c["score"] for c in cl]), min_influence=facts["min_influence"], **arr
    )


def medoid_embeds(facts: dict) -> np.ndarray:
    """Vectors with the stored medoids' cosine similarities (``C = V Λ Vᵀ`` → rows of ``V √Λ``): what the
    medoid strategies read, up to a rotation, which cosines do not see."""
    lam, vec = np.linalg.eigh(np.asarray(facts["medoid_cosine"], dtype=np.float64))
    return vec * np.sqrt(np.clip(lam, 0.0, None))


def ranked_kept(facts: dict) -> list[int]:
    """Kept cluster ids in rank order."""
    return [c["cluster_id"] for c in sorted(facts["clusters"], key=lambda c: c["rank"]) if c["rank"] >= 0]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.nan_to_num(a), np.nan_to_num(b)
    a, b = a - a.mean(), b - b.mean()
    den = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / den) if den > 0 else 0.0


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.nan_to_num(a), np.nan_to_num(b)
    den = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / den) if den > 0 else 0.0


def top1_plus(keep: Callable[[dict, int, int], bool]) -> Callable[[dict], list[int]]:
    """A rule acting on the top cluster and every other kept cluster ``j`` with ``keep(facts, top, j)``."""

    def rule(facts: dict) -> list[int]:
        ids = ranked_kept(facts)
        return ids[:1] + [j for j in ids[1:] if keep(facts, ids[0], j)]

    return rule


def _gap(facts: dict, j: int) -> np.ndarray:
    return np.array([np.nan if x is None else x for x in facts["clusters"][j]["gap"]], dtype=np.float64)


def candidate_rules() -> dict[str, Callable[[dict], list[int]]]:
    rules: dict[str, Callable[[dict], list[int]]] = {}

    def shipped(name: str) -> Callable[[dict], list[int]]:
        def rule(facts: dict) -> list[int]:
            cl = facts["clusters"]
            kept = np.array([c["kept"] for c in cl])
            rank = np.array([c["rank"] for c in cl])
            embeds = medoid_embeds(facts) if name in MEDOID_STRATEGIES else None
            sel = select_flag_clusters(kept, rank, name, statistics=statistics(facts), medoid_embeds=embeds)
            return sel.cluster_ids

        return rule

    for name in FLAG_STRATEGIES:
        if name != "score_weighted":  # = all_kept's set (weights aside)
            rules[name] = shipped(name)
    for r in (0.5, 0.6, 0.7, 0.8):
        rules[f"score_ratio({r})"] = lambda f, r=r: [
            j
            for j in ranked_kept(f)
            if f["clusters"][j]["score"] >= r * f["clusters"][ranked_kept(f)[0]]["score"]
        ]
    for t in (0.7, 0.8, 0.85, 0.9, 0.95):
        rules[f"medoid_cos({t})"] = top1_plus(lambda f, i, j, t=t: f["medoid_cosine"][i][j] >= t)
    for t in (0.0, 0.3, 0.5, 0.7, 0.9):
        rules[f"gap_corr({t})"] = top1_plus(lambda f, i, j, t=t: _corr(_gap(f, i), _gap(f, j)) >= t)
    for t in (0.0, 0.3, 0.5, 0.7, 0.9):
        rules[f"gap_cos({t})"] = top1_plus(lambda f, i, j, t=t: _cos(_gap(f, i), _gap(f, j)) >= t)
    rules["same_favoured"] = top1_plus(
        lambda f, i, j: np.nanmax(_gap(f, j)) > 0 and np.nanargmax(_gap(f, j)) == np.nanargmax(_gap(f, i))
    )
    return rules


def grade(facts: dict, ids: list[int]) -> dict:
    cl = facts["clusters"]
    n = sum(cl[j]["n_regions"] for j in ids)
    rect = sum(cl[j]["n_rectangle"] for j in ids)
    return {
        "clusters": sorted(ids),
        "precision": rect / n if n else None,
        "recall": rect / facts["n_rectangle"] if facts["n_rectangle"] else None,
    }


def _mean(values: list) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def cosine_margin(tasks: list[dict]) -> dict:
    """Grading only (reads the rectangle counts): over the tasks whose top cluster is mostly rectangle, the
    medoid cosine to the top cluster of the other kept clusters that are mostly rectangle (``rectangle``) and
    of those that are mostly not (``other``): how much room ``top1_similar``'s threshold has."""
    rect, other, top_missed = [], [], []
    for t in tasks:
        ids = ranked_kept(t)
        cl = t["clusters"]

        def frac(j, cl=cl):
            return cl[j]["n_rectangle"] / max(cl[j]["n_regions"], 1)

        if frac(ids[0]) < 0.5:
            top_missed.append(t["task"])
            continue
        for j in ids[1:]:
            (rect if frac(j) >= 0.5 else other).append(t["medoid_cosine"][ids[0]][j])
    return {
        "rectangle_min": round(min(rect), 3) if rect else None,
        "rectangle_n": len(rect),
        "other_max": round(max(other), 3) if other else None,
        "other_n": len(other),
        "tasks_top_cluster_not_rectangle": top_missed,
    }


def markdown(report: dict) -> str:
    m = report["medoid_cosine_margin"]
    lines = [
        "# RaVL flag rules graded offline (issue 27)",
        "",
        f"{report['n_tasks']} (setting, seed) tasks; flag precision / recall on the training regions (mean over"
        " tasks; a task with nothing flagged has no precision). Command: `" + report["command"] + "`.",
        "",
        "| rule | flag precision | flag recall | clusters acted on | P >= 0.8 at R >= 0.9 | tasks with P >= 0.8"
        " and R >= 0.9 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["rules"]:
        ok = sum(
            g["precision"] is not None and g["precision"] >= GOAL_PRECISION and g["recall"] >= GOAL_RECALL
            for g in r["per_task"].values()
        )
        p, rc = r["precision"], r["recall"]
        lines.append(
            f"| `{r['rule']}` | {'n/a' if p is None else f'{p:.3f}'} | {'n/a' if rc is None else f'{rc:.3f}'}"
            f" | {r['mean_clusters']:.2f} | {'yes' if r['goal'] else 'no'} | {ok} / {len(r['per_task'])} |"
        )
    lines += [
        "",
        f"Medoid cosine to the top cluster's medoid (grading only): kept clusters mostly rectangle min"
        f" {m['rectangle_min']} (n = {m['rectangle_n']}), kept clusters mostly not rectangle max {m['other_max']}"
        f" (n = {m['other_n']}); tasks whose top cluster is not mostly rectangle:"
        f" {', '.join(m['tasks_top_cluster_not_rectangle']) or 'none'}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--runs", required=True, help="the --out-dir of bench_ravl_mitigation_ablation --discovery-only"
    )
    ap.add_argument("--out", default=str(HERE / "results" / "ravl_flag_rules_offline.json"))
    args = ap.parse_args(argv)
    tasks = [json.loads(p.read_text()) for p in sorted(Path(args.runs).glob("*/clusters.json"))]
    tasks = [t for t in tasks if t["clusters"]]
    rows = []
    for name, rule in candidate_rules().items():
        graded = {t["task"]: grade(t, rule(t)) for t in tasks}
        p = _mean([g["precision"] for g in graded.values()])
        r = _mean([g["recall"] for g in graded.values()])
        rows.append(
            {
                "rule": name,
                "precision": p,
                "recall": r,
                "mean_clusters": float(np.mean([len(g["clusters"]) for g in graded.values()])),
                "goal": p is not None and r is not None and p >= GOAL_PRECISION and r >= GOAL_RECALL,
                "per_task": graded,
            }
        )
    report = {
        "benchmark": "ravl_flag_rules_offline",
        "command": "python benchmarks/ravl_flag_rules_offline.py " + " ".join(argv or sys.argv[1:]),
        "n_tasks": len(tasks),
        "tasks": [t["task"] for t in tasks],
        "rules": rows,
    }
    report["medoid_cosine_margin"] = cosine_margin(tasks)
    Path(args.out).write_text(json.dumps(report, indent=1))
    Path(args.out).with_suffix(".md").write_text(markdown(report))
    print(f"{len(tasks)} tasks")
    print(f"{'rule':28s} {'P':>6s} {'R':>6s} {'k':>5s} goal")
    for r in rows:
        fmt = lambda x: "  n/a" if x is None else f"{x:6.3f}"  # noqa: E731
        print(
            f"{r['rule']:28s} {fmt(r['precision'])} {fmt(r['recall'])} {r['mean_clusters']:5.2f} {r['goal']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
