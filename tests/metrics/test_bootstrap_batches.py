"""The bootstrap scores its resamples batch by batch (issue 28 item 2): each batch's counts are drawn when the
batch is ranked, at most ``replicate_batch_size`` resamples are in memory at once, and the replicates are
bit-for-bit those of the counts drawn as one ``[n_resamples, n_gallery]`` tensor (the path before)."""

from __future__ import annotations

import importlib
import sys
import weakref

import pytest
import torch

from trustvl.metrics import (
    bootstrap_fairness,
    gallery_resample_counts,
    rank_indices,
    resampled_rankings,
    uniform_target,
)
from trustvl.metrics.bootstrap import labels_and_targets, resample_count_blocks
from trustvl.metrics.ranking_replicates import fairness_replicates, replicate_batch_size

bootstrap = importlib.import_module("trustvl.metrics.bootstrap")
replicates = importlib.import_module("trustvl.metrics.ranking_replicates")

N, N_QUERIES, KS = 257, 3, [1, 10, 100]


def _gallery():
    gen = torch.Generator().manual_seed(7)
    scores = torch.randn(N_QUERIES, N, generator=gen)
    labels = torch.stack(
        [torch.randint(0, 3, (N,), generator=gen), torch.randint(0, 2, (N,), generator=gen)], 1
    )
    return scores, labels.to(torch.uint8), [uniform_target(3), uniform_target(2)]


def _replicates_from_whole_counts(scores, labels, targets, n_resamples, seed):
    """The bootstrap as it was: all counts drawn first, then sliced into batches of the same size."""
    order = rank_indices(scores)
    counts = gallery_resample_counts(N, n_resamples, seed)
    size = replicate_batch_size(*order.shape)
    batches = (resampled_rankings(order, counts[s : s + size]) for s in range(0, n_resamples, size))
    columns, qs, _ = labels_and_targets(labels, targets, N)
    return fairness_replicates(batches, columns, qs, KS)


@pytest.mark.parametrize("positions", [None, 3 * N * 4, 3 * N])  # one batch; 4 resamples a batch; 1
@pytest.mark.parametrize(("n_resamples", "seed"), [(2, 0), (13, 5), (40, 0)])
def test_streamed_counts_give_the_replicates_of_the_whole_counts_bit_for_bit(
    monkeypatch, positions, n_resamples, seed
):
    if positions is not None:
        monkeypatch.setattr(replicates, "_BATCH_POSITIONS", positions)
    scores, labels, targets = _gallery()
    got = bootstrap_fairness(scores, labels, targets, KS, n_resamples=n_resamples, seed=seed)
    want = _replicates_from_whole_counts(scores, labels, targets, n_resamples, seed)
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g.ndkl, w.ndkl)
        for k in KS:
            assert torch.equal(g.max_skew[k], w.max_skew[k]) and torch.equal(g.min_skew[k], w.min_skew[k])


@pytest.mark.parametrize("block", [1, 3, 7, 8])
def test_count_blocks_are_the_rows_of_the_whole_counts(block):
    blocks = list(resample_count_blocks(N, 7, 3, block))
    assert [b.shape[0] for b in blocks] == [min(block, 7 - s) for s in range(0, 7, block)]
    assert torch.equal(torch.cat(blocks), gallery_resample_counts(N, 7, 3))


def test_one_batch_of_counts_and_rankings_is_alive_at_a_time(monkeypatch):
    """The memory rule: counts never for all resamples (gallery_resample_counts is not called), batches of
    at most replicate_batch_size resamples, and when a batch's counts are allocated every earlier batch, its
    counts and its rankings, has been released."""
    monkeypatch.setattr(replicates, "_BATCH_POSITIONS", 3 * N * 4)  # 4 resamples a batch
    monkeypatch.setattr(bootstrap, "gallery_resample_counts", lambda *a: pytest.fail("all counts drawn"))
    earlier: list[weakref.ref] = []  # every count block and ranking batch handed out so far
    rows: list[int] = []
    alive_at_allocation: list[bool] = []
    draw, rank, empty = bootstrap.resample_count_blocks, bootstrap.resampled_rankings, torch.empty

    def spy_empty(*args, **kwargs):
        if sys._getframe(1).f_code is draw.__code__:  # a block of counts
            alive_at_allocation.append(any(ref() is not None for ref in earlier))
        return empty(*args, **kwargs)

    def spy_draw(*args):
        for block in draw(*args):
            rows.append(block.shape[0])
            earlier.append(weakref.ref(block))
            yield block
            del block

    def spy_rank(order, counts):
        out = rank(order, counts)
        earlier.append(weakref.ref(out))
        return out

    scores, labels, targets = _gallery()
    monkeypatch.setattr(torch, "empty", spy_empty)
    monkeypatch.setattr(bootstrap, "resample_count_blocks", spy_draw)
    monkeypatch.setattr(bootstrap, "resampled_rankings", spy_rank)
    bootstrap_fairness(scores, labels, targets, KS, n_resamples=14, seed=1)
    assert rows == [4, 4, 4, 2] and len(earlier) == 8
    assert alive_at_allocation == [False] * 4


def test_batch_size_bounds_the_positions_per_batch():
    """replicate_batch_size keeps r * n_queries * n_gallery <= _BATCH_POSITIONS (a few tens of MB of int64
    indices) whenever one replicate fits, and is 1 (one resample of all queries) when it does not."""
    cap = replicates._BATCH_POSITIONS
    for n_queries, n in [(1, 1), (3, 257), (16, 100_000), (16, cap // 16), (16, 1_000_000), (1000, 10_000)]:
        r = replicate_batch_size(n_queries, n)
        if n_queries * n <= cap:
            assert r * n_queries * n <= cap < (r + 1) * n_queries * n
        else:
            assert r == 1


# ------------------------------------------------------------- statistics of weighted samples, a block at a time


def _values():
    gen = torch.Generator().manual_seed(9)
    return torch.randint(0, 11, (N,), generator=gen).double() / 10  # shares: sums of them round


@pytest.mark.parametrize("rows", [1, 3, 7])  # resamples per block of weights
@pytest.mark.parametrize(("n_resamples", "seed"), [(2, 0), (13, 5), (20, 3)])
def test_resampled_replicates_are_the_statistic_of_the_whole_counts_bit_for_bit(
    monkeypatch, rows, n_resamples, seed
):
    monkeypatch.setattr(bootstrap, "WEIGHT_BLOCK_BYTES", 8 * N * rows)
    assert bootstrap.weight_block_size(N) == rows
    values = _values()
    whole = gallery_resample_counts(N, n_resamples, seed).double()

    def statistic(weights):  # a row-wise statistic: [r, 2]
        return torch.stack([weights @ (values > 0.5).double(), (weights * values).amax(1)], 1)

    got = bootstrap.resampled_replicates(statistic, N, n_resamples, seed)
    assert torch.equal(got, statistic(whole))
    assert torch.equal(bootstrap.resampled_means(values, n_resamples, seed), whole @ values / N)


def test_resampled_replicates_hold_one_block_of_weights_at_a_time(monkeypatch):
    """Blocks of weight_block_size resamples, never the whole counts (a block of all resamples, as
    gallery_resample_counts draws), each block's weights released before the next is drawn."""
    monkeypatch.setattr(bootstrap, "WEIGHT_BLOCK_BYTES", 8 * N * 4)  # 4 resamples a block
    drawn: list[int] = []
    earlier: list[weakref.ref] = []
    alive: list[bool] = []

    def spy_draw(n, n_resamples, seed, block):
        assert block < n_resamples, "all counts drawn at once"
        for counts in draw(n, n_resamples, seed, block):
            alive.append(any(ref() is not None for ref in earlier))
            drawn.append(counts.shape[0])
            yield counts

    def statistic(weights):
        earlier.append(weakref.ref(weights))
        return weights.sum(1)

    draw = bootstrap.resample_count_blocks
    monkeypatch.setattr(bootstrap, "resample_count_blocks", spy_draw)
    got = bootstrap.resampled_replicates(statistic, N, 14, 1)
    assert drawn == [4, 4, 4, 2] and alive == [False] * 4
    assert torch.equal(got, torch.full((14,), float(N), dtype=torch.float64))


def test_weight_blocks_stay_within_64_mb():
    assert bootstrap.WEIGHT_BLOCK_BYTES == 64 << 20
    for n in (1, 257, 41_943, 41_944, 1_000_000):
        r = bootstrap.weight_block_size(n)
        assert 8 * n * r <= bootstrap.WEIGHT_BLOCK_BYTES < 8 * n * (r + 1)
    assert bootstrap.weight_block_size(41_943) == 200 > bootstrap.weight_block_size(41_944)  # one block: 200
    assert bootstrap.weight_block_size(1_000_000) == 8 and bootstrap.weight_block_size(10**8) == 1


def test_means_in_blocks_equal_the_whole_product_up_to_the_sum_order(monkeypatch):
    """Non-integer values at 20,000 samples, 200 resamples in blocks of 7: the means equal the whole
    product's to the last bits a BLAS's sum order can change; integer values are exact; one block is the
    whole product bit for bit."""
    n = 20_000
    gen = torch.Generator().manual_seed(2)
    values = torch.randint(0, 11, (n,), generator=gen).double() / 10
    want = gallery_resample_counts(n, 200, 0).double() @ values / n
    assert torch.equal(bootstrap.resampled_means(values, 200, 0), want)  # one block at the real size
    monkeypatch.setattr(bootstrap, "WEIGHT_BLOCK_BYTES", 8 * n * 7)
    got = bootstrap.resampled_means(values, 200, 0)
    assert torch.allclose(got, want, rtol=1e-13, atol=0)
    hits = (values > 0.5).double()
    assert torch.equal(
        bootstrap.resampled_means(hits, 200, 0), gallery_resample_counts(n, 200, 0).double() @ hits / n
    )
