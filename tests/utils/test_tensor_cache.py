"""The shared on-disk tensor cache (audit embeddings, Safe-CLIP references)."""

import torch

from trustvl.utils.tensor_cache import TensorCache, cache_dir, checkpoint_fingerprint


def test_put_get_round_trip_and_misses(tmp_path):
    cache = TensorCache(tmp_path / "c")
    key = TensorCache.key(model="m", n=3)
    assert (
        key == TensorCache.key(n=3, model="m") and len(key) == 40 and key != TensorCache.key(model="m", n=4)
    )
    assert cache.get(key, ["text"]) is None  # absent
    text, image = torch.randn(3, 4), torch.randn(3, 4)
    path = cache.put(key, {"text": text, "image": image}, metadata={"rows": "3"})
    assert [p.name for p in (tmp_path / "c").iterdir()] == [path.name]  # no temporary file left
    got = cache.get(key, ["text", "image"], expected_rows=3)
    assert torch.equal(got["text"], text) and torch.equal(got["image"], image)
    assert cache.get(key, ["text"], expected_rows=4) is None  # another row count
    assert cache.get(key, ["text", "labels"]) is None  # a tensor missing
    path.write_bytes(b"not safetensors")
    assert cache.get(key, ["text"]) is None  # corrupt: a miss, rewritten by the next put
    cache.put(key, {"text": text})
    assert torch.equal(cache.get(key, ["text"])["text"], text)


def test_cache_dir_prefers_trustvl_cache_then_hf_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTVL_CACHE", str(tmp_path / "t"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "h"))
    assert cache_dir("embeddings") == tmp_path / "t" / "embeddings"
    monkeypatch.delenv("TRUSTVL_CACHE")
    assert cache_dir("embeddings") == tmp_path / "h" / "trustvl" / "embeddings"


def test_checkpoint_fingerprint_follows_the_files(tiny_clip_dir, tmp_path):
    import shutil

    copy = tmp_path / "clip"
    shutil.copytree(tiny_clip_dir, copy)
    first = checkpoint_fingerprint(copy)
    assert first == checkpoint_fingerprint(tiny_clip_dir)  # content, not the path
    config = copy / "config.json"
    config.write_text(config.read_text().replace("{", '{"note": 1, ', 1))
    assert checkpoint_fingerprint(copy) != first
    model = torch.nn.Linear(2, 2)
    by_weights = checkpoint_fingerprint(tmp_path / "absent", model)
    with torch.no_grad():
        model.weight.add_(1.0)
    assert checkpoint_fingerprint(tmp_path / "absent", model) != by_weights
    assert checkpoint_fingerprint(tmp_path / "absent") == checkpoint_fingerprint(tmp_path / "absent")


def test_sharded_cache_writes_shards_and_reports_the_missing(tmp_path):
    import pytest

    from trustvl.errors import TrustVLInputError
    from trustvl.utils.tensor_cache import ShardedTensorCache

    cache = ShardedTensorCache(tmp_path, "k", n_rows=10, shard_rows=4)
    assert cache.n_shards == 3 and list(cache.rows(2)) == [8, 9] and cache.missing() == [0, 1, 2]
    full = torch.randn(10, 3)
    cache.put(0, full[:4])
    cache.put(2, full[8:])
    assert cache.missing() == [1]
    with pytest.raises(TrustVLInputError, match=r"shard 1 of .* is missing"):
        cache.load()
    with pytest.raises(TrustVLInputError, match="shard 1 got 3 rows; expected 4"):
        cache.put(1, full[4:7])
    cache.put(1, full[4:8])
    assert cache.missing() == [] and torch.equal(cache.load(), full)
    assert not [p for p in (tmp_path / "k").iterdir() if p.name.startswith(".")]  # no temporary files
    cache.path(1).write_bytes(b"corrupt")
    assert cache.missing() == [1]  # a corrupt shard is recomputed
    with pytest.raises(TrustVLInputError, match="n_rows=0"):
        ShardedTensorCache(tmp_path, "k", n_rows=0)
