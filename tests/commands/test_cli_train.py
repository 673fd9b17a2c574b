"""`trustvl train`: each subcommand is its config class parsed by HfArgumentParser (flags, --config files)."""

from __future__ import annotations

import json

import pytest

from trustvl.cli import build_parser, main
from trustvl.commands._common import config_from_namespace
from trustvl.training.cf_alpha import VISION_LORA_TARGETS, CFAlphaConfig
from trustvl.training.ravl import RaVLConfig
from trustvl.training.synthworld_clip import SynthWorldCLIPPretrainConfig


@pytest.mark.parametrize(
    ("command", "fields"),
    [
        ("cf-alpha", ["--beta_cf", "--lora_r", "--variants_per_set", "--learning_rate", "--output_dir"]),
        ("ravl", ["--lambda_align", "--discovery", "--use_lora", "--per_device_train_batch_size"]),
        ("synthworld-clip", ["--n_scenes", "--appearance_caption_prob", "--world", "--max_steps"]),
    ],
)
def test_help_lists_each_field_once_with_default_and_doc(command, fields, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in [*fields, "--config", "--resume", "--quiet"]:
        assert f"\n  {flag} " in out or f"\n  {flag}," in out, flag
        assert out.count(f"\n  {flag} ") + out.count(f"\n  {flag},") == 1, flag
    if command == "cf-alpha":
        assert "β0, weight of the counterfactual loss L_cf. (default: 30.0)" in " ".join(out.split())


def _parse(argv: list[str]) -> CFAlphaConfig:
    args = build_parser().parse_args(argv)
    return config_from_namespace(args.config_class, args)


def test_flags_config_file_and_overrides(tmp_path):
    config = _parse(["train", "cf-alpha", "--dataset", "d", "--out", str(tmp_path / "run")])
    assert isinstance(config, CFAlphaConfig)
    assert config.output_dir == str(tmp_path / "run") and config.beta_cf == 30.0 and config.lora_r == 8
    assert config.learning_rate == 1e-3 and config.max_steps == 300 and config.warmup_steps == 20
    assert config.per_device_train_batch_size == 32 and config.lora_target_modules == VISION_LORA_TARGETS
    assert str(config.lr_scheduler_type.value) == "cosine" and config.optim == "adamw_torch"
    assert config.remove_unused_columns is False and config.dataloader_drop_last is True
    assert config.report_to == [] and config.seed == 0

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"dataset: data/cf\noutput_dir: {tmp_path / 'r'}\nbeta_cf: 12.5\nmax_steps: 40\nalpha_range: [0.2, 0.6]\n"
        "lora_target_modules: [q_proj, v_proj]\n"
    )
    config = _parse(["train", "cf-alpha", "--config", str(recipe), "--max-steps", "7"])
    assert config.dataset == "data/cf" and config.beta_cf == 12.5 and config.alpha_range == [0.2, 0.6]
    assert config.max_steps == 7  # the command line overrides the file
    assert config.lora_target_modules == ["q_proj", "v_proj"]

    as_json = tmp_path / "recipe.json"
    as_json.write_text(json.dumps({"base_model": "b", "dataset": "d", "discovery": "x", "output_dir": "o"}))
    ravl = _parse(["train", "ravl", "--config", str(as_json), "--use_lora", "false"])
    assert isinstance(ravl, RaVLConfig) and ravl.use_lora is False and ravl.learning_rate == 1e-3

    world = _parse(["train", "synthworld-clip", "--out", "o", "--world", '{"strength": {"skin_tone": 0.9}}'])
    assert isinstance(world, SynthWorldCLIPPretrainConfig) and world.world == {"strength": {"skin_tone": 0.9}}


def test_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: d\nno_such_field: 1\n")
    with pytest.raises(SystemExit) as exit_info:  # a bad file is a bad flag: argparse's usage error
        main(["train", "cf-alpha", "--config", str(bad), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2 and "no_such_field" in capsys.readouterr().err
    assert main(["train", "cf-alpha", "--out", str(tmp_path / "o")]) == 2  # no dataset
    assert "dataset is required" in capsys.readouterr().err
    assert main(["train", "cf-alpha", "--dataset", "d", "--out", "o", "--alpha_range", "0.1"]) == 2
    assert "alpha_range" in capsys.readouterr().err
