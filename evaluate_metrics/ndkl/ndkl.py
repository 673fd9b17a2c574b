"""NDKL (normalised discounted KL divergence) of rankings, a self-contained `evaluate` module (numpy only; trustvl not needed)."""

import datasets
import evaluate

from ._fairness_core import per_query

_DESCRIPTION = """
NDKL measures how far the attribute distribution of every prefix of a ranking is from a target
distribution q (Geyik et al. 2019): NDKL = (1/Z) * sum_{i=1..N} KL(p@i || q) / log2(i+1), with
Z = sum_{i=1..N} 1/log2(i+1), p@i the proportions of the attribute values among the first i items and
0*ln(0) = 0. NDKL >= 0, lower is fairer, and it is 0 only if every prefix matches q.
The maths lives in `_fairness_core.py` next to this file, an identical copy of
`trustvl.metrics._fairness_core`, the module trustvl's own (torch) metrics build on: same values.
For confidence intervals, the sampling floor and a paired better/worse/within-noise verdict between two models,
use trustvl (`pip install trustvl`): `trustvl.metrics.bootstrap_fairness`, `sampling_floor` and
`paired_comparison` on the similarity scores (see the README).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `int`): for every query, the attribute values (ids 0..m-1) of the
        ranked items, best first; normally the whole ranked gallery. Rankings may differ in length.
    target (`list` of `float`): the target distribution q over the m attribute values (entries >= 0,
        summing to 1), e.g. uniform [1/m] * m or the gallery's own proportions.
Returns:
    ndkl (`float`): the mean NDKL over queries.
    per_query (`list` of `float`): the NDKL of every query, in input order.
Examples:
    >>> ndkl_metric = evaluate.load("evaluate_metrics/ndkl")
    >>> results = ndkl_metric.compute(predictions=[[0, 1, 0, 1], [0, 0, 1, 1]], target=[0.5, 0.5])
    >>> round(results["ndkl"], 4)
    0.367
"""

_CITATION = """
@inproceedings{geyik2019fairness,
  title     = {Fairness-Aware Ranking in Search and Recommendation Systems with Application to LinkedIn Talent Search},
  author    = {Geyik, Sahin Cem and Ambler, Stuart and Kenthapadi, Krishnaram},
  booktitle = {Proceedings of the 25th ACM SIGKDD International Conference on Knowledge Discovery and Data Mining},
  pages     = {2221--2231},
  year      = {2019},
  doi       = {10.1145/3292500.3330691}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Ndkl(evaluate.Metric):
    """NDKL of ranked attribute labels against a target distribution (the maths in `_fairness_core.py`)."""

    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("int64"))}),
            reference_urls=["https://arxiv.org/abs/1905.01989"],
        )

    def _compute(self, predictions, target=None):
        if target is None:
            raise ValueError("ndkl needs `target`, the target distribution over the attribute values")
        values = per_query("ndkl", predictions, target)
        return {"ndkl": float(values.mean()), "per_query": values.tolist()}
