"""gallery_resample_counts draws one resample at a time (bounded memory) and still gives the counts of one
``[n_resamples, n_gallery]`` draw, so every interval measured before stays as it was."""

from __future__ import annotations

import pytest
import torch

from trustvl.metrics import gallery_resample_counts


@pytest.mark.parametrize(("n", "resamples", "seed"), [(1, 2, 0), (10, 7, 3), (1000, 200, 0), (20011, 3, 5)])
def test_counts_equal_those_of_one_draw(n, resamples, seed):
    drawn = torch.randint(n, (resamples, n), generator=torch.Generator().manual_seed(seed))
    expected = torch.zeros(resamples, n, dtype=torch.int64).scatter_add_(1, drawn, torch.ones_like(drawn))
    counts = gallery_resample_counts(n, resamples, seed)
    assert counts.dtype == torch.int64 and torch.equal(counts, expected)
    assert torch.equal(counts.sum(1), torch.full((resamples,), n))
