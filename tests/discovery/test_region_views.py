"""Region views of RaVL step 1: the crop (default) and the region in place on a fill canvas."""

from __future__ import annotations

import numpy as np
import pytest

from trustvl.discovery import (
    NOTHING_TO_DISCOVER,
    REGION_VIEWS,
    Region,
    discover,
    embed_regions,
    iter_region_crops,
    make_regions,
    region_views,
)
from trustvl.errors import TrustVLInputError


def _image(seed: int = 0, size: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 255, (size, size, 3), dtype=np.uint8)


def test_in_place_keeps_size_position_and_fills_the_rest():
    img = _image()
    region = Region(0, (4, 2, 9, 7))
    (view,) = region_views([img], [region], view="in_place", fill=(0, 0, 0))
    out = np.asarray(view)
    assert out.shape == img.shape  # same size: the region is not rescaled
    np.testing.assert_array_equal(out[2:7, 4:9], img[2:7, 4:9])  # same place
    outside = np.ones(img.shape[:2], dtype=bool)
    outside[2:7, 4:9] = False
    assert (out[outside] == 0).all()
    (grey,) = region_views([img], [region], view="in_place", fill=(7, 8, 9))
    assert (np.asarray(grey)[outside] == (7, 8, 9)).all()


def test_in_place_with_a_mask_keeps_only_the_mask():
    img = _image(1)
    mask = np.zeros((12, 12), dtype=bool)
    mask[3:6, 3:5] = True
    mask[8, 9] = True
    (region,) = make_regions([img], lambda _: [mask])
    (view,) = region_views([img], [region], view="in_place", fill=(0, 0, 0))
    out = np.asarray(view)
    np.testing.assert_array_equal(out[mask], img[mask])
    assert (out[~mask] == 0).all()


def test_crop_view_is_the_crop():
    img = _image(2)
    regions = make_regions([img], "grid", n=3)
    crops = [np.asarray(c) for c in iter_region_crops([img], regions)]
    views = [np.asarray(v) for v in region_views([img], regions)]  # default view
    assert REGION_VIEWS[0] == "crop"
    assert len(views) == 9 and all(np.array_equal(c, v) for c, v in zip(crops, views))
    assert views[0].shape == (4, 4, 3)


def test_bad_view_and_index_raise():
    img = _image()
    with pytest.raises(TrustVLInputError, match="'box'"):
        list(region_views([img], [Region(0, (0, 0, 4, 4))], view="box"))
    with pytest.raises(TrustVLInputError, match="outside"):
        list(region_views([img], [Region(3, (0, 0, 4, 4))], view="in_place"))


def test_in_place_embedding_of_the_whole_image_is_the_image_and_differs_from_the_crop(tiny_clip_dir):
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(tiny_clip_dir).eval()
    processor = CLIPProcessor.from_pretrained(tiny_clip_dir)
    images = [_image(s, 32) for s in range(3)]
    whole = [Region(i, (0, 0, 32, 32)) for i in range(3)]
    crop = embed_regions(model, processor, images, whole, progress=False)
    in_place = embed_regions(model, processor, images, whole, progress=False, view="in_place")
    np.testing.assert_allclose(in_place, crop, atol=1e-5)  # a region that is the image is the image
    quarter = [Region(i, (16, 16, 32, 32)) for i in range(3)]
    crop_q = embed_regions(model, processor, images, quarter, progress=False)
    in_place_q = embed_regions(model, processor, images, quarter, progress=False, view="in_place")
    assert np.abs(crop_q - in_place_q).max() > 1e-3  # the quarter at its own scale is another input
    with pytest.raises(TrustVLInputError, match="'warp'"):
        embed_regions(model, processor, images, quarter, progress=False, view="warp")


def test_discover_region_view_option(tiny_clip_dir):
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(tiny_clip_dir).eval()
    processor = CLIPProcessor.from_pretrained(tiny_clip_dir)
    images = [_image(s, 32) for s in range(12)]
    labels = [i % 3 for i in range(12)]
    prompts = ["a photo of a cat", "a photo of a dog", "a photo of a car"]
    default = discover(model, processor, images, labels, prompts, k=6, progress=False)
    in_place = discover(
        model, processor, images, labels, prompts, k=6, progress=False, region_view="in_place"
    )
    assert "region_view" not in default.params  # the default writes the same JSON as before the option
    assert in_place.params["region_view"] == "in_place"
    if in_place.message != NOTHING_TO_DISCOVER:
        assert sum(c.size for c in in_place.all_clusters) == 48
    assert [r.box for r in in_place.regions] == [r.box for r in default.regions]  # same regions, other view
    with pytest.raises(TrustVLInputError, match="region_view='warp'"):
        discover(model, processor, images, labels, prompts, k=6, progress=False, region_view="warp")
