"""The trust report's estimates draw their bootstrap counts a block of resamples at a time (issue 28
follow-up): every replicate, interval and paired input is bit-for-bit that of the whole ``[n_resamples, n]``
float64 counts (the computation before, written out here), with blocks forced down to 3 resamples (20
resamples: the last block short), and the whole matrix is never drawn."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from trustvl.evaluation.results import UncertaintySettings
from trustvl.evaluation.trust_report.bias_axis import _directions, _level_skews
from trustvl.evaluation.trust_report.cluster_pull import pull_towards
from trustvl.evaluation.trust_report.estimates import (
    auroc,
    estimate,
    weighted_auroc,
    weighted_mean,
    worst_group,
)
from trustvl.evaluation.trust_report.spurious_axis import class_gaps, cluster_score
from trustvl.metrics import gallery_resample_counts, rank_indices, resampled_rankings
from trustvl.metrics.ranking_replicates import replicate_batch_size

bootstrap = importlib.import_module("trustvl.metrics.bootstrap")
ranking_replicates = importlib.import_module("trustvl.metrics.ranking_replicates")
DRAW = bootstrap.resample_count_blocks

N, BLOCK = 61, 3
SETTINGS = UncertaintySettings(n_resamples=20, seed=4)  # 20 = 6 blocks of 3 + one of 2


@pytest.fixture
def blocks(monkeypatch):
    """Blocks of BLOCK resamples (for N samples); records every block drawn and fails on a whole-matrix draw
    (``gallery_resample_counts`` draws all resamples as one block)."""
    monkeypatch.setattr(bootstrap, "WEIGHT_BLOCK_BYTES", 8 * N * BLOCK)
    drawn: list[int] = []

    def spy(n, n_resamples, seed, block):
        assert block < n_resamples, f"all {n_resamples} resamples' counts drawn at once"
        for counts in DRAW(n, n_resamples, seed, block):
            drawn.append(counts.shape[0])
            yield counts

    monkeypatch.setattr(bootstrap, "resample_count_blocks", spy)
    return drawn


def _whole_counts() -> torch.Tensor:
    """The reference: all counts as one float64 matrix, as the estimates drew them before (unspied)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bootstrap, "resample_count_blocks", DRAW)
        return gallery_resample_counts(N, SETTINGS.n_resamples, SETTINGS.seed).double()


def _same(got, want: torch.Tensor) -> None:
    """``got`` (an Estimate's replicates) is ``want`` bit for bit."""
    assert got is not None and torch.equal(torch.tensor(got, dtype=torch.float64), want)


def _rng():
    return np.random.default_rng(11)


def test_the_reference_counts_are_the_blocks_concatenated(blocks):
    whole = _whole_counts()
    assert torch.equal(whole, torch.cat(list(bootstrap.resample_count_blocks(N, 20, 4, BLOCK))).double())
    assert bootstrap.weight_block_size(N) == BLOCK
    assert blocks == [3] * 6 + [2]
    with pytest.raises(AssertionError, match="drawn at once"):
        bootstrap.gallery_resample_counts(N, SETTINGS.n_resamples, SETTINGS.seed)  # the whole matrix


@pytest.mark.parametrize("lower", [0.0, -1.0])
def test_weighted_mean(blocks, lower):
    values = np.round(_rng().random(N) * (1 - lower) + lower, 3)  # shares (or their differences)
    got = weighted_mean(values, SETTINGS, lower)
    v = torch.as_tensor(values)
    want = _whole_counts() @ v / N
    _same(got.replicates, want)
    assert got == estimate(float(v.mean()), want, SETTINGS, N, lower, 1.0) and got.interval is not None
    assert blocks == [3] * 6 + [2]


def test_worst_group(blocks):
    rng = _rng()
    correct = (rng.random(N) < 0.7).astype(np.float64)
    groups = rng.integers(0, 5, N)
    got = worst_group(correct, groups, SETTINGS)
    counts = _whole_counts()
    onehot = torch.nn.functional.one_hot(torch.as_tensor(np.unique(groups, return_inverse=True)[1])).double()
    hit = torch.as_tensor(correct)
    size = counts @ onehot
    acc = (counts @ (onehot * hit[:, None])) / size.clamp(min=1)
    want = torch.where(size > 0, acc, torch.full_like(acc, float("inf"))).min(dim=1).values
    _same(got.replicates, want)
    point = float(((hit @ onehot) / onehot.sum(0)).min())
    assert got == estimate(point, want, SETTINGS, N, 0.0, 1.0)
    assert len(blocks) == 7


def test_auroc(blocks):
    rng = _rng()
    scores = torch.as_tensor(np.round(rng.normal(size=N), 1))  # ties included
    positive = torch.as_tensor(rng.random(N) < 0.4)
    got = auroc(scores, positive, SETTINGS)
    counts = _whole_counts()
    want = weighted_auroc(scores, positive, counts)
    n_pos, n_neg = counts @ positive.double(), counts @ (~positive).double()
    want = torch.where((n_pos > 0) & (n_neg > 0), want, torch.full_like(want, float("nan")))
    assert not want.isnan().any()
    _same(got.replicates, want)
    point = float(weighted_auroc(scores, positive, torch.ones(1, N, dtype=torch.float64))[0])
    assert got == estimate(point, want, SETTINGS, N, 0.0, 1.0)
    assert len(blocks) == 7


def _cluster():
    rng = _rng()
    labels = rng.integers(0, 3, N)
    member = rng.random(N) < 0.5
    predictions = np.where(rng.random(N) < 0.3, 0, labels)
    return labels, member, predictions


def test_cluster_score_and_class_gaps(blocks):
    labels, member, predictions = _cluster()
    correct = (predictions == labels).astype(np.float64)
    score, gaps = cluster_score(member, labels, correct, 3, SETTINGS)
    reps = class_gaps(member, labels, correct, 3, _whole_counts())
    point = class_gaps(member, labels, correct, 3, torch.ones(1, N, dtype=torch.float64))[0]
    _same(score.replicates, reps.abs().sum(1))
    assert score == estimate(float(point.abs().sum()), reps.abs().sum(1), SETTINGS, N, lower=0.0)
    for c, gap in enumerate(gaps):
        _same(gap.replicates, reps[:, c])
        assert gap == estimate(float(point[c]), reps[:, c], SETTINGS, N, lower=-1.0, upper=1.0)
    assert len(blocks) == 7


def test_pull_towards(blocks):
    labels, member, predictions = _cluster()
    got = pull_towards(member, labels, predictions, 0, SETTINGS)
    counts = _whole_counts()
    other = torch.as_tensor(labels != 0, dtype=torch.float64)
    m = torch.as_tensor(member, dtype=torch.float64)
    called = torch.as_tensor(predictions == 0, dtype=torch.float64)
    inside, outside = other * m, other * (1 - m)
    n_in, n_out = counts @ inside, counts @ outside
    share_in = (counts @ (inside * called)) / n_in.clamp(min=1e-12)
    share_out = (counts @ (outside * called)) / n_out.clamp(min=1e-12)
    want = torch.where((n_in > 0) & (n_out > 0), share_in - share_out, torch.zeros_like(n_in))
    _same(got.replicates, want)
    assert got.interval is not None and len(blocks) == 7


def test_bias_directions(blocks, monkeypatch):
    """The bias axis's per-prompt direction: each batch of rankings from its own block of counts, the same
    batches as the whole counts sliced (3 resamples a batch here)."""
    rng = _rng()
    n_prompts, k = 4, 10
    monkeypatch.setattr(ranking_replicates, "_BATCH_POSITIONS", n_prompts * N * BLOCK)
    image_embeds = torch.as_tensor(rng.normal(size=(N, 8)))
    prompt_embeds = torch.as_tensor(rng.normal(size=(n_prompts, 8)))
    attributes = [
        SimpleNamespace(name=name, values=rng.integers(0, m, N), names=[f"{name}{a}" for a in range(m)])
        for name, m in (("tone", 4), ("gender", 2))
    ]
    fairness = {
        a.name: SimpleNamespace(
            target=[1 / len(a.names)] * len(a.names),
            at_k={k: SimpleNamespace(top_k_shares=[[0.0] * len(a.names)] * n_prompts)},
        )
        for a in attributes
    }
    evaluation = SimpleNamespace(fairness=fairness, prompts=[f"p{q}" for q in range(n_prompts)])
    measured = SimpleNamespace(
        result=SimpleNamespace(evaluation=evaluation, image_embeds=image_embeds), attributes=attributes
    )
    got = _directions(measured, prompt_embeds, k, SETTINGS)
    assert len(blocks) == 7 and replicate_batch_size(n_prompts, N) == BLOCK

    # before: all counts as one float64 matrix, sliced into the same batches of rankings
    order = rank_indices(prompt_embeds @ image_embeds.T)
    counts = _whole_counts()
    for i, attribute in enumerate(attributes):
        values = torch.as_tensor(attribute.values)
        target = torch.tensor(fairness[attribute.name].target, dtype=torch.float64)
        level = _level_skews(order, values, target, k).argmax(dim=1)
        parts, firsts = [], []
        for start in range(0, 20, BLOCK):
            ranked = resampled_rankings(order, counts[start : start + BLOCK].long())
            skews = _level_skews(ranked, values, target, k)
            parts.append(skews.gather(2, level.view(1, -1, 1).expand(skews.shape[0], -1, 1))[..., 0])
            firsts.append(skews.argmax(dim=2) == level)
        chosen, same_first = torch.cat(parts), torch.cat(firsts).double().mean(0)
        for q in range(n_prompts):
            direction = got[i * n_prompts + q]
            assert direction.attribute == attribute.name and direction.level == attribute.names[int(level[q])]
            _same(direction.skew.replicates, chosen[:, q])
            assert direction.stability == float(same_first[q])
