"""One error path for every command: an unreadable image is named by its dataset row, after the progress
bars are closed; ``--debug`` is trustvl's traceback switch wherever it is placed (issue 22 item 8)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from trustvl.cli import main


def _dataset_with_a_corrupt_image(folder, n=12, bad_row=9):
    from datasets import ClassLabel, Dataset, Features, Image
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    images = []
    for i in range(n):
        buffer = io.BytesIO()
        PILImage.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(buffer, format="PNG")
        images.append({"bytes": b"not an image at all" if i == bad_row else buffer.getvalue(), "path": None})
    features = Features({"image": Image(), "gender": ClassLabel(names=["female", "male"])})
    ds = Dataset.from_dict({"image": images, "gender": [i % 2 for i in range(n)]}, features=features)
    (folder / "data").mkdir(parents=True)
    ds.to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))
    return folder


def test_audit_names_the_unreadable_row_after_closing_its_progress_bar(tiny_clip_dir, tmp_path, capsys):
    from tqdm import tqdm

    data = _dataset_with_a_corrupt_image(tmp_path / "data")
    out = tmp_path / "out"
    code = main(["audit", "--model", str(tiny_clip_dir), "--dataset", str(data), "--out", str(out),
                 "--batch-size", "4", "--no-cache", "--k", "2"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    last = err.rstrip("\n").rsplit("\n", 1)[-1]
    # the error is the last thing written: no progress bar redrawn after (or over) it
    assert last.startswith("trustvl: error: "), err
    assert "row 9" in last and "'image'" in last and "cannot identify image file" in last, last
    assert "BytesIO" not in err
    assert not [bar for bar in getattr(tqdm, "_instances", ()) if not bar.disable], "a progress bar left open"
    assert not out.exists()


def test_debug_after_the_subcommand_is_trustvls_traceback_switch(tmp_path, capsys):
    from trustvl.errors import TrustVLInputError

    (tmp_path / "file.txt").write_text("x")
    under_a_file = str(tmp_path / "file.txt" / "run")
    argv = ["train", "cf-alpha", "--dataset", "d", "--out", under_a_file, "--max_steps", "1"]
    assert main(argv) == 2  # without --debug: one line
    assert capsys.readouterr().err.startswith("trustvl: error: ")
    with pytest.raises(TrustVLInputError, match="file.txt"):  # transformers' own `debug` field never takes it
        main([*argv, "--debug"])
    with pytest.raises(TrustVLInputError, match="file.txt"):
        main(["build", "spurious-digits", "--debug", "--out", under_a_file])


def test_every_config_command_takes_a_config_file_and_flags_override_it(tmp_path):
    import json

    from trustvl.cli import build_parser
    from trustvl.commands._common import config_from_namespace

    recipe = tmp_path / "demo.yaml"
    recipe.write_text("n_test: 200\nks: [10, 50]\ncf_alpha:\n  beta_cf: 12.5\n  max_steps: 40\n")
    args = build_parser().parse_args(["demo", "--config", str(recipe), "--max-steps", "7", "--quiet"])
    demo = config_from_namespace(args.config_class, args)
    assert demo.n_test == 200 and demo.ks == [10, 50] and demo.progress is False
    assert demo.cf_alpha.beta_cf == 12.5 and demo.cf_alpha.max_steps == 7  # the flag overrides the file
    assert demo.cf_alpha.learning_rate == 4e-3 and demo.cf_alpha.per_device_train_batch_size == 16

    as_json = tmp_path / "audit.json"
    as_json.write_text(
        json.dumps({"model": "m", "dataset": "d", "out_dir": "o", "ks": [5], "extra": {"a": 1}})
    )
    args = build_parser().parse_args(["audit", "--config", str(as_json), "--batch-size", "8", "--no-cache"])
    audit = config_from_namespace(args.config_class, args)
    assert (audit.model, audit.ks, audit.batch_size, audit.use_cache) == ("m", [5], 8, False)
    assert audit.extra == {"a": 1}  # a field without a flag comes from the file


def test_demo_defaults_are_the_recipe_of_before():
    """The demo's defaults, now one DemoConfig holding its CFAlphaConfig, are unchanged."""
    from trustvl.cli import build_parser
    from trustvl.commands._common import config_from_namespace
    from trustvl.jobs.demo import DEMO_LORA_TARGETS, DemoConfig

    args = build_parser().parse_args(["demo"])
    demo = config_from_namespace(args.config_class, args)
    assert demo == DemoConfig()
    assert (demo.out_dir, demo.n_test, demo.n_base_per_occupation, demo.variants_per_base) == (
        "runs/demo",
        1500,
        96,
        4,
    )
    assert demo.ks == [10, 100] and demo.alphas == [0.0, 0.25, 0.5, 0.75, 1.0] and demo.seed == 0
    cf = demo.cf_alpha
    assert (cf.per_device_train_batch_size, cf.max_steps, cf.learning_rate) == (16, 180, 4e-3)
    assert cf.lora_target_modules == DEMO_LORA_TARGETS and cf.lora_r == 8 and cf.beta_cf == 30.0
    assert str(getattr(cf.save_strategy, "value", cf.save_strategy)) == "no"
