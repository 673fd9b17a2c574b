"""K-medoids clustering of region embeddings on clipped cosine distance (RaVL step 2, SPEC §3).

Distance: ``d(x, y) = clip(1 - cos(x, y), 0, 1)`` (so anti-correlated points are simply "far", 1).
K-medoids: FasterPAM (Schubert & Rousseeuw 2021) from the ``kmedoids`` package (PyPI ``kmedoids``,
GPL-3.0, a Rust extension; ``kmedoids.fasterpam`` on a precomputed float32 distance matrix,
``kmedoids.silhouette`` for the exact silhouette). Number of clusters: ``k`` in ``[2C, 5C)`` (C =
number of classes) with the best mean silhouette; ties go to the smallest k.

Determinism: every random choice (subsamples, FasterPAM's random initialisation and processing order)
is drawn from ``seed``, and FasterPAM runs single-threaded by default (``n_cpu=1``, which is also the
fastest setting at these sizes), so the same inputs and seed give the same clustering.

Scale (``n`` regions). FasterPAM needs the full ``n x n`` distance matrix (``4 n^2`` bytes: 400 MB at
10,000, 6.4 GB at 40,000) and ``O(n^2)`` work per swap pass, and the k sweep runs it ``3C`` times. So:

* **k sweep** (silhouette over ``[2C, 5C)``) runs on a seeded random subsample of ``select_sample``
  regions (default 4,000) when ``n`` is larger, else on all regions. ``select_sample=None`` sweeps on
  all regions that the final fit sees (fully exact up to ``max_exact``).
* **final fit** with the chosen k: when ``n <= max_exact`` (default 10,000) FasterPAM runs on the full
  matrix ("exact"). Above, it runs on a seeded random subsample of ``max_exact`` regions (the sweep
  subsample is its first ``select_sample`` members) and every region is then assigned to its nearest
  medoid (highest cosine similarity) by :func:`assign_to_medoids` ("subsample+assign", the CLARA idea).
  We chose this over FasterPAM on the full matrix in float32 chunks because 40,000 regions would need
  6.4 GB for the matrix alone and minutes of swap passes, while the medoids of a 10,000-region random
  sample of clusters with hundreds of members are practically the same (the benchmark checks that the
  top discovered cluster matches the exact run).
* **GPU path to ~1,000,000 regions**: pass ``device="cuda"``. The sweep and the fit stay on their
  subsamples (CPU, bounded by ``max_exact``); the distance matrix of the subsample and the assignment
  of all regions (batched ``[batch, d] @ [d, k]`` matmuls, ``batch_size`` rows at a time) run on the
  GPU. Memory is ``O(n d)`` for the embeddings plus ``O(batch k)``; nothing is quadratic in ``n``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trustvl.errors import TrustVLInputError

__all__ = [
    "KMedoidsClustering",
    "assign_to_medoids",
    "cluster_embeddings",
    "cosine_distance_matrix",
    "fit_kmedoids",
    "k_candidates",
    "select_k",
]


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
        n_select: points the k sweep ran on (0 when k was given); n_fit: points FasterPAM ran on.
        timings: seconds per stage.
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

    def summary(self) -> dict[str, Any]:
        return {
            "k": int(self.k),
            "method": self.method,
            "n_select": int(self.n_select),
            "n_fit": int(self.n_fit),
            "loss": float(self.loss),
            "silhouette": {str(k): float(v) for k, v in self.silhouette.items()},
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
        }


def _check_embeds(embeds: Any, name: str = "region_embeds") -> np.ndarray:
    if hasattr(embeds, "detach"):
        embeds = embeds.detach().float().cpu().numpy()
    arr = np.asarray(embeds, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise TrustVLInputError(f"{name} has shape {arr.shape}; expected a non-empty 2-D [n, d] array")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise TrustVLInputError(
            f"{name} contains non-finite values (NaN or inf) in {bad} rows; expected finite embeddings"
        )
    return arr


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _torch_device(device: Any):
    """``"auto"``/None -> CUDA when available, else CPU; anything else as ``torch.device`` reads it.

    (Kept local rather than :func:`trustvl.modeling.embedding.resolve_device` so that clustering does not
    import transformers.)
    """
    import torch

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise TrustVLInputError(
            f"device {device!r} is not a valid torch device; expected e.g. 'auto', 'cpu', 'cuda'"
        ) from None


def cosine_distance_matrix(embeds: Any, *, device: Any = "cpu") -> np.ndarray:
    """``clip(1 - cos, 0, 1)`` between all rows, float32 ``[n, n]`` with an exact zero diagonal.

    ``device`` other than CPU computes the matmul with torch on that device (result copied back).
    """
    x = _normalize(_check_embeds(embeds))
    if str(device) == "cpu" or _torch_device(device).type == "cpu":
        d = x @ x.T
        np.subtract(1.0, d, out=d)
    else:
        import torch

        xt = torch.from_numpy(x).to(_torch_device(device))
        d = (1.0 - xt @ xt.T).cpu().numpy()
    np.clip(d, 0.0, 1.0, out=d)
    np.fill_diagonal(d, 0.0)
    return np.ascontiguousarray(d, dtype=np.float32)


def k_candidates(n_classes: int) -> range:
    """The k values RaVL considers: ``range(2C, 5C)``."""
    if n_classes < 2:
        raise TrustVLInputError(f"n_classes={n_classes}; expected at least 2 classes")
    return range(2 * n_classes, 5 * n_classes)


def _require_kmedoids():
    """The ``kmedoids`` package (FasterPAM, GPL-3.0-or-later): an optional dependency, ``pip install trustvl[ravl]``."""
    try:
        import kmedoids
    except ImportError:
        raise TrustVLInputError(
            "RaVL discovery needs the 'kmedoids' package (FasterPAM); install it with `pip install trustvl[ravl]`"
            " (note: kmedoids is licensed GPL-3.0-or-later)"
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


def _silhouette(dist: np.ndarray, labels: np.ndarray, n_cpu: int) -> float:
    kmedoids = _require_kmedoids()
    return float(kmedoids.silhouette(dist, labels.astype(np.uint64), n_cpu=n_cpu)[0])


def _sweep(
    dist: np.ndarray, ks: list[int], seed: int, max_iter: int, n_cpu: int
) -> tuple[int, dict[int, float]]:
    scores: dict[int, float] = {}
    for k in ks:
        _, labels, _ = fit_kmedoids(dist, k, seed=seed, max_iter=max_iter, n_cpu=n_cpu)
        scores[k] = _silhouette(dist, labels, n_cpu)
    best = max(ks, key=lambda k: (scores[k], -k))  # best silhouette; ties -> smallest k
    return best, scores


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
    select_sample: int | None = 4_000,
    seed: int = 0,
    max_iter: int = 100,
    n_cpu: int = 1,
    device: Any = "cpu",
) -> tuple[int, dict[int, float]]:
    """Best-silhouette k among ``k_values`` (default ``range(2C, 5C)``); returns ``(k, {k: silhouette})``.

    Runs on a seeded random subsample of ``select_sample`` points when there are more.
    """
    x = _check_embeds(embeds)
    n = x.shape[0]
    if select_sample is not None and n > select_sample:
        idx = np.sort(np.random.default_rng(seed).permutation(n)[:select_sample])
        x = x[idx]
    ks = _valid_ks(k_values, n_classes, x.shape[0])
    return _sweep(cosine_distance_matrix(x, device=device), ks, seed, max_iter, n_cpu)


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
    import torch

    x = _check_embeds(embeds, "embeds")
    m = _check_embeds(medoid_embeds, "medoid_embeds")
    if x.shape[1] != m.shape[1]:
        raise TrustVLInputError(
            f"embeds have dimension {x.shape[1]} but medoid_embeds {m.shape[1]}; expected equal"
        )
    if batch_size <= 0:
        raise TrustVLInputError(f"batch_size={batch_size} must be a positive integer")
    dev = _torch_device(device)
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
    select_sample: int | None = 4_000,
    max_iter: int = 100,
    n_cpu: int = 1,
    device: Any = "cpu",
    batch_size: int = 65_536,
) -> KMedoidsClustering:
    """K-medoids of ``embeds`` on clipped cosine distance, k chosen by silhouette in ``[2C, 5C)``.

    See the module docstring for the exact/subsample policy (``max_exact``, ``select_sample``; ``None``
    means no limit) and the GPU path (``device``). ``k`` given skips the sweep.
    """
    timings: dict[str, float] = {}
    x = _normalize(_check_embeds(embeds))
    n = x.shape[0]
    if k is not None and not 1 <= int(k) <= n:
        raise TrustVLInputError(f"k={k} clusters for {n} regions; expected fewer clusters than regions")
    rng = np.random.default_rng(seed)
    exact = max_exact is None or n <= max_exact
    order = np.arange(n) if exact else rng.permutation(n)
    fit_idx = order if exact else np.sort(order[:max_exact])

    t = time.perf_counter()
    dist = cosine_distance_matrix(x[fit_idx], device=device)
    timings["distance_matrix"] = time.perf_counter() - t

    scores: dict[int, float] = {}
    n_select = 0
    if k is None:
        t = time.perf_counter()
        if select_sample is not None and len(fit_idx) > select_sample:
            # positions inside fit_idx: a seeded subsample, nested in the fit sample
            pos = np.sort(np.random.default_rng(seed + 1).permutation(len(fit_idx))[:select_sample])
            sel = np.ascontiguousarray(dist[np.ix_(pos, pos)])
        else:
            sel = dist
        n_select = sel.shape[0]
        ks = _valid_ks(k_values, n_classes, n_select)
        k, scores = _sweep(sel, ks, seed, max_iter, n_cpu)
        del sel
        timings["select_k"] = time.perf_counter() - t
    k = int(k)
    if k > len(fit_idx):
        raise TrustVLInputError(
            f"k={k} clusters for {len(fit_idx)} regions; expected fewer clusters than regions"
        )

    t = time.perf_counter()
    med_pos, fit_labels, _ = fit_kmedoids(dist, k, seed=seed, max_iter=max_iter, n_cpu=n_cpu)
    timings["fit"] = time.perf_counter() - t
    del dist
    medoids = fit_idx[med_pos]

    t = time.perf_counter()
    if exact:
        labels = fit_labels
        sims = np.einsum("ij,ij->i", x, x[medoids[labels]]).astype(np.float32)
    else:
        labels, sims = assign_to_medoids(x, x[medoids], device=device, batch_size=batch_size)
        labels[medoids] = np.arange(k)  # a medoid always belongs to its own cluster (duplicates aside)
        sims[medoids] = 1.0
    timings["assign"] = time.perf_counter() - t
    loss = float(np.clip(1.0 - sims, 0.0, 1.0).sum())
    return KMedoidsClustering(
        labels=labels,
        medoids=medoids,
        similarity=sims,
        k=k,
        silhouette=scores,
        loss=loss,
        method="exact" if exact else "subsample+assign",
        n_select=n_select,
        n_fit=len(fit_idx),
        timings=timings,
    )
