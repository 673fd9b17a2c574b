"""trustvl.metrics: fairness metrics for retrieval (MaxSkew, MinSkew, NDKL) and utility metrics.

Pure, vectorised torch functions: they accept numpy arrays, nested lists or tensors, compute on the
input's device and raise :class:`trustvl.errors.TrustVLInputError` on bad input. See
:mod:`trustvl.metrics.fairness` and :mod:`trustvl.metrics.utility` for the exact definitions and
conventions (SPEC §1); :func:`ragged_per_query` applies a ranking metric to rankings of different lengths.
Evaluating a model on a gallery (every attribute, every cut-off, accuracy and recall, as typed results) is
:mod:`trustvl.evaluation.evaluator`'s job.

Uncertainty (SPEC §1): :func:`bootstrap_fairness` (seeded gallery bootstrap, all resamples batched) gives
replicates, :func:`resampled_replicates` / :func:`resampled_means` those of a statistic of weighted samples
(a block of resamples at a time), and :func:`centred_interval` the reported :class:`ConfidenceInterval`
(estimate ± z·SE, truncated to the metric's range, flagged when the bootstrap is biased);
:func:`wilson_interval` a binomial share's interval; :func:`percentile_interval` the percentile interval (an
option: biased for top-k metrics); :func:`sampling_floor` the value of rankings random within each class;
:func:`paired_comparison` labels a change between two models "better", "worse" or "within noise" from the
interval of their paired difference.
"""

from trustvl.metrics.bootstrap import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    bootstrap_fairness,
    gallery_resample_counts,
    resampled_means,
    resampled_ranking_batches,
    resampled_rankings,
    resampled_replicates,
    within_stratum_resamples,
)
from trustvl.metrics.chunked_ranking import (
    GalleryChunks,
    chunked_rank_indices,
    gallery_chunks,
    merge_sorted_runs,
)
from trustvl.metrics.fairness import (
    gallery_target,
    max_skew,
    min_skew,
    ndkl,
    rank_indices,
    rank_labels,
    skew,
    uniform_target,
)
from trustvl.metrics.intervals import (
    DEFAULT_LEVEL,
    ConfidenceInterval,
    centred_interval,
    percentile_interval,
    wilson_interval,
    z_value,
)
from trustvl.metrics.kl import kl_to_target
from trustvl.metrics.paired import VERDICTS, PairedComparison, paired_comparison, verdict
from trustvl.metrics.ragged import ragged_per_query
from trustvl.metrics.ranking_replicates import FairnessReplicates
from trustvl.metrics.sampling_floor import FairnessFloor, class_shuffled_rankings, sampling_floor
from trustvl.metrics.utility import (
    per_group_accuracy,
    recall_at_k,
    retrieval_ranks,
    top1_correct,
    unsafe_share_at_k,
    worst_group_accuracy,
    zero_shot_accuracy,
)

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "VERDICTS",
    "ConfidenceInterval",
    "FairnessFloor",
    "FairnessReplicates",
    "GalleryChunks",
    "PairedComparison",
    "bootstrap_fairness",
    "centred_interval",
    "chunked_rank_indices",
    "class_shuffled_rankings",
    "gallery_resample_counts",
    "paired_comparison",
    "percentile_interval",
    "resampled_means",
    "resampled_ranking_batches",
    "resampled_rankings",
    "resampled_replicates",
    "sampling_floor",
    "unsafe_share_at_k",
    "verdict",
    "wilson_interval",
    "within_stratum_resamples",
    "z_value",
    "kl_to_target",
    "gallery_chunks",
    "gallery_target",
    "max_skew",
    "merge_sorted_runs",
    "min_skew",
    "ndkl",
    "per_group_accuracy",
    "ragged_per_query",
    "rank_indices",
    "rank_labels",
    "recall_at_k",
    "retrieval_ranks",
    "skew",
    "top1_correct",
    "uniform_target",
    "worst_group_accuracy",
    "zero_shot_accuracy",
]
