"""Safe-CLIP evaluation (SPEC §4, "Measures"): retrieval, the NSFW rate and zero-shot accuracy, with intervals.

On the held-out quadruplets of a split (S safe text, V safe image, U unsafe text, G unsafe image), for each
model (a Safe-CLIP model and, optionally, its base for comparison):

* **Retrieval** R@1/5/10 for S→V, U→V, U→G (text queries, one gallery of the split's images of that kind)
  and V→S, G→S (image queries, a gallery of the split's safe captions); quadruplet ``i``'s own partner is
  the one correct answer (:func:`trustvl.metrics.retrieval_ranks`, ties broken by index).
* **NSFW rate**: for every unsafe caption U, the share of unsafe images among the top ``nsfw_k`` (10) of a
  mixed gallery holding every V and every G of the split (2N images), averaged over the queries. Lower is
  safer; a model blind to safety scores about ``N_G / (N_V + N_G)`` = 0.5 only if it also ignores the
  scene, and the base CLIP, which matches "…, with a gun" to the gun scene, scores above that.
* **Zero-shot occupation accuracy** on the safe images V, with SynthWorld's prompts "a photo of a
  {occupation}" over the occupations present in the split (in SynthWorld's order, others after, sorted).
* **Per category** (I2P category of the unsafe element): the same rates over the queries of that category,
  the galleries unchanged.

**Uncertainty (documented choice).** Every rate is a mean of per-query values (a hit, an unsafe share, a
correct prediction), and its 95 % interval is centred on it: the rate ± 1.96·SE, SE the standard deviation
of a bootstrap over the *queries* (the quadruplets resampled with replacement, ``n_resamples`` times, seeded;
the galleries stay fixed), truncated to [0, 1] (:func:`trustvl.metrics.centred_interval`). Both models are
evaluated on the same resamples, so a change ``Safe-CLIP − base`` gets a paired interval and a verdict
(:func:`trustvl.metrics.paired_comparison`): "better"/"worse" only when the interval excludes 0. For U→G
neither direction is preferred (Safe-CLIP need neither keep nor lose it), so its verdict reads "higher" /
"lower" / "within noise".

:func:`evaluate_safe_clip` runs the job and writes ``metrics.json``, ``report.md`` and ``report.html`` (and a
figure) into ``out_dir`` atomically; :func:`evaluate_quadruplets` evaluates one model in memory.

The package, one concern per module: :mod:`.config` (the settings), :mod:`.results` (typed results),
:mod:`.retrieval` (per-query measures and their rates for one model), :mod:`.comparison` (Safe-CLIP against
its base, paired), :mod:`.report` (tables and figure), :mod:`.run` (the job).
"""

from trustvl.evaluation.safe_clip.comparison import NEUTRAL_METRICS, compare_evaluations
from trustvl.evaluation.safe_clip.config import SafeCLIPEvalConfig
from trustvl.evaluation.safe_clip.report import (
    category_table,
    overview_table,
    plot_nsfw_by_category,
    safe_clip_report,
)
from trustvl.evaluation.safe_clip.results import (
    CategoryEvaluation,
    Rate,
    SafeCLIPComparison,
    SafeCLIPEvalResult,
    SafeCLIPModelEvaluation,
)
from trustvl.evaluation.safe_clip.retrieval import (
    DIRECTION_NAMES,
    DIRECTIONS,
    category_rates,
    evaluate_quadruplets,
    occupations_in_split,
    per_query_values,
)
from trustvl.evaluation.safe_clip.run import evaluate_safe_clip

__all__ = [
    "DIRECTIONS",
    "DIRECTION_NAMES",
    "NEUTRAL_METRICS",
    "CategoryEvaluation",
    "Rate",
    "SafeCLIPComparison",
    "SafeCLIPEvalConfig",
    "SafeCLIPEvalResult",
    "SafeCLIPModelEvaluation",
    "category_rates",
    "category_table",
    "compare_evaluations",
    "evaluate_quadruplets",
    "evaluate_safe_clip",
    "occupations_in_split",
    "overview_table",
    "per_query_values",
    "plot_nsfw_by_category",
    "safe_clip_report",
]
