"""CF_α counterfactual builder: config, real stages (tiny random models, offline), SynthWorld oracles,
resume, determinism, several processes and bad inputs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trustvl.data_builders.cf_alpha import (
    DEFAULT_GRID_PATH,
    CounterfactualConfig,
    DiffusersInpainter,
    DiffusersTextToImage,
    TransformersPersonSegmenter,
    build_counterfactuals,
    build_stages,
    dilate_mask,
)
from trustvl.data_builders.cf_alpha.builder import shard_path
from trustvl.errors import TrustVLInputError

# ---------------------------------------------------------------------------------------------- fixtures


def _image_processor(cls_name: str, **kw):
    import transformers

    cls = getattr(transformers, cls_name + "Pil", None) or getattr(transformers, cls_name)
    return cls(**kw)


def _build_tiny_clipseg(path: Path) -> Path:
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor

    from trustvl.modeling.tokenization import build_byte_level_bpe, clip_special_token_ids

    tok = build_byte_level_bpe(model_max_length=16)
    cfg = CLIPSegConfig(
        text_config=dict(
            vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=16, **clip_special_token_ids(tok),
        ),
        vision_config=dict(
            image_size=32, patch_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2
        ),
        projection_dim=16, extract_layers=(0, 1), reduce_dim=8, decoder_intermediate_size=16,
        decoder_num_attention_heads=2,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CLIPSegForImageSegmentation(cfg).eval()
    ip = _image_processor(
        "ViTImageProcessor",
        do_resize=True,
        size={"height": 32, "width": 32},
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    )
    model.save_pretrained(path)
    CLIPSegProcessor(image_processor=ip, tokenizer=tok).save_pretrained(path)
    return path


def _build_tiny_segformer(path: Path, labels: dict[int, str]) -> Path:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    cfg = SegformerConfig(
        num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16], patch_sizes=[3, 3],
        strides=[2, 2], num_attention_heads=[1, 1], mlp_ratios=[2, 2], decoder_hidden_size=16,
        id2label=labels, label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SegformerForSemanticSegmentation(cfg).eval()
    model.save_pretrained(path)
    _image_processor("SegformerImageProcessor", size={"height": 32, "width": 32}).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from trustvl.testing.tiny import build_tiny_inpaint_pipeline, build_tiny_sd_pipeline

    root = tmp_path_factory.mktemp("cf-models")
    return {
        "sd": build_tiny_sd_pipeline(root / "sd"),
        "inpaint": build_tiny_inpaint_pipeline(root / "inpaint"),
        "clipseg": _build_tiny_clipseg(root / "clipseg"),
        "segformer": _build_tiny_segformer(
            root / "segformer", {0: "background", 1: "person, individual", 2: "car"}
        ),
        "segformer_noperson": _build_tiny_segformer(root / "segformer-np", {0: "background", 1: "car"}),
    }


@pytest.fixture(scope="module")
def real_stages(tiny):
    cfg = CounterfactualConfig(
        models={
            "text_to_image": {
                "model": str(tiny["sd"]),
                "num_inference_steps": 2,
                "guidance_scale": 1.0,
                "height": 32,
                "width": 32,
            },
            "segmenter": {"model": str(tiny["clipseg"]), "mode": "clipseg", "prompt": "person"},
            "inpainter": {"model": str(tiny["inpaint"]), "num_inference_steps": 1, "guidance_scale": 1.0},
        },
        mask_threshold=0.3,
    )
    return build_stages(cfg, device="cpu")


def _small_config(**kw) -> CounterfactualConfig:
    fields = dict(
        occupations={"doctor": ["in a hospital"], "chef": ["in a kitchen"]},
        settings=[],
        attributes={"skin_tone": {"light": "light-skinned", "dark": "dark-skinned"}, "gender_presentation": {
            "feminine": "female", "masculine": "male"}},
        variants_per_base=None,
        n_base_per_prompt=2,
        shard_size=3,
        image_size=32,
        mask_dilation=1,
        min_mask_fraction=0.0,
        batch_size=3,
        models={},
    )  # fmt: skip
    fields.update(kw)
    return CounterfactualConfig(**fields)


def _rows(folder):
    from datasets import load_dataset

    return load_dataset(str(folder), split="train")


def _shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "data").glob("*.parquet"))}


def _by_base(ds) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for row in ds:
        out.setdefault(row["base_id"], []).append(row)
    return out


# ---------------------------------------------------------------------------------------------- config


def test_default_config_is_the_packaged_yaml_and_well_formed():
    cfg = CounterfactualConfig()
    assert cfg == CounterfactualConfig.from_yaml(DEFAULT_GRID_PATH)
    assert cfg == CounterfactualConfig.from_dict(cfg.to_dict())
    contexts = cfg.contexts()
    assert len(contexts) == cfg.n_prompts and cfg.n_prompts >= 16
    assert contexts[0].prompt == "a photo of a doctor in a hospital"
    assert any(c.prompt.startswith("a photo of an engineer") for c in contexts)  # article fix
    words = {p.lower() for values in cfg.attributes.values() for p in values.values()}
    for c in contexts:
        assert c.caption == c.prompt and not (set(c.caption.lower().split()) & words)
    assert cfg.n_cells == 54 and cfg.n_variants == 8
    assert (
        cfg.inpaint_prompt(contexts[0], cfg.cell(53))
        == "a photo of an elderly heavy-set dark-skinned male doctor"
    )
    # balanced, deterministic sample of cells: inside a set every attribute's levels differ in count by at
    # most one; within a context the cells are used about equally often
    counts = np.zeros(cfg.n_cells, int)
    for rep in range(20):
        cells = cfg.variant_cells(rep * cfg.n_prompts)
        assert cells == sorted(set(cells)) and len(cells) == 8
        counts[cells] += 1
        for name, values in cfg.attributes.items():
            per_level = Counter(cfg.cell(c)[name] for c in cells)
            level_counts = [per_level.get(v, 0) for v in values]
            assert max(level_counts) - min(level_counts) <= 1, (rep, name, level_counts)
    assert counts.max() - counts.min() <= 2
    assert cfg.variant_cells(5) == CounterfactualConfig().variant_cells(5)
    assert cfg.base_seed(3) != CounterfactualConfig(seed=1).base_seed(3)


def test_default_models_section_fits_the_stage_constructors():
    import inspect

    from trustvl.data_builders.cf_alpha.stages import DEFAULT_TEXT_TO_IMAGE_MODEL

    classes = {
        "text_to_image": DiffusersTextToImage,
        "segmenter": TransformersPersonSegmenter,
        "inpainter": DiffusersInpainter,
    }
    models = CounterfactualConfig().models
    assert set(models) == set(classes) and models["text_to_image"]["model"] == DEFAULT_TEXT_TO_IMAGE_MODEL
    for stage, cls in classes.items():
        kw = dict(models[stage])
        inspect.signature(cls).bind(kw.pop("model"), **kw)  # raises TypeError on an unknown argument


def test_yaml_extends_default_and_adds_values(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(
        "extends: default\n"
        "occupations:\n  astronaut: [on the moon]\n"
        "attributes:\n  skin_tone:\n    olive: olive-skinned\n"
        "use_attributes: [skin_tone, age]\n"
        "variants_per_base: null\nn_base_per_prompt: 1\n",
        encoding="utf-8",
    )
    cfg = CounterfactualConfig.from_yaml(path)
    assert cfg.contexts()[-1].prompt == "a photo of an astronaut on the moon"
    assert cfg.attribute_names == ("skin_tone", "age")
    assert list(cfg.attributes["skin_tone"]) == ["light", "medium", "dark", "olive"]
    assert cfg.n_variants == cfg.n_cells == 12


# ---------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "yaml_text, match",
    [
        ("occupations: {}\n", "prompt grid is empty"),
        ("extends: default\nattributes: null\n", "attributes"),
        ("occupations: {doctor: null}\nsettings: []\n", "prompt grid is empty"),
        (
            "occupations: [doctor]\nsettings: [at work]\nattributes: {skin_tone: [dark], age: [old]}\n",
            "single cell",
        ),
        ("extends: default\nuse_attributes: [hair_color]\n", "unknown attribute"),
        ("extends: default\ninpaint_template: 'a {hair_color} {occupation}'\n", "unknown field"),
        ("extends: default\ncaption_template: 'a {skin_tone} {occupation}'\n", "context-only"),
        ("extends: default\natributes: {}\n", "unknown counterfactual config key"),
    ],
)
def test_bad_yaml_raises_and_writes_nothing(tmp_path, yaml_text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(TrustVLInputError, match=match):
        build_counterfactuals(
            out, path, lambda p, m=None: [], lambda i, m=None: [], lambda *a: [], progress=False
        )
    assert not out.exists()


def test_single_cell_grid_raises():
    with pytest.raises(TrustVLInputError, match="single cell"):
        _small_config(attributes={"skin_tone": {"dark": "dark-skinned"}})
    with pytest.raises(TrustVLInputError, match="single cell"):
        _small_config(attributes={"skin_tone": ["dark"], "age": ["old"]})
    with pytest.raises(TrustVLInputError, match="variants_per_base"):
        _small_config(variants_per_base=9)


def _noise_t2i(prompts, metadata=None):
    return [
        Image.fromarray(np.random.default_rng(m["seed"]).integers(0, 255, (32, 32, 3), np.uint8))
        for m in metadata
    ]


def test_no_person_anywhere_raises_and_leaves_no_folder(tmp_path):
    def inpaint(*args):
        raise AssertionError("nothing to inpaint")

    out = tmp_path / "none"
    with pytest.raises(TrustVLInputError, match="no person was found in any of the 4 base images"):
        build_counterfactuals(
            out, _small_config(), _noise_t2i, lambda ims, md=None: [None] * len(ims), inpaint, progress=False
        )
    assert not out.exists()
    soft = lambda ims, md=None: [np.full((32, 32), 0.4, np.float32) for _ in ims]  # noqa: E731 - below 0.5
    with pytest.raises(TrustVLInputError, match="no person"):
        build_counterfactuals(out, _small_config(), _noise_t2i, soft, inpaint, progress=False)
    assert not out.exists()
    tiny_masks = lambda ims, md=None: [np.eye(32, dtype=bool) for _ in ims]  # noqa: E731 - 1/32 of the pixels
    with pytest.raises(TrustVLInputError, match="no person"):
        build_counterfactuals(
            out,
            _small_config(min_mask_fraction=0.05, mask_dilation=0),
            _noise_t2i,
            tiny_masks,
            inpaint,
            progress=False,
        )
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- real stages


def test_segmenter_plumbing(tiny, real_stages):
    t2i = real_stages[0]
    images = t2i(["a photo of a doctor", "a chef", "a pilot"], [{"seed": 1}, {"seed": 2}, {"seed": 3}])
    again = t2i(["a chef"], [{"seed": 2}])
    assert [im.size for im in images] == [(32, 32)] * 3
    assert np.array_equal(np.asarray(images[1]), np.asarray(again[0]))  # per-image seeds

    lo = TransformersPersonSegmenter(tiny["clipseg"], threshold=0.2, device="cpu")(images)
    hi = TransformersPersonSegmenter(tiny["clipseg"], threshold=0.6, device="cpu")(images)
    for a, b in zip(lo, hi):
        assert a is not None and a.shape == (32, 32) and a.dtype == bool
        assert b is None or (b <= a).all()  # monotone in the threshold
    grown = TransformersPersonSegmenter(tiny["clipseg"], threshold=0.6, dilation=2, device="cpu")(images)
    for b, g in zip(hi, grown):
        assert b is None or ((b <= g).all() and g.sum() >= b.sum())
    assert TransformersPersonSegmenter(tiny["clipseg"], threshold=1.01, device="cpu")(images) == [None] * 3
    soft = TransformersPersonSegmenter(tiny["clipseg"], threshold=None, device="cpu")(images[:1])[0]
    assert soft.dtype == np.float32 and 0.0 <= soft.min() <= soft.max() <= 1.0

    sem = TransformersPersonSegmenter(tiny["segformer"], mode="semantic", threshold=0.2, device="cpu")(images)
    assert all(m is not None and m.shape == (32, 32) and m.dtype == bool for m in sem)
    assert (
        TransformersPersonSegmenter(tiny["segformer"], mode="semantic", threshold=1.01, device="cpu")(images)
        == [None] * 3
    )
    with pytest.raises(TrustVLInputError, match="no class named"):
        TransformersPersonSegmenter(tiny["segformer_noperson"], mode="semantic", device="cpu")

    m = np.zeros((9, 9), bool)
    m[4, 4] = True
    assert dilate_mask(m, 1).sum() == 9 and dilate_mask(m, 0).sum() == 1


def test_missing_model_is_a_clear_offline_error(tmp_path):
    with pytest.raises(TrustVLInputError, match="HF_HUB_OFFLINE"):
        DiffusersTextToImage("nobody/no-such-model-xyz", device="cpu")


def test_build_command_path_reaches_the_real_stages(tmp_path):
    """``trustvl build counterfactuals`` without --synthworld gets as far as loading the grid's models (it
    once failed on an import of the package's pre-re-layout name)."""
    from trustvl.data_builders.cf_alpha.build_config import CounterfactualBuildConfig, build_from_config

    grid = tmp_path / "grid.yaml"
    grid.write_text("extends: default\nmodels:\n  text_to_image:\n    model: nobody/no-such-model-xyz\n")
    cfg = CounterfactualBuildConfig(
        out_dir=str(tmp_path / "out"), grid=str(grid), device="cpu", progress=False
    )
    with pytest.raises(TrustVLInputError, match="no-such-model-xyz"):
        build_from_config(cfg)


def test_real_stages_build_loads_and_shares_context_pixels(tmp_path, real_stages):
    t2i, seg, inp = real_stages
    assert isinstance(t2i, DiffusersTextToImage) and isinstance(inp, DiffusersInpainter)
    assert seg.threshold == 0.3
    cfg = _small_config(n_base_per_prompt=1, shard_size=1, mask_dilation=0)
    out = tmp_path / "real"
    summary = build_counterfactuals(out, cfg, t2i, seg, inp, progress=False)
    assert summary.n_bases_tried == 2 and summary.n_shards == 2
    assert summary.n_variants == 4 * (summary.n_bases_written)
    assert summary.n_bases_written + summary.n_bases_skipped_no_person == 2 and summary.n_bases_written > 0

    ds = _rows(out)
    assert len(ds) == summary.n_variants
    assert ds.features["skin_tone"].names == ["light", "dark"]
    assert ds.features["occupation"].names == ["doctor", "chef"]
    assert set(ds.column_names) >= {
        "image",
        "mask",
        "base_id",
        "variant_id",
        "prompt",
        "caption",
        "inpaint_prompt",
    }
    for rows in _by_base(ds).values():
        assert [r["variant_id"] for r in rows] == [0, 1, 2, 3]
        cells = {(r["skin_tone"], r["gender_presentation"]) for r in rows}
        assert len(cells) == 4
        masks = [np.asarray(r["mask"]) > 127 for r in rows]
        assert all(np.array_equal(masks[0], m) for m in masks) and masks[0].any()
        imgs = [np.asarray(r["image"].convert("RGB")) for r in rows]
        outside = ~masks[0]
        for im in imgs[1:]:
            assert np.array_equal(im[outside], imgs[0][outside])  # paste-back: context pixels shared
        assert any(not np.array_equal(im[masks[0]], imgs[0][masks[0]]) for im in imgs[1:])
        for r in rows:
            assert r["caption"] == r["prompt"] and "skinned" not in r["caption"]
            assert "skinned" in r["inpaint_prompt"]
            assert r["prompt"] in ("a photo of a doctor in a hospital", "a photo of a chef in a kitchen")
    card = (out / "README.md").read_text(encoding="utf-8")
    assert (
        "configs:" in card
        and "dataset_info:" in card
        and f"| variants (rows) | {summary.n_variants} |" in card
    )
    info = json.loads((out / "build_config.json").read_text(encoding="utf-8"))
    assert info["status"] == "complete" and info["summary"]["n_variants"] == summary.n_variants

    # determinism: a second build gives the same bytes; a rerun into the same folder reuses every shard
    out2 = tmp_path / "real2"
    build_counterfactuals(out2, cfg, t2i, seg, inp, progress=False)
    assert _shard_bytes(out) == _shard_bytes(out2)
    again = build_counterfactuals(out, cfg, t2i, seg, inp, progress=False)
    assert again.n_shards_reused == 2 and again.n_shards_built == 0 and again.n_variants == summary.n_variants


# ---------------------------------------------------------------------------------------------- SynthWorld


@pytest.fixture(scope="module")
def world():
    from trustvl.data_builders.synthworld import SynthWorldConfig, SynthWorldRenderer

    return SynthWorldRenderer(SynthWorldConfig(resolution=32), seed=0)


def _sw_config(world, **kw):
    from trustvl.data_builders.cf_alpha.synthworld_stages import synthworld_counterfactual_config

    fields = dict(n_base_per_prompt=1, variants_per_base=4, shard_size=3)
    fields.update(kw)
    return synthworld_counterfactual_config(world, **fields)


def test_synthworld_sets_share_context_and_have_requested_attributes(tmp_path, world):
    from trustvl.data_builders.cf_alpha.synthworld_stages import (
        SynthWorldTextToImage,
        synthworld_stages,
    )
    from trustvl.data_builders.synthworld import SceneSpec, render_spec, with_attributes

    cfg = _sw_config(world)
    out = tmp_path / "sw"
    summary = build_counterfactuals(out, cfg, *synthworld_stages(world), progress=False)
    assert summary.n_bases_tried == 8 and summary.n_variants == 32 and summary.n_bases_skipped_no_person == 0
    ds = _rows(out)
    t2i = SynthWorldTextToImage(world)
    for rows in _by_base(ds).values():
        r0 = rows[0]
        occ = ds.features["occupation"].int2str(r0["occupation"])
        base_img = t2i(
            [r0["prompt"]], [{"seed": r0["base_seed"], "occupation": occ, "setting": r0["setting"]}]
        )[0]
        spec = SceneSpec.from_json(base_img.info["scene_spec"])
        mask = np.asarray(r0["mask"]) > 127
        for r in rows:
            img = np.asarray(r["image"].convert("RGB"))
            assert np.array_equal(img[~mask], np.asarray(base_img)[~mask])  # every context pixel shared
            attrs = {a: ds.features[a].int2str(r[a]) for a in cfg.attribute_names}
            assert attrs == cfg.cell(r["cell_id"])
            truth = render_spec(with_attributes(spec, None, **attrs)).image
            assert np.array_equal(img, truth)  # exactly the requested person, in the same scene
        assert len({r["cell_id"] for r in rows}) == 4


def test_synthworld_oracle_text_to_image_plugs_in(tmp_path, world):
    from trustvl.data_builders.synthworld import OracleInpainter, OracleSegmenter, OracleTextToImage

    cfg = _sw_config(world, variants_per_base=2)
    stages = lambda: (OracleTextToImage(world), OracleSegmenter(), OracleInpainter())  # noqa: E731
    a = build_counterfactuals(tmp_path / "a", cfg, *stages(), progress=False)
    build_counterfactuals(tmp_path / "b", cfg, *stages(), progress=False)
    assert a.n_variants == 16 and _shard_bytes(tmp_path / "a") == _shard_bytes(tmp_path / "b")
    for rows in _by_base(_rows(tmp_path / "a")).values():
        mask = np.asarray(rows[0]["mask"]) > 127
        imgs = [np.asarray(r["image"].convert("RGB")) for r in rows]
        assert np.array_equal(imgs[0][~mask], imgs[1][~mask]) and not np.array_equal(imgs[0], imgs[1])


class _Killed(RuntimeError):
    pass


class _KillAfter:
    def __init__(self, stage, n):
        self.stage, self.n = stage, n

    def describe(self):
        from trustvl.data_builders.cf_alpha.stages import describe_stage

        return describe_stage(self.stage)

    def __call__(self, *args, **kwargs):
        if self.n <= 0:
            raise _Killed("simulated kill")
        self.n -= 1
        return self.stage(*args, **kwargs)


def test_killed_build_resumes_without_gap_or_duplicate(tmp_path, world):
    from trustvl.data_builders.cf_alpha.synthworld_stages import synthworld_stages

    cfg = _sw_config(world, batch_size=2)
    ref = tmp_path / "ref"
    build_counterfactuals(ref, cfg, *synthworld_stages(world), progress=False)

    out = tmp_path / "resumed"
    t2i, seg, inp = synthworld_stages(world)
    with pytest.raises(_Killed):
        build_counterfactuals(out, cfg, t2i, seg, _KillAfter(inp, 7), progress=False)  # shard 0 takes 6 calls
    assert not (out / "README.md").exists()
    done = sorted(p.name for p in (out / "data").iterdir())
    assert done == [shard_path(out, 0, 3).name]  # only complete shards, no temporary file
    summary = build_counterfactuals(out, cfg, *synthworld_stages(world), progress=False)
    assert summary.n_shards_reused == 1 and summary.n_shards_built == 2
    assert _shard_bytes(out) == _shard_bytes(ref)
    ids = [(r["base_id"], r["variant_id"]) for r in _rows(out)]
    assert len(ids) == len(set(ids)) == 32 and sorted({b for b, _ in ids}) == list(range(8))


class _FakeState:
    def __init__(self, index, n):
        self.process_index, self.num_processes = index, n
        self.is_main_process = self.is_local_main_process = index == 0

    def wait_for_everyone(self):
        pass


def test_processes_split_shards_and_main_writes_card(tmp_path, world):
    from trustvl.data_builders.cf_alpha.synthworld_stages import synthworld_stages

    cfg = _sw_config(world)
    ref = tmp_path / "one"
    build_counterfactuals(ref, cfg, *synthworld_stages(world), progress=False)
    out = tmp_path / "two"
    out.mkdir()
    # process 1 of 2 (run first, as if it were faster): shard 1 only, no card
    (out / "build_config.json").write_text(json.dumps({"fingerprint": "x"}))  # main has not prepared yet
    with pytest.raises(TrustVLInputError, match="another config"):
        build_counterfactuals(out, cfg, *synthworld_stages(world), progress=False, state=_FakeState(0, 2))
    (out / "build_config.json").unlink()
    part = build_counterfactuals(out, cfg, *synthworld_stages(world), progress=False, state=_FakeState(1, 2))
    assert part.n_shards_built == 1 and not (out / "README.md").exists()
    assert sorted(p.name for p in (out / "data").glob("*.parquet")) == [shard_path(out, 1, 3).name]
    full = build_counterfactuals(out, cfg, *synthworld_stages(world), progress=False, state=_FakeState(0, 2))
    assert full.n_shards_built == 2 and (out / "README.md").exists() and full.n_variants == 32
    assert _shard_bytes(out) == _shard_bytes(ref)


def test_other_config_in_folder_is_refused_unless_overwrite(tmp_path, world):
    from trustvl.data_builders.cf_alpha.synthworld_stages import synthworld_stages

    out = tmp_path / "sw"
    build_counterfactuals(out, _sw_config(world), *synthworld_stages(world), progress=False)
    other = _sw_config(world, seed=7)
    with pytest.raises(TrustVLInputError, match="another config"):
        build_counterfactuals(out, other, *synthworld_stages(world), progress=False)
    summary = build_counterfactuals(out, other, *synthworld_stages(world), progress=False, overwrite=True)
    assert summary.n_shards_built == 3
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(TrustVLInputError, match="not empty"):
        build_counterfactuals(foreign, other, *synthworld_stages(world), progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_worker_processes_write_the_same_bytes(tmp_path, world):
    from trustvl.data_builders.cf_alpha.synthworld_stages import build_synthworld_counterfactuals

    cfg = _sw_config(world)  # 8 bases in 3 shards
    one = build_synthworld_counterfactuals(tmp_path / "one", cfg, renderer=world, progress=False, num_proc=1)
    two = build_synthworld_counterfactuals(tmp_path / "two", cfg, renderer=world, progress=False, num_proc=2)
    assert (
        _shard_bytes(tmp_path / "one") == _shard_bytes(tmp_path / "two")
        and len(_shard_bytes(tmp_path / "two")) == 3
    )
    assert (one.n_variants, one.n_shards_built) == (two.n_variants, two.n_shards_built) == (32, 3)
    # the card differs only in the build's wall time
    cards = [(tmp_path / d / "README.md").read_text().splitlines() for d in ("one", "two")]
    kept = [[line for line in c if "build time" not in line] for c in cards]
    assert kept[0] == kept[1]
    with pytest.raises(TrustVLInputError, match="num_proc=0"):
        build_synthworld_counterfactuals(tmp_path / "bad", cfg, renderer=world, progress=False, num_proc=0)
