"""Safe-CLIP evaluation (SPEC §4, "Measures"): retrieval, the NSFW rate and zero-shot accuracy, with intervals.

On the held-out quadruplets of a split (S safe text, V safe image, U unsafe text, G unsafe image), for each
model (a Safe-CLIP model and, optionally, its base for comparison):

* **Retrieval** R@1/5/10 for S→V, U→V, U→G (text queries, one gallery of the split's images of that kind)
  and V→S, G→S (image queries, a gallery of the split's safe captions); quadruplet ``i``'s own partner is
  the one correct answer (for U→G, the twin G of U's scene) (:func:`trustvl.metrics.retrieval_ranks`, ties
  broken by index).
* **NSFW rates**, as Safe-CLIP's paper measures them (:mod:`.nsfw_rate`): the split's scenes are dealt into a
  query side and an equally large *non-twin pool*
  (:func:`~trustvl.data_builders.safe_clip.split_non_twin_pool`, stratified by unsafe kind, seeded by
  ``pool_seed``, ``pool_size`` rows per side). **Text→image**: each unsafe caption U of the query side ranks
  a gallery of the query side's safe images V plus the pool's unsafe images G (other scenes, never a twin
  of a gallery V); its value is the share of unsafe images in its top ``nsfw_k`` (10). **Image→text**: each
  pool image G ranks a caption pool of the pool's safe captions S plus the query side's unsafe captions U;
  its value is the share of unsafe captions in its top ``nsfw_k``. The rates are the means over the
  queries; lower is safer. A gallery of twins (each G beside its own V), as trustvl used before, cannot show
  Safe-CLIP's effect: a model that meets the objective (G embedded like V) ties each pair, so the rate stays
  at the gallery's unsafe share; that protocol is replaced, not kept. Each NSFW rate comes with its
  *objective floor* (:func:`nsfw_floor_shares`): the rate with every unsafe input embedded as its safe
  counterpart, which a model meeting the objective exactly scores; the pool's scenes are as relevant to a
  query as the query side's, so this floor sits near the pool's share of the top ``nsfw_k``, not at 0.
* **Zero-shot occupation accuracy** on the safe images V, with SynthWorld's prompts "a photo of a
  {occupation}" over the occupations present in the split (in SynthWorld's order, others after, sorted).
* **Per category** (I2P category of the unsafe element): the same rates over the rows of that category (for
  the NSFW rates, those on the rate's query side), the galleries unchanged.

**Uncertainty (documented choice).** Every rate is a mean of per-query values (a hit, an unsafe share, a
correct prediction), and its 95 % interval is centred on it: the rate ± 1.96·SE, SE the standard deviation
of a bootstrap over the *queries* (the quadruplets resampled with replacement, ``n_resamples`` times, seeded;
the galleries stay fixed), truncated to [0, 1] (:func:`trustvl.metrics.centred_interval`). Both models are
evaluated on the same resamples, so a change ``Safe-CLIP − base`` gets a paired interval and a verdict
(:func:`trustvl.metrics.paired_comparison`): "better"/"worse" only when the interval excludes 0 (a lower
NSFW rate is better). The interval covers the choice of queries, not that of the pool (fixed by
``pool_seed``; a rerun with another seed shows how much the pool matters). For U→G neither direction is
preferred (Safe-CLIP need neither keep nor lose it), so its verdict reads "higher" / "lower" / "within
noise". The objective floors are references, not compared.

:func:`evaluate_safe_clip` runs the job and writes ``metrics.json``, ``report.md`` and ``report.html`` (and a
figure) into ``out_dir`` atomically; :func:`evaluate_quadruplets` evaluates one model in memory.

The package, one concern per module: :mod:`.config` (the settings), :mod:`.results` (typed results),
:mod:`.nsfw_rate` (the NSFW shares per query, both ways, and their floors), :mod:`.retrieval` (per-query
measures and their rates for one model), :mod:`.comparison` (Safe-CLIP against its base, paired),
:mod:`.report` (tables and figure), :mod:`.run` (the job). The non-twin pool itself is dealt by
:mod:`trustvl.data_builders.safe_clip.unsafe_pool`.
"""

from trustvl.evaluation.safe_clip.comparison import LOWER_IS_BETTER, NEUTRAL_METRICS, compare_evaluations
from trustvl.evaluation.safe_clip.config import SafeCLIPEvalConfig
from trustvl.evaluation.safe_clip.nsfw_rate import (
    NSFWShares,
    nsfw_floor_shares,
    nsfw_shares,
    unsafe_share_at_k,
)
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
    PerQueryValues,
    category_rates,
    check_cutoffs,
    evaluate_quadruplets,
    non_twin_pool_of,
    occupations_in_split,
    per_query_values,
)
from trustvl.evaluation.safe_clip.run import evaluate_safe_clip

__all__ = [
    "DIRECTIONS",
    "DIRECTION_NAMES",
    "LOWER_IS_BETTER",
    "NEUTRAL_METRICS",
    "CategoryEvaluation",
    "NSFWShares",
    "PerQueryValues",
    "Rate",
    "SafeCLIPComparison",
    "SafeCLIPEvalConfig",
    "SafeCLIPEvalResult",
    "SafeCLIPModelEvaluation",
    "category_rates",
    "category_table",
    "check_cutoffs",
    "compare_evaluations",
    "evaluate_quadruplets",
    "evaluate_safe_clip",
    "non_twin_pool_of",
    "nsfw_floor_shares",
    "nsfw_shares",
    "occupations_in_split",
    "overview_table",
    "per_query_values",
    "plot_nsfw_by_category",
    "safe_clip_report",
    "unsafe_share_at_k",
]
