"""RaVL discovery of spurious regions (SPEC §3 steps 3-5), vectorised with numpy.

Given region embeddings (each region belongs to one image), image labels and zero-shot predictions, and
every region's zero-shot class scores, :func:`discover_spurious_regions` clusters the regions
(:mod:`trustvl.discovery.clustering`) and scores every cluster ``j`` and class ``l``:

* **gap** (step 3): the images of class ``l`` with at least one region in ``j`` ("in") against those
  with none ("out"): ``gap_l = 2 min(n_in, n_out) / (n_in + n_out) * (acc_in - acc_out)`` where ``acc`` is
  zero-shot image accuracy. **Definition:** ``gap_l = 0`` when ``n_in`` or ``n_out`` is 0 (no contrast to
  measure; this includes classes with no images), and ``acc_in``/``acc_out`` are then NaN (``null`` in
  JSON).
* **influence** (step 4): for each class ``l`` with ``gap_l < 0``, take the misclassified images of class
  ``l`` that have more than one region (``min_regions_for_influence=2``) **and at least one region in**
  ``j``; in each, the region with the highest zero-shot score for the image's *predicted* class (ties:
  lowest region index); ``influence_l`` = the fraction of those images whose top region lies in ``j`` (0
  when there are no such images or ``gap_l >= 0``). Only images with a region in ``j`` are counted, as
  in the paper's public code (SPEC §3 step 4). Cluster influence = ``max_l influence_l``.
* **keep and rank** (step 5): keep clusters whose gaps contain both signs (some ``gap_l > 0`` and some
  ``< 0``) and whose influence is ``>= min_influence`` (0.25); rank them by ``score = sum_l |gap_l|``,
  descending. **Ties** (scores equal after rounding to 12 decimals, so that summation order cannot
  decide): higher influence first, then the larger cluster, then the cluster whose medoid has the lower
  region index. The last key does not depend on how the clustering numbered its clusters, so the ranking
  is a function of the regions alone. Inside a cluster, regions are ranked by cosine similarity to the
  medoid (descending; ties by region index).

Everything is computed with a one-hot image x cluster membership matrix and per-class matrix products;
there is no Python loop over images or regions, so a million regions take seconds.

**Precision@k** (:func:`precision_at_k`): the ranked regions of the ranked clusters are concatenated (all
of the first cluster's regions in their order, then the second cluster's, ...); precision@k is the
fraction of the first ``k`` that contain the artefact, always divided by ``k`` (a result with fewer than
``k`` ranked regions, or none, counts the missing ones as misses).

**Whole-image baseline** (:func:`discover_spurious_images`): the same procedure where every image is its
own single region (image embeddings clustered, image scores as region scores). Step 4 then needs
``min_regions_for_influence=1`` (with one region per image the "region scoring highest for the predicted
class" is the image itself), otherwise no cluster could ever be kept. Its precision@k counts an *image*
as a hit when the artefact appears anywhere in it; this is lenient to the baseline (a whole image is a
coarser unit than a region), so the comparison favours the baseline, not RaVL.

The package, one concern per module: :mod:`.results` (typed results), :mod:`.inputs` (input checks),
:mod:`.statistics` (gaps and influence, steps 3-4), :mod:`.ranking` (step-5 order, precision@k),
:mod:`.from_embeddings` (discovery from precomputed embeddings and scores, and the whole-image baseline),
:mod:`.end_to_end` (:func:`discover`: embed, classify zero-shot, discover).
"""

from trustvl.discovery.ravl.end_to_end import discover
from trustvl.discovery.ravl.from_embeddings import discover_spurious_images, discover_spurious_regions
from trustvl.discovery.ravl.inputs import as_int_vector, check_discovery_inputs
from trustvl.discovery.ravl.ranking import precision_at_k, rank_key, ranked_regions
from trustvl.discovery.ravl.results import NOTHING_TO_DISCOVER, DiscoveryResult, SpuriousCluster
from trustvl.discovery.ravl.statistics import score_clusters

__all__ = [
    "NOTHING_TO_DISCOVER",
    "DiscoveryResult",
    "SpuriousCluster",
    "as_int_vector",
    "check_discovery_inputs",
    "discover",
    "discover_spurious_images",
    "discover_spurious_regions",
    "precision_at_k",
    "rank_key",
    "ranked_regions",
    "score_clusters",
]
