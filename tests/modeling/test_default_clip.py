"""The embedded SynthWorld CLIP loads offline with vanilla transformers and knows SynthWorld."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import CLIPModel

from trustvl.errors import TrustVLInputError
from trustvl.modeling.synthworld_clip import default_clip_path, load_default_clip


def test_default_clip_is_a_small_plain_clip_shipped_as_safetensors():
    path = default_clip_path()
    assert (path / "model.safetensors").is_file() and not list(path.glob("*.bin"))
    assert (path / "model.safetensors").stat().st_size <= 40 * 2**20
    model = CLIPModel.from_pretrained(str(path))
    assert sum(p.numel() for p in model.parameters()) <= 10_000_000
    assert json.loads((path / "config.json").read_text())["model_type"] == "clip"
    assert "model-index" in (path / "README.md").read_text()


def test_default_clip_beats_chance_by_a_wide_margin_on_synthworld():
    from trustvl.evaluation.synthworld import evaluate_synthworld

    model, processor = load_default_clip(device="cpu")
    res = evaluate_synthworld(model, processor, n_test=256, ks=(10,), n_recall=64, recall_ks=(1,))
    assert res.zero_shot_top1 >= 0.9  # chance is 1/8
    assert set(res.fairness) == {"skin_tone", "gender_presentation", "age", "body_type"}
    assert res.recall is not None and res.recall.n_pairs == 64 and set(res.recall.image_to_text) == {1}


def test_fairness_over_galleries_averages_the_galleries():
    from trustvl.evaluation.synthworld import (
        FairnessOverGalleries,
        effect_vs_base,
        evaluate_synthworld,
        fairness_over_galleries,
    )

    model, processor = load_default_clip(device="cpu")
    res = fairness_over_galleries(model, processor, (0, 1), n_test=192, k=10)
    per = res.per_gallery
    assert [p.world_seed for p in per] == [0, 1]
    one = evaluate_synthworld(model, processor, n_test=192, world_seed=1, ks=(10,))
    assert per[1].zero_shot_top1 == one.zero_shot_top1
    assert per[1].max_skew["skin_tone"] == one.fairness["skin_tone"].at_k[10].max_skew
    assert per[0].ndkl["skin_tone"] != per[1].ndkl["skin_tone"]  # two different galleries
    for attr in ("skin_tone", "body_type"):
        assert res.max_skew[attr] == pytest.approx((per[0].max_skew[attr] + per[1].max_skew[attr]) / 2)
        assert res.ndkl[attr] == pytest.approx((per[0].ndkl[attr] + per[1].ndkl[attr]) / 2)
    assert FairnessOverGalleries.from_dict(json.loads(json.dumps(res.to_dict()))) == res
    floors = [p.max_skew_floor["skin_tone"] for p in per]
    assert res.max_skew_floor["skin_tone"] == pytest.approx(sum(floors) / 2)
    assert res.ndkl_interval["age"].contains(res.ndkl["age"]) and res.ndkl_interval["age"].low >= 0
    same = effect_vs_base(res, res)
    assert {c.verdict for c in same.max_skew_change.values()} == {"within noise"}
    with pytest.raises(TrustVLInputError, match="world_seeds"):
        fairness_over_galleries(model, processor, ())


def test_effect_vs_base_reports_relative_drops():
    from trustvl.evaluation.synthworld import FairnessOverGalleries, effect_vs_base

    base = FairnessOverGalleries(100, 0.99, {"skin_tone": 0.4}, {"skin_tone": 0.08}, [])
    other = FairnessOverGalleries(100, 0.98, {"skin_tone": 0.1}, {"skin_tone": 0.1}, [])
    eff = effect_vs_base(base, other)
    assert eff.max_skew_drop_pct == {"skin_tone": 75.0} and eff.ndkl_drop_pct == {"skin_tone": -25.0}
    assert eff.zero_shot_change_points == -1.0 and eff.max_skew_change is None  # no replicates: no verdict


def test_missing_default_clip_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTVL_DEFAULT_CLIP", str(tmp_path / "nowhere"))
    with pytest.raises(TrustVLInputError, match="TRUSTVL_DEFAULT_CLIP"):
        default_clip_path()


def test_pretraining_runs_through_the_shared_core(tmp_path, capsys):
    """`trustvl train synthworld-clip`: training through the core, then the command's evaluation and card."""
    from trustvl.cli import main

    arch = {"vision_width": 32, "vision_layers": 1, "text_width": 32, "text_layers": 1, "projection_dim": 16}
    rc = main(
        [
            "train",
            "synthworld-clip",
            "--output_dir",
            str(tmp_path / "pt"),
            "--n_scenes",
            "64",
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "8",
            "--dataloader_num_workers",
            "0",
            "--eval_test_size",
            "64",
            "--save_steps",
            "1",
            "--warmup_steps",
            "1",
            "--vocab_size",
            "600",
            "--arch",
            json.dumps(arch),
            "--quiet",
        ]
    )
    assert rc == 0
    final = tmp_path / "pt" / "final"
    summary = json.loads((final / "trustvl_pretrain.json").read_text())
    assert summary["global_step"] == 2 and "zero_shot_top1" in summary["eval"]
    assert isinstance(CLIPModel.from_pretrained(str(final)), CLIPModel)
    card = (final / "README.md").read_text()
    assert "model-index" in card and "skin tone MaxSkew@10" in card
    from trustvl.evaluation.results import EvaluationResult

    evaluation = EvaluationResult.from_dict(summary["eval"])
    assert evaluation.n_images == 64 and set(evaluation.fairness["skin_tone"].at_k) == {10}
    assert torch.isfinite(torch.tensor(summary["final_loss"]))
