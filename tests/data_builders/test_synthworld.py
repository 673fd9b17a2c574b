"""SynthWorld: renderer determinism, counterfactual locality, oracles, bias/balance, dataset round trip."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from trustvl.data_builders.interfaces import Inpainter, PersonSegmenter, TextToImage
from trustvl.data_builders.synthworld import (
    ATTRIBUTES,
    KNOWN_LEVELS,
    OCCUPATIONS,
    OracleInpainter,
    OracleSegmenter,
    OracleTextToImage,
    SceneSpec,
    SpuriousConfig,
    SynthWorldConfig,
    SynthWorldRenderer,
    UnsafeConfig,
    appearance_phrase,
    build_synthworld_dataset,
    caption_variants,
    occupation_prompt,
    parse_appearance,
    sample_caption,
)
from trustvl.errors import TrustVLInputError


@pytest.fixture(scope="module")
def renderer():
    return SynthWorldRenderer(SynthWorldConfig(), seed=0)


@pytest.fixture(scope="module")
def rich_renderer():
    cfg = SynthWorldConfig(spurious=SpuriousConfig(), unsafe=UnsafeConfig(p=0.5), n_people=2)
    return SynthWorldRenderer(cfg, seed=3)


# ------------------------------------------------------------------------------------------ renderer
def test_render_is_deterministic_and_order_independent(renderer):
    other = SynthWorldRenderer(SynthWorldConfig(), seed=0)
    for split, i in [("train", 0), ("train", 17), ("test", 5), ("test", 300)]:
        a = renderer.scene(split, i)
        b = other.scene(split, i)
        assert a.image.tobytes() == b.image.tobytes()
        assert np.array_equal(a.person_mask, b.person_mask)
        assert a.spec == b.spec
    # order independence: a batch equals the single renders
    batch = other.render_batch("train", 10, 6)
    for j in range(6):
        assert np.array_equal(batch.images[j], renderer.scene("train", 10 + j).image)
    # different index / seed / split -> different image
    assert renderer.scene("train", 1).image.tobytes() != renderer.scene("train", 9).image.tobytes()
    assert (
        renderer.scene("train", 1).image.tobytes()
        != SynthWorldRenderer(seed=1).scene("train", 1).image.tobytes()
    )
    assert renderer.scene("train", 1).image.tobytes() != renderer.scene("test", 1).image.tobytes()


def test_scene_basics_and_resolution(renderer):
    sc = renderer.scene("train", 4)
    assert sc.image.dtype == np.uint8 and sc.image.shape == (64, 64, 3)
    assert sc.person_mask.dtype == bool and sc.person_mask.shape == (64, 64)
    frac = sc.person_mask.mean()
    assert 0.15 < frac < 0.6, frac  # the person is a big visible part of the image
    assert set(sc.spec.attributes) == set(ATTRIBUTES)
    x0, y0, x1, y1 = sc.boxes["person"]
    assert sc.person_mask[y0:y1, x0:x1].sum() == sc.person_mask.sum()
    # JSON round trip of the spec renders the same pixels
    spec2 = SceneSpec.from_json(sc.spec.to_json())
    assert spec2 == sc.spec
    assert renderer.render(spec2).image.tobytes() == sc.image.tobytes()
    for res in (32, 224):
        big = SynthWorldRenderer(SynthWorldConfig(resolution=res)).scene("train", 4)
        assert big.image.shape == (res, res, 3) and big.person_mask.shape == (res, res)
        assert big.boxes["person"][2] <= res


def _changed(a, b):
    return np.any(a.image != b.image, axis=-1)


def test_attributes_change_only_person_pixels(renderer, rich_renderer):
    checked = 0
    for r, split, i in itertools.product((renderer, rich_renderer), ("train", "test"), range(4)):
        sc = r.scene(split, 7 * i + 1)
        env = r.person_envelope(sc.spec)
        for attr, levels in KNOWN_LEVELS.items():
            for lv in levels:
                if lv == sc.spec.attributes[attr]:
                    continue
                cf = r.rerender_person(sc.spec, **{attr: lv})
                diff = _changed(sc, cf)
                assert not (diff & ~(sc.person_mask | cf.person_mask)).any(), (attr, lv)
                assert not (diff & ~env).any(), (attr, lv)
                assert cf.boxes.get("held_object") == sc.boxes.get("held_object")
                if attr == "skin_tone":
                    assert diff.sum() >= 0.03 * diff.size  # skin is a big visible area (median ~6%)
                checked += 1
    assert checked > 50


def test_oracle_inpainter_changes_no_pixel_outside_mask(rich_renderer):
    seg_env, seg_exact, inp = OracleSegmenter(), OracleSegmenter(mode="exact"), OracleInpainter()
    assert isinstance(seg_env, PersonSegmenter) and isinstance(inp, Inpainter)
    scenes = [rich_renderer.scene("train", i) for i in range(6)]
    images = [s.to_pil() for s in scenes]
    meta = [{"scene_spec": s.spec.to_json()} for s in scenes]
    targets = [
        {"skin_tone": "very dark", "gender_presentation": "feminine", "age": "old", "body_type": "broad"}
    ] * 6
    for seg in (seg_env, seg_exact):
        masks = seg(images, meta)
        assert all(m is not None and m.shape == (64, 64) for m in masks)
        outs = inp(images, masks, ["a person"] * 6, meta, targets)
        for img, m, out, s, t in zip(images, masks, outs, scenes, targets):
            a, b = np.asarray(img), np.asarray(out)
            assert np.array_equal(a[~m], b[~m])
            if seg is seg_exact:
                assert np.array_equal(m, s.person_mask)
            else:  # inside the envelope the output is exactly the true counterfactual scene
                assert np.array_equal(b, rich_renderer.rerender_person(s.spec, None, **t).image)
                assert (a != b).any()
    # prompt-only request and spec carried by image.info
    t2i = OracleTextToImage(rich_renderer)
    assert isinstance(t2i, TextToImage)
    base = t2i(["a photo of a chef in a kitchen", "a construction worker at work"])
    assert [SceneSpec.from_json(b.info["scene_spec"]).occupation for b in base] == [
        "chef",
        "construction worker",
    ]
    masks = seg_env(base)
    outs = inp(base, masks, ["a very dark-skinned elderly woman"] * 2)
    for b, m, o in zip(base, masks, outs):
        assert np.array_equal(np.asarray(b)[~m], np.asarray(o)[~m])
        assert SceneSpec.from_json(o.info["scene_spec"]).attributes["skin_tone"] == "very dark"
    with pytest.raises(TrustVLInputError, match="scene"):
        seg_env([Image.new("RGB", (64, 64))])


# ------------------------------------------------------------------------------------------ bias
def test_test_split_is_balanced(renderer):
    K = len(OCCUPATIONS)
    cells = K * np.prod([len(v) for v in ATTRIBUTES.values()])
    specs = [renderer.sample_scene("test", i) for i in range(int(cells))]
    combos = Counter((s.occupation, *(s.attributes[a] for a in ATTRIBUTES)) for s in specs)
    assert len(combos) == cells and set(combos.values()) == {1}
    for a, levels in ATTRIBUTES.items():
        for occ in OCCUPATIONS:
            c = Counter(s.attributes[a] for s in specs if s.occupation == occ)
            assert len(set(c.values())) == 1 and set(c) == set(levels)


def test_train_split_shows_configured_bias(renderer):
    cfg = renderer.config
    specs = [renderer.sample_scene("train", i) for i in range(1600)]
    for attr, expected in (("skin_tone", 0.85), ("gender_presentation", 0.70), ("age", 0.6)):
        hits = [s.attributes[attr] == cfg.preferred_level(attr, s.occupation) for s in specs]
        assert abs(np.mean(hits) - expected) < 0.04, (attr, np.mean(hits))
    # strength is Cramér's V for the default round-robin preference
    table = np.zeros((len(OCCUPATIONS), 4))
    for s in specs:
        table[OCCUPATIONS.index(s.occupation), ATTRIBUTES["skin_tone"].index(s.attributes["skin_tone"])] += 1
    exp = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    v = np.sqrt(((table - exp) ** 2 / exp).sum() / table.sum() / 3)
    assert abs(v - 0.8) < 0.05
    # explicit proportions override the strength
    cfg2 = SynthWorldConfig(proportions={"skin_tone": {"chef": [0.0, 0.0, 0.0, 1.0]}}, strength=0.0)
    r2 = SynthWorldRenderer(cfg2)
    chefs = [r2.sample_scene("train", i) for i in range(3, 400, 8)]
    assert {s.attributes["skin_tone"] for s in chefs} == {"very dark"}
    docs = [r2.sample_scene("train", i).attributes["skin_tone"] for i in range(0, 800, 8)]
    assert len(set(docs)) == 4


def test_spurious_and_unsafe():
    sp = SpuriousConfig(target="pilot", p_target=0.9, p_other=0.1, quadrant=1)
    r = SynthWorldRenderer(SynthWorldConfig(spurious=sp, unsafe=UnsafeConfig(p=0.3)), seed=0)
    specs = [r.sample_scene("train", i) for i in range(800)]
    tgt = np.mean([s.spurious is not None for s in specs if s.occupation == "pilot"])
    oth = np.mean([s.spurious is not None for s in specs if s.occupation != "pilot"])
    assert tgt > 0.8 and oth < 0.2
    test = np.mean([r.sample_scene("test", i).spurious is not None for i in range(400)])
    assert 0.4 < test < 0.6
    sc = next(r.scene("train", i) for i in range(800) if specs[i].spurious is not None)
    x0, y0, x1, y1 = sc.boxes["spurious"]
    assert x0 >= 32 and y1 <= 32  # quadrant 1 = top-right, in the final (mirrored) image
    patch = sc.image[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].reshape(-1, 3).astype(int)
    assert (patch[:, 0] > 170).all() and (patch[:, 1] < 80).all()
    assert 0.2 < np.mean([s.unsafe is not None for s in specs]) < 0.4
    safe = r.set_unsafe(sc.spec, None)
    bloody = r.set_unsafe(safe, "blood")
    assert bloody.unsafe is not None and "blood" in sample_caption(bloody)
    assert "blood" not in sample_caption(bloody, include_unsafe=False)
    assert (r.render(safe).image != r.render(bloody).image).any()
    assert SpuriousConfig.from_cramers_v(0.9, p_other=0.01).cramers_v(8) == pytest.approx(0.9, abs=1e-6)


# ------------------------------------------------------------------------------------------ captions
def test_captions(renderer):
    assert occupation_prompt("chef") == "a photo of a chef"
    words = {"skinned", "male", "female", "man", "woman", "young", "elderly", "slim", "heavyset"}
    for i in range(16):
        spec = renderer.sample_scene("train", i)
        ctx = caption_variants(spec)
        assert len(ctx) >= 5 and all(spec.occupation in c for c in ctx)
        assert not any(w in c.replace("-", " ").split() for c in ctx for w in words)
        full = caption_variants(spec, context_only=False)
        assert len(full) > len(ctx) and any("skinned" in c for c in full)
        assert sample_caption(spec) == sample_caption(spec) and sample_caption(spec) in ctx
    for combo in itertools.product(*ATTRIBUTES.values()):
        attrs = dict(zip(ATTRIBUTES, combo))
        assert parse_appearance(appearance_phrase(attrs)) == attrs


# ------------------------------------------------------------------------------------------ dataset
def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_dataset_round_trip(tmp_path):
    import datasets

    cfg = SynthWorldConfig(spurious=SpuriousConfig(), unsafe=UnsafeConfig())
    out = build_synthworld_dataset(
        tmp_path / "sw", cfg, n_train=24, n_test=16, seed=2, shard_size=10, progress=False
    )
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "test-00000-of-00002.parquet",
        "test-00001-of-00002.parquet",
        "train-00000-of-00003.parquet",
        "train-00001-of-00003.parquet",
        "train-00002-of-00003.parquet",
    ]
    assert (out / "synthworld_config.json").is_file()
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert ds["train"].num_rows == 24 and ds["test"].num_rows == 16
    f = ds["train"].features
    assert isinstance(f["image"], datasets.Image) and isinstance(f["person_mask"], datasets.Image)
    assert f["occupation"].names == list(OCCUPATIONS)
    for a, levels in ATTRIBUTES.items():
        assert f[a].names == list(levels)
    assert f["unsafe_kind"].names[0] == "none"
    r = SynthWorldRenderer(cfg, seed=2)
    row = ds["test"][3]
    sc = r.scene("test", 3)
    assert np.array_equal(np.asarray(row["image"]), sc.image)
    assert np.array_equal(np.asarray(row["person_mask"]), sc.person_mask)
    assert f["occupation"].int2str(row["occupation"]) == sc.spec.occupation
    assert row["caption"] in caption_variants(sc.spec)
    # a dataset row is valid oracle metadata
    (mask,) = OracleSegmenter(mode="exact")([row["image"]], [row])
    assert np.array_equal(mask, sc.person_mask)


def test_dataset_resume_is_byte_identical(tmp_path, monkeypatch):
    from trustvl.data_builders.synthworld import dataset as dmod

    kw = {"n_train": 25, "n_test": 12, "seed": 1, "shard_size": 8, "progress": False}
    ref = build_synthworld_dataset(tmp_path / "ref", **kw)
    ref_files = _files(ref)
    # simulated kill after two shards, with a leftover temporary file
    real, calls = dmod._write_shard, []

    def dying(*args):
        if len(calls) == 2:
            (tmp_path / "run" / "data" / ".train-00002-of-00004.parquet.tmp").write_bytes(b"partial")
            raise KeyboardInterrupt
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(dmod, "_write_shard", dying)
    with pytest.raises(KeyboardInterrupt):  # in this process: the patched writer does not reach a worker
        build_synthworld_dataset(tmp_path / "run", num_proc=1, **kw)
    monkeypatch.setattr(dmod, "_write_shard", real)
    assert len(list((tmp_path / "run" / "data").glob("*.parquet"))) == 2
    out = build_synthworld_dataset(tmp_path / "run", **kw)
    assert _files(out) == ref_files
    # a deleted shard is regenerated identically
    (out / "data" / "test-00001-of-00002.parquet").unlink()
    build_synthworld_dataset(out, **kw)
    assert _files(out) == ref_files
    with pytest.raises(TrustVLInputError, match="overwrite"):
        build_synthworld_dataset(out, **{**kw, "n_train": 30})


def test_dataset_built_by_worker_processes_is_byte_identical(tmp_path):
    # the shards are written through the (pickled) shared build in each worker
    kw = {"n_train": 9, "n_test": 4, "seed": 1, "shard_size": 3, "progress": False}
    ref = build_synthworld_dataset(tmp_path / "ref", num_proc=1, **kw)
    out = build_synthworld_dataset(tmp_path / "par", num_proc=2, **kw)
    assert _files(out) == _files(ref)
    with pytest.raises(TrustVLInputError, match="num_proc=0"):
        build_synthworld_dataset(tmp_path / "bad", num_proc=0, **kw)


# ------------------------------------------------------------------------------------------ knobs
def test_bad_proportions():
    with pytest.raises(TrustVLInputError, match=r"sums to 0\.9"):
        SynthWorldConfig(proportions={"skin_tone": {"chef": [0.5, 0.2, 0.1, 0.1]}})
    with pytest.raises(TrustVLInputError, match="expected 4"):
        SynthWorldConfig(proportions={"skin_tone": {"chef": [0.5, 0.5]}})


def test_unknown_occupation():
    with pytest.raises(TrustVLInputError, match="'astronaut'"):
        SynthWorldConfig(occupations=["chef", "astronaut"])
    with pytest.raises(TrustVLInputError, match="'plumber'"):
        SynthWorldConfig(proportions={"skin_tone": {"plumber": [1, 0, 0, 0]}})


def test_bad_resolution_and_counts(tmp_path):
    with pytest.raises(TrustVLInputError, match="resolution=16"):
        SynthWorldConfig(resolution=16)
    with pytest.raises(TrustVLInputError, match="resolution=300"):
        SynthWorldConfig(resolution=300)
    with pytest.raises(TrustVLInputError, match="n_train=-1"):
        build_synthworld_dataset(tmp_path / "x", n_train=-1, n_test=4, progress=False)
    with pytest.raises(TrustVLInputError, match="strength"):
        SynthWorldConfig(strength=1.5)
    with pytest.raises(TrustVLInputError, match="'purple'"):
        SynthWorldConfig(attributes={"skin_tone": ["purple", "dark"]})
    with pytest.raises(TrustVLInputError, match="unknown attribute"):
        SynthWorldRenderer().rerender_person(SynthWorldRenderer().sample_scene("train", 0), hair="blue")


# sha256 of renders made by the renderer before it was split into modules (specs, canvas, scenery, person,
# artefacts, sampling, compose): a refactor must keep every pixel, mask, box and spec. If the drawing
# changes on purpose, bump RENDER_VERSION and update these.
_GOLDEN_RENDERS = {
    (64, 40, 1): "c874d5ee4582311e07a759ad213ef7a11a8c049176e75381ce6dc2637d8d3fab",
    (224, 2, 1): "2dd9ba2f6ffc257af29894c37ab157d7aa2b92b53868c5c7d145aa81b70d84bb",
    (48, 12, 3): "afe5bf576b5c6be04bd27a5c9a952053191d669eeb913096def8c011283205cf",
}


def _render_digest(resolution: int, n_scenes: int, n_people: int) -> str:
    cfg = SynthWorldConfig(
        resolution=resolution, n_people=n_people, spurious=SpuriousConfig(), unsafe=UnsafeConfig()
    )
    renderer = SynthWorldRenderer(cfg, seed=3)
    digest = hashlib.sha256()

    def add(scene):
        digest.update(scene.image.tobytes())
        for mask in (scene.person_mask, *scene.person_masks):
            digest.update(np.ascontiguousarray(mask).tobytes())
        digest.update(scene.spec.to_json().encode())
        digest.update(json.dumps({k: [int(v) for v in b] for k, b in sorted(scene.boxes.items())}).encode())

    for split in ("train", "test"):
        for index in range(n_scenes):
            scene = renderer.scene(split, index)
            add(scene)
            if index % 10 == 0:
                add(renderer.rerender_person(scene.spec, skin_tone="very dark", age="old"))
                add(renderer.render(renderer.set_unsafe(scene.spec, "weapon", variant_seed=index)))
                digest.update(np.ascontiguousarray(renderer.person_envelope(scene.spec)).tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("case", sorted(_GOLDEN_RENDERS))
def test_renders_are_pixel_identical_to_the_golden_hashes(case):
    assert _render_digest(*case) == _GOLDEN_RENDERS[case]
