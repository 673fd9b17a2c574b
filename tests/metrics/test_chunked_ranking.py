"""metrics.chunked_ranking: the chunked ranking equals rank_indices / rank_labels of the full score matrix."""

from __future__ import annotations

import pytest
import torch

from trustvl.errors import TrustVLInputError
from trustvl.metrics import (
    chunked_rank_indices,
    gallery_chunks,
    max_skew,
    merge_sorted_runs,
    ndkl,
    rank_indices,
    rank_labels,
    uniform_target,
)


def _tied(seed: int, n_queries: int, n_gallery: int, d: int = 3):
    """Small-integer embeddings: many exactly equal scores, including 0.0 from cancelling terms."""
    g = torch.Generator().manual_seed(seed)
    queries = torch.randint(-2, 3, (n_queries, d), generator=g).float()
    gallery = torch.randint(-2, 3, (n_gallery, d), generator=g).float()
    return queries, gallery


@pytest.mark.parametrize("seed", range(6))
def test_full_and_top_k_rankings_equal_rank_indices_with_ties(seed):
    queries, gallery = _tied(seed, 4, 97)
    scores = queries @ gallery.T
    assert (scores.unsqueeze(2) == scores.unsqueeze(1)).sum() > scores.numel()  # ties are present
    full = rank_indices(scores)
    for chunk in (1, 2, 5, 32, 96, 97, 500):
        assert torch.equal(chunked_rank_indices(queries, gallery_chunks(gallery, chunk)), full), chunk
        for k in (1, 3, 10, 96, 97):
            got = chunked_rank_indices(queries, gallery_chunks(gallery, chunk), k)
            assert torch.equal(got, full[:, :k]), (chunk, k)


def test_uneven_chunks_and_continuous_scores_give_the_same_labels_and_metrics():
    g = torch.Generator().manual_seed(1)
    queries, gallery = torch.randn(6, 8, generator=g), torch.randn(1000, 8, generator=g)
    labels = torch.randint(0, 3, (1000,), generator=g, dtype=torch.uint8)
    chunks = [gallery[:7], gallery[7:7], gallery[7:400], gallery[400:401], gallery[401:]]  # empty one too
    order = chunked_rank_indices(queries, chunks)
    expected = rank_labels(queries @ gallery.T, labels)
    ranked = labels[order]
    assert torch.equal(ranked, expected)
    q = uniform_target(3)
    assert torch.equal(ndkl(ranked, q), ndkl(expected, q))
    assert torch.equal(max_skew(ranked, q, 50), max_skew(expected, q, 50))


def test_merge_puts_the_left_run_first_among_equal_keys():
    keys, index = merge_sorted_runs(
        torch.tensor([[1, 2, 2, 5]]),
        torch.tensor([[3, 0, 1, 2]]),
        torch.tensor([[2, 5, 9]]),
        torch.tensor([[4, 6, 5]]),
    )
    assert keys.tolist() == [[1, 2, 2, 2, 5, 5, 9]]
    assert index.tolist() == [[3, 0, 1, 4, 2, 6, 5]]


def test_bad_inputs_are_clear_errors():
    queries, gallery = _tied(0, 2, 10)
    with pytest.raises(TrustVLInputError, match="chunk_size"):
        list(gallery_chunks(gallery, 0))
    with pytest.raises(TrustVLInputError, match="no rows"):
        chunked_rank_indices(queries, [gallery[:0]])
    with pytest.raises(TrustVLInputError, match=r"expected \[n, 3\]"):
        chunked_rank_indices(queries, [torch.zeros(4, 5)])
    with pytest.raises((TrustVLInputError, ValueError), match="k"):
        chunked_rank_indices(queries, gallery_chunks(gallery, 4), k=11)
    bad = gallery.clone()
    bad[6, 0] = float("nan")
    with pytest.raises(TrustVLInputError, match="not finite"):
        chunked_rank_indices(queries, gallery_chunks(bad, 4))


def test_gallery_read_from_cache_shards_ranks_as_the_full_matrix(tmp_path):
    from trustvl.metrics import GalleryChunks
    from trustvl.utils.tensor_cache import ShardedTensorCache

    queries, gallery = _tied(7, 5, 50)
    cache = ShardedTensorCache(tmp_path, "key", n_rows=50, shard_rows=16)  # shards of 16, 16, 16, 2 rows
    for i in range(cache.n_shards):
        cache.put(i, gallery[cache.rows(i).start : cache.rows(i).stop])
    reads = []

    def read():
        reads.append(1)
        return cache.iter_shards()

    chunks = GalleryChunks(50, 3, read)
    full = rank_indices(queries @ gallery.T)
    assert torch.equal(chunked_rank_indices(queries, chunks), full)
    assert torch.equal(chunked_rank_indices(queries, chunks, 7), full[:, :7])
    assert len(reads) == 2  # each pass reads the shards again: nothing is kept between passes
    assert torch.equal(chunks.head(20), gallery[:20]) and chunks.shape == (50, 3)
    with pytest.raises(TrustVLInputError, match="hold 50 rows; expected 60"):
        list(GalleryChunks(60, 3, read))
    cache.path(2).unlink()
    with pytest.raises(TrustVLInputError, match="shard 2 .* is missing"):
        chunked_rank_indices(queries, chunks)


def test_evaluator_gives_the_same_result_from_gallery_chunks():
    from trustvl.evaluation.dataset_columns import AttributeColumn
    from trustvl.evaluation.evaluator import evaluate_embeddings
    from trustvl.metrics import GalleryChunks

    g = torch.Generator().manual_seed(3)
    gallery = torch.nn.functional.normalize(torch.randn(120, 8, generator=g), dim=-1)
    prompts = torch.nn.functional.normalize(torch.randn(3, 8, generator=g), dim=-1)
    labels = torch.randint(0, 3, (120,), generator=g).numpy()
    attrs = [AttributeColumn("tone", torch.randint(0, 2, (120,), generator=g).numpy(), ["a", "b"])]
    kw = dict(
        prompts=["x", "y", "z"], attributes=attrs, ks=[5, 50], labels=labels, class_names=["x", "y", "z"]
    )
    kw["caption_embeds"] = prompts  # Recall@K reads the gallery's first rows
    whole = evaluate_embeddings(gallery, prompts, **kw)
    blocks = GalleryChunks(120, 8, lambda: iter(gallery.split(32)))
    assert evaluate_embeddings(blocks, prompts, ranking_device="cpu", **kw) == whole
