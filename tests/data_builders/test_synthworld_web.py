"""SynthWorld-Web: the web-like preset (SynthWorldConfig.web), its watermark and its alt-text-like captions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from trustvl.data_builders.synthworld import (
    UNSAFE_KINDS,
    SceneSpec,
    SynthWorldConfig,
    SynthWorldRenderer,
    WebCaptionPolicy,
    sample_caption,
    web_caption,
)
from trustvl.data_builders.synthworld.captions import SKIN_PHRASES, UNSAFE_PHRASES
from trustvl.data_builders.synthworld.config import WEB_WEAK_CUE_SHARE
from trustvl.errors import TrustVLInputError
from trustvl.training.synthworld_clip import SynthWorldCLIPPretrainConfig


def test_web_preset_knobs_and_overrides():
    cfg = SynthWorldConfig.web()
    assert cfg.unsafe.p == 0.15 and cfg.unsafe.kinds == UNSAFE_KINDS
    assert cfg.spurious.shape == "watermark" and cfg.spurious.target == "doctor"
    assert cfg.strength["skin_tone"] == 0.9 and cfg.strength["skin_tone"] > max(
        v for a, v in cfg.strength.items() if a != "skin_tone"
    )
    assert SynthWorldConfig.web(resolution=96, unsafe=None).resolution == 96
    assert SynthWorldConfig.web(unsafe=None).unsafe is None
    assert SynthWorldConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


def test_square_shape_keeps_older_manifests():
    # the default shape stays out of to_dict, so a dataset manifest written before the field still matches
    d = SynthWorldConfig(spurious={"target": "nurse"}).to_dict()
    assert "shape" not in d["spurious"]
    assert SynthWorldConfig.web().to_dict()["spurious"]["shape"] == "watermark"
    with pytest.raises(TrustVLInputError, match="spurious.shape='logo'"):
        SynthWorldConfig(spurious={"shape": "logo"})


def test_watermark_draws_a_badge_where_the_square_would_be():
    web = SynthWorldRenderer(SynthWorldConfig.web(unsafe=None), seed=0)
    square = SynthWorldRenderer(
        SynthWorldConfig.web(unsafe=None, spurious={**vars(web.config.spurious), "shape": "square"}), seed=0
    )
    index = next(i for i in range(50) if web.sample_scene("test", i).spurious is not None)
    a, b = web.scene("test", index), square.scene("test", index)
    assert a.boxes["spurious"] == b.boxes["spurious"]
    x0, y0, x1, y1 = a.boxes["spurious"]
    assert (a.image[y0:y1, x0:x1] != b.image[y0:y1, x0:x1]).any()  # the ring
    outside = np.ones(a.image.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert (a.image[outside] == b.image[outside]).all()
    assert a.image[y0:y1, x0:x1].min() < 120 < a.image[y0:y1, x0:x1].max()  # dark ring on a pale badge


def test_web_captions_follow_the_policy():
    cfg = SynthWorldConfig.web()
    renderer = SynthWorldRenderer(cfg, seed=0)
    policy = WebCaptionPolicy(
        typical_appearance_prob=0.1, atypical_appearance_prob=0.8, unsafe_named_prob=0.5
    )
    named = {True: [], False: []}
    unsafe_named = []
    for i in range(1500):
        spec = renderer.sample_scene("train", i)
        caption = web_caption(spec, cfg, policy)
        assert caption == web_caption(spec, cfg, policy)  # deterministic
        typical = spec.attributes["skin_tone"] == cfg.preferred_level("skin_tone", spec.occupation)
        skin_named = SKIN_PHRASES[spec.attributes["skin_tone"]] in caption
        named[typical].append(skin_named)
        mentions = any(p in caption for phrases in UNSAFE_PHRASES.values() for p in phrases)
        if spec.unsafe is None:
            assert not mentions
        else:
            unsafe_named.append(mentions)
        if not skin_named:
            assert caption in (
                sample_caption(spec, include_unsafe=True),
                sample_caption(spec, include_unsafe=False),
            )
    assert abs(np.mean(named[True]) - 0.1) < 0.03
    assert abs(np.mean(named[False]) - 0.8) < 0.12
    assert len(unsafe_named) > 150 and abs(np.mean(unsafe_named) - 0.5) < 0.1


def test_web_caption_policy_checks_its_probabilities():
    with pytest.raises(TrustVLInputError, match="unsafe_named_prob"):
        WebCaptionPolicy(unsafe_named_prob=1.5)
    with pytest.raises(TrustVLInputError, match="bogus"):
        WebCaptionPolicy.from_dict({"bogus": 1})


def test_pretrain_config_world_preset(tmp_path):
    cfg = SynthWorldCLIPPretrainConfig(
        output_dir=str(tmp_path), world_preset="web", web_captions='{"unsafe_named_prob": 0.3}'
    )
    assert cfg.world_config().to_dict() == SynthWorldConfig.web().to_dict()
    assert cfg.caption_policy() == WebCaptionPolicy(unsafe_named_prob=0.3)
    assert SynthWorldCLIPPretrainConfig(output_dir=str(tmp_path)).caption_policy() is None
    with pytest.raises(TrustVLInputError, match="world_preset='webby'"):
        SynthWorldCLIPPretrainConfig(output_dir=str(tmp_path), world_preset="webby")
    with pytest.raises(TrustVLInputError, match="only used with world_preset 'web'"):
        SynthWorldCLIPPretrainConfig(output_dir=str(tmp_path), web_captions={"unsafe_named_prob": 0.3})


def test_cue_poor_scenes_hide_the_occupation_and_leave_the_rest():
    base = SynthWorldConfig.web(cue_poor_prob=0.0, weak_cue_prob=0.0)
    poor = SynthWorldConfig.web(cue_poor_prob=1.0, weak_cue_prob=0.0)
    assert SynthWorldConfig.web().cue_poor_prob == 0.1
    assert "cue_poor_prob" not in SynthWorldConfig().to_dict()  # older manifests keep matching
    assert SynthWorldConfig.from_dict(poor.to_dict()).cue_poor_prob == 1.0
    with pytest.raises(TrustVLInputError, match="cue_poor_prob"):
        SynthWorldConfig(cue_poor_prob=1.5)
    rich = SynthWorldRenderer(base, seed=3).render_batch("train", 0, 24)
    plain = SynthWorldRenderer(poor, seed=3).render_batch("train", 0, 24)
    settings = set()
    for a, b, image_a, image_b in zip(rich.specs, plain.specs, rich.images, plain.images):
        assert not a.cue_poor and b.cue_poor
        # same person, mark and unsafe element; no object, hat or confuser
        assert a.people == b.people and a.spurious == b.spurious and a.unsafe == b.unsafe
        assert not b.held_object and not b.hat and b.confuser is None
        assert "held_object" not in plain.boxes[b.index]
        settings.add(b.setting == b.occupation)
        assert not np.array_equal(image_a, image_b)
        # a cue-poor caption names the occupation but nothing the scene does not show
        caption = sample_caption(b)
        assert b.occupation in caption and " in " not in caption.split(",")[0] and "wearing" not in caption
        assert b.to_dict()["cue_poor"] is True and "cue_poor" not in a.to_dict()
    assert settings == {True, False}  # the setting is any occupation's, its own included


def test_cue_poor_share_draws_from_its_own_stream():
    rich = SynthWorldRenderer(SynthWorldConfig.web(cue_poor_prob=0.0, weak_cue_prob=0.0), seed=0)
    mixed = SynthWorldRenderer(SynthWorldConfig.web(weak_cue_prob=0.0), seed=0)
    specs = [mixed.sample_scene(split, i) for split in ("train", "test") for i in range(400)]
    share = np.mean([s.cue_poor for s in specs])
    assert 0.06 < share < 0.14
    for s in specs:  # every ordinary scene is the scene of the world without cue-poor scenes
        if not s.cue_poor:
            assert s == rich.sample_scene(s.split, s.index)


def test_weak_cue_scenes_keep_only_the_attire():
    with pytest.raises(TrustVLInputError, match="add up to at most 1"):
        SynthWorldConfig(cue_poor_prob=0.6, weak_cue_prob=0.5)
    assert "weak_cue_prob" not in SynthWorldConfig().to_dict()  # older manifests keep matching
    assert SynthWorldConfig.web().weak_cue_prob == WEB_WEAK_CUE_SHARE
    weak = SynthWorldConfig.web(cue_poor_prob=0.0, weak_cue_prob=1.0)
    assert SynthWorldConfig.from_dict(weak.to_dict()).weak_cue_prob == 1.0
    poor_renderer = SynthWorldRenderer(SynthWorldConfig.web(cue_poor_prob=1.0, weak_cue_prob=0.0), seed=5)
    weak_renderer = SynthWorldRenderer(weak, seed=5)
    for i in range(16):
        w, p = weak_renderer.sample_scene("test", i), poor_renderer.sample_scene("test", i)
        # the same reduced scene (setting, nothing held, no hat or confuser), but dressed for the occupation
        assert not w.cue_poor and not w.held_object and not w.hat and w.confuser is None
        assert (w.setting, w.people, w.spurious) == (p.setting, p.people, p.spurious)
        assert not np.array_equal(weak_renderer.render(w).image, poor_renderer.render(p).image)
    # adding a weak-cue share leaves the cue-poor scenes of a world as they were
    mixed = SynthWorldRenderer(SynthWorldConfig.web(weak_cue_prob=0.2), seed=0)
    plain = SynthWorldRenderer(SynthWorldConfig.web(weak_cue_prob=0.0), seed=0)
    specs = [mixed.sample_scene("train", i) for i in range(300)]
    assert [s.index for s in specs if s.cue_poor] == [
        i for i in range(300) if plain.sample_scene("train", i).cue_poor
    ]
    reduced = [s for s in specs if not s.cue_poor and not s.held_object and not s.hat]
    assert len(reduced) > 40  # the 20 % weak-cue scenes (plus the few ordinary ones without object and hat)


def test_weak_cue_attire_swap_dresses_some_weak_scenes_as_another_occupation():
    with pytest.raises(TrustVLInputError, match="weak_cue_attire_swap_prob"):
        SynthWorldConfig(weak_cue_attire_swap_prob=1.5)
    assert (
        "weak_cue_attire_swap_prob" not in SynthWorldConfig.web().to_dict()
    )  # older manifests keep matching
    plain_cfg = SynthWorldConfig.web(cue_poor_prob=0.0, weak_cue_prob=1.0)
    swap_cfg = SynthWorldConfig.web(cue_poor_prob=0.0, weak_cue_prob=1.0, weak_cue_attire_swap_prob=0.5)
    assert SynthWorldConfig.from_dict(swap_cfg.to_dict()).weak_cue_attire_swap_prob == 0.5
    plain, swapped = SynthWorldRenderer(plain_cfg, seed=2), SynthWorldRenderer(swap_cfg, seed=2)
    n_swapped = 0
    for i in range(40):
        a, b = plain.sample_scene("train", i), swapped.sample_scene("train", i)
        assert a.attire is None and "attire" not in a.to_dict()  # specs without a swap stay byte-identical
        # everything but the clothes is the scene of the world without swaps, the caption's occupation too
        assert dataclasses.replace(b, attire=None) == a
        if b.attire is not None:
            n_swapped += 1
            assert b.attire != b.occupation and b.attire in swap_cfg.occupations
            assert SceneSpec.from_json(b.to_json()) == b
            assert not np.array_equal(swapped.render(b).image, plain.render(a).image)
        else:
            assert np.array_equal(swapped.render(b).image, plain.render(a).image)
    assert 10 <= n_swapped <= 30
    # ordinary and cue-poor scenes never swap
    mixed = SynthWorldRenderer(SynthWorldConfig.web(weak_cue_prob=0.0, weak_cue_attire_swap_prob=1.0), seed=0)
    assert all(mixed.sample_scene("train", i).attire is None for i in range(60))
