"""MaxSkew@k of rankings, a self-contained `evaluate` module (numpy only; trustvl not needed)."""

import datasets
import evaluate

from ._fairness_core import per_query

_DESCRIPTION = """
MaxSkew@k (Geyik et al. 2019) compares the proportion p_a@k of every attribute value a among the top k
ranked items with its target proportion q_a: Skew_a@k = ln(p_a@k / q_a), where a zero count is floored
to 1/k so that the value is finite, and MaxSkew@k = max_a Skew_a@k (>= 0); closer to 0 is fairer: a large MaxSkew means some value is over-represented.
The maths lives in `_fairness_core.py` next to this file, an identical copy of
`trustvl.metrics._fairness_core`, the module trustvl's own (torch) metrics build on: same values.
For confidence intervals, the sampling floor and a paired better/worse/within-noise verdict between two models,
use trustvl (`pip install trustvl`): `trustvl.metrics.bootstrap_fairness`, `sampling_floor` and
`paired_comparison` on the similarity scores (see the README).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `int`): for every query, the attribute values (ids 0..m-1) of the
        ranked items, best first (at least k items per query).
    target (`list` of `float`): the target distribution q over the m attribute values (entries > 0,
        summing to 1), e.g. uniform [1/m] * m or the gallery's own proportions.
    k (`int`): the cut-off, 1 <= k <= the length of every ranking.
Returns:
    max_skew (`float`): the mean MaxSkew@k over queries.
    per_query (`list` of `float`): the MaxSkew@k of every query, in input order.
Examples:
    >>> metric = evaluate.load("evaluate_metrics/max_skew")
    >>> results = metric.compute(predictions=[[0, 0, 0, 1], [0, 1, 0, 1]], target=[0.5, 0.5], k=4)
    >>> round(results["max_skew"], 4)
    0.2027
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
class MaxSkew(evaluate.Metric):
    """MaxSkew@k of ranked attribute labels against a target distribution (the maths in `_fairness_core.py`)."""

    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("int64"))}),
            reference_urls=["https://arxiv.org/abs/1905.01989"],
        )

    def _compute(self, predictions, target=None, k=None):
        if target is None or k is None:
            raise ValueError("max_skew needs `target` (the target distribution) and `k` (the cut-off)")
        values = per_query("max_skew", predictions, target, k)
        return {"max_skew": float(values.mean()), "per_query": values.tolist()}
