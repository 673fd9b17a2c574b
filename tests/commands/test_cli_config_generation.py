"""``--config FILE`` and flag overrides for the commands whose options come from their configuration dataclass
since the second architecture pass: ``generate``, ``eval fair-diffusion``, ``build counterfactuals`` (its file
is the grid YAML), ``build safe-clip-quadruplets`` and ``build unsafe-captions``; their old flag spellings and
defaults are kept."""

from __future__ import annotations

import dataclasses
import json

import pytest

from trustvl.cli import build_parser, main
from trustvl.commands._common import config_from_namespace
from trustvl.pipelines.fairness_instruction import FAIR_DIFFUSION_MOMENTUM, FairnessInstruction


def _config(argv: list[str]):
    args = build_parser().parse_args(argv)
    return config_from_namespace(args.config_class, args)


def _instruction_defaults() -> dict:
    return {f.name: f.default for f in dataclasses.fields(FairnessInstruction)}


def test_generate_defaults_and_old_flag_spellings():
    cfg = _config(["generate", "--prompt", "a photo of a chef", "--out", "o"])
    assert (cfg.prompts, cfg.out_dir, cfg.n, cfg.seed) == (["a photo of a chef"], "o", 8, 0)
    assert (cfg.num_inference_steps, cfg.guidance_scale, cfg.batch_size) == (20, 8.0, 64)
    g, knobs = cfg.guidance, _instruction_defaults()
    assert (g.fair_scale, g.fair_warmup, g.fair_cooldown, g.fair_threshold) == (
        knobs["guidance_scale"], knobs["warmup_steps"], knobs["cooldown_steps"], knobs["threshold"]
    )  # fmt: skip
    assert (g.fair_momentum, g.fair_momentum_beta) == FAIR_DIFFUSION_MOMENTUM
    assert g.plan(cfg.prompts, cfg.subjects) is None  # no --fair: plain generation

    cfg = _config(
        ["generate", "--prompt", "a photo of a chef", "--prompt", "a photo of a nurse", "--out", "o",
         "--steps", "3", "--guidance", "6.5", "--batch-size", "4", "--fair", "gender", "--fair", "skin_tone",
         "--fair-scale", "5", "--fair-warmup", "2", "--fair-context", "--fair-subject", "chef", "nurse",
         "--fair-momentum", "0.3", "--fair-momentum-beta", "0.4", "--overwrite"]
    )  # fmt: skip
    assert cfg.prompts == ["a photo of a chef", "a photo of a nurse"]  # repeated --prompt extends
    assert (cfg.num_inference_steps, cfg.guidance_scale, cfg.batch_size, cfg.overwrite) == (3, 6.5, 4, True)
    plan = cfg.guidance.plan(cfg.prompts, cfg.subjects)
    assert [i.attribute for i in plan.instructions] == ["gender", "skin_tone"]  # repeated --fair extends
    assert all(i.guidance_scale == 5.0 and i.warmup_steps == 2 for i in plan.instructions)
    assert "{subject}" in next(iter(plan.instructions[0].prompts.values()))  # --fair-context
    assert (plan.momentum_scale, plan.momentum_beta) == (0.3, 0.4)
    assert plan.subjects == {"a photo of a chef": "chef", "a photo of a nurse": "nurse"}


def test_generate_config_file_and_flags_override_it(tmp_path):
    recipe = tmp_path / "generate.yaml"
    recipe.write_text(
        "prompts: [a photo of a pilot, a photo of a teacher]\nout_dir: from-file\nn: 6\nseed: 3\n"
        "guidance:\n  fair: [gender]\n  fair_scale: 3.0\n  fair_threshold: 0.9\n"
    )
    cfg = _config(["generate", "--config", str(recipe), "--n", "2", "--fair-scale", "7"])
    assert cfg.prompts == ["a photo of a pilot", "a photo of a teacher"] and cfg.out_dir == "from-file"
    assert (cfg.n, cfg.seed) == (2, 3)  # the flag overrides the file, the file the default
    (instruction,) = cfg.guidance.instructions()
    assert (instruction.attribute, instruction.guidance_scale, instruction.threshold) == ("gender", 7.0, 0.9)

    recipe.write_text("prompts: [a photo of a pilot]\nout_dir: o\nfair: [skin_tone]\nfair_warmup: 1\n")
    (instruction,) = _config(["generate", "--config", str(recipe)]).guidance.instructions()
    assert (instruction.attribute, instruction.warmup_steps) == ("skin_tone", 1)  # flat keys work too


def test_eval_fair_diffusion_defaults_are_the_evaluation_of_before():
    cfg = _config(["eval", "fair-diffusion", "--out", "o"])
    plan, prompts = cfg.check()
    assert len(prompts) == 8 and (cfg.n, cfg.batch_size, cfg.n_resamples, cfg.tolerance) == (
        64,
        512,
        1000,
        0.1,
    )
    assert plan.instructions == (FairnessInstruction.synthworld("gender"),)
    assert (plan.momentum_scale, plan.momentum_beta) == FAIR_DIFFUSION_MOMENTUM
    assert cfg.progress is True and cfg.dtype is None


def test_eval_fair_diffusion_config_file_and_flags_override_it(tmp_path):
    recipe = tmp_path / "fair.yaml"
    recipe.write_text(
        "out_dir: o\nn: 4\nprompts: [a photo of a chef, a photo of a nurse]\noccupations: [chef, nurse]\n"
        "tolerance: 0.2\nguidance:\n  fair_warmup: 2\n  fair_momentum: 0.1\n"
    )
    cfg = _config(
        ["eval", "fair-diffusion", "--config", str(recipe), "--fair-threshold", "0.8", "--steps", "2",
         "--guidance", "7", "--quiet", "--fair-context"]
    )  # fmt: skip
    plan, prompts = cfg.check()
    assert prompts == ["a photo of a chef", "a photo of a nurse"] and cfg.n == 4 and cfg.tolerance == 0.2
    assert (cfg.num_inference_steps, cfg.guidance_scale, cfg.progress) == (2, 7.0, False)
    (instruction,) = plan.instructions
    assert instruction == FairnessInstruction.synthworld(
        "gender", contextual=True, guidance_scale=4.0, warmup_steps=2, cooldown_steps=None, threshold=0.8
    )  # the SynthWorld default with the file's and the flags' knobs
    assert plan.momentum_scale == 0.1 and plan.subjects == {
        "a photo of a chef": "chef",
        "a photo of a nurse": "nurse",
    }

    cfg = _config(["eval", "fair-diffusion", "--config", str(recipe), "--fair", "gender=a:0.25,b:0.75"])
    (instruction,) = cfg.check()[0].instructions
    assert dict(instruction.groups) == {"a": 0.25, "b": 0.75} and instruction.warmup_steps == 2


def test_build_counterfactuals_config_is_the_grid_yaml(tmp_path):
    from trustvl.data_builders.cf_alpha import load_counterfactual_config

    grid = tmp_path / "grid.yaml"
    grid.write_text("extends: default\nn_base_per_prompt: 2\nseed: 5\nsettings: [on a street]\n")
    for given in (["--config", str(grid)], ["--grid", str(grid)]):
        cfg = _config(
            ["build", "counterfactuals", "--out", "o", *given, "--seed", "7", "--variants-per-base", "3"]
        )
        config = load_counterfactual_config(cfg.grid, **cfg.grid_overrides())
        assert (config.n_base_per_prompt, config.seed, config.variants_per_base) == (2, 7, 3)
        assert list(config.settings) == ["on a street"]  # the rest of the file, as before
    cfg = _config(["build", "counterfactuals", "--out", "o", "--synthworld", "--quiet"])
    assert cfg.grid is None and cfg.synthworld and not cfg.progress and cfg.grid_overrides() == {}


def test_build_safe_clip_quadruplets_config_file_and_flags_override_it(tmp_path, capsys):
    from trustvl.data_builders.safe_clip.quadruplets import QuadrupletConfig

    cfg = _config(["build", "safe-clip-quadruplets", "--out", "o"])
    assert cfg.quadruplets == QuadrupletConfig() and cfg.image_stage == "synthworld"
    recipe = tmp_path / "quads.yaml"
    recipe.write_text(
        "out_dir: o\nquadruplets:\n  n_train: 4\n  elements: [gun, knife]\n  seed: 2\nimage_stage: synthworld\n"
    )
    cfg = _config(
        ["build", "safe-clip-quadruplets", "--config", str(recipe), "--n-test", "2", "--elements", "blood",
         "--steps", "3", "--guidance", "5"]
    )  # fmt: skip
    q = cfg.quadruplets
    assert (q.n_train, q.n_validation, q.n_test, q.seed, q.elements) == (4, 100, 2, 2, ("blood",))
    assert (cfg.num_inference_steps, cfg.guidance_scale) == (3, 5.0)

    flat = tmp_path / "flat.yaml"  # a nested field's flags may also be top-level keys
    flat.write_text("out_dir: o\nn_train: 4\nelements: [gun, knife]\nseed: 2\n")
    q = _config(["build", "safe-clip-quadruplets", "--config", str(flat), "--n-test", "2"]).quadruplets
    assert (q.n_train, q.n_test, q.seed, q.elements) == (4, 2, 2, ("gun", "knife"))
    flat.write_text("out_dir: o\nn_trains: 4\n")
    with pytest.raises(SystemExit) as exit_:  # an unknown key is still refused
        main(["build", "safe-clip-quadruplets", "--config", str(flat)])
    assert exit_.value.code == 2 and "n_trains" in capsys.readouterr().err


def test_build_unsafe_captions_from_a_config_file(tmp_path, capsys):
    recipe = tmp_path / "captions.yaml"
    recipe.write_text("n: 5\nbatch_size: 2\nworld_seed: 1\nout_dir: ignored\n")
    out = tmp_path / "captions"
    assert (
        main(["build", "unsafe-captions", "--config", str(recipe), "--out", str(out), "--n", "3", "--quiet"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n_input"] == 3 and summary["out_dir"] == str(out)  # the flags override the file
    assert not (tmp_path / "ignored").exists()


@pytest.mark.parametrize(
    "command",
    [["generate"], ["eval", "fair-diffusion"], ["build", "counterfactuals"], ["build", "safe-clip-quadruplets"],
     ["build", "unsafe-captions"]],
)  # fmt: skip
def test_help_lists_each_option_once_with_its_default(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    text = capsys.readouterr().out
    entries = [line.split()[0].rstrip(",") for line in text.splitlines() if line.startswith("  --")]
    assert len(entries) == len(set(entries)), entries
    shown = [e for e in entries if e not in ("--no_progress",)]
    assert text.count("(default:") == len(shown), text  # each option but the negative switch, once
