"""Every ``trustvl`` subcommand, fed bad input, fails the same way (issue #15).

Each case runs the CLI in-process (:func:`trustvl.cli.main`) and asserts: exit code 2; exactly one line on
stderr, starting ``trustvl: error:``, that names the bad value (or flag); no Python traceback; the output
folder left as it was (absent, or unchanged when it existed) with nothing next to it (no staging folder,
no partial checkpoint, no stray file); and the error came before any compute (model forwards, rendering and
training are patched to fail while a case runs).

Arguments are token lists; tokens starting with ``@`` are replaced by paths made by the fixtures:
``@OUT`` (an absent output folder), ``@NONEMPTY`` (an output folder holding an old file), ``@UNDERFILE``
(an output path below a regular file: unwritable even for root), ``@CLIP`` (a tiny CLIP folder),
``@TRUNC`` (the same with a truncated ``model.safetensors``), ``@NOCONF`` (a folder without a config),
``@DATA`` (a small attributed Parquet dataset folder: a dataset of the wrong shape for most methods),
``@MISSING`` (a path that does not exist), ``@TEXT`` (a regular text file), ``@EMPTY`` (an empty file),
``@BADJSON`` (a ``.json`` file holding ``{bad``), ``@BADYAML`` (a YAML recipe with an unknown key).
The expected substring may use the same tokens.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from trustvl.cli import main

BIG = "1000000000000"


def _case(cid: str, argv: str | list[str], expect: str, *marks: object):
    tokens = argv.split() if isinstance(argv, str) else argv
    return pytest.param(tokens, expect, id=cid, marks=list(marks))


def _out_cases(prefix: str, base: list[str], out_flag: str = "--out") -> list:
    """The output-folder cases every folder-writing command shares: not empty, below a file, a file."""
    i = base.index("@OUT")
    assert base[i - 1] == out_flag
    with_out = lambda tok: [*base[:i], tok, *base[i + 1 :]]  # noqa: E731
    return [
        _case(f"{prefix}-out-not-empty", with_out("@NONEMPTY"), "@NONEMPTY"),
        _case(f"{prefix}-out-below-a-file", with_out("@UNDERFILE"), "file.txt"),
        _case(f"{prefix}-out-is-a-file", with_out("@OUTFILE"), "@OUTFILE"),
    ]


AUDIT = "audit --model @CLIP --dataset @DATA --out @OUT --quiet".split()
FIXTURES = "fixtures --out @OUT".split()
SYNTHWORLD = "build synthworld --out @OUT --n-train 8 --n-test 8 --quiet".split()
COUNTERFACTUALS = "build counterfactuals --synthworld --out @OUT --quiet".split()
DIGITS = "build spurious-digits --out @OUT --n-train 8 --n-test 8".split()
QUADS = "build safe-clip-quadruplets --out @OUT --n-train 4 --n-validation 2 --n-test 2 --quiet".split()
CAPTIONS = "build unsafe-captions --out @OUT --n 4 --quiet".split()
T_CLIP = "train synthworld-clip --out @OUT --max_steps 1 --n_scenes 8 --quiet".split()
T_SD = "train synthworld-sd --out @OUT --quiet".split()
T_CF = "train cf-alpha --dataset @DATA --base_model @CLIP --out @OUT --max_steps 1 --quiet".split()
T_RAVL = "train ravl --base_model @CLIP --dataset @DATA --discovery @TEXT --out @OUT --quiet".split()
T_SAFE = "train safe-clip --base_model @CLIP --dataset @DATA --out @OUT --quiet".split()
T_CONV = "train caption-converter --base_model @CLIP --dataset @DATA --out @OUT --quiet".split()
E_CF = "eval cf-alpha --model @CLIP --dataset @DATA --out @OUT --k 5 --quiet".split()
E_FAIR = "eval fair-diffusion --out @OUT --n 2 --steps 1 --quiet".split()
E_SAFE = "eval safe-clip --model @CLIP --dataset @DATA --out @OUT --quiet".split()
DISCOVER = "discover --model @CLIP --dataset @DATA --out @OUT --label-column occupation --quiet".split()
DEMO = "demo --out @OUT --quiet".split()
GENERATE = "generate --prompt a --n 1 --out @OUT --steps 1".split()

CASES = [
    # -- audit
    _case("audit-model-missing", [*AUDIT, "--model", "@MISSING"], "@MISSING"),
    _case("audit-model-truncated", [*AUDIT, "--model", "@TRUNC"], "@TRUNC"),
    _case("audit-model-no-config", [*AUDIT, "--model", "@NOCONF"], "@NOCONF"),
    _case("audit-dataset-missing", [*AUDIT, "--dataset", "@MISSING"], "@MISSING"),
    _case("audit-dataset-text-file", [*AUDIT, "--dataset", "@TEXT"], "@TEXT"),
    _case("audit-batch-size-0", [*AUDIT, "--batch-size", "0"], "--batch-size"),
    _case("audit-batch-size-negative", [*AUDIT, "--batch-size", "-3"], "--batch-size"),
    _case("audit-batch-size-not-int", [*AUDIT, "--batch-size", "abc"], "abc"),
    _case("audit-k-0", [*AUDIT, "--k", "0"], "--k"),
    _case("audit-k-negative", [*AUDIT, "--k", "-5"], "--k"),
    _case("audit-max-images-0", [*AUDIT, "--max-images", "0"], "--max-images"),
    _case("audit-n-resamples-negative", [*AUDIT, "--n-resamples", "-1"], "--n-resamples"),
    _case("audit-unknown-split", [*AUDIT, "--split", "nosuchsplit"], "nosuchsplit"),
    _case("audit-unknown-attribute", [*AUDIT, "--attributes", "nosuchcol"], "nosuchcol"),
    _case("audit-unknown-label-column", [*AUDIT, "--label-column", "nosuchcol"], "nosuchcol"),
    _case("audit-unknown-image-column", [*AUDIT, "--image-column", "nosuchcol"], "nosuchcol"),
    _case("audit-prompts-file-missing", [*AUDIT, "--prompts-file", "@MISSING"], "@MISSING"),
    _case("audit-bad-device", [*AUDIT, "--device", "banana"], "banana"),
    _case("audit-bad-dtype", [*AUDIT, "--dtype", "fp8"], "fp8"),
    _case("audit-unknown-flag", [*AUDIT, "--no-such-flag"], "--no-such-flag"),
    *_out_cases("audit", AUDIT),
    # -- fixtures
    *_out_cases("fixtures", FIXTURES),
    # -- build synthworld
    _case("synthworld-world-json-syntax", [*SYNTHWORLD, "--world-json", "{bad"], "--world-json"),
    _case("synthworld-world-json-unknown-key", [*SYNTHWORLD, "--world-json", '{"colour": 1}'], "colour"),
    _case("synthworld-world-json-not-object", [*SYNTHWORLD, "--world-json", "[1, 2]"], "--world-json"),
    _case("synthworld-n-test-huge", [*SYNTHWORLD, "--n-test", BIG], BIG),
    _case("synthworld-n-test-negative", [*SYNTHWORLD, "--n-test", "-1"], "--n-test"),
    _case("synthworld-num-proc-0", [*SYNTHWORLD, "--num-proc", "0"], "--num-proc"),
    _case("counterfactuals-num-proc-not-int", [*COUNTERFACTUALS, "--num-proc", "two"], "two"),
    _case("synthworld-n-train-negative", [*SYNTHWORLD, "--n-train", "-5"], "--n-train"),
    _case("synthworld-resolution-0", [*SYNTHWORLD, "--resolution", "0"], "resolution"),
    _case("synthworld-resolution-huge", [*SYNTHWORLD, "--resolution", "100000"], "resolution"),
    _case("synthworld-n-test-not-int", [*SYNTHWORLD, "--n-test", "ten"], "ten"),
    *_out_cases("synthworld", SYNTHWORLD),
    # -- build counterfactuals
    _case("cf-build-n-base-0", [*COUNTERFACTUALS, "--n-base-per-prompt", "0"], "--n-base-per-prompt"),
    _case("cf-build-n-base-negative", [*COUNTERFACTUALS, "--n-base-per-prompt", "-2"], "--n-base-per-prompt"),
    _case("cf-build-variants-0", [*COUNTERFACTUALS, "--variants-per-base", "0"], "--variants-per-base"),
    _case("cf-build-config-missing", "build counterfactuals --out @OUT --config @MISSING", "@MISSING"),
    _case("cf-build-config-bad-json", "build counterfactuals --out @OUT --config @BADJSON", "@BADJSON"),
    _case(
        "cf-build-config-unknown-key", "build counterfactuals --out @OUT --config @BADYAML", "no_such_field"
    ),
    *_out_cases("cf-build", COUNTERFACTUALS),
    # -- build spurious-digits
    _case("digits-cramers-v-above-1", [*DIGITS, "--cramers-v", "1.5"], "1.5"),
    _case("digits-cramers-v-negative", [*DIGITS, "--cramers-v", "-0.1"], "-0.1"),
    _case("digits-cramers-v-nan", [*DIGITS, "--cramers-v", "nan"], "nan"),
    _case("digits-spurious-class-10", [*DIGITS, "--spurious-class", "10"], "10"),
    _case("digits-spurious-class-negative", [*DIGITS, "--spurious-class", "-1"], "-1"),
    _case("digits-n-train-negative", [*DIGITS, "--n-train", "-1"], "-1"),
    _case("digits-n-test-huge", [*DIGITS, "--n-test", BIG], BIG),
    _case("digits-image-size-0", [*DIGITS, "--image-size", "0"], "image"),
    *_out_cases("digits", DIGITS),
    # -- build safe-clip-quadruplets
    _case("quads-n-train-negative", [*QUADS, "--n-train", "-1"], "--n-train"),
    _case("quads-n-train-huge", [*QUADS, "--n-train", BIG], BIG),
    _case("quads-shard-size-0", [*QUADS, "--shard-size", "0"], "--shard-size"),
    _case("quads-num-proc-negative", [*QUADS, "--num-proc", "-2"], "--num-proc"),
    _case("quads-batch-size-0", [*QUADS, "--batch-size", "0"], "--batch-size"),
    _case("quads-unknown-element", [*QUADS, "--elements", "dragon"], "dragon"),
    _case("quads-resolution-0", [*QUADS, "--resolution", "0"], "resolution"),
    _case("quads-diffusers-without-model", [*QUADS, "--image-stage", "diffusers"], "--model"),
    _case("quads-converter-missing", [*QUADS, "--converter", "@MISSING"], "@MISSING"),
    _case("quads-bad-image-stage", [*QUADS, "--image-stage", "dalle"], "dalle"),
    *_out_cases("quads", QUADS),
    # -- build unsafe-captions
    _case("captions-n-0", [*CAPTIONS, "--n", "0"], "--n"),
    _case("captions-n-negative", [*CAPTIONS, "--n", "-1"], "--n"),
    _case("captions-no-n", "build unsafe-captions --out @OUT", "--n"),
    _case("captions-file-missing", [*CAPTIONS, "--captions", "@MISSING"], "@MISSING"),
    _case("captions-converter-missing", [*CAPTIONS, "--converter", "@MISSING"], "@MISSING"),
    _case("captions-converter-no-config", [*CAPTIONS, "--converter", "@NOCONF"], "@NOCONF"),
    _case("captions-batch-size-0", [*CAPTIONS, "--batch-size", "0"], "--batch-size"),
    *_out_cases("captions", CAPTIONS),
    # -- train synthworld-clip
    _case("t-clip-world-syntax", [*T_CLIP, "--world", "{bad"], "world"),
    _case("t-clip-world-unknown-key", [*T_CLIP, "--world", '{"colour": 1}'], "colour"),
    _case("t-clip-arch-syntax", [*T_CLIP, "--arch", "{bad"], "arch"),
    _case("t-clip-lr-nan", [*T_CLIP, "--learning_rate", "nan"], "learning_rate"),
    _case("t-clip-lr-inf", [*T_CLIP, "--learning-rate", "inf"], "learning_rate"),
    _case("t-clip-n-scenes-0", [*T_CLIP, "--n_scenes", "0"], "n_scenes"),
    _case("t-clip-n-scenes-huge", [*T_CLIP, "--n_scenes", BIG], "n_scenes"),
    _case("t-clip-resolution-0", [*T_CLIP, "--resolution", "0"], "resolution"),
    _case("t-clip-caption-prob", [*T_CLIP, "--appearance_caption_prob", "1.5"], "appearance_caption_prob"),
    _case("t-clip-batch-0", [*T_CLIP, "--per_device_train_batch_size", "0"], "per_device_train_batch_size"),
    _case("t-clip-max-steps-negative", [*T_CLIP, "--max_steps", "-5"], "max_steps"),
    _case("t-clip-config-unknown-key", [*T_CLIP, "--config", "@BADYAML"], "no_such_field"),
    _case("t-clip-config-bad-json", [*T_CLIP, "--config", "@BADJSON"], "@BADJSON"),
    _case("t-clip-config-missing", [*T_CLIP, "--config", "@MISSING"], "@MISSING"),
    _case("t-clip-resume-nothing", [*T_CLIP, "--resume"], "@OUT"),
    *_out_cases("t-clip", T_CLIP),
    # -- train synthworld-sd
    _case("t-sd-unsafe-prob", [*T_SD, "--unsafe_prob", "1.5"], "unsafe_prob"),
    _case("t-sd-cfg-dropout", [*T_SD, "--cfg_dropout", "-0.1"], "cfg_dropout"),
    _case("t-sd-vae-lr-nan", [*T_SD, "--vae_learning_rate", "nan"], "vae_learning_rate"),
    _case("t-sd-n-biased-negative", [*T_SD, "--n_biased_scenes", "-1"], "n_biased_scenes"),
    _case("t-sd-clip-dir-missing", [*T_SD, "--clip_dir", "@MISSING"], "@MISSING"),
    _case("t-sd-unsafe-kind", [*T_SD, "--unsafe_kinds", "dragon"], "dragon"),
    *_out_cases("t-sd", T_SD),
    # -- train cf-alpha
    _case("t-cf-lr-nan", [*T_CF, "--learning_rate", "nan"], "learning_rate"),
    _case("t-cf-lr-negative", [*T_CF, "--learning_rate", "-1"], "learning_rate"),
    _case("t-cf-beta-nan", [*T_CF, "--beta_cf", "nan"], "beta_cf"),
    _case("t-cf-lora-r-0", [*T_CF, "--lora_r", "0"], "lora_r"),
    _case("t-cf-alpha-range-one", [*T_CF, "--alpha_range", "0.1"], "alpha_range"),
    _case("t-cf-bad-loss", [*T_CF, "--cf_loss", "bogus"], "bogus"),
    _case("t-cf-beta-score-negative", [*T_CF, "--beta_score", "-1"], "beta_score"),
    _case(
        "t-cf-endpoint-prob-2",
        [*T_CF, "--alpha_range", "0", "1", "--alpha_endpoint_prob", "2"],
        "alpha_endpoint_prob",
    ),
    _case("t-cf-weight-by-alpha-no-range", [*T_CF, "--cf_weight_by_alpha"], "cf_weight_by_alpha"),
    _case("t-cf-effect-no-attributes", [*T_CF, "--beta_effect", "1"], "effect_attributes"),
    _case(
        "t-cf-path-power-0",
        [*T_CF, "--alpha_range", "0", "1", "--alpha_path_power", "0"],
        "alpha_path_power",
    ),
    _case("t-cf-seed-negative", [*T_CF, "--seed", "-1"], "seed"),
    _case("t-cf-config-unknown-key", [*T_CF, "--config", "@BADYAML"], "no_such_field"),
    _case("t-cf-dataset-missing", [*T_CF, "--dataset", "@MISSING"], "@MISSING"),
    _case("t-cf-dataset-wrong-shape", T_CF, "@DATA"),
    _case("t-cf-resume-nothing", [*T_CF, "--resume"], "@OUT"),
    *_out_cases("t-cf", T_CF),
    # -- train ravl
    _case("t-ravl-discovery-not-json", T_RAVL, "@TEXT"),
    _case("t-ravl-discovery-missing", [*T_RAVL, "--discovery", "@MISSING"], "@MISSING"),
    _case("t-ravl-lambda-nan", [*T_RAVL, "--lambda_align", "nan"], "lambda_align"),
    _case("t-ravl-grid-0", [*T_RAVL, "--grid_n", "0"], "grid_n"),
    _case("t-ravl-lora-r-0", [*T_RAVL, "--lora_r", "0"], "lora_r"),
    *_out_cases("t-ravl", T_RAVL),
    # -- train safe-clip
    _case("t-safe-dataset-missing", [*T_SAFE, "--dataset", "@MISSING"], "@MISSING"),
    _case("t-safe-dataset-wrong-shape", T_SAFE, "@DATA"),
    _case("t-safe-logit-scale-nan", [*T_SAFE, "--logit_scale", "nan"], "logit_scale"),
    _case("t-safe-weight-negative", [*T_SAFE, "--weight_text_safe", "-1"], "-1.0"),
    _case("t-safe-lr-inf", [*T_SAFE, "--learning_rate", "inf"], "learning_rate"),
    _case("t-safe-lora-r-0", [*T_SAFE, "--lora_r", "0"], "lora_r"),
    *_out_cases("t-safe", T_SAFE),
    # -- train caption-converter
    _case("t-conv-model-no-config", [*T_CONV, "--base_model", "@NOCONF"], "@NOCONF"),
    _case("t-conv-dataset-missing", [*T_CONV, "--dataset", "@MISSING"], "@MISSING"),
    _case("t-conv-max-length-0", [*T_CONV, "--max_length", "0"], "max_length"),
    _case("t-conv-lr-nan", [*T_CONV, "--learning_rate", "nan"], "learning_rate"),
    _case("t-conv-prompt-format", [*T_CONV, "--prompt_format", "bogus"], "bogus"),
    *_out_cases("t-conv", T_CONV),
    # -- eval cf-alpha
    _case("e-cf-model-missing", [*E_CF, "--model", "@MISSING"], "@MISSING"),
    _case("e-cf-model-truncated", [*E_CF, "--model", "@TRUNC"], "@TRUNC"),
    _case("e-cf-dataset-missing", [*E_CF, "--dataset", "@MISSING"], "@MISSING"),
    _case("e-cf-alpha-nan", [*E_CF, "--alphas", "nan"], "nan"),
    _case("e-cf-alpha-extrapolated", [*E_CF, "--alphas", "5"], "5"),
    _case("e-cf-k-0", [*E_CF, "--k", "0"], "--k"),
    _case("e-cf-n-resamples-negative", [*E_CF, "--n-resamples", "-1"], "--n-resamples"),
    _case("e-cf-max-images-0", [*E_CF, "--max-images", "0"], "--max-images"),
    *_out_cases("e-cf", E_CF),
    # -- eval fair-diffusion
    _case("e-fair-n-0", [*E_FAIR, "--n", "0"], "--n"),
    _case("e-fair-steps-0", [*E_FAIR, "--steps", "0"], "--steps"),
    _case("e-fair-guidance-nan", [*E_FAIR, "--guidance", "nan"], "--guidance"),
    _case("e-fair-tolerance-2", [*E_FAIR, "--tolerance", "2"], "--tolerance"),
    _case("e-fair-n-resamples-negative", [*E_FAIR, "--n-resamples", "-1"], "--n-resamples"),
    _case("e-fair-batch-size-0", [*E_FAIR, "--batch-size", "0"], "--batch-size"),
    _case("e-fair-shares-not-1", [*E_FAIR, "--fair", "gender=a:0.3,b:0.3"], "0.3"),
    _case("e-fair-unknown-preset", [*E_FAIR, "--fair", "bogus"], "bogus"),
    _case("e-fair-file-missing", [*E_FAIR, "--fair-file", "@MISSING"], "@MISSING"),
    _case("e-fair-file-bad-json", [*E_FAIR, "--fair-file", "@BADJSON"], "@BADJSON"),
    _case("e-fair-threshold", [*E_FAIR, "--fair-threshold", "1.5"], "1.5"),
    _case("e-fair-scale-nan", [*E_FAIR, "--fair-scale", "nan"], "nan"),
    _case("e-fair-model-missing", [*E_FAIR, "--model", "@MISSING"], "@MISSING"),
    _case("e-fair-classifier-missing", [*E_FAIR, "--classifier", "@MISSING"], "@MISSING"),
    _case("e-fair-occupations-count", [*E_FAIR, "--prompts", "a", "b", "--occupations", "x"], "occupations"),
    *_out_cases("e-fair", E_FAIR),
    # -- eval safe-clip
    _case("e-safe-k-0", [*E_SAFE, "--k", "0"], "--k"),
    _case("e-safe-nsfw-k-0", [*E_SAFE, "--nsfw-k", "0"], "nsfw"),
    _case("e-safe-batch-size-0", [*E_SAFE, "--batch-size", "0"], "batch"),
    _case("e-safe-max-rows-0", [*E_SAFE, "--max-rows", "0"], "max"),
    _case("e-safe-model-missing", [*E_SAFE, "--model", "@MISSING"], "@MISSING"),
    _case("e-safe-dataset-missing", [*E_SAFE, "--dataset", "@MISSING"], "@MISSING"),
    _case("e-safe-dataset-wrong-shape", E_SAFE, "safe_text"),
    _case("e-safe-base-model-missing", [*E_SAFE, "--base-model", "@MISSING"], "@MISSING"),
    *_out_cases("e-safe", E_SAFE),
    # -- discover
    _case("discover-model-missing", [*DISCOVER, "--model", "@MISSING"], "@MISSING"),
    _case("discover-model-truncated", [*DISCOVER, "--model", "@TRUNC"], "@TRUNC"),
    _case("discover-model-no-config", [*DISCOVER, "--model", "@NOCONF"], "@NOCONF"),
    _case("discover-dataset-missing", [*DISCOVER, "--dataset", "@MISSING"], "@MISSING"),
    _case("discover-unknown-label-column", [*DISCOVER, "--label-column", "nosuchcol"], "nosuchcol"),
    _case("discover-grid-0", [*DISCOVER, "--grid", "0"], "--grid"),
    _case("discover-max-images-0", [*DISCOVER, "--max-images", "0"], "--max-images"),
    _case("discover-unknown-split", [*DISCOVER, "--split", "nosuchsplit"], "nosuchsplit"),
    *_out_cases("discover", DISCOVER),
    # -- demo
    _case("demo-n-test-0", [*DEMO, "--n-test", "0"], "--n-test"),
    _case("demo-n-test-huge", [*DEMO, "--n-test", BIG], BIG),
    _case("demo-max-steps-0", [*DEMO, "--max-steps", "0"], "--max-steps"),
    _case("demo-k-above-n-test", [*DEMO, "--n-test", "50"], "--k 100 exceeds --n-test 50"),
    _case("demo-k-0", [*DEMO, "--k", "0"], "--k"),
    _case("demo-n-base-0", [*DEMO, "--n-base-per-occupation", "0"], "--n-base-per-occupation"),
    _case("demo-base-model-truncated", [*DEMO, "--base-model", "@TRUNC"], "@TRUNC"),
    _case("demo-base-model-no-config", [*DEMO, "--base-model", "@NOCONF"], "@NOCONF"),
    _case("demo-base-model-missing", [*DEMO, "--base-model", "@MISSING"], "@MISSING"),
    *_out_cases("demo", DEMO),
    # -- generate
    _case("generate-n-0", [*GENERATE, "--n", "0"], "--n"),
    _case("generate-n-negative", [*GENERATE, "--n", "-1"], "--n"),
    _case("generate-steps-0", [*GENERATE, "--steps", "0"], "--steps"),
    _case("generate-guidance-nan", [*GENERATE, "--guidance", "nan"], "--guidance"),
    _case("generate-batch-size-0", [*GENERATE, "--batch-size", "0"], "--batch-size"),
    _case("generate-model-missing", [*GENERATE, "--model", "@MISSING"], "@MISSING"),
    _case("generate-model-no-config", [*GENERATE, "--model", "@NOCONF"], "@NOCONF"),
    _case("generate-text-encoder-missing", [*GENERATE, "--text-encoder", "@MISSING"], "@MISSING"),
    _case("generate-unknown-preset", [*GENERATE, "--fair", "bogus"], "bogus"),
    _case("generate-bad-dtype", [*GENERATE, "--dtype", "float8"], "float8"),
    *_out_cases("generate", GENERATE),
    # -- the parser itself
    _case("unknown-command", "frobnicate", "frobnicate"),
    _case("build-unknown-what", "build nothing --out @OUT", "nothing"),
    # -- publish (stage with --dry-run; nothing is uploaded in any case)
    _case("publish-model-missing", "publish model @MISSING --repo-id me/m --dry-run", "@MISSING"),
    _case("publish-model-noconf", "publish model @NOCONF --repo-id me/m --dry-run", "@NOCONF"),
    _case(
        "publish-model-bad-repo-id", "publish model @CLIP --repo-id not/a/repo/id --dry-run", "not/a/repo/id"
    ),
    _case("publish-adapter-not-an-adapter", "publish adapter @CLIP --repo-id me/a --dry-run", "@CLIP"),
    _case("publish-dataset-missing", "publish dataset @MISSING --repo-id me/d --dry-run", "@MISSING"),
    _case("publish-dataset-not-parquet", "publish dataset @NOCONF --repo-id me/d --dry-run", "@NOCONF"),
    _case("publish-metric-missing", "publish metric @MISSING --repo-id me/max_skew --dry-run", "@MISSING"),
    _case("publish-metric-not-a-module", "publish metric @NOCONF --repo-id me/x --dry-run", "@NOCONF"),
    _case("publish-space-missing", "publish space @MISSING --repo-id me/s --dry-run", "@MISSING"),
    _case("publish-space-no-readme", "publish space @NOCONF --repo-id me/s --dry-run", "@NOCONF"),
]


@pytest.fixture(scope="module")
def inputs(tiny_clip_dir, tiny_parquet_dir, tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad-inputs")
    trunc = root / "truncated-clip"
    shutil.copytree(tiny_clip_dir, trunc)
    weights = trunc / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    noconf = root / "no-config"
    noconf.mkdir()
    (noconf / "notes.txt").write_text("no model here\n")
    text = root / "notes.txt"
    text.write_text("not a dataset\n")
    empty = root / "empty.txt"
    empty.write_text("")
    bad_json = root / "bad.json"
    bad_json.write_text("{bad")
    bad_yaml = root / "bad.yaml"
    bad_yaml.write_text("no_such_field: 1\n")
    return {
        "@CLIP": str(tiny_clip_dir),
        "@TRUNC": str(trunc),
        "@NOCONF": str(noconf),
        "@DATA": str(tiny_parquet_dir),
        "@MISSING": str(root / "does-not-exist"),
        "@TEXT": str(text),
        "@EMPTY": str(empty),
        "@BADJSON": str(bad_json),
        "@BADYAML": str(bad_yaml),
    }


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


class _ComputeStarted(BaseException):  # not an Exception: the CLI's error path must not swallow it
    pass


def _refuse_compute(*args, **kwargs):
    raise _ComputeStarted(
        "compute started before the bad input was refused (a model forward, a render or a fit)"
    )


@pytest.fixture
def no_compute(monkeypatch):
    """Bad input must be refused before any model runs, any scene is rendered or any training starts."""
    import torch
    import transformers

    from trustvl.data_builders.synthworld import render

    monkeypatch.setattr(torch.nn.Module, "__call__", _refuse_compute)
    monkeypatch.setattr(
        render, "render_spec", _refuse_compute
    )  # every SynthWorldRenderer scene goes through it
    monkeypatch.setattr(transformers.Trainer, "train", _refuse_compute)


@pytest.mark.parametrize(("argv", "expect"), CASES)
def test_bad_input_is_one_clear_line(argv, expect, inputs, tmp_path, capsys, monkeypatch, no_compute):
    monkeypatch.delenv("TRUSTVL_DEBUG", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    (work / "file.txt").write_text("a regular file\n")
    (work / "old-run").mkdir()
    (work / "old-run" / "old.txt").write_text("an earlier run\n")
    paths = {
        **inputs,
        "@OUT": str(work / "out"),
        "@NONEMPTY": str(work / "old-run"),
        "@UNDERFILE": str(work / "file.txt" / "sub"),
        "@OUTFILE": str(work / "file.txt"),
    }
    argv = [paths.get(tok, tok) for tok in argv]
    expect = paths.get(expect, expect)
    before = _snapshot(work)

    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors exit through SystemExit(2)
        code = exit_.code
    err = capsys.readouterr().err

    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit code {code!r}; stderr:\n{err}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert lines[0].startswith("trustvl: error: "), lines[0]
    assert expect.lower() in lines[0].lower(), f"{expect!r} not named in: {lines[0]}"
    assert _snapshot(work) == before, "the output folder (or what is next to it) changed"


def test_the_table_is_large_and_walks_every_subcommand():
    from trustvl.cli import build_parser

    assert len(CASES) >= 100
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    walked = {" ".join(c.values[0][:2]) for c in CASES} | {c.values[0][0] for c in CASES}
    for name, p in sub.choices.items():
        inner = [a for a in p._actions if getattr(a, "dest", "") == f"{name}_what"]
        whats = inner[0].choices if inner else {}
        for what in whats or [None]:
            key = name if what is None else f"{name} {what}"
            assert key in walked, f"no bad-input case for `trustvl {key}`"


def test_debug_flag_shows_the_traceback(inputs, tmp_path, monkeypatch):
    monkeypatch.delenv("TRUSTVL_DEBUG", raising=False)
    from trustvl.errors import TrustVLInputError

    (tmp_path / "file.txt").write_text("x")
    out = str(tmp_path / "file.txt" / "o")
    with pytest.raises(TrustVLInputError, match="file.txt"):
        main(["--debug", "build", "spurious-digits", "--out", out, "--n-train", "4", "--n-test", "4"])
    assert sorted(os.listdir(tmp_path)) == ["file.txt"]
