"""Which discovered clusters RaVL mitigation acts on (``RaVLConfig.flag_clusters``; issue 27).

Discovery (SPEC §3 step 5) keeps every cluster whose gaps have both signs and whose influence is at least
0.25, ranked by ``Σ |gap|``; mitigation makes the model ignore "the discovered spurious" regions (SPEC §3's
summary of the paper), and the public RaVL code returns the top-ranked cluster. How many of the kept clusters mitigation should suppress
is not specified by the paper; it is trustvl's choice, made among these strategies
(``benchmarks/bench_ravl_mitigation_ablation.py`` compares them):

* ``"top1"`` — the top-ranked kept cluster only (the public code's output; **the default**, chosen by the
  10 settings × 3 seeds ablation: ``benchmarks/results/ravl_mitigation_ablation_h100.md``, docs/methods/ravl.md).
* ``"top_per_class"`` — for every *affected* class, the best-ranked kept cluster that affects it. A cluster
  affects class ``l`` when its influence on ``l`` (step 4: the share of class-``l`` errors explained by the
  cluster) is at least discovery's ``min_influence`` — the reason the cluster was kept.
* ``"all_kept"`` — every kept cluster (trustvl's behaviour before the option existed).
* ``"score_weighted"`` — every kept cluster, acted on with weight ``score / top score`` (the top cluster 1):
  its regions' terms in :class:`~trustvl.training.ravl.RaVLLoss` are scaled by the weight (see
  ``region_weight`` there); with weights all 1 this is ``"all_kept"``.
* ``"gap_test"`` — the kept clusters whose most harmful gap is negative beyond noise: for some class, the
  interval of ``gap_l`` excludes 0 from below. The interval is trustvl's default construction
  (:func:`~trustvl.metrics.intervals.centred_interval`, 95 %, ``estimate ± z·SE``) from
  ``GAP_TEST_RESAMPLES`` seeded replicates that resample the images with and the images without a region in
  the cluster, each stratum with its own size (a stratified bootstrap: only each stratum's correct count
  matters, so a replicate draws it from ``Binomial(n, acc)``); ``n_in``/``n_out`` stay fixed, hence so does
  the gap's weight ``2·min/(n_in + n_out)``. No multiplicity correction: the test filters noise among
  clusters that step 5 already kept, it does not claim a discovery.
* ``"gap_test_or_top1"`` — ``"gap_test"``; when its test passes no candidate, the top-ranked one (so that a
  selection is never empty while discovery kept a cluster).
* ``"gap_test_two_sided"`` — the kept clusters with a class whose gap is nonzero beyond noise on either side:
  the test checks the evidence step 5 ranks on, ``Σ_l |gap_l|``, both signs. A shortcut shows most in the
  class it *favours*: on spurious digits at V = 0.8 / class 7 the rectangle's top cluster has gaps −0.04 and
  −0.04 on two classes (not beyond noise with 37 images each) and +0.46 on class 7, so ``"gap_test"`` drops
  it and keeps three clusters without the rectangle whose harm rests on 3 to 7 images. Same intervals as
  ``"gap_test"`` except that each side is resampled at its *plus-two* accuracy ``(correct + 1) / (n + 2)``
  (Agresti and Caffo, 2000): at an accuracy of 0 or 1 the plain resampling has no spread, so a favour or
  harm seen on 3 images would pass (at V = 0.8 / class 7 every kept cluster then passes); ``"gap_test"``
  keeps the plain resampling, as measured.

* ``"top1_similar"`` — the top-ranked kept cluster and every other kept cluster whose medoid lies within
  cosine similarity ``TOP1_SIMILAR_COSINE`` (0.8) of the top cluster's medoid, in the discovery model's region
  embedding space. Why: K-medoids often splits one spurious feature (the planted rectangle at different
  positions, sizes or over different digits) into several clusters, and ``"top1"`` then acts on one of them
  (flag recall 0.81 on the ablation's H100 run); the split-off clusters lie next to the top one in embedding
  space, while the clusters of the classes' own shapes lie far from it. Graded offline on the ablation's
  tasks (``benchmarks/ravl_flag_rules_offline.py``, all 30 tasks on CPU, the last 8 graded after the
  threshold was fixed; docs/methods/ravl.md): flag precision 1.00 at recall 0.97 (``"top1"``: 1.00 / 0.71);
  the kept rectangle clusters' medoids lay at cosine >= 0.79 of the top one's, the other kept clusters at
  <= 0.56, so the threshold is not knife-edge (0.7: 1.00 / 0.98, 0.9: 1.00 / 0.89). The cosine is in the discovery model's embedding space; where discovery's top
  cluster is not the spurious feature, the rule widens ``"top1"``'s mistake. It needs the medoid
  embeddings (the medoids file has them; :func:`selection_from_result` takes ``medoid_embeds``).

Candidates are the kept clusters (or the ids of ``RaVLConfig.clusters``, cut to ``top_clusters``); only
``"all_kept"`` accepts candidates that discovery did not rank.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trustvl.errors import TrustVLInputError
from trustvl.metrics.intervals import DEFAULT_LEVEL, centred_interval

__all__ = [
    "DEFAULT_FLAG_STRATEGY",
    "FLAG_STRATEGIES",
    "GAP_TEST_RESAMPLES",
    "MEDOID_STRATEGIES",
    "TOP1_SIMILAR_COSINE",
    "ActedOnCluster",
    "ClusterStatistics",
    "FlagSelection",
    "select_flag_clusters",
    "selection_from_result",
]

FLAG_STRATEGIES = (
    "top1",
    "top_per_class",
    "all_kept",
    "score_weighted",
    "gap_test",
    "gap_test_or_top1",
    "gap_test_two_sided",
    "top1_similar",
)
#: the strategies that read the medoid embeddings (not only discovery's statistics)
MEDOID_STRATEGIES = ("top1_similar",)
#: the ablation's choice (docs/methods/ravl.md; 10 spurious-digit settings x 6 seeds on one H100 host, 2026-12-07):
#: top1_similar meets all three of issue 27's goals over the 60 tasks: mean worst-group gain +69.8 [62.8, 76.8]
#: points, no setting worse than standard fine-tuning beyond noise, flag precision 0.95 at recall 0.91 (top1:
#: +66.8, precision 0.95 at recall 0.64). Its cost: where discovery's top cluster is not the spurious feature (3
#: of the 60 tasks) it may act on more wrong clusters than top1 (overall accuracy 0.49 / 0.57 vs top1's 0.70 / 0.72).
DEFAULT_FLAG_STRATEGY = "top1_similar"
#: ``"top1_similar"``'s one threshold: cosine similarity of a kept cluster's medoid to the top cluster's
TOP1_SIMILAR_COSINE = 0.8
GAP_TEST_RESAMPLES = 1000
GAP_TEST_SEED = 0
_STAT_FIELDS = ("score", "gap", "n_in", "n_out", "acc_in", "acc_out", "influence_per_class")


@dataclass
class ClusterStatistics:
    """Discovery's per-cluster statistics (rows = cluster ids, columns = classes), what the strategies read.

    ``score`` ``[k]``; ``gap``, ``n_in``, ``n_out``, ``acc_in``, ``acc_out`` (NaN where a side is empty),
    ``influence_per_class`` ``[k, C]``; ``min_influence`` is discovery's keep threshold.
    """

    score: np.ndarray
    gap: np.ndarray
    n_in: np.ndarray
    n_out: np.ndarray
    acc_in: np.ndarray
    acc_out: np.ndarray
    influence_per_class: np.ndarray
    min_influence: float = 0.25
    class_names: list[str] | None = None

    def __post_init__(self) -> None:
        self.score = np.asarray(self.score, dtype=np.float64).reshape(-1)
        k = len(self.score)
        for name in _STAT_FIELDS[1:]:
            arr = np.asarray(getattr(self, name), dtype=np.int64 if name.startswith("n_") else np.float64)
            if arr.ndim != 2 or arr.shape[0] != k:
                raise TrustVLInputError(
                    f"cluster statistic {name} has shape {arr.shape}; expected [{k}, n_classes] (one row per"
                    " cluster, like score)"
                )
            setattr(self, name, arr)
        if self.class_names is not None:
            self.class_names = [str(c) for c in self.class_names]
            if len(self.class_names) != self.gap.shape[1]:
                raise TrustVLInputError(
                    f"{len(self.class_names)} class names for {self.gap.shape[1]} classes; expected one per class"
                )

    @property
    def n_classes(self) -> int:
        return int(self.gap.shape[1])

    def class_name(self, c: int) -> str:
        return self.class_names[c] if self.class_names else str(c)

    @classmethod
    def from_result(cls, result: Any) -> ClusterStatistics:
        """From a :class:`~trustvl.discovery.DiscoveryResult` (every cluster, by id)."""
        clusters = sorted(getattr(result, "all_clusters", None) or [], key=lambda c: c.cluster_id)
        if not clusters:
            raise TrustVLInputError(
                f"the discovery result has no clusters ({getattr(result, 'message', '')!r}); there is nothing"
                " to select"
            )
        return cls(
            score=np.array([c.score for c in clusters]),
            **{name: np.stack([np.asarray(getattr(c, name)) for c in clusters]) for name in _STAT_FIELDS[1:]},
            min_influence=float((getattr(result, "params", None) or {}).get("min_influence", 0.25)),
            class_names=getattr(result, "class_names", None),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The statistics as named arrays (for ``np.savez``; see :meth:`from_arrays`)."""
        out = {f"stat_{name}": getattr(self, name) for name in _STAT_FIELDS}
        out["stat_min_influence"] = np.array(self.min_influence)
        out["stat_class_names"] = np.array(self.class_names or [], dtype=str)
        return out

    @classmethod
    def from_arrays(cls, data: Any) -> ClusterStatistics | None:
        """Inverse of :meth:`to_arrays`; `None` when ``data`` (e.g. an older medoids file) has none."""
        if "stat_score" not in data:
            return None
        names = [str(n) for n in data["stat_class_names"]]
        return cls(
            **{name: data[f"stat_{name}"] for name in _STAT_FIELDS},
            min_influence=float(data["stat_min_influence"]),
            class_names=names or None,
        )


@dataclass
class ActedOnCluster:
    """One cluster mitigation acts on: its id, discovery rank (0 = top), score, weight in the loss, and the
    classes it hurts (negative gap; the images of those classes are misclassified more when a region of the
    cluster is present) and favours (positive gap)."""

    cluster_id: int
    rank: int
    score: float | None
    weight: float
    hurt_classes: list[str] = field(default_factory=list)
    favoured_classes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster_id": self.cluster_id,
            "rank": self.rank,
            "score": None if self.score is None else round(float(self.score), 6),
            "weight": round(float(self.weight), 6),
            "hurt_classes": list(self.hurt_classes),
            "favoured_classes": list(self.favoured_classes),
        }

    def describe(self) -> str:
        """One line: ``cluster 4 (rank 1, score 0.812, weight 1): hurts one, three; favours seven``."""
        score = "n/a" if self.score is None else f"{self.score:.3f}"
        text = f"cluster {self.cluster_id} (rank {self.rank + 1}, score {score}, weight {self.weight:.3g})"
        if self.hurt_classes:
            text += f": hurts {', '.join(self.hurt_classes)}"
        if self.favoured_classes:
            text += f"{';' if self.hurt_classes else ':'} favours {', '.join(self.favoured_classes)}"
        return text


@dataclass
class FlagSelection:
    """The clusters a strategy selected: ``weights`` ``[k]`` (0 = not acted on, else in (0, 1]) and the
    acted-on clusters in rank order."""

    strategy: str
    weights: np.ndarray
    clusters: list[ActedOnCluster]

    @property
    def mask(self) -> np.ndarray:
        return self.weights > 0

    @property
    def cluster_ids(self) -> list[int]:
        return [c.cluster_id for c in self.clusters]

    @property
    def weighted(self) -> bool:
        """Whether some acted-on cluster has a weight below 1 (the loss then needs per-region weights)."""
        w = self.weights[self.mask]
        return bool(w.size and (w < 1.0).any())

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "clusters": [c.to_dict() for c in self.clusters]}


def _require_statistics(statistics: ClusterStatistics | None, strategy: str) -> ClusterStatistics:
    if statistics is None:
        raise TrustVLInputError(
            f"flag_clusters={strategy!r} needs discovery's cluster statistics, which this medoids file does not"
            " hold (written before they were saved); re-run trustvl discover, or use 'top1' or 'all_kept'"
        )
    return statistics


def _gap_test(
    stats: ClusterStatistics, ids: np.ndarray, level: float, seed: int, two_sided: bool = False
) -> np.ndarray:
    """Whether each cluster in ``ids`` has a class whose gap interval lies below 0 (or, ``two_sided``, excludes
    0 on either side; module docstring)."""
    rng = np.random.default_rng(seed)
    passed = np.zeros(len(ids), dtype=bool)
    for i, j in enumerate(ids):
        for c in range(stats.n_classes):
            n_in, n_out, gap = int(stats.n_in[j, c]), int(stats.n_out[j, c]), float(stats.gap[j, c])
            if n_in == 0 or n_out == 0 or gap == 0 or (gap > 0 and not two_sided):
                continue  # no contrast, or (one-sided) not a harm
            weight = 2.0 * min(n_in, n_out) / (n_in + n_out)
            p_in, p_out = float(stats.acc_in[j, c]), float(stats.acc_out[j, c])
            if two_sided:  # plus-two: a side with accuracy 0 or 1 on few images still has a spread
                p_in, p_out = (p_in * n_in + 1) / (n_in + 2), (p_out * n_out + 1) / (n_out + 2)
            acc_in = rng.binomial(n_in, p_in, GAP_TEST_RESAMPLES) / n_in
            acc_out = rng.binomial(n_out, p_out, GAP_TEST_RESAMPLES) / n_out
            interval = centred_interval(gap, weight * (acc_in - acc_out), level)
            if interval.high < 0 or interval.low > 0:
                passed[i] = True
                break
    return passed


def _acted_on(
    ids: np.ndarray, weights: np.ndarray, rank: np.ndarray, stats: ClusterStatistics | None
) -> list[ActedOnCluster]:
    out = []
    for j in sorted((int(j) for j in ids), key=lambda j: (rank[j] < 0, rank[j], j)):
        hurt, favoured, score = [], [], None
        if stats is not None:
            score = float(stats.score[j])
            hurt = [stats.class_name(c) for c in range(stats.n_classes) if stats.gap[j, c] < 0]
            favoured = [stats.class_name(c) for c in range(stats.n_classes) if stats.gap[j, c] > 0]
        out.append(ActedOnCluster(j, int(rank[j]), score, float(weights[j]), hurt, favoured))
    return out


def select_flag_clusters(
    kept: np.ndarray,
    rank: np.ndarray,
    strategy: str = DEFAULT_FLAG_STRATEGY,
    *,
    statistics: ClusterStatistics | None = None,
    candidates: np.ndarray | None = None,
    level: float = DEFAULT_LEVEL,
    seed: int = GAP_TEST_SEED,
    medoid_embeds: np.ndarray | None = None,
    similar_cosine: float = TOP1_SIMILAR_COSINE,
) -> FlagSelection:
    """The clusters ``strategy`` acts on (module docstring), among ``candidates`` (``[k]`` bool; default the
    kept ones). ``kept``/``rank`` are per cluster id (rank -1: not ranked); ``medoid_embeds`` ``[k, d]`` (row
    = cluster id) is read by :data:`MEDOID_STRATEGIES` only, with ``similar_cosine`` their threshold.
    Deterministic (``seed`` only seeds the gap test's resampling).

    Raises:
        TrustVLInputError: an unknown strategy, a strategy that needs ``statistics`` or ``medoid_embeds``
            without them, or a ranked strategy with candidates that discovery did not rank.
    """
    if strategy not in FLAG_STRATEGIES:
        raise TrustVLInputError(f"flag_clusters={strategy!r}; expected one of {FLAG_STRATEGIES}")
    kept = np.asarray(kept, dtype=bool).reshape(-1)
    rank = np.asarray(rank, dtype=np.int64).reshape(-1)
    k = len(kept)
    cand = kept.copy() if candidates is None else np.asarray(candidates, dtype=bool).reshape(-1)
    if len(rank) != k or len(cand) != k:
        raise TrustVLInputError(
            f"kept ({k}), rank ({len(rank)}) and candidates ({len(cand)}) differ in length"
        )
    if statistics is not None and len(statistics.score) != k:
        raise TrustVLInputError(f"statistics cover {len(statistics.score)} clusters; expected {k}")
    if strategy in MEDOID_STRATEGIES:
        if medoid_embeds is None:
            raise TrustVLInputError(
                f"flag_clusters={strategy!r} compares the clusters' medoid embeddings, and none were given;"
                " select from a SpuriousMedoids (the discovery folder) or pass medoid_embeds [k, d]"
            )
        medoid_embeds = np.asarray(medoid_embeds, dtype=np.float64)
        if medoid_embeds.ndim != 2 or medoid_embeds.shape[0] != k or not np.isfinite(medoid_embeds).all():
            raise TrustVLInputError(
                f"medoid_embeds has shape {medoid_embeds.shape}; expected a finite [{k}, d] array (one row per"
                " cluster id)"
            )
    if strategy != "all_kept" and (cand & (rank < 0)).any():
        raise TrustVLInputError(
            f"flag_clusters={strategy!r} ranks clusters, but clusters {np.flatnonzero(cand & (rank < 0)).tolist()}"
            " were not ranked by discovery; use flag_clusters='all_kept' to act on an explicit list"
        )
    ids = np.flatnonzero(cand)
    ids = ids[np.argsort(rank[ids], kind="stable")] if strategy != "all_kept" else ids
    weights = np.zeros(k, dtype=np.float64)
    if strategy == "all_kept":
        weights[ids] = 1.0
    elif strategy == "top1":
        weights[ids[:1]] = 1.0
    elif strategy == "top_per_class":
        stats = _require_statistics(statistics, strategy)
        for c in range(stats.n_classes):
            affecting = [j for j in ids if stats.influence_per_class[j, c] >= stats.min_influence]
            if affecting:
                weights[affecting[0]] = 1.0  # ids are in rank order
    elif strategy == "score_weighted":
        stats = _require_statistics(statistics, strategy)
        if ids.size:
            top = float(stats.score[ids[0]])
            weights[ids] = np.clip(stats.score[ids] / top, 0.0, 1.0) if top > 0 else 1.0
            weights[ids[0]] = 1.0
    elif strategy == "top1_similar":
        if ids.size:
            unit = medoid_embeds / np.maximum(np.linalg.norm(medoid_embeds, axis=1, keepdims=True), 1e-12)
            cosine = unit[ids] @ unit[ids[0]]
            weights[ids[cosine >= similar_cosine]] = 1.0
            weights[ids[0]] = 1.0  # the top one, whatever rounding does to its self-similarity
    else:  # gap_test, gap_test_or_top1, gap_test_two_sided
        stats = _require_statistics(statistics, strategy)
        passed = _gap_test(stats, ids, level, seed, two_sided=strategy == "gap_test_two_sided")
        if strategy == "gap_test_or_top1" and not passed.any():
            passed[:1] = True  # ids are in rank order: the top-ranked candidate
        weights[ids[passed]] = 1.0
    chosen = np.flatnonzero(weights > 0)
    return FlagSelection(strategy, weights, _acted_on(chosen, weights, rank, statistics))


def selection_from_result(
    result: Any, strategy: str = DEFAULT_FLAG_STRATEGY, *, medoid_embeds: np.ndarray | None = None
) -> FlagSelection:
    """:func:`select_flag_clusters` straight from a :class:`~trustvl.discovery.DiscoveryResult` (e.g. to show
    which clusters mitigation would act on, without the region embeddings; :data:`MEDOID_STRATEGIES` read
    ``medoid_embeds`` ``[k, d]``, row = cluster id: given here, else the result's own ``medoid_embeds``)."""
    stats = ClusterStatistics.from_result(result)
    k = len(stats.score)
    kept = np.zeros(k, dtype=bool)
    rank = np.full(k, -1, dtype=np.int64)
    for r, c in enumerate(result.clusters):
        kept[c.cluster_id], rank[c.cluster_id] = True, r
    if medoid_embeds is None:
        medoid_embeds = getattr(result, "medoid_embeds", None)
    return select_flag_clusters(kept, rank, strategy, statistics=stats, medoid_embeds=medoid_embeds)
