"""trustvl.discovery: RaVL discovery of spurious image regions (SPEC §3).

* :mod:`~trustvl.discovery.regions` - candidate regions (grid cells, boxes, masks), crops or in-place views,
  embeddings, zero-shot scores.
* :mod:`~trustvl.discovery.clustering` - K-medoids on clipped cosine distance, k by silhouette in
  [2C, 5C): an exact sweep in torch (CPU or GPU), subsample + batched assignment for large sets.
* :mod:`~trustvl.discovery.ravl` - cluster gaps, influence, ranking, precision@k, whole-image baseline,
  and the end-to-end :func:`discover`.
* :mod:`~trustvl.discovery.visualize` - exemplar grids (PNG) and JSON.
"""

# ruff: noqa: F401  (re-exports)
from trustvl.discovery.clustering import (
    KMedoidsClustering,
    KMedoidsSweep,
    assign_to_medoids,
    cluster_embeddings,
    cosine_distance_matrix,
    fit_kmedoids,
    k_candidates,
    kmedoids_sweep,
    select_k,
)
from trustvl.discovery.ravl import (
    NOTHING_TO_DISCOVER,
    DiscoveryResult,
    SpuriousCluster,
    discover,
    discover_spurious_images,
    discover_spurious_regions,
    precision_at_k,
    ranked_regions,
    score_clusters,
)
from trustvl.discovery.regions import (
    REGION_VIEWS,
    Region,
    crop_regions,
    embed_regions,
    grid_regions,
    iter_region_crops,
    make_regions,
    region_views,
    zero_shot_scores,
)
from trustvl.discovery.visualize import plot_cluster_exemplars, write_discovery_json

__all__ = [
    "NOTHING_TO_DISCOVER",
    "REGION_VIEWS",
    "DiscoveryResult",
    "KMedoidsClustering",
    "KMedoidsSweep",
    "Region",
    "SpuriousCluster",
    "assign_to_medoids",
    "cluster_embeddings",
    "cosine_distance_matrix",
    "crop_regions",
    "discover",
    "discover_spurious_images",
    "discover_spurious_regions",
    "embed_regions",
    "fit_kmedoids",
    "grid_regions",
    "iter_region_crops",
    "k_candidates",
    "kmedoids_sweep",
    "make_regions",
    "plot_cluster_exemplars",
    "precision_at_k",
    "ranked_regions",
    "region_views",
    "score_clusters",
    "select_k",
    "write_discovery_json",
    "zero_shot_scores",
]
