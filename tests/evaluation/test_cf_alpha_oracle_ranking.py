"""benchmarks/cf_alpha_oracle_ranking.py: the oracle ranks every image's occupation first and orders the images
of one occupation at random; its gallery means and paired verdicts use the benchmark's own machinery."""

from __future__ import annotations

import numpy as np
import torch
from conftest import load_benchmark

from trustvl.evaluation.synthworld import GalleryFairness, combine_galleries


def test_oracle_embeddings_rank_the_occupation_first_and_shuffle_within_it():
    bench = load_benchmark("cf_alpha_oracle_ranking")
    text = torch.nn.functional.normalize(
        torch.randn(8, 32, generator=torch.Generator().manual_seed(0)), dim=-1
    )
    occupation = np.arange(400) % 8
    img = bench.oracle_embeddings(text, occupation, noise=0.05, seed=1)
    scores = img @ text.T
    assert (scores.argmax(1).numpy() == occupation).all()
    # within one occupation the order is the noise's: a second seed orders the same images differently
    again = bench.oracle_embeddings(text, occupation, noise=0.05, seed=2) @ text.T
    first = np.argsort(-scores[occupation == 0, 0].numpy())
    second = np.argsort(-again[occupation == 0, 0].numpy())
    assert not np.array_equal(first, second)
    assert torch.allclose(img.norm(dim=-1), torch.ones(400))


def test_gallery_means_average_points_and_resamples_with_intervals():
    per = [
        GalleryFairness(
            s, 1.0, {"a": v}, {"a": v / 10}, {"a": [v, v + 0.2]}, {"a": [0.0, 0.1]}, {"a": 0.05}, {"a": 0.01}
        )
        for s, v in ((0, 0.2), (1, 0.4))
    ]
    out = combine_galleries(per, k=100)
    assert np.isclose(out.max_skew["a"], 0.3) and np.isclose(out.ndkl["a"], 0.03)
    assert np.allclose(out.replicates("max_skew")["a"], [0.3, 0.5])  # resample r averaged over galleries
    assert out.max_skew_floor == {"a": 0.05}
    assert out.max_skew_interval["a"].low <= 0.3 <= out.max_skew_interval["a"].high
