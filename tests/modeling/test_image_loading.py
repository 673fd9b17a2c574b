"""The embedding engine: torch preprocessing vs the model's own image processor, and the engine vs the
processor path it replaced (tiny CLIP fixture and the shipped SynthWorld CLIP)."""

import numpy as np
import pytest
import torch
from PIL import Image

from trustvl.errors import TrustVLInputError
from trustvl.modeling.embedding import ImageEmbedder, _features, embed_images, load_clip
from trustvl.modeling.image_loading import ImageRows, PixelTransform, to_uint8_chw
from trustvl.utils.assets import asset_path

#: the torch bicubic resize (antialias) vs PIL's, in grey levels of the uint8 image before rescaling: PIL
#: computes with fixed-point coefficients, torch in float32, so a pixel may round to the neighbouring level
#: (at most 1 level; on these images 0.2 levels on average)
RESIZE_TOLERANCE_LEVELS = 1


def _images(sizes, seed=0):
    rng = np.random.default_rng(seed)
    # smooth images (upsampled noise), like photos; pure noise is the worst case for any resampler
    out = []
    for h, w in sizes:
        small = rng.integers(0, 256, (max(h // 4, 2), max(w // 4, 2), 3), dtype=np.uint8)
        out.append(Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR))
    return out


def _processor_path(model, processor, images, batch_size):
    """The path before the engine: the processor's pixel_values, then get_image_features, per batch."""
    outs = []
    for i in range(0, len(images), batch_size):
        pv = processor(images=images[i : i + batch_size], return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            outs.append(_features(model.get_image_features(pixel_values=pv)).float())
    return torch.nn.functional.normalize(torch.cat(outs), dim=-1)


@pytest.fixture(scope="module")
def synthworld_clip():
    return load_clip(asset_path("models", "synthworld-clip"), device="cpu")


def _check_transform(processor, images, exact):
    transform = PixelTransform.from_processor(processor)
    ip = processor.image_processor
    for img in images:
        expected = processor(images=[img], return_tensors="pt")["pixel_values"]
        got = transform(to_uint8_chw(img).unsqueeze(0))
        assert got.shape == expected.shape and got.dtype == torch.float32
        if exact:
            assert torch.equal(got, expected)
        else:  # back to grey levels: (x * std + mean) / rescale_factor
            std = torch.tensor(ip.image_std).view(1, 3, 1, 1)
            diff = (got - expected).abs() * std / ip.rescale_factor  # (x * std + mean) / rescale, differenced
            assert diff.max() <= RESIZE_TOLERANCE_LEVELS + 1e-3
            assert diff.mean() < 0.5  # most pixels are equal


def test_torch_preprocessing_matches_the_processor_tiny_clip(tiny_clip_dir):
    _, processor = load_clip(tiny_clip_dir, device="cpu")
    size = processor.image_processor.crop_size["height"]
    _check_transform(processor, _images([(size, size)] * 3), exact=True)
    _check_transform(processor, _images([(24, 24), (40, 31), (19, 57), (size, 2 * size)]), exact=False)


def test_torch_preprocessing_matches_the_processor_synthworld_clip(synthworld_clip):
    _, processor = synthworld_clip
    _check_transform(processor, _images([(64, 64)] * 3), exact=True)  # SynthWorld renders 64 px
    _check_transform(processor, _images([(224, 224), (96, 80), (50, 70)]), exact=False)


def test_engine_equals_the_processor_path_where_no_resize(synthworld_clip):
    model, processor = synthworld_clip
    images = _images([(64, 64)] * 7, seed=1)
    expected = _processor_path(model, processor, images, 3)
    assert torch.equal(embed_images(model, processor, images, batch_size=3, progress=False), expected)
    # a generator (decoded in this process) and worker processes give the same embeddings
    assert torch.equal(embed_images(model, processor, iter(images), batch_size=3, progress=False), expected)
    engine = ImageEmbedder(model, processor, batch_size=3, num_workers=2)
    assert torch.equal(engine.embed(images, progress=False), expected)


def test_engine_close_to_the_processor_path_with_resize(tiny_clip_dir):
    model, processor = load_clip(tiny_clip_dir, device="cpu")
    images = _images([(24, 24), (40, 31), (30, 30)], seed=2)  # several sizes in one batch
    expected = _processor_path(model, processor, images, 2)
    got = embed_images(model, processor, images, batch_size=2, progress=False)
    assert torch.allclose(got, expected, atol=5e-2) and (got * expected).sum(-1).min() > 0.99


def test_engine_autocast_bf16_is_close(synthworld_clip):
    model, processor = synthworld_clip
    images = _images([(64, 64)] * 4, seed=3)
    fp32 = embed_images(model, processor, images, progress=False)
    bf16 = embed_images(model, processor, images, progress=False, autocast="bf16")
    assert (fp32 * bf16).sum(-1).min() > 0.99
    with pytest.raises(TrustVLInputError, match="autocast='int8'"):
        ImageEmbedder(model, processor, autocast="int8")


def test_unreadable_image_names_its_row(tiny_clip_dir, tmp_path):
    from datasets import Dataset, Features
    from datasets import Image as ImageFeature

    good = tmp_path / "good.png"
    _images([(24, 24)])[0].save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    ds = Dataset.from_dict({"image": [str(good), str(bad)]}, features=Features({"image": ImageFeature()}))
    model, processor = load_clip(tiny_clip_dir, device="cpu")
    for workers in (0, 1):
        engine = ImageEmbedder(model, processor, batch_size=2, num_workers=workers)
        with pytest.raises(TrustVLInputError, match=r"image 1 is not a readable image \(cannot identify"):
            engine.embed(ImageRows(ds, column="image"), progress=False)


def test_arrays_and_grey_images_become_rgb_chw():
    grey = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4))
    t = to_uint8_chw(grey)
    assert t.shape == (3, 3, 4) and t.dtype == torch.uint8 and torch.equal(t[0], t[2])
    hwc = np.zeros((5, 6, 3), dtype=np.uint8)
    assert to_uint8_chw(hwc).shape == (3, 5, 6)
    assert to_uint8_chw(hwc.transpose(2, 0, 1)).shape == (3, 5, 6)
    with pytest.raises(TrustVLInputError, match="shape"):
        to_uint8_chw(np.zeros((5, 6, 7), dtype=np.uint8))


def test_streamed_batches_equal_the_loader_and_name_an_unreadable_row(tiny_clip_dir):
    import io

    from trustvl.modeling.image_loading import open_image

    images = _images([(24, 24)] * 9 + [(30, 20)] * 4)  # two sizes: one batch is a list, not a tensor
    encoded = []
    for img in images:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        encoded.append({"bytes": buf.getvalue(), "path": None})
    assert np.array_equal(np.asarray(open_image(encoded[0])), np.asarray(images[0]))
    model, processor = load_clip(tiny_clip_dir, device="cpu")
    expected = ImageEmbedder(model, processor, batch_size=4).embed(images, progress=False)
    for workers in (0, 3):
        engine = ImageEmbedder(model, processor, batch_size=4, num_workers=workers, prefetch=1)
        got = torch.cat(list(engine.stream_batches(enumerate(encoded))))
        assert torch.equal(got, expected), workers
        bad = [*enumerate(encoded[:6]), (6, {"bytes": b"not an image", "path": None})]
        with pytest.raises(TrustVLInputError, match=r"image 6 is not a readable image \(cannot identify"):
            list(engine.stream_batches(bad))
