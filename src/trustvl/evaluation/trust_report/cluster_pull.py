"""A RaVL cluster's **pull** towards the class it favours: the trust report's second spurious measure, next to
the cluster score ``sum_l |gap_l|`` (:func:`~trustvl.evaluation.trust_report.spurious_axis.cluster_score`).

Definition. The favoured class ``f`` of a cluster is the class whose RaVL gap (accuracy of the images holding
the cluster minus the others', RaVL's size weighting, step 3) is largest and positive: the class the cluster's
regions help. Its pull is, over the images of every *other* class,

    P(predicted f | the image holds the cluster) − P(predicted f | it does not)

(−1 to 1; 0: the regions do not move predictions towards ``f``; lower is better). A cluster no class gains
from (every gap ≤ 0) favours none and has no pull (:attr:`PullOfCluster.reason` says why).

Why the pull and not only the gap. A spurious feature shows in two ways: it helps the class it goes with
(gap > 0) and it drags other classes' images towards that class (their gap < 0, spread over whatever they
were confused with). The score sums ``|gap|`` over every class; each gap is a difference of two accuracies
weighted by the cluster's share, and its interval collects the noise of every class. A fix that stops the
regions from pulling a few other-class images towards ``f`` changes one or two gaps by little next to that
interval (docs/trust_report.md: RaVL on SynthWorld-Web's watermark, where a targeted probe saw the fix and
the score did not). The pull counts that error itself, on the images
it can happen to, so it reads such a fix; the score still reads a cluster that helps or hurts without a
single favoured class. The report keeps both.

Compared only where there is a pull. ``--compare`` reads a pull as a paired verdict (lower is better) only
when the baseline's pull lies above 0 beyond noise (its interval's low end > 0, :func:`pulls_beyond_noise`):
a cluster can help a class while pulling no other image towards it (its images simply classified better);
its pull is then ≤ 0, and a fix that brings it back to 0 would read "worse" with nothing spurious undone.
The pull it compares is the top cluster's *feature*'s (:mod:`.spurious_feature`), not a single cluster's:
k-medoids can split one feature over several clusters, and the class a cluster's gaps favour need not be
the one its regions pull towards (SynthWorld-Web's watermark: docs/trust_report.md). Each cluster's own
pull is shown on the page as a description.

Intervals: the same bootstrap over the images as the score (:func:`replicates_of`, the same settings), the
clusters and each image's membership held fixed; two models on the same images share the resamples, hence a
paired verdict. A resample with no other-class image in (or out of) the cluster scores 0, as RaVL's gap
does for a class missing on one side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trustvl.evaluation.results import UncertaintySettings
from trustvl.evaluation.trust_report.estimates import estimate, replicates_of
from trustvl.evaluation.trust_report.schema import Estimate

__all__ = [
    "PullOfCluster",
    "cluster_pull",
    "favoured_class",
    "pulls_beyond_noise",
    "pull_towards",
]


@dataclass
class PullOfCluster:
    """A cluster's favoured class (its id) and pull with its interval; or, when there is none, ``reason``."""

    favoured: int | None
    pull: Estimate | None
    reason: str | None = None


def favoured_class(gaps: list[Estimate] | np.ndarray) -> int | None:
    """The class with the largest positive RaVL gap (``gaps[c]``: class ``c``'s gap), None if none is > 0."""
    values = np.asarray([g.value if isinstance(g, Estimate) else float(g) for g in gaps], dtype=np.float64)
    if values.size == 0 or values.max() <= 0:
        return None
    return int(values.argmax())


def pull_towards(
    member: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    favoured: int,
    settings: UncertaintySettings | None,
) -> Estimate | None:
    """The pull of the images ``member`` towards class ``favoured`` under ``predictions`` (class ids), with
    its bootstrap interval; None when no other-class image holds the cluster, or none lacks it."""
    other = torch.as_tensor(np.asarray(labels) != favoured, dtype=torch.float64)
    m = torch.as_tensor(np.asarray(member, dtype=bool), dtype=torch.float64)
    called = torch.as_tensor(np.asarray(predictions) == favoured, dtype=torch.float64)
    inside, outside = other * m, other * (1 - m)
    if inside.sum() == 0 or outside.sum() == 0:
        return None

    def pull(weights: torch.Tensor) -> torch.Tensor:
        n_in, n_out = weights @ inside, weights @ outside
        share_in = (weights @ (inside * called)) / n_in.clamp(min=1e-12)
        share_out = (weights @ (outside * called)) / n_out.clamp(min=1e-12)
        # a resample missing one side measures no difference (0), as RaVL's gap does
        return torch.where((n_in > 0) & (n_out > 0), share_in - share_out, torch.zeros_like(n_in))

    n = len(labels)
    point = float(pull(torch.ones(1, n, dtype=torch.float64))[0])
    return estimate(point, replicates_of(pull, n, settings), settings, n, lower=-1.0, upper=1.0)


def cluster_pull(
    member: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    gaps: list[Estimate] | np.ndarray,
    settings: UncertaintySettings | None,
    class_names: list[str] | None = None,
) -> PullOfCluster:
    """The favoured class of a cluster (from its per-class ``gaps``) and its pull, or why there is none."""
    favoured = favoured_class(gaps)
    if favoured is None:
        return PullOfCluster(None, None, "no class has a positive gap: the cluster favours none")
    pull = pull_towards(member, labels, predictions, favoured, settings)
    if pull is None:
        name = class_names[favoured] if class_names else str(favoured)
        reason = f"no image of a class other than {name} on both sides of the cluster"
        return PullOfCluster(favoured, None, reason)
    return PullOfCluster(favoured, pull)


def pulls_beyond_noise(pull: Estimate) -> bool:
    """Whether ``pull`` lies above 0 beyond noise (its interval's low end > 0; without an interval, > 0)."""
    return pull.interval.low > 0 if pull.interval is not None else pull.value > 0
