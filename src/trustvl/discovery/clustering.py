"""K-medoids clustering of region embeddings on clipped cosine distance (RaVL step 2, SPEC §3).

Distance: ``d(x, y) = clip(1 - cos(x, y), 0, 1)`` (anti-correlated points are simply "far", 1). The number of
clusters ``k`` is chosen in ``[2C, 5C)`` (C = number of classes) by the best mean silhouette; ties go to the
smallest k.

**The k sweep** (``algorithm="alternate"``, the default). For every k in the range, K-medoids by alternating
optimisation (Voronoi iteration, the ``method="alternate"`` algorithm of scikit-learn-extra that the public
RaVL code uses): assign every point to its nearest medoid (ties: lowest cluster id), move every medoid to the
member with the smallest sum of distances to its cluster (ties: lowest point index; moved only when
strictly better), repeat until no medoid moves (at most ``max_iter`` rounds). The first k (2C) is seeded by
greedy k-medoids++ (the k-means++ seeding on distances, ``2 + floor(ln k)`` draws per medoid, the one giving
the lowest sum of squared distances kept; draws from ``numpy.random.default_rng(seed)``, decided on the CPU
in float64 whatever the device). The sweep is then *continued*: every next k starts from the converged
medoids of k - 1 plus one greedy BUILD step over 32 candidates drawn as k-means++ draws them (the
candidate whose addition lowers the total distance to the nearest medoid most, PAM BUILD's criterion).
Alternating optimisation alone cannot move a medoid from one blob to another, so where the new medoid
goes decides whether the sweep finds the natural clusters at larger k; BUILD's criterion puts it inside
a badly covered group. The sweep is one deterministic function of the data and ``seed``.

**Exact mode** (``max_exact=None``, or ``n <= max_exact``) runs that sweep on all regions and returns the best
k's clustering itself (no refit). It is computed with:

* one distance matrix for the whole sweep (torch float32, on ``device``: the GPU when there is one);
* per-cluster distance sums ``S[j, o] = sum of d(p, o) over the members p of cluster j`` (float64), built
  once and then *updated* only for the points that change cluster, so a Voronoi round costs
  ``O(changed x n)`` instead of ``O(n^2)``; a medoid update is a segment-argmin of ``S[label(o), o]``;
* silhouettes read from the same ``S`` (``a(o) = S[own, o] / (|own| - 1)``, ``b(o) = min over other
  clusters of S[j, o] / |j|``, 0 for singletons, as scikit-learn defines it): ``O(n k)`` per k.

None of these changes a result: the tests check the clusters against a plain re-computation of the same
sweep (fresh sums and scikit-learn's silhouette at every step). There is no early exit: every k is fitted.

**Default (scalable) mode** (``n > max_exact``, default 10,000): the exact sweep on a seeded random subsample
of ``max_exact`` regions, then every region is assigned to its nearest medoid (highest cosine similarity)
by :func:`assign_to_medoids` in batches (the CLARA idea). Memory is ``4 max_exact^2`` bytes for the sample's
matrix plus ``O(n d)``; on a GPU this handles 1,000,000 regions. How its top cluster relates to exact mode
is measured by ``benchmarks/bench_ravl_discovery.py`` (results in docs/results.md, "RaVL").

``algorithm="fasterpam"`` keeps the previous sweep: FasterPAM (``kmedoids`` package, GPL-3.0, a Rust
extension) from a seeded random initialisation at every k, silhouettes by ``kmedoids.silhouette``, on the
CPU. A swap-based local search usually reaches a lower loss than alternating optimisation, but it costs
``O(n^2)`` per swap pass and k, and its results are not those of exact mode.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from trustvl.errors import TrustVLInputError
from trustvl.utils.checks import check_embeddings
from trustvl.utils.devices import resolve_device

__all__ = [
    "ALGORITHMS",
    "KMedoidsClustering",
    "KMedoidsSweep",
    "assign_to_medoids",
    "cluster_embeddings",
    "cosine_distance_matrix",
    "fit_kmedoids",
    "k_candidates",
    "kmedoids_sweep",
    "select_k",
]

#: the K-medoids algorithms of the k sweep
ALGORITHMS = ("alternate", "fasterpam")

# rows of the distance matrix summed at a time into the cluster sums
_ROW_CHUNK = 4096
#: candidates drawn for each BUILD step of the sweep (see ``_build_step``)
BUILD_CANDIDATES = 32


@dataclass
class KMedoidsClustering:
    """Result of :func:`cluster_embeddings`.

    Attributes:
        labels: ``[n]`` int64 cluster id (0..k-1) of every point.
        medoids: ``[k]`` int64 index (into the points) of each cluster's medoid.
        similarity: ``[n]`` float32 cosine similarity of every point to its cluster's medoid.
        k: number of clusters.
        silhouette: ``{k: mean silhouette}`` of the sweep (empty when k was given).
        loss: sum over all points of the clipped cosine distance to their medoid.
        method: ``"exact"`` or ``"subsample+assign"``.
        n_select: points the k sweep ran on (0 when k was given); n_fit: points K-medoids ran on.
        timings: seconds per stage.
        algorithm: the K-medoids algorithm (see :data:`ALGORITHMS`).
    """

    labels: np.ndarray
    medoids: np.ndarray
    similarity: np.ndarray
    k: int
    silhouette: dict[int, float] = field(default_factory=dict)
    loss: float = 0.0
    method: str = "exact"
    n_select: int = 0
    n_fit: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    algorithm: str = "alternate"

    def summary(self) -> dict[str, Any]:
        return {
            "k": int(self.k),
            "method": self.method,
            "algorithm": self.algorithm,
            "n_select": int(self.n_select),
            "n_fit": int(self.n_fit),
            "loss": float(self.loss),
            "silhouette": {str(k): float(v) for k, v in self.silhouette.items()},
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
        }


@dataclass
class KMedoidsSweep:
    """Result of :func:`kmedoids_sweep`: the best k's clustering and every k's silhouette.

    ``medoids`` and ``labels`` index the rows of the distance matrix; ``n_iter`` is the number of Voronoi
    rounds (or FasterPAM passes) per k.
    """

    k: int
    medoids: np.ndarray
    labels: np.ndarray
    silhouette: dict[int, float]
    n_iter: dict[int, int]


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _distance_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """``clip(1 - x x^T, 0, 1)`` with a zero diagonal, float32 on ``device`` (rows of ``x`` unit length)."""
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    dist = torch.mm(xt, xt.T)
    dist.neg_().add_(1.0).clamp_(0.0, 1.0)
    dist.fill_diagonal_(0.0)
    return dist


def cosine_distance_matrix(embeds: Any, *, device: Any = "cpu") -> np.ndarray:
    """``clip(1 - cos, 0, 1)`` between all rows, float32 ``[n, n]`` numpy array with an exact zero diagonal.

    The matmul runs with torch on ``device`` (resolved by :func:`trustvl.utils.devices.resolve_device`).
    """
    x = _normalize(check_embeddings(embeds, "region_embeds"))
    return _distance_tensor(x, resolve_device(device)).cpu().numpy()


def k_candidates(n_classes: int) -> range:
    """The k values RaVL considers: ``range(2C, 5C)``."""
    if n_classes < 2:
        raise TrustVLInputError(f"n_classes={n_classes}; expected at least 2 classes")
    return range(2 * n_classes, 5 * n_classes)


def _require_kmedoids():
    """The ``kmedoids`` package (FasterPAM, GPL-3.0-or-later): optional, only for ``algorithm="fasterpam"``."""
    try:
        import kmedoids
    except ImportError:
        raise TrustVLInputError(
            "algorithm='fasterpam' needs the 'kmedoids' package; install it with `pip install trustvl[ravl]`"
            " (note: kmedoids is licensed GPL-3.0-or-later), or use the default algorithm='alternate'"
        ) from None
    return kmedoids


def fit_kmedoids(
    dist: np.ndarray, k: int, *, seed: int = 0, max_iter: int = 100, init: str = "random", n_cpu: int = 1
) -> tuple[np.ndarray, np.ndarray, float]:
    """FasterPAM on a precomputed distance matrix; returns ``(medoids [k], labels [n], loss)``."""
    kmedoids = _require_kmedoids()
    n = dist.shape[0]
    if not 1 <= k <= n:
        raise TrustVLInputError(f"k={k} clusters for {n} points; expected 1 <= k <= number of points")
    res = kmedoids.fasterpam(dist, int(k), max_iter=max_iter, init=init, random_state=int(seed), n_cpu=n_cpu)
    return (np.asarray(res.medoids, dtype=np.int64), np.asarray(res.labels, dtype=np.int64), float(res.loss))


# ------------------------------------------------------------------ the alternating sweep
def _kpp_seed(dist: torch.Tensor, k: int, rng: np.random.Generator) -> list[int]:
    """``k`` medoids by greedy k-medoids++ (``2 + floor(ln k)`` draws per medoid, lowest potential kept).

    The arithmetic that decides (cumulative sums, the draws, the candidates' potentials) runs on the CPU in
    float64 from the exact float32 distances, so every device makes the same choices.
    """
    n = dist.shape[0]
    trials = 2 + int(math.log(k))
    medoids = [int(rng.integers(n))]
    nearest = dist[medoids[0]].double().cpu().numpy() ** 2
    while len(medoids) < k:
        cum = np.cumsum(nearest)
        cand = np.minimum(np.searchsorted(cum, rng.random(trials) * cum[-1]), n - 1)
        rows = dist[torch.from_numpy(cand).to(dist.device)].double().cpu().numpy() ** 2
        trial_sq = np.minimum(nearest[None, :], rows)
        best = int(np.argmin(trial_sq.sum(axis=1)))  # first best trial
        medoids.append(int(cand[best]))
        nearest = trial_sq[best]
    return medoids


def _build_step(dist: torch.Tensor, medoids: torch.Tensor, rng: np.random.Generator) -> int:
    """One greedy BUILD step over sampled candidates: a new medoid where the clustering is worst.

    ``BUILD_CANDIDATES`` candidates are drawn with probability proportional to the squared distance to their
    nearest medoid (the k-means++ draw, so they land where the clustering is worst); the new medoid is the
    candidate whose addition lowers the total distance of all points to their nearest medoid most,
    ``gain(c) = sum_o max(d_near(o) - d(c, o), 0)`` (PAM BUILD's criterion; ties: first draw). This costs
    ``O(BUILD_CANDIDATES n)`` instead of PAM BUILD's ``O(n^2)``. Draws and gains are computed on the CPU in
    float64 from the exact float32 distances, so every device picks the same point.
    """
    n = dist.shape[0]
    near = dist[medoids].min(dim=0).values.double().cpu().numpy()
    cum = np.cumsum(near**2)
    cand = np.minimum(np.searchsorted(cum, rng.random(BUILD_CANDIDATES) * cum[-1]), n - 1)
    rows = dist[torch.from_numpy(cand).to(dist.device)].double().cpu().numpy()
    gain = np.maximum(near[None, :] - rows, 0.0).sum(axis=1)
    return int(cand[int(np.argmax(gain))])


def _add_rows(
    sums: torch.Tensor, dist: torch.Tensor, points: torch.Tensor, clusters: torch.Tensor, sign: float
) -> None:
    """``sums[j] += sign * (sum of dist[p] over the points p with cluster j)``, float64 row sums."""
    for j in torch.unique(clusters).tolist():
        members = points[clusters == j]
        for start in range(0, len(members), _ROW_CHUNK):
            block = dist[members[start : start + _ROW_CHUNK]].sum(dim=0, dtype=torch.float64)
            sums[j].add_(block, alpha=sign)


def _voronoi(
    dist: torch.Tensor,
    medoids: torch.Tensor,
    labels: torch.Tensor | None,
    sums: torch.Tensor | None,
    max_iter: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Alternate assignment and medoid update until no medoid moves; returns ``(medoids, labels, sums, rounds)``.

    ``labels``/``sums`` carry the previous state (``sums`` gets zero rows for new medoids); ``None`` builds
    them from scratch.
    """
    n, k = dist.shape[0], len(medoids)
    dev = dist.device
    arange = torch.arange(n, device=dev)
    if sums is None:
        sums = torch.zeros(k, n, dtype=torch.float64, device=dev)
    elif sums.shape[0] < k:
        sums = torch.cat([sums, sums.new_zeros(k - sums.shape[0], n)])
    rounds = 0
    while rounds < max_iter:
        rounds += 1
        new_labels = dist[medoids].argmin(dim=0)  # first minimum: ties to the lowest cluster id
        if labels is None:
            _add_rows(sums, dist, arange, new_labels, 1.0)
        else:
            moved = torch.nonzero(new_labels != labels).squeeze(1)
            if len(moved):
                _add_rows(sums, dist, moved, new_labels[moved], 1.0)
                _add_rows(sums, dist, moved, labels[moved], -1.0)
        labels = new_labels
        own_cost = sums[labels, arange]  # each point's sum of distances to its cluster
        best_cost = torch.full((k,), math.inf, dtype=torch.float64, device=dev)
        best_cost.scatter_reduce_(0, labels, own_cost, reduce="amin")
        at_best = torch.where(own_cost == best_cost[labels], arange, n)
        best_point = torch.full((k,), n, dtype=torch.long, device=dev)
        best_point.scatter_reduce_(0, labels, at_best, reduce="amin")  # ties: lowest point index
        in_own = labels[medoids] == torch.arange(k, device=dev)
        move = (best_point < n) & (~in_own | (best_cost < own_cost[medoids]))
        new_medoids = torch.where(move, best_point, medoids)
        if torch.equal(new_medoids, medoids):
            break
        medoids = new_medoids
    return medoids, labels, sums, rounds


def _silhouette_from_sums(sums: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean silhouette (scikit-learn's definition: 0 for singletons, empty clusters ignored) from cluster sums."""
    k, n = sums.shape
    dev = sums.device
    arange = torch.arange(n, device=dev)
    sizes = torch.bincount(labels, minlength=k).double()
    own_size = sizes[labels]
    intra = sums[labels, arange] / (own_size - 1).clamp(min=1)
    mean_other = sums / sizes.clamp(min=1)[:, None]
    mean_other[sizes == 0] = math.inf
    mean_other[labels, arange] = math.inf
    inter = mean_other.min(dim=0).values
    denom = torch.maximum(intra, inter)
    sil = torch.where(denom > 0, (inter - intra) / denom, torch.zeros_like(denom))
    sil = torch.where(own_size > 1, sil, torch.zeros_like(sil))
    return float(sil.mean())


def _alternate_sweep(dist: torch.Tensor, ks: list[int], seed: int, max_iter: int) -> KMedoidsSweep:
    rng = np.random.default_rng(seed)
    medoids = torch.tensor(_kpp_seed(dist, ks[0], rng), device=dist.device)
    labels = sums = None
    scores: dict[int, float] = {}
    rounds: dict[int, int] = {}
    best: tuple[float, int, np.ndarray, np.ndarray] | None = None
    for k in ks:
        while len(medoids) < k:  # continue from the previous k: greedy BUILD steps
            medoids = torch.cat([medoids, medoids.new_tensor([_build_step(dist, medoids, rng)])])
        medoids, labels, sums, rounds[k] = _voronoi(dist, medoids, labels, sums, max_iter)
        scores[k] = _silhouette_from_sums(sums, labels)
        if best is None or scores[k] > best[0]:  # strict: ties keep the smallest k
            best = (scores[k], k, medoids.cpu().numpy(), labels.cpu().numpy())
    assert best is not None
    return KMedoidsSweep(best[1], best[2].astype(np.int64), best[3].astype(np.int64), scores, rounds)


def _fasterpam_sweep(dist: np.ndarray, ks: list[int], seed: int, max_iter: int, n_cpu: int) -> KMedoidsSweep:
    kmedoids = _require_kmedoids()
    scores: dict[int, float] = {}
    fits: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for k in ks:
        res = kmedoids.fasterpam(
            dist, int(k), max_iter=max_iter, init="random", random_state=int(seed), n_cpu=n_cpu
        )
        labels = np.asarray(res.labels, dtype=np.int64)
        fits[k] = (np.asarray(res.medoids, dtype=np.int64), labels)
        scores[k] = float(kmedoids.silhouette(dist, labels.astype(np.uint64), n_cpu=n_cpu)[0])
    k = max(ks, key=lambda v: (scores[v], -v))  # best silhouette; ties -> smallest k
    return KMedoidsSweep(k, fits[k][0], fits[k][1], scores, {})


@contextlib.contextmanager
def _cpu_threads(n_threads: int, device: torch.device) -> Iterator[None]:
    """Run the block with ``n_threads`` torch intra-op threads when on the CPU (restored afterwards).

    The sweep's operations are many small, memory-bound ones; on the CPU extra threads mostly add
    synchronisation (one thread was the faster on a shared 2-core machine, at small and large n), hence
    the default of one thread.
    """
    previous = torch.get_num_threads()
    change = device.type == "cpu" and n_threads != previous
    if change:
        torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(previous)


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise TrustVLInputError(f"algorithm={algorithm!r}; expected one of {list(ALGORITHMS)}")


def kmedoids_sweep(
    dist: Any,
    ks: Any,
    *,
    seed: int = 0,
    max_iter: int = 300,
    algorithm: str = "alternate",
    n_cpu: int = 1,
) -> KMedoidsSweep:
    """K-medoids at every k of ``ks`` on a precomputed distance matrix; the best-silhouette k's clustering.

    ``dist``: ``[n, n]`` distances (numpy or torch; a torch tensor stays on its device). See the module
    docstring for the algorithms. A single k (``ks=[k]``) is one fit from the k-medoids++ seeding; with several,
    ``ks`` is swept in increasing order (a gap, e.g. ``[4, 8]``, is bridged by BUILD steps without fitting).
    """
    _check_algorithm(algorithm)
    ks = sorted({int(k) for k in ks})
    if not ks:
        raise TrustVLInputError("ks is empty; expected at least one number of clusters")
    n = dist.shape[0]
    if ks[0] < 1 or ks[-1] > n:
        raise TrustVLInputError(f"ks={ks} for {n} points; expected 1 <= k <= number of points")
    if algorithm == "fasterpam":
        d = dist.detach().cpu().numpy() if isinstance(dist, torch.Tensor) else np.asarray(dist, np.float32)
        return _fasterpam_sweep(np.ascontiguousarray(d, dtype=np.float32), ks, seed, max_iter, n_cpu)
    d = dist if isinstance(dist, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(dist, np.float32))
    if n_cpu < 1:
        raise TrustVLInputError(f"n_cpu={n_cpu}; expected a positive number of threads")
    with _cpu_threads(n_cpu, d.device):
        return _alternate_sweep(d.float(), ks, seed, max_iter)


def _valid_ks(k_values: Any, n_classes: int, n_points: int) -> list[int]:
    ks = list(k_candidates(n_classes)) if k_values is None else sorted({int(k) for k in k_values})
    if not ks or ks[0] < 2:
        raise TrustVLInputError(f"k_values={k_values!r}; expected integers >= 2")
    usable = [k for k in ks if k < n_points]  # the silhouette needs 2 <= k <= n - 1
    if not usable:
        raise TrustVLInputError(
            f"only {n_points} regions but at least {ks[0]} clusters are needed (k in [{ks[0]}, {ks[-1]}]);"
            " expected more regions than clusters"
        )
    return usable


def select_k(
    embeds: Any,
    n_classes: int,
    *,
    k_values: Any = None,
    max_exact: int | None = 10_000,
    seed: int = 0,
    max_iter: int = 300,
    algorithm: str = "alternate",
    n_cpu: int = 1,
    device: Any = "cpu",
) -> tuple[int, dict[int, float]]:
    """Best-silhouette k among ``k_values`` (default ``range(2C, 5C)``); returns ``(k, {k: silhouette})``.

    The sweep of :func:`cluster_embeddings` (on a seeded subsample of ``max_exact`` points when there are more).
    """
    res = cluster_embeddings(
        embeds,
        n_classes,
        k_values=k_values,
        max_exact=max_exact,
        seed=seed,
        max_iter=max_iter,
        algorithm=algorithm,
        n_cpu=n_cpu,
        device=device,
    )
    return res.k, res.silhouette


def assign_to_medoids(
    embeds: Any, medoid_embeds: Any, device: Any = "cpu", *, batch_size: int = 65_536
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest medoid of every row (highest cosine similarity, ties to the lowest medoid id), batched.

    Returns ``(labels [n] int64, similarity [n] float32)``. Rows are processed ``batch_size`` at a time
    with a ``[batch, d] @ [d, k]`` matmul on ``device`` (``"cpu"``, ``"cuda"``, ``"auto"``), so memory
    is ``O(batch * k)`` beyond the inputs: this is the assignment step of the 1,000,000-region GPU path.
    Maximal cosine similarity is minimal clipped distance; unlike the clipped distance it still orders
    medoids that are all at cosine <= 0.
    """
    x = check_embeddings(embeds, "embeds")
    m = check_embeddings(medoid_embeds, "medoid_embeds")
    if x.shape[1] != m.shape[1]:
        raise TrustVLInputError(
            f"embeds have dimension {x.shape[1]} but medoid_embeds {m.shape[1]}; expected equal"
        )
    if batch_size <= 0:
        raise TrustVLInputError(f"batch_size={batch_size} must be a positive integer")
    dev = resolve_device(device)
    mt = torch.nn.functional.normalize(torch.from_numpy(m).to(dev), dim=1)
    labels = np.empty(x.shape[0], dtype=np.int64)
    sims = np.empty(x.shape[0], dtype=np.float32)
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            xb = torch.from_numpy(x[start : start + batch_size]).to(dev, non_blocking=True)
            s = torch.nn.functional.normalize(xb, dim=1) @ mt.T
            best, arg = s.max(dim=1)  # torch.max returns the first maximal index
            labels[start : start + batch_size] = arg.cpu().numpy()
            sims[start : start + batch_size] = best.float().cpu().numpy()
    return labels, sims


def cluster_embeddings(
    embeds: Any,
    n_classes: int,
    *,
    k: int | None = None,
    k_values: Any = None,
    seed: int = 0,
    max_exact: int | None = 10_000,
    max_iter: int = 300,
    algorithm: str = "alternate",
    n_cpu: int = 1,
    device: Any = "cpu",
    batch_size: int = 65_536,
) -> KMedoidsClustering:
    """K-medoids of ``embeds`` on clipped cosine distance, k chosen by silhouette in ``[2C, 5C)``.

    Args:
        k: a fixed number of clusters (skips the sweep: one fit from the k-medoids++ seeding).
        k_values: the k candidates (default ``range(2C, 5C)``).
        seed: every random choice (subsample, seeding) comes from it.
        max_exact: exact mode up to this many points (``None``: always); above, the sweep runs on a seeded
            subsample of ``max_exact`` points and all points are assigned to the nearest medoid.
        max_iter: Voronoi rounds (FasterPAM passes) per k at most.
        algorithm: ``"alternate"`` (default) or ``"fasterpam"`` (module docstring).
        n_cpu: threads of the sweep on the CPU (torch intra-op threads for ``"alternate"``, restored
            afterwards; FasterPAM's threads for ``"fasterpam"``). Default 1 (see ``_cpu_threads``).
        device: where the distance matrix, the sweep and the assignment run (``"cpu"``, ``"cuda"``, ``"auto"``).
        batch_size: rows per assignment matmul.
    """
    _check_algorithm(algorithm)
    if max_exact is not None and max_exact < 2:
        raise TrustVLInputError(f"max_exact={max_exact}; expected None or at least 2 points")
    timings: dict[str, float] = {}
    x = _normalize(check_embeddings(embeds, "region_embeds"))
    n = x.shape[0]
    if k is not None and not 1 <= int(k) <= n:
        raise TrustVLInputError(f"k={k} clusters for {n} regions; expected fewer clusters than regions")
    dev = resolve_device(device)
    exact = max_exact is None or n <= max_exact
    fit_idx = np.arange(n) if exact else np.sort(np.random.default_rng(seed).permutation(n)[:max_exact])

    t = time.perf_counter()
    dist = _distance_tensor(x[fit_idx], dev)
    timings["distance_matrix"] = time.perf_counter() - t

    t = time.perf_counter()
    ks = [int(k)] if k is not None else _valid_ks(k_values, n_classes, len(fit_idx))
    if ks[0] > len(fit_idx):
        raise TrustVLInputError(
            f"k={ks[0]} clusters for {len(fit_idx)} regions; expected fewer clusters than regions"
        )
    sweep = kmedoids_sweep(dist, ks, seed=seed, max_iter=max_iter, algorithm=algorithm, n_cpu=n_cpu)
    timings["sweep" if k is None else "fit"] = time.perf_counter() - t
    del dist
    medoids = fit_idx[sweep.medoids]

    t = time.perf_counter()
    if exact:
        labels = sweep.labels
        sims = np.einsum("ij,ij->i", x, x[medoids[labels]]).astype(np.float32)
    else:
        labels, sims = assign_to_medoids(x, x[medoids], device=dev, batch_size=batch_size)
        labels[medoids] = np.arange(
            len(medoids)
        )  # a medoid always belongs to its own cluster (duplicates aside)
        sims[medoids] = 1.0
    timings["assign"] = time.perf_counter() - t
    loss = float(np.clip(1.0 - sims.astype(np.float64), 0.0, 1.0).sum())
    return KMedoidsClustering(
        labels=labels,
        medoids=medoids,
        similarity=sims,
        k=sweep.k,
        silhouette={} if k is not None else sweep.silhouette,
        loss=loss,
        method="exact" if exact else "subsample+assign",
        n_select=0 if k is not None else len(fit_idx),
        n_fit=len(fit_idx),
        timings=timings,
        algorithm=algorithm,
    )
