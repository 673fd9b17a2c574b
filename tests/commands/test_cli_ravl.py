"""`trustvl build spurious-digits` and `trustvl discover` from the command line."""

from __future__ import annotations

from trustvl.cli import main


def test_build_and_discover_from_the_cli(tiny_clip_dir, tmp_path, capsys):
    data = tmp_path / "digits"
    assert (
        main(
            [
                "build",
                "spurious-digits",
                "--out",
                str(data),
                "--n-train",
                "60",
                "--n-test",
                "60",
                "--image-size",
                "32",
                "--cramers-v",
                "0.9",
            ]
        )
        == 0
    )
    out = tmp_path / "disc"
    rc = main(
        [
            "discover",
            "--model",
            str(tiny_clip_dir),
            "--dataset",
            str(data),
            "--out",
            str(out),
            "--quiet",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    assert (out / "report.md").is_file() and (out / "discovery.json").is_file()
    assert "report:" in capsys.readouterr().out


def test_discover_on_a_missing_dataset_is_one_line(tiny_clip_dir, tmp_path, capsys):
    rc = main(
        [
            "discover",
            "--model",
            str(tiny_clip_dir),
            "--dataset",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # progress bars of model loading may come first
    assert rc == 2 and last.startswith("trustvl: error:") and "none" in last and "Traceback" not in err
