"""CFAlphaCLIPModel: θ0 + α·ΔW with a LoRA delta; exact α = 0; save/load (Auto, remote code); merged export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors import safe_open
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForZeroShotImageClassification,
    CLIPConfig,
    CLIPModel,
)

from trustvl.errors import TrustVLInputError
from trustvl.modeling.alpha import (
    apply_task_vector,
    interpolate_state_dicts,
    lora_delta,
    merge_lora_delta,
    set_peft_lora_alpha,
    task_vector,
)
from trustvl.modeling.cf_alpha import CFAlphaCLIPConfig, CFAlphaCLIPModel, CFAlphaLoRALinear

TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]


def tiny_clip_config() -> CLIPConfig:
    return CLIPConfig(
        text_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            vocab_size=100,
            max_position_embeddings=16,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )


@pytest.fixture(scope="module")
def base_clip() -> CLIPModel:
    torch.manual_seed(0)
    return CLIPModel(tiny_clip_config()).eval()


@pytest.fixture(scope="module")
def inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(2, 100, (3, 9), generator=g)
    input_ids[:, 0] = 0  # bos
    input_ids[:, -1] = 1  # eos (CLIP pools at the eos token)
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "pixel_values": torch.randn(2, 3, 32, 32, generator=g),
    }


def embed(model, inputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        text = model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        image = model.get_image_features(pixel_values=inputs["pixel_values"])
        logits = model(**inputs).logits_per_image
    return text.pooler_output, image.pooler_output, logits


def finetuned(base_clip, alpha=1.0, **kwargs) -> CFAlphaCLIPModel:
    """A CF_α model whose LoRA B was perturbed (a simulated fine-tune)."""
    model = CFAlphaCLIPModel.from_clip(base_clip, lora_r=4, lora_alpha=8, alpha=alpha, **kwargs).eval()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for layer in model.lora_layers().values():
            layer.lora_B.weight.copy_(torch.randn(layer.lora_B.weight.shape, generator=g) * 0.1)
    return model


def test_config_fields_and_defaults():
    config = CFAlphaCLIPConfig()
    assert config.model_type == "cf_alpha_clip"
    assert isinstance(config, CLIPConfig)
    assert (
        config.alpha == 1.0 and config.lora_r == 8 and config.lora_alpha == 8 and config.lora_dropout == 0.0
    )
    assert config.lora_target_modules == TARGETS
    assert config.base_model_name_or_path is None and config.allow_alpha_extrapolation is False
    assert config.lora_scaling == 1.0
    restored = CFAlphaCLIPConfig.from_dict(CFAlphaCLIPConfig(alpha=0.25, lora_r=2).to_dict())
    assert restored.alpha == 0.25 and restored.lora_r == 2
    with pytest.raises(TrustVLInputError, match="lora_r"):
        CFAlphaCLIPConfig(lora_r=0)
    with pytest.raises(TrustVLInputError, match="1.5"):
        CFAlphaCLIPConfig(alpha=1.5)


def test_from_clip_equals_base(base_clip, inputs, tmp_path):
    model = CFAlphaCLIPModel.from_clip(base_clip, lora_r=4).eval()
    layers = model.lora_layers()
    assert len(layers) == 2 * 2 * len(TARGETS)  # 2 towers × 2 layers × 6 linear layers
    assert all(torch.count_nonzero(layer.lora_B.weight) == 0 for layer in layers.values())
    assert all(torch.count_nonzero(layer.lora_A.weight) > 0 for layer in layers.values())
    for got, want in zip(embed(model, inputs), embed(base_clip, inputs)):
        assert torch.equal(got, want)
    # the source model is untouched, and the base keys are CLIPModel's
    assert not any(isinstance(m, CFAlphaLoRALinear) for m in base_clip.modules())
    base_keys = set(base_clip.state_dict())
    assert base_keys <= set(model.state_dict())
    # from a path: provenance recorded
    base_clip.save_pretrained(tmp_path / "base")
    from_path = CFAlphaCLIPModel.from_clip(tmp_path / "base", lora_r=4).eval()
    assert from_path.config.base_model_name_or_path == str(tmp_path / "base")
    assert torch.equal(embed(from_path, inputs)[0], embed(base_clip, inputs)[0])


def test_alpha_interpolation(base_clip, inputs):
    model = finetuned(base_clip)
    base_text, base_image, base_logits = embed(base_clip, inputs)

    text1, image1, _ = embed(model, inputs)
    assert not torch.allclose(text1, base_text) and not torch.allclose(image1, base_image)

    model.set_alpha(0.0)
    assert model.config.alpha == 0.0 and model.alpha == 0.0
    text0, image0, logits0 = embed(model, inputs)
    assert (
        torch.equal(text0, base_text)
        and torch.equal(image0, base_image)
        and torch.equal(logits0, base_logits)
    )

    # weights: θ_0.5 is the midpoint of θ_0 and θ_1; θ_0 is exactly the original
    sd0, sd1, sd_half = (
        model.merged_state_dict(0.0),
        model.merged_state_dict(1.0),
        model.merged_state_dict(0.5),
    )
    base_sd = base_clip.state_dict()
    assert set(sd0) == set(base_sd)
    assert all(torch.equal(sd0[k], base_sd[k]) for k in base_sd)
    for key in sd0:
        torch.testing.assert_close(sd_half[key], (sd0[key] + sd1[key]) / 2, rtol=0, atol=1e-6)
    q_key = "text_model.encoder.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(sd1[q_key], sd0[q_key])
    delta = model.lora_delta_weights()[q_key]
    torch.testing.assert_close(sd1[q_key], sd0[q_key] + delta)

    # outputs at α = 0.5 are those of a CLIP with the interpolated weights
    model.set_alpha(0.5)
    half_clip = CLIPModel(tiny_clip_config()).eval()
    half_clip.load_state_dict(sd_half)
    for got, want in zip(embed(model, inputs), embed(half_clip, inputs)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)

    with model.temporary_alpha(0.0):
        assert torch.equal(embed(model, inputs)[0], base_text)
    assert model.alpha == 0.5


def test_alpha_validation(base_clip):
    model = finetuned(base_clip)
    with pytest.raises(TrustVLInputError, match=r"1\.5"):
        model.set_alpha(1.5)
    with pytest.raises(ValueError, match=r"-0\.1"):
        model.set_alpha(-0.1)
    with pytest.raises(TrustVLInputError, match="nan"):
        model.set_alpha(float("nan"))
    assert model.alpha == 1.0  # unchanged by the failed calls

    extra = finetuned(base_clip, allow_alpha_extrapolation=True)
    extra.set_alpha(1.5)
    assert extra.config.alpha == 1.5
    sd0, sd15 = extra.merged_state_dict(0.0), extra.merged_state_dict()
    key = "vision_model.encoder.layers.1.mlp.fc2.weight"
    torch.testing.assert_close(sd15[key], sd0[key] + 1.5 * extra.lora_delta_weights()[key])


def test_save_and_automodel_roundtrip(base_clip, inputs, tmp_path):
    model = finetuned(base_clip).set_alpha(0.3)
    model.save_pretrained(tmp_path / "cf")
    files = set(os.listdir(tmp_path / "cf"))
    assert {
        "config.json",
        "model.safetensors",
        "modeling_cf_alpha_clip.py",
        "configuration_cf_alpha_clip.py",
    } <= files
    config = json.loads((tmp_path / "cf" / "config.json").read_text())
    assert config["model_type"] == "cf_alpha_clip" and config["alpha"] == 0.3 and config["lora_r"] == 4
    assert config["auto_map"]["AutoModel"] == "modeling_cf_alpha_clip.CFAlphaCLIPModel"
    with safe_open(str(tmp_path / "cf" / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "text_model.encoder.layers.0.self_attn.q_proj.weight" in keys
    assert "text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight" in keys
    for source in ("text_model.encoder.layers.0.self_attn.q_proj", "vision_model.encoder.layers.1.mlp.fc1"):
        assert f"{source}.lora_A.weight" in keys

    assert isinstance(AutoConfig.from_pretrained(tmp_path / "cf"), CFAlphaCLIPConfig)
    loaded = AutoModel.from_pretrained(tmp_path / "cf").eval()
    assert type(loaded) is CFAlphaCLIPModel
    assert loaded.alpha == 0.3
    for got, want in zip(embed(loaded, inputs), embed(model, inputs)):
        assert torch.equal(got, want)
    loaded.set_alpha(0.0)
    assert torch.equal(embed(loaded, inputs)[1], embed(base_clip, inputs)[1])
    # α can be chosen at load time (validated)
    at_09 = AutoModel.from_pretrained(tmp_path / "cf", alpha=0.9).eval()
    assert at_09.alpha == 0.9
    assert torch.equal(embed(at_09, inputs)[0], embed(model.set_alpha(0.9), inputs)[0])
    with pytest.raises(TrustVLInputError, match="1.5"):
        AutoModel.from_pretrained(tmp_path / "cf", alpha=1.5)
    zero_shot = AutoModelForZeroShotImageClassification.from_pretrained(tmp_path / "cf")
    assert type(zero_shot) is CFAlphaCLIPModel and zero_shot.alpha == 0.3


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["trustvl"] = None  # make trustvl un-importable, whatever the installation
    try:
        import trustvl  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("trustvl is importable")
    import torch
    from transformers import AutoModel

    folder, inputs_path, out_path = sys.argv[1:4]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__name__ == "CFAlphaCLIPModel", type(model)
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    assert not any(name == "trustvl" or name.startswith("trustvl.") for name, mod in sys.modules.items() if mod)
    inputs = torch.load(inputs_path)
    with torch.no_grad():
        text_a = model.get_text_features(input_ids=inputs["input_ids"]).pooler_output
        model.set_alpha(0.0)
        text_0 = model.get_text_features(input_ids=inputs["input_ids"]).pooler_output
    try:
        model.set_alpha(1.5)
    except ValueError as err:
        assert "1.5" in str(err), err
    else:
        raise AssertionError("alpha=1.5 accepted")
    torch.save({"alpha": model.config.alpha, "text_a": text_a, "text_0": text_0}, out_path)
    print("remote-ok")
    """
)


def test_trust_remote_code_without_trustvl(base_clip, inputs, tmp_path):
    model = finetuned(base_clip).set_alpha(0.7)
    model.save_pretrained(tmp_path / "cf")
    for name in ("modeling_cf_alpha_clip.py", "configuration_cf_alpha_clip.py"):
        source = (tmp_path / "cf" / name).read_text()
        assert "import trustvl" not in source and "from trustvl" not in source
    torch.save({"input_ids": inputs["input_ids"]}, tmp_path / "inputs.pt")
    (tmp_path / "remote.py").write_text(REMOTE_SCRIPT)
    env = dict(os.environ)
    # trustvl is blocked inside the script (sys.modules); also drop PYTHONPATH entries that hold it
    python_path = [
        p
        for p in env.get("PYTHONPATH", "").split(os.pathsep)
        if p and not os.path.isdir(os.path.join(p, "trustvl"))
    ]
    env["PYTHONPATH"] = os.pathsep.join(python_path)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf_home"),
        HF_MODULES_CACHE=str(tmp_path / "hf_modules"),
        TRANSFORMERS_VERBOSITY="error",
    )
    proc = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "remote.py"),
            str(tmp_path / "cf"),
            str(tmp_path / "inputs.pt"),
            str(tmp_path / "out.pt"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "remote-ok" in proc.stdout
    result = torch.load(tmp_path / "out.pt")
    assert result["alpha"] == 0.0
    with torch.no_grad():
        want_a = model.get_text_features(input_ids=inputs["input_ids"]).pooler_output
        want_0 = base_clip.get_text_features(input_ids=inputs["input_ids"]).pooler_output
    assert torch.equal(result["text_a"], want_a)
    assert torch.equal(result["text_0"], want_0)


def test_export_merged(base_clip, inputs, tmp_path):
    model = finetuned(base_clip)
    merged = model.export_merged(0.6, tmp_path / "merged")
    assert isinstance(merged, CLIPModel) and not isinstance(merged, CFAlphaCLIPModel)
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert config["model_type"] == "clip" and "auto_map" not in config and "lora_r" not in config
    assert config["cf_alpha_merged"]["alpha"] == 0.6
    assert not any(name.endswith(".py") for name in os.listdir(tmp_path / "merged"))
    with safe_open(str(tmp_path / "merged" / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert keys == set(base_clip.state_dict()) and not any("lora" in k for k in keys)

    plain = CLIPModel.from_pretrained(tmp_path / "merged").eval()
    assert type(plain) is CLIPModel
    model.set_alpha(0.6)
    for got, want in zip(embed(plain, inputs), embed(model, inputs)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)

    model.export_merged(0.0, tmp_path / "merged0")
    plain0 = CLIPModel.from_pretrained(tmp_path / "merged0").eval()
    for got, want in zip(embed(plain0, inputs), embed(base_clip, inputs)):
        assert torch.equal(got, want)
    with pytest.raises(TrustVLInputError, match="1.5"):
        model.export_merged(1.5, tmp_path / "bad")


def test_lora_only_training(base_clip, inputs):
    model = CFAlphaCLIPModel.from_clip(base_clip, lora_r=4).train()
    model.mark_only_lora_trainable()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    lora_names = {n for n, _ in model.lora_named_parameters()}
    assert trainable == lora_names and len(trainable) > 0
    expected = 2 * 2 * (4 * (4 * 32 + 32 * 4) + (4 * 32 + 64 * 4) + (4 * 64 + 32 * 4))
    assert model.num_lora_parameters() == expected == sum(p.numel() for p in model.lora_parameters())
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected
    before = {n: p.detach().clone() for n, p in model.named_parameters()}

    optimizer = torch.optim.SGD(model.lora_parameters(), lr=0.5)
    batch = {  # the CLIP loss pairs text i with image i: 2 of each
        "input_ids": inputs["input_ids"][:2],
        "attention_mask": inputs["attention_mask"][:2],
        "pixel_values": inputs["pixel_values"],
    }
    out = model(**batch, return_loss=True)
    out.loss.backward()
    assert all(p.grad is None for n, p in model.named_parameters() if n not in lora_names)
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= lora_names
    assert any(".lora_B." in n for n in changed)
    # after training, α = 0 still reproduces the frozen base exactly
    model.eval().set_alpha(0.0)
    assert torch.equal(embed(model, inputs)[1], embed(base_clip, inputs)[1])


def test_bad_lora_targets(base_clip):
    with pytest.raises(TrustVLInputError, match="nn.Linear"):
        CFAlphaCLIPModel.from_clip(base_clip, lora_target_modules=["patch_embedding"])
    with pytest.raises(TrustVLInputError, match="matches no"):
        CFAlphaCLIPModel.from_clip(base_clip, lora_target_modules=["no_such_layer"])
    with pytest.raises(TrustVLInputError, match="CLIPModel"):
        CFAlphaCLIPModel.from_clip(torch.nn.Linear(2, 2))
    only_text_q = CFAlphaCLIPModel.from_clip(base_clip, lora_target_modules=r"text_model\..*\.q_proj")
    assert sorted(only_text_q.lora_layers()) == [
        "text_model.encoder.layers.0.self_attn.q_proj",
        "text_model.encoder.layers.1.self_attn.q_proj",
    ]


# ---------------------------------------------------------------- trustvl.modeling.alpha
def test_interpolate_state_dicts():
    g = torch.Generator().manual_seed(3)
    sd0 = {
        "w": torch.randn(4, 3, generator=g),
        "ids": torch.arange(5),
        "h": torch.randn(3, generator=g).half(),
    }
    sd1 = {
        "w": torch.randn(4, 3, generator=g),
        "ids": torch.arange(5),
        "h": torch.randn(3, generator=g).half(),
    }
    out0, out1 = interpolate_state_dicts(sd0, sd1, 0.0), interpolate_state_dicts(sd0, sd1, 1)
    assert all(torch.equal(out0[k], sd0[k]) and torch.equal(out1[k], sd1[k]) for k in sd0)
    half = interpolate_state_dicts(sd0, sd1, 0.5)
    torch.testing.assert_close(half["w"], (sd0["w"] + sd1["w"]) / 2)
    assert half["h"].dtype == torch.float16 and torch.equal(half["ids"], sd0["ids"])
    tv = task_vector(sd0, sd1)
    assert set(tv) == {"w", "h"}
    torch.testing.assert_close(apply_task_vector(sd0, tv, 0.5)["w"], half["w"])
    assert torch.equal(apply_task_vector(sd0, tv, 0.0)["w"], sd0["w"])
    with pytest.raises(TrustVLInputError, match="1.5"):
        interpolate_state_dicts(sd0, sd1, 1.5)
    torch.testing.assert_close(
        interpolate_state_dicts(sd0, sd1, 1.5, allow_extrapolation=True)["w"],
        sd0["w"] + 1.5 * (sd1["w"] - sd0["w"]),
    )
    with pytest.raises(TrustVLInputError, match="different keys"):
        interpolate_state_dicts(sd0, {"w": sd1["w"]}, 0.5)


def test_lora_delta_helpers(base_clip):
    model = finetuned(base_clip)
    name, layer = next(iter(model.lora_layers().items()))
    delta = lora_delta(layer.lora_A.weight, layer.lora_B.weight, layer.scaling)
    torch.testing.assert_close(delta, layer.delta_weight())
    merged = merge_lora_delta(layer.weight, layer.lora_A.weight, layer.lora_B.weight, layer.scaling, 0.4)
    torch.testing.assert_close(merged, model.merged_state_dict(0.4)[f"{name}.weight"])
    assert torch.equal(
        merge_lora_delta(layer.weight, layer.lora_A.weight, layer.lora_B.weight, 2.0, 0.0), layer.weight
    )


def test_set_peft_lora_alpha(base_clip, inputs):
    from peft import LoraConfig, get_peft_model

    clip = CLIPModel(tiny_clip_config())
    clip.load_state_dict(base_clip.state_dict())
    peft_model = get_peft_model(
        clip, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "fc1"], init_lora_weights=False)
    )
    peft_model.eval()

    def text(m):
        with torch.no_grad():
            return m.get_text_features(input_ids=inputs["input_ids"]).pooler_output

    full = text(peft_model)
    assert (
        set_peft_lora_alpha(peft_model, 0.0) == 2 * 2 * 2 * 1
    )  # text+vision × 2 layers × 2 targets × 1 adapter
    torch.testing.assert_close(text(peft_model), text(base_clip), rtol=0, atol=1e-6)
    set_peft_lora_alpha(peft_model, 1.0)
    torch.testing.assert_close(text(peft_model), full)
    with pytest.raises(TrustVLInputError, match="1.5"):
        set_peft_lora_alpha(peft_model, 1.5)


# ---------------------------------------------------------------------------------------------- peft adapters
@pytest.mark.parametrize("targets", [None, r"vision_model\.encoder\.layers\.\d+\.self_attn\.(q_proj|v_proj)"])
def test_peft_adapter_loads_with_plain_peft_and_equals_alpha_one(base_clip, inputs, tmp_path, targets):
    from peft import PeftModel
    from safetensors.torch import load_file

    kwargs = {} if targets is None else {"lora_target_modules": targets}
    model = finetuned(base_clip, **kwargs)
    base_clip.save_pretrained(tmp_path / "base")
    model.save_adapter(tmp_path / "adapter")
    assert {p.name for p in (tmp_path / "adapter").iterdir()} >= {
        "adapter_config.json",
        "adapter_model.safetensors",
    }
    keys = set(load_file(str(tmp_path / "adapter" / "adapter_model.safetensors")))
    assert keys == {f"base_model.model.{k}" for k in model.lora_state_dict()}
    adapter_config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert (
        adapter_config["r"] == 4
        and adapter_config["lora_alpha"] == 8
        and adapter_config["peft_type"] == "LORA"
    )

    loaded = PeftModel.from_pretrained(
        CLIPModel.from_pretrained(tmp_path / "base"), tmp_path / "adapter"
    ).eval()
    for ours, theirs in zip(embed(model, inputs), embed(loaded, inputs), strict=True):
        assert (ours - theirs).abs().max().item() <= 1e-5
    assert (embed(base_clip, inputs)[1] - embed(loaded, inputs)[1]).abs().max().item() > 1e-4  # ΔW matters

    # and back: CFAlphaCLIPModel from the base + the adapter, at any α
    back = CFAlphaCLIPModel.from_peft(tmp_path / "base", tmp_path / "adapter", alpha=0.5).eval()
    assert back.alpha == 0.5 and back.config.lora_r == 4
    for key, value in model.lora_state_dict().items():
        assert torch.equal(back.state_dict()[key], value)
    with back.temporary_alpha(0.0):
        for a, b in zip(embed(back, inputs), embed(base_clip, inputs), strict=True):
            assert torch.equal(a, b)  # α = 0 stays bit-identical to the base
    with pytest.raises(TrustVLInputError, match="adapter"):
        CFAlphaCLIPModel.from_peft(base_clip, tmp_path / "base")


def test_lora_helper_targets_match_the_cf_alpha_default():
    from trustvl.modeling.cf_alpha import DEFAULT_LORA_TARGET_MODULES
    from trustvl.modeling.lora import CLIP_LORA_TARGETS

    assert tuple(DEFAULT_LORA_TARGET_MODULES) == tuple(CLIP_LORA_TARGETS)


def test_adapter_records_the_base_model(base_clip, tmp_path):
    model = finetuned(base_clip, base_model_name_or_path="org/base-clip")
    model.save_adapter(tmp_path / "adapter")
    adapter_config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "org/base-clip"


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_merged_forward_equals_lora_branch_with_gradients(alpha):
    """The one-GEMM merged form and the LoRA branch give the same outputs and LoRA gradients (float32)."""
    torch.manual_seed(0)
    layer = CFAlphaLoRALinear(16, 24, r=4, lora_alpha=8, alpha=alpha)
    torch.nn.init.normal_(layer.lora_B.weight, std=0.1)
    x = torch.randn(5, 7, 16)
    results = {}
    for merged in (True, False):
        layer.zero_grad()
        layer._merge_in_forward = (lambda _x: True) if merged else (lambda _x: False)
        y = layer(x)
        (y * torch.linspace(-1, 1, 24)).sum().backward()
        results[merged] = (y.detach(), layer.lora_A.weight.grad.clone(), layer.lora_B.weight.grad.clone())
        del layer._merge_in_forward
    for a, b in zip(results[True], results[False]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert results[True][1].abs().sum() > 0 and results[True][2].abs().sum() > 0


def test_merged_forward_only_where_it_is_exact():
    layer = CFAlphaLoRALinear(8, 8, r=2)
    x = torch.randn(3, 8)
    assert layer._merge_in_forward(x)
    assert not layer._merge_in_forward(x.half())  # mixed dtypes: branch form
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not layer._merge_in_forward(x)  # a delta merged into a bf16 weight would be rounded away
    assert not CFAlphaLoRALinear(8, 8, r=2, lora_dropout=0.1)._merge_in_forward(x)  # dropout on A x only
