"""`trustvl audit --streaming`: a streamed gallery gives the same metrics as the loaded one; the columns are
read without decoding an image; the embeddings reach the ranking shard by shard; a rerun embeds nothing."""

from __future__ import annotations

import json

import pytest
import torch

from trustvl.errors import TrustVLInputError
from trustvl.evaluation import evaluator
from trustvl.evaluation.audit import audit
from trustvl.evaluation.streamed_gallery import encoded_images, open_stream, read_columns
from trustvl.metrics import GalleryChunks

OPTIONS = dict(ks=[5, 10], attributes=["skin_tone", "gender"], label_column="occupation", progress=False)


def _metrics(path):
    data = json.loads((path / "metrics.json").read_text())
    for key in ("seconds", "seconds_embedding"):
        data.pop(key)
    return data


def test_streaming_audit_equals_loaded_audit(tiny_clip_dir, tiny_parquet_dir, tmp_path, monkeypatch):
    loaded = audit(
        str(tiny_clip_dir), str(tiny_parquet_dir), str(tmp_path / "loaded"), use_cache=False, **OPTIONS
    )
    seen = []
    chunked = evaluator.chunked_rank_indices
    monkeypatch.setattr(
        evaluator, "chunked_rank_indices", lambda q, c, *a, **kw: seen.append(c) or chunked(q, c, *a, **kw)
    )
    streamed = audit(
        str(tiny_clip_dir),
        str(tiny_parquet_dir),
        str(tmp_path / "streamed"),
        cache_dir=str(tmp_path / "cache"),
        streaming=True,
        num_workers=2,  # decoding threads, batches of 8 in flight ahead of the forward
        batch_size=8,
        shard_size=16,  # 40 images: 3 shards, read back one at a time by the ranking
        **OPTIONS,
    )
    assert _metrics(tmp_path / "streamed") == _metrics(tmp_path / "loaded")
    assert streamed.evaluation == loaded.evaluation
    assert streamed.embedding_cache_hit is False
    # the ranking got the cache's shards, not one tensor, and they are the embeddings of the loaded audit
    assert len(seen) == 1 and isinstance(streamed.image_embeds, GalleryChunks)
    assert [len(c) for c in streamed.image_embeds] == [16, 16, 8]
    torch.testing.assert_close(torch.cat(list(streamed.image_embeds)), loaded.image_embeds, rtol=0, atol=0)

    again = audit(
        str(tiny_clip_dir),
        str(tiny_parquet_dir),
        str(tmp_path / "again"),
        cache_dir=str(tmp_path / "cache"),
        streaming=True,
        shard_size=16,
        **OPTIONS,
    )
    assert again.embedding_cache_hit is True and again.evaluation == loaded.evaluation


def test_streaming_without_cache_and_a_subset(tiny_clip_dir, tiny_parquet_dir, tmp_path):
    kw = dict(OPTIONS, ks=[5], max_images=25)
    loaded = audit(str(tiny_clip_dir), str(tiny_parquet_dir), str(tmp_path / "a"), use_cache=False, **kw)
    streamed = audit(
        str(tiny_clip_dir), str(tiny_parquet_dir), str(tmp_path / "b"), use_cache=False, streaming=True, **kw
    )
    assert streamed.evaluation.n_images == 25
    assert streamed.evaluation == loaded.evaluation


def test_columns_are_read_without_decoding_an_image(tiny_parquet_dir, monkeypatch):
    from datasets import Image

    def refuse(self, value, token_per_repo_id=None):
        raise AssertionError("an image was decoded")

    monkeypatch.setattr(Image, "decode_example", refuse)
    stream = open_stream(str(tiny_parquet_dir), "test")
    columns = read_columns(stream, "image", "occupation", None)
    assert len(columns) == 40
    assert set(columns.columns) == {"skin_tone", "gender", "occupation"}  # the ClassLabel columns only
    assert columns["skin_tone"][:6] == [0, 1, 2, 0, 1, 2]
    # rows of cached shards are passed over undecoded: only the asked rows come back, encoded
    got = list(encoded_images(stream, "image", [3, 17, 39]))
    assert [row for row, _ in got] == [3, 17, 39]
    assert all(isinstance(value["bytes"], bytes) for _, value in got)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_column": "img"}, "image column 'img' is not in the dataset"),
        ({"attributes": ["religion"]}, "religion"),
        ({"split": "validation"}, "validation"),
        ({"ks": [41]}, "41 exceeds the gallery size 40"),
    ],
)
def test_streaming_bad_input_is_a_clear_error(tiny_clip_dir, tiny_parquet_dir, tmp_path, kwargs, match):
    options = {**OPTIONS, **kwargs}
    with pytest.raises(TrustVLInputError, match=match):
        audit(str(tiny_clip_dir), str(tiny_parquet_dir), str(tmp_path / "run"), streaming=True, **options)
    assert not (tmp_path / "run").exists()


def test_webdataset_tar_shards_stream_with_the_same_metrics(tiny_clip_dir, tmp_path):
    import io
    import tarfile

    import numpy as np
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    shards = tmp_path / "wds"
    shards.mkdir()
    for s in range(2):  # two tar shards of 15 samples: <key>.png and <key>.cls (the attribute)
        with tarfile.open(shards / f"data-{s:03d}.tar", "w") as tar:
            for i in range(15):
                key, buf = f"{15 * s + i:05d}", io.BytesIO()
                PILImage.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(buf, format="PNG")
                for name, data in ((f"{key}.png", buf.getvalue()), (f"{key}.cls", str(i % 3).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    kw = dict(split="train", image_column="png", attributes=["cls"], ks=[5], progress=False, use_cache=False)
    loaded = audit(str(tiny_clip_dir), str(shards), str(tmp_path / "a"), **kw)
    streamed = audit(str(tiny_clip_dir), str(shards), str(tmp_path / "b"), streaming=True, **kw)
    assert streamed.evaluation.n_images == 30
    assert streamed.evaluation == loaded.evaluation
