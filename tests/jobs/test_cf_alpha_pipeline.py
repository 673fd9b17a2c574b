"""CF_α: loss, counterfactual-set batching, training through the core, α sweep, demo, bad input."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from conftest import FakeClip
from datasets import Dataset, Features, Image, Value
from PIL import Image as PILImage

from trustvl.errors import TrustVLInputError
from trustvl.training.cf_alpha import (
    CFAlphaLoss,
    CounterfactualSetCollator,
    CounterfactualSets,
    caption_groups,
)
from trustvl.training.losses import clip_contrastive_loss


def test_cf_loss_is_zero_for_identical_variants_and_positive_otherwise():
    txt = torch.eye(4)[:2]
    same = torch.tensor([[1.0, 0, 0, 0]] * 3 + [[0, 1.0, 0, 0]] * 3)
    batch = {"set_index": torch.tensor([0, 0, 0, 1, 1, 1])}
    loss_fn = CFAlphaLoss(beta_clip=0.0, beta_cf=1.0)
    assert loss_fn(FakeClip(same, txt), batch)[1]["cf_loss"].item() == pytest.approx(0.0, abs=1e-7)
    varied = same + 0.5 * torch.tensor([[0, 0, 1.0, 0], [0, 0, 0, 1.0], [0, 0, 0, 0]] * 2)
    assert loss_fn(FakeClip(varied, txt), batch)[1]["cf_loss"].item() > 0.01


def test_clip_term_with_one_variant_per_set_is_the_clip_loss():
    torch.manual_seed(0)
    img, txt = torch.randn(5, 8), torch.randn(5, 8)
    loss_fn = CFAlphaLoss(beta_clip=1.0, beta_cf=0.0)
    loss, extras = loss_fn(FakeClip(img, txt, scale=7.0), {"set_index": torch.arange(5)})
    torch.testing.assert_close(loss, clip_contrastive_loss(img, txt, torch.tensor(7.0)), rtol=1e-5, atol=1e-6)


def test_bad_loss_settings():
    with pytest.raises(TrustVLInputError, match="cf_loss='mse'"):
        CFAlphaLoss(cf_loss="mse")
    with pytest.raises(TrustVLInputError, match="beta"):
        CFAlphaLoss(beta_clip=0.0, beta_cf=0.0)


class _AlphaClip(FakeClip):
    """A fake CLIP that records the α the loss sets before each forward."""

    def __init__(self, img, txt):
        super().__init__(img, txt)
        self.alphas: list[float] = []

    def set_alpha(self, alpha):
        self.alphas.append(alpha)
        return self


def test_alpha_path_draws_are_a_function_of_seed_and_step():
    img, txt = torch.randn(4, 8), torch.randn(2, 8)
    batch = {"set_index": torch.tensor([0, 0, 1, 1])}

    def draws(seed, steps):
        model = _AlphaClip(img, txt)
        loss_fn = CFAlphaLoss(alpha_range=(0.25, 0.75), seed=seed)
        for step in steps:
            loss_fn.set_step(step)
            loss_fn(model, batch)
        return model.alphas

    full = draws(3, range(50))
    assert all(0.25 <= a <= 0.75 for a in full) and max(full) - min(full) > 0.3
    assert draws(3, range(20, 50)) == full[20:]  # a resumed run continues the same sequence
    assert draws(4, range(50)) != full
    model = _AlphaClip(img, txt)
    CFAlphaLoss()(model, batch)
    assert model.alphas == []  # no range: the model's α (1) is left alone


@pytest.mark.parametrize("bad", [(-0.1, 1.0), (0.6, 0.5), (0.0, 1.5)])
def test_bad_alpha_range(bad):
    with pytest.raises(TrustVLInputError, match="alpha_range"):
        CFAlphaLoss(alpha_range=bad)


def test_identical_captions_are_positives_not_negatives():
    """Two sets with the same caption: the collator groups them, and the CLIP term then stops pushing their
    images apart (a caption-identical pair counted as a negative raises the loss)."""
    assert caption_groups(["a chef", "a nurse", "a chef", "a pilot", "a nurse"]).tolist() == [0, 1, 0, 2, 1]
    processor = type("P", (), {})()
    processor.image_processor = lambda images, return_tensors: {
        "pixel_values": torch.zeros(len(images), 3, 4, 4)
    }
    processor.tokenizer = lambda texts, **_: {
        "input_ids": torch.ones(len(texts), 3, dtype=torch.long),
        "attention_mask": torch.ones(len(texts), 3, dtype=torch.long),
    }
    img = PILImage.new("RGB", (4, 4))
    batch = CounterfactualSetCollator(processor)(
        [{"images": [img, img], "caption": c} for c in ("a chef", "a nurse", "a chef")]
    )
    assert batch["caption_index"].tolist() == [0, 1, 0] and batch["set_index"].tolist() == [0, 0, 1, 1, 2, 2]
    # sets 0 and 2 share a caption: their images and texts coincide in embedding space
    txt = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    img_e = txt[batch["set_index"]]
    loss_fn = CFAlphaLoss(beta_clip=1.0, beta_cf=0.0)
    with_groups = loss_fn(FakeClip(img_e, txt), batch)[0]
    without = loss_fn(FakeClip(img_e, txt), {"set_index": batch["set_index"]})[0]
    assert with_groups < without - 0.1


def test_score_cohesion_is_zero_iff_variants_score_alike():
    txt = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    batch = {"set_index": torch.tensor([0, 0, 1, 1])}
    loss_fn = CFAlphaLoss(beta_clip=0.0, beta_cf=1.0, beta_score=2.0)
    # variants differ only orthogonally to every caption: embeddings differ, scores do not
    img = torch.tensor([[1.0, 0.0, 0.3], [1.0, 0.0, -0.3], [0.0, 1.0, 0.3], [0.0, 1.0, -0.3]])
    loss, logs = loss_fn(FakeClip(img, txt), batch)
    assert logs["score_loss"].item() == pytest.approx(0.0, abs=1e-7) and logs["cf_loss"].item() > 0.01
    tilted = torch.tensor([[1.0, 0.2, 0.0], [1.0, -0.2, 0.0], [0.2, 1.0, 0.0], [-0.2, 1.0, 0.0]])
    loss2, logs2 = loss_fn(FakeClip(tilted, txt), batch)
    assert logs2["score_loss"].item() > 0.01
    assert loss2.item() == pytest.approx(logs2["cf_loss"].item() + 2.0 * logs2["score_loss"].item(), rel=1e-5)
    with pytest.raises(TrustVLInputError, match="beta_score"):
        CFAlphaLoss(beta_score=-1.0)


def test_alpha_weighted_path_and_endpoint_share():
    img, txt = torch.randn(4, 8), torch.randn(2, 8)
    batch = {"set_index": torch.tensor([0, 0, 1, 1])}
    cf_only = CFAlphaLoss(beta_clip=0.0, beta_cf=1.0, beta_score=0.0)
    cf = cf_only(FakeClip(img, txt), batch)[1]["cf_loss"].item()
    model = _AlphaClip(img, txt)
    weighted = CFAlphaLoss(
        beta_clip=0.0, beta_cf=1.0, beta_score=0.0, alpha_range=(0.0, 1.0), cf_weight_by_alpha=True, seed=1
    )
    for step in range(20):
        weighted.set_step(step)
        loss, _ = weighted(model, batch)
        assert loss.item() == pytest.approx(model.alphas[-1] * cf, rel=1e-5)  # L_cf weighted by the drawn α
    model = _AlphaClip(img, txt)
    ends = CFAlphaLoss(alpha_range=(0.0, 0.5), alpha_endpoint_prob=0.5, seed=2)
    for step in range(200):
        ends.set_step(step)
        ends(model, batch)
    at_end = sum(a == 0.5 for a in model.alphas)
    assert 60 < at_end < 140 and all(0.0 <= a <= 0.5 for a in model.alphas)
    for bad in ({"alpha_endpoint_prob": 1.5, "alpha_range": (0, 1)}, {"cf_weight_by_alpha": True}):
        with pytest.raises(TrustVLInputError, match="alpha"):
            CFAlphaLoss(**bad)


def _toy(rows):
    img = PILImage.new("RGB", (8, 8))
    return Dataset.from_dict(
        {"image": [img] * len(rows), "caption": ["c"] * len(rows), "base_id": rows},
        features=Features({"image": Image(), "caption": Value("string"), "base_id": Value("int64")}),
    )


def test_counterfactual_sets_need_base_id_groups():
    with pytest.raises(TrustVLInputError, match="base_id"):
        CounterfactualSets(_toy([0, 1]).remove_columns("base_id"))
    with pytest.raises(TrustVLInputError, match="two or more variants"):
        CounterfactualSets(_toy([0, 1, 2]))
    sets = CounterfactualSets(_toy([0, 0, 0, 1, 1, 2]), variants_per_set=3)
    assert len(sets) == 2 and sets.v == 2  # base 2 has one variant and is dropped; v = smallest set
    assert len(sets[0]["images"]) == 2


@pytest.fixture(scope="module")
def tiny_cf_run(tmp_path_factory):
    """A tiny CLIP fine-tuned a few steps on SynthWorld counterfactuals at 32 px."""
    from trustvl.data_builders.cf_alpha.synthworld_stages import (
        build_synthworld_counterfactuals,
        synthworld_counterfactual_config,
    )
    from trustvl.data_builders.synthworld import (
        SynthWorldConfig,
        SynthWorldRenderer,
        build_synthworld_dataset,
    )
    from trustvl.testing.tiny import build_tiny_clip
    from trustvl.training.cf_alpha import CFAlphaConfig, train_cf_alpha

    root = tmp_path_factory.mktemp("cf")
    clip = build_tiny_clip(root / "clip", image_size=32)
    renderer = SynthWorldRenderer(SynthWorldConfig(resolution=32))
    cfg = synthworld_counterfactual_config(renderer, variants_per_base=4, n_base_per_prompt=1)
    build_synthworld_counterfactuals(root / "cf", cfg, renderer=renderer, progress=False)
    test = build_synthworld_dataset(
        root / "sw", SynthWorldConfig(resolution=32), n_train=0, n_test=128, progress=False
    )
    summary = train_cf_alpha(
        CFAlphaConfig(
            base_model=str(clip),
            dataset=str(root / "cf"),
            output_dir=str(root / "run"),
            max_steps=3,
            per_device_train_batch_size=4,
            save_steps=1000,
            disable_tqdm=True,
        )
    )
    return {"clip": clip, "test": test, "summary": summary, "root": root}


def test_training_changes_only_the_lora_delta(tiny_cf_run):
    from transformers import AutoModel, CLIPModel

    from trustvl.modeling.cf_alpha import CFAlphaCLIPModel

    s = tiny_cf_run["summary"]
    assert s["global_step"] == 3 and s["lora_parameters"] > 0
    model = AutoModel.from_pretrained(s["model_dir"])
    assert isinstance(model, CFAlphaCLIPModel)
    base = CLIPModel.from_pretrained(str(tiny_cf_run["clip"]))
    merged0 = model.merged_state_dict(alpha=0.0)
    for name, tensor in base.state_dict().items():
        torch.testing.assert_close(merged0[name], tensor, rtol=0, atol=0)
    assert any(float(d.abs().max()) > 0 for d in model.lora_delta_weights().values())
    adapter = tiny_cf_run["root"] / "run" / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(base, str(adapter)).eval()
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model.eval().get_image_features(pixel_values=pixels).pooler_output
        theirs = peft_model.get_image_features(pixel_values=pixels).pooler_output
    assert (ours - theirs).abs().max().item() <= 1e-5


def test_alpha_sweep_at_zero_matches_the_base_audit(tiny_cf_run, tmp_path):
    from trustvl.evaluation.audit import audit
    from trustvl.evaluation.cf_alpha import AlphaSweepConfig, sweep_alpha
    from trustvl.evaluation.results import AlphaSweepResult

    res = sweep_alpha(
        AlphaSweepConfig(
            model=tiny_cf_run["summary"]["model_dir"],
            dataset=str(tiny_cf_run["test"]),
            out_dir=str(tmp_path / "sweep"),
            alphas=[0.0, 1.0],
            ks=[10, 50],
            progress=False,
        )
    )
    assert (tmp_path / "sweep" / "pareto.png").is_file() and (tmp_path / "sweep" / "report.html").is_file()
    assert (tmp_path / "sweep" / "skews_by_alpha.png").is_file()
    assert "skews_by_alpha.png" in (tmp_path / "sweep" / "report.html").read_text()
    base = audit(
        str(tiny_cf_run["clip"]),
        str(tiny_cf_run["test"]),
        str(tmp_path / "audit"),
        ks=[10, 50],
        label_column="occupation",
        progress=False,
        use_cache=False,
    )
    at0 = res.at_alpha(0.0)
    assert at0.zero_shot_top1 == pytest.approx(base.evaluation.zero_shot_top1)
    for attr, v in base.evaluation.fairness.items():
        assert at0.fairness[attr].ndkl == pytest.approx(v.ndkl, abs=1e-9)
        assert at0.fairness[attr].at_k[50].max_skew == pytest.approx(v.at_k[50].max_skew, abs=1e-9)
    assert at0.recall is not None and set(at0.recall.text_to_image) == {1, 5, 10}
    on_disk = AlphaSweepResult.from_dict(json.loads((tmp_path / "sweep" / "metrics.json").read_text()))
    assert on_disk == res and [p.alpha for p in on_disk.points] == [0.0, 1.0]


def test_alpha_outside_unit_interval_is_refused(tiny_cf_run, tmp_path, capsys):
    from trustvl.cli import main

    rc = main(
        [
            "eval",
            "cf-alpha",
            "--model",
            tiny_cf_run["summary"]["model_dir"],
            "--dataset",
            str(tiny_cf_run["test"]),
            "--out",
            str(tmp_path / "s"),
            "--alphas",
            "0",
            "1.5",
            "--quiet",
        ]
    )
    assert rc == 2 and "alpha=1.5" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_demo_runs_end_to_end_on_the_default_clip(tmp_path):
    from transformers import CLIPModel

    from trustvl.jobs.demo import DemoConfig, DemoResult, demo_cf_alpha_recipe, run_demo

    out = tmp_path / "demo"
    recipe = dataclasses.replace(demo_cf_alpha_recipe(), max_steps=2, per_device_train_batch_size=4)
    res = run_demo(
        DemoConfig(
            out_dir=str(out),
            n_test=128,
            n_base_per_occupation=1,
            variants_per_base=4,
            cf_alpha=recipe,
            alphas=[0.0, 1.0],
            ks=[10, 50],
            progress=False,
        )
    )
    for name in (
        "report.html",
        "metrics.json",
        "counterfactual_examples.png",
        "sweep/pareto.png",
        "audit/report.html",
        "cf_alpha/adapter/adapter_model.safetensors",
        "cf_alpha/model/README.md",
    ):
        assert (out / name).exists(), name
    assert isinstance(CLIPModel.from_pretrained(str(out / "merged")), CLIPModel)
    pickles = [p for p in out.rglob("*") if p.suffix in {".bin", ".pt", ".pth", ".pkl"}]
    assert not pickles, pickles
    assert set(res.effect) >= {"skin_tone", "gender_presentation"}
    assert res.effect["skin_tone"].k == 50
    on_disk = DemoResult.from_dict(json.loads((out / "metrics.json").read_text()))
    assert on_disk.effect == res.effect and on_disk.zero_shot_top1 == res.zero_shot_top1
    assert on_disk.audit_base == res.audit_base
    assert set(on_disk.seconds) >= {"audit", "train", "sweep", "total"}
    card = (out / "cf_alpha" / "model" / "README.md").read_text()
    assert "model-index" in card and "max_skew@50" in card
    from huggingface_hub import ModelCard

    for folder in ("cf_alpha/model", "merged"):  # a card for every published folder (issue #15)
        data = ModelCard.load(out / folder / "README.md").data
        assert data.base_model == "trustvl/synthworld-clip" and data.datasets == ["trustvl/synthworld"]
        assert data.license and data.eval_results
        text = (out / folder / "README.md").read_text()
        assert str((out / folder).resolve()) in text  # the usage snippet names the final folder
    published = [p for p in out.rglob("*") if p.is_file() and p.suffix in {".md", ".json", ".html"}]
    assert not [p for p in published if ".staging" in p.read_text(errors="ignore")]


def test_alpha_path_training_saves_the_model_at_alpha_one(tiny_cf_run):
    from transformers import AutoModel

    from trustvl.training.cf_alpha import CFAlphaConfig, train_cf_alpha

    root = tiny_cf_run["root"]
    summary = train_cf_alpha(
        CFAlphaConfig(
            base_model=str(tiny_cf_run["clip"]),
            dataset=str(root / "cf"),
            output_dir=str(root / "run_path"),
            max_steps=2,
            per_device_train_batch_size=4,
            save_steps=1000,
            alpha_range=[0.2, 0.6],
            disable_tqdm=True,
        )
    )
    assert summary["config"]["alpha_range"] == [0.2, 0.6]
    model = AutoModel.from_pretrained(summary["model_dir"])
    assert model.alpha == 1.0
    assert any(float(v.abs().sum()) > 0 for k, v in model.lora_state_dict().items() if "lora_B" in k)


def test_attribute_effect_term_trains_on_the_builders_attribute_columns(tiny_cf_run):
    """beta_effect reads the counterfactual build's attribute columns into every batch (through the frozen
    prefix cache) and logs L_effect; the effect term changes the trained delta."""
    from trustvl.training.cf_alpha import CFAlphaConfig, train_cf_alpha

    root = tiny_cf_run["root"]
    common = dict(
        base_model=str(tiny_cf_run["clip"]),
        dataset=str(root / "cf"),
        max_steps=2,
        per_device_train_batch_size=4,
        save_steps=1000,
        logging_steps=1,
        disable_tqdm=True,
    )
    attrs = ["skin_tone", "gender_presentation", "age", "body_type"]
    with_effect = train_cf_alpha(
        CFAlphaConfig(output_dir=str(root / "run_effect"), beta_effect=5.0, effect_attributes=attrs, **common)
    )
    without = train_cf_alpha(CFAlphaConfig(output_dir=str(root / "run_no_effect"), **common))
    logged = [h for h in with_effect["log_history"] if "effect_loss" in h]
    assert logged and all(h["effect_loss"] > 0 for h in logged)
    assert not [h for h in without["log_history"] if "effect_loss" in h]
    assert with_effect["final_loss"] != pytest.approx(without["final_loss"], rel=1e-6)


def test_frozen_prefix_cache_trains_and_sweeps_the_same_numbers(tiny_cf_run, tmp_path, monkeypatch):
    """LoRA on the top vision layer only: training from cached prefix states (PrefixCachedSets) gives the same
    LoRA weights as training from pixels, and the α sweep from cached gallery states the same metrics as
    embedding every α from pixels; precomputed α = 0 embeddings are used as given."""
    from safetensors.torch import load_file

    import trustvl.evaluation.cf_alpha as sweep_module
    from trustvl.evaluation.cf_alpha import AlphaSweepConfig, sweep_alpha
    from trustvl.training.cf_alpha import CFAlphaConfig, PrefixCachedSets, train_cf_alpha

    built = []
    original_init = PrefixCachedSets.__init__

    def counting_init(self, *args, **kwargs):
        built.append(1)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(PrefixCachedSets, "__init__", counting_init)
    top = r"vision_model\.encoder\.layers\.1\.(self_attn\.(q_proj|k_proj|v_proj|out_proj)|mlp\.(fc1|fc2))"
    weights = {}
    for cache in (True, False):
        summary = train_cf_alpha(
            CFAlphaConfig(
                base_model=str(tiny_cf_run["clip"]),
                dataset=str(tiny_cf_run["root"] / "cf"),
                output_dir=str(tmp_path / f"run_{cache}"),
                max_steps=4,
                per_device_train_batch_size=4,
                learning_rate=1e-2,
                save_strategy="no",
                disable_tqdm=True,
                lora_target_modules=top,
                cache_frozen_layers=cache,
            )
        )
        weights[cache] = load_file(str(tmp_path / f"run_{cache}" / "model" / "model.safetensors"))
    assert built == [1]  # only the cached run built the cache
    lora = [k for k in weights[True] if ".lora_B." in k]
    assert lora and all("encoder.layers.1." in k for k in lora)
    assert any(float(weights[True][k].abs().max()) > 0 for k in lora)  # it trained
    for k in lora:
        torch.testing.assert_close(weights[True][k], weights[False][k], rtol=1e-4, atol=1e-6)

    def run(name, **kwargs):
        return sweep_alpha(
            AlphaSweepConfig(
                model=summary["model_dir"],
                dataset=str(tiny_cf_run["test"]),
                out_dir=str(tmp_path / name),
                alphas=[0.0, 0.5, 1.0],
                ks=[10, 50],
                progress=False,
                n_resamples=0,
            ),
            **kwargs,
        )

    cached = run("cached")
    monkeypatch.setattr(sweep_module, "PREFIX_CACHE_BYTES", 0)
    from_pixels = run("pixels")
    for a, b in zip(cached.points, from_pixels.points):
        assert a.evaluation.zero_shot_top1 == b.evaluation.zero_shot_top1
        for attr, fa in a.evaluation.fairness.items():
            assert fa.at_k[50].max_skew == pytest.approx(
                b.evaluation.fairness[attr].at_k[50].max_skew, abs=1e-6
            )
    fake = torch.nn.functional.normalize(
        torch.randn(128, 32, generator=torch.Generator().manual_seed(0)), dim=-1
    )
    given = run("given", precomputed={0.0: fake})

    def skews(point):
        return [f.at_k[50].max_skew for f in point.evaluation.fairness.values()]

    assert skews(given.points[0]) != skews(from_pixels.points[0])  # α = 0 used the given embeddings
    assert skews(given.points[2]) == pytest.approx(skews(from_pixels.points[2]), abs=1e-6)  # the rest did not
    with pytest.raises(TrustVLInputError, match="precomputed"):
        run("bad", precomputed={0.0: fake[:5]})


def test_prefix_cache_is_skipped_when_it_would_not_fit(tiny_cf_run, monkeypatch):
    import trustvl.training.cf_alpha as cf_module
    from trustvl.hub.loading import load_dataset_any
    from trustvl.modeling.cf_alpha import CFAlphaCLIPModel

    model = CFAlphaCLIPModel.from_clip(
        str(tiny_cf_run["clip"]), lora_target_modules=cf_module.VISION_LORA_TARGETS
    )
    sets = CounterfactualSets(
        load_dataset_any(str(tiny_cf_run["root"] / "cf"), split="train"), variants_per_set=4
    )
    need = cf_module.PrefixCachedSets.nbytes(model, sets)
    assert need == len(sets) * 4 * ((32 // model.config.vision_config.patch_size) ** 2 + 1) * 32 * 4
    assert cf_module.PrefixCachedSets.applies(model, sets)
    monkeypatch.setattr(cf_module.data, "PREFIX_CACHE_MAX_BYTES", need - 1)  # read where applies() is
    assert not cf_module.PrefixCachedSets.applies(model, sets)
    text_lora = CFAlphaCLIPModel.from_clip(str(tiny_cf_run["clip"]), lora_target_modules=None)
    assert not cf_module.PrefixCachedSets.applies(text_lora)  # text LoRA: text features are not frozen
