"""``trustvl publish``: every artefact kind stages with ``--dry-run`` and loads back where trustvl cannot be
imported; offline or tokenless uploads fail before anything is sent; pickles and bad folders are refused."""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from trustvl.cli import main
from trustvl.evaluation.model_index import model_index_from_metrics
from trustvl.hub.publish import PublishConfig, publish

ROOT = Path(__file__).resolve().parents[2]

#: the subprocess prelude: importing trustvl (or any trustvl.*) raises ImportError
NO_TRUSTVL = textwrap.dedent(
    """
    import sys

    class _NoTrustVL:
        def find_spec(self, name, path=None, target=None):
            if name == "trustvl" or name.startswith("trustvl."):
                raise ImportError(f"trustvl is not installed here ({name})")
            return None

    sys.meta_path.insert(0, _NoTrustVL())
    for _name in [m for m in sys.modules if m == "trustvl" or m.startswith("trustvl.")]:
        del sys.modules[_name]
    """
)


def _run_without_trustvl(script: str, tmp: Path, *args: str) -> dict:
    """Run ``NO_TRUSTVL + script`` with ``python -c`` (PYTHONPATH without src/, cwd outside the repo); the
    script prints one JSON line last."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and not (Path(p) / "trustvl").is_dir()
    )
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HOME=str(tmp / "hf_home"),
        HF_MODULES_CACHE=str(tmp / "hf_modules"),
        TRANSFORMERS_VERBOSITY="error",
    )
    proc = subprocess.run(
        [sys.executable, "-c", NO_TRUSTVL + textwrap.dedent(script), *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _evaluation(shift: float) -> object:
    from trustvl.evaluation.results import AttributeFairness, EvaluationResult, SkewAtK

    skew = SkewAtK(10, 0.5 - shift, -0.4 + shift, [0.5 - shift] * 2, [-0.4 + shift] * 2, [[0.5, 0.5]] * 2)
    fairness = AttributeFairness(
        ["light", "dark"], [0.5, 0.5], [0.5, 0.5], 0.3 - shift, [0.3 - shift] * 2, {10: skew}
    )
    return EvaluationResult(
        n_images=20,
        prompts=["a doctor", "a chef"],
        ks=[10],
        target="uniform",
        fairness={"skin_tone": fairness},
        zero_shot_top1=0.6 + shift,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run folders laid out like trustvl's training runs, built directly (training even a tiny run costs more
    than the layout): a CF_α run (``model/`` with remote code, ``adapter/`` peft, an α-sweep
    ``metrics.json``), a merged plain CLIP with a Safe-CLIP-style ``train_summary.json``, a Parquet dataset,
    an ``evaluate`` module folder and a Space folder."""
    from conftest import write_attributed_parquet
    from transformers import AutoProcessor, CLIPModel

    from trustvl.evaluation.results import AlphaPoint, AlphaSweepResult
    from trustvl.modeling.cf_alpha import CFAlphaCLIPModel
    from trustvl.testing.tiny import build_tiny_clip
    from trustvl.utils.io import write_json

    root = tmp_path_factory.mktemp("publish")
    base_dir = build_tiny_clip(root / "tiny-clip", seed=0)
    processor = AutoProcessor.from_pretrained(base_dir)
    torch.manual_seed(0)
    cf = CFAlphaCLIPModel.from_clip(
        CLIPModel.from_pretrained(base_dir),
        alpha=1.0,
        base_model_name_or_path=str(base_dir),
        lora_r=2,
        lora_alpha=2,
    )
    with torch.no_grad():  # a nonzero delta, so the loaded-back models can be told apart from the base
        for p in cf.lora_parameters():
            p.normal_(0, 0.2)
    cf.eval()
    run = root / "cf_alpha_run"
    cf.save_pretrained(run / "model")
    processor.save_pretrained(run / "model")
    cf.save_adapter(run / "adapter")
    sweep = AlphaSweepResult(
        model=str(run / "model"),
        dataset="trustvl/synthworld",
        split="test",
        n_images=20,
        ks=[10],
        primary_attribute="skin_tone",
        points=[AlphaPoint(0.0, _evaluation(0.0)), AlphaPoint(1.0, _evaluation(0.1))],
    )
    write_json(run / "metrics.json", sweep.to_dict())

    safe = root / "safe_clip_run"
    cf.export_merged(1.0, safe / "model", processor=processor)
    write_json(
        safe / "train_summary.json",
        {
            "method": "safe_clip",
            "base_model": str(base_dir),
            "final_eval": {"r1_s2v": 0.25, "recall_sum": 1.5},
            "config": {"dataset": "trustvl/safe-clip-quadruplets", "eval_split": "validation"},
        },
    )

    data = write_attributed_parquet(root / "dataset", n=12, split="train")
    write_attributed_parquet(data, n=6, split="test")

    metric = root / "toy_accuracy"
    metric.mkdir()
    (metric / "toy_accuracy.py").write_text(TOY_METRIC)
    (metric / "README.md").write_text(SPACE_README.format(title="Toy accuracy", extra="- evaluate\n- metric"))
    (metric / "app.py").write_text(
        "import evaluate\nfrom evaluate.utils import launch_gradio_widget\n\n"
        "launch_gradio_widget(evaluate.load('toy_accuracy'))\n"
    )
    (metric / "requirements.txt").write_text("evaluate\n")

    space = root / "space"
    space.mkdir()
    (space / "README.md").write_text(SPACE_README.format(title="Demo", extra="- trustvl"))
    (space / "app.py").write_text(
        "import gradio as gr\n\ngr.Interface(lambda x: x, 'text', 'text').launch()\n"
    )
    (space / "requirements.txt").write_text("gradio\ntrustvl\n")
    return {
        "base": base_dir,
        "cf_run": run,
        "cf_model": cf,
        "safe_run": safe,
        "dataset": data,
        "metric": metric,
        "space": space,
        "root": root,
    }


TOY_METRIC = """
import datasets
import evaluate


class ToyAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="share of equal items",
            citation="",
            inputs_description="predictions, references",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        return {"accuracy": sum(p == r for p, r in zip(predictions, references)) / len(predictions)}
"""

SPACE_README = """---
title: {title}
sdk: gradio
sdk_version: 6.31.0
app_file: app.py
short_description: a test Space
tags:
{extra}
---

# {title}
"""


@pytest.fixture(scope="module")
def staged(runs, tmp_path_factory):
    """Every kind staged through the CLI with --dry-run (module scope: one staging per kind)."""
    out = tmp_path_factory.mktemp("staged")
    calls = {
        "cf_model": ("model", runs["cf_run"], "me/cf-alpha-tiny", []),
        "merged": ("model", runs["safe_run"], "me/safe-clip-tiny", []),
        "adapter": ("adapter", runs["cf_run"], "me/cf-alpha-tiny-adapter", ["--base-model", "me/tiny-clip"]),
        "dataset": ("dataset", runs["dataset"], "me/attributed", []),
        "metric": ("metric", runs["metric"], "me/toy_accuracy", []),
        "space": ("space", runs["space"], "me/demo", []),
    }
    stages, printed = {}, {}
    for name, (kind, path, repo_id, extra) in calls.items():
        stage = out / ("toy_accuracy" if kind == "metric" else name)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(
                [
                    "publish",
                    kind,
                    str(path),
                    "--repo-id",
                    repo_id,
                    "--dry-run",
                    "--stage-dir",
                    str(stage),
                    *extra,
                ]
            )
        assert rc == 0, name
        stages[name], printed[name] = stage, buf.getvalue()
    return stages, printed


def test_dry_run_lists_every_staged_file(staged):
    stages, printed = staged
    for name, stage in stages.items():
        out = printed[name]
        assert f"staged folder: {stage.resolve()}" in out
        files = [f for f in stage.rglob("*") if f.is_file()]
        assert files, name
        for f in files:
            assert str(f.relative_to(stage)) in out, (name, f)
        assert not any(f.suffix in (".bin", ".pt", ".pkl") for f in files)
    assert "would upload to model repo me/cf-alpha-tiny" in printed["cf_model"]
    assert "would upload to dataset repo me/attributed" in printed["dataset"]
    assert "would upload to space repo me/toy_accuracy" in printed["metric"]
    assert "would upload to space repo me/demo" in printed["space"]


def test_model_card_results_come_from_the_runs_metrics(staged, runs):
    from huggingface_hub import ModelCard

    stages, _ = staged
    card = ModelCard.load(stages["cf_model"] / "README.md")
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    metrics = json.loads((runs["cf_run"] / "metrics.json").read_text())
    at_one = next(p for p in metrics["points"] if p["alpha"] == 1.0)["evaluation"]
    assert results["accuracy"] == pytest.approx(at_one["zero_shot_top1"], abs=1e-4)
    assert results["max_skew@10"] == pytest.approx(
        at_one["fairness"]["skin_tone"]["at_k"]["10"]["max_skew"], abs=1e-4
    )
    assert results["ndkl"] == pytest.approx(at_one["fairness"]["skin_tone"]["ndkl"], abs=1e-4)
    assert all(r.dataset_type == "trustvl/synthworld" for r in card.data.eval_results)
    assert "trust_remote_code=True" in card.text
    assert card.text.lstrip().startswith("# cf-alpha-tiny\n")


def test_model_index_picks_the_models_alpha(runs):
    metrics = json.loads((runs["cf_run"] / "metrics.json").read_text())
    at_zero = {m.metric_type: m.value for m in model_index_from_metrics(metrics, alpha=0.0)}
    at_one = {m.metric_type: m.value for m in model_index_from_metrics(metrics, alpha=1.0)}
    assert at_zero["ndkl"] == pytest.approx(0.3) and at_one["ndkl"] == pytest.approx(0.2)
    assert model_index_from_metrics({"unrelated": 1}) is None


LOAD_BACK = """
import json, sys
import torch
from transformers import AutoModel, CLIPModel
from peft import PeftModel
import datasets
import evaluate
from huggingface_hub import DatasetCard, ModelCard, metadata_load

cf_dir, merged_dir, adapter_dir, base_dir, data_dir, space_dir, metric_dir = sys.argv[1:8]
torch.manual_seed(0)
pixels = torch.rand(2, 3, 32, 32)
out = {}
cf = AutoModel.from_pretrained(cf_dir, trust_remote_code=True).eval()
out["cf_class"] = type(cf).__name__
out["cf_module"] = type(cf).__module__
merged = CLIPModel.from_pretrained(merged_dir).eval()
out["merged_class"] = type(merged).__name__
base = CLIPModel.from_pretrained(base_dir).eval()
adapted = PeftModel.from_pretrained(base, adapter_dir).eval()
out["adapter_base"] = adapted.peft_config["default"].base_model_name_or_path
with torch.no_grad():
    out["cf_image"] = cf.get_image_features(pixel_values=pixels).pooler_output.tolist()
    out["merged_image"] = merged.get_image_features(pixel_values=pixels).pooler_output.tolist()
    out["adapter_image"] = adapted.get_image_features(pixel_values=pixels).pooler_output.tolist()
ds = datasets.load_dataset(data_dir)
out["splits"] = {name: ds[name].num_rows for name in ds}
out["image_type"] = type(ds["train"][0]["image"]).__name__
out["features"] = sorted(ds["train"].features)
cards = {}
for name, folder in [("cf", cf_dir), ("merged", merged_dir), ("adapter", adapter_dir)]:
    card = ModelCard.load(folder + "/README.md")
    cards[name] = {"meta": metadata_load(folder + "/README.md"),
                   "results": [[r.metric_type, r.metric_value] for r in (card.data.eval_results or [])],
                   "base_model": card.data.base_model}
dcard = DatasetCard.load(data_dir + "/README.md")
cards["dataset"] = {"meta": metadata_load(data_dir + "/README.md"), "configs": dcard.data.configs}
cards["space"] = {"meta": metadata_load(space_dir + "/README.md")}
out["cards"] = cards
metric = evaluate.load(metric_dir)
out["metric"] = metric.compute(predictions=[1, 0, 1, 1], references=[1, 1, 1, 0])
out["trustvl_loaded"] = any(m.startswith("trustvl") for m in sys.modules)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def loaded_back(staged, runs, tmp_path_factory):
    stages, _ = staged
    tmp = tmp_path_factory.mktemp("load_back")
    args = [stages[n] for n in ("cf_model", "merged", "adapter")] + [
        runs["base"],
        stages["dataset"],
        stages["space"],
        stages["metric"],
    ]
    return _run_without_trustvl(LOAD_BACK, tmp, *map(str, args))


def test_cf_alpha_model_loads_with_remote_code_without_trustvl(loaded_back, runs):
    assert loaded_back["trustvl_loaded"] is False
    assert loaded_back["cf_class"] == "CFAlphaCLIPModel"
    assert not loaded_back["cf_module"].startswith("trustvl")
    torch.manual_seed(0)
    pixels = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        want = runs["cf_model"].get_image_features(pixel_values=pixels).pooler_output
    assert torch.allclose(torch.tensor(loaded_back["cf_image"]), want, atol=1e-5)


def test_merged_model_and_adapter_load_without_trustvl(loaded_back, runs):
    torch.manual_seed(0)
    pixels = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        want = runs["cf_model"].get_image_features(pixel_values=pixels).pooler_output
    assert loaded_back["merged_class"] == "CLIPModel"
    assert torch.allclose(torch.tensor(loaded_back["merged_image"]), want, atol=1e-5)
    # the peft adapter on the base gives the CF_α model at α = 1; its base is named by a Hub id
    assert torch.allclose(torch.tensor(loaded_back["adapter_image"]), want, atol=1e-5)
    assert loaded_back["adapter_base"] == "me/tiny-clip"
    adapter_card = loaded_back["cards"]["adapter"]
    assert adapter_card["base_model"] == "me/tiny-clip"
    assert adapter_card["meta"]["library_name"] == "peft"


def test_dataset_loads_without_trustvl(loaded_back):
    assert loaded_back["splits"] == {"train": 12, "test": 6}
    assert loaded_back["image_type"].endswith("ImageFile") or "Image" in loaded_back["image_type"]
    assert "skin_tone" in loaded_back["features"]
    configs = loaded_back["cards"]["dataset"]["configs"]
    assert configs[0]["config_name"] == "default"
    assert "dataset_info" in loaded_back["cards"]["dataset"]["meta"]


def test_cards_parse_without_trustvl(loaded_back):
    cards = loaded_back["cards"]
    for name in ("cf", "merged"):
        assert "model-index" in cards[name]["meta"], name
        assert cards[name]["results"], name
    assert dict(cards["merged"]["results"])["r1_s2v"] == pytest.approx(0.25)
    assert cards["space"]["meta"]["sdk"] == "gradio" and cards["space"]["meta"]["app_file"] == "app.py"


def test_metric_module_loads_without_trustvl(loaded_back):
    assert loaded_back["metric"]["accuracy"] == pytest.approx(0.5)


def test_trustvl_metric_modules_publish_and_load_without_trustvl(tmp_path):
    names = sorted(p.name for p in (ROOT / "evaluate_metrics").iterdir() if p.is_dir())
    stages = []
    for name in names:
        result = publish(
            PublishConfig(
                "metric",
                str(ROOT / "evaluate_metrics" / name),
                f"me/{name}",
                dry_run=True,
                stage_dir=str(tmp_path / "staged" / name),
            )
        )
        assert f"{name}.py" in {f.path for f in result.files}
        stages.append(result.stage_dir)
    out = _run_without_trustvl(
        "import json, sys, evaluate\nprint(json.dumps([evaluate.load(d).name for d in sys.argv[1:]]))",
        tmp_path,
        *stages,
    )
    assert len(out) == len(names)


class _RecordingApi:
    """Stands in for ``HfApi``: records calls, checked against HfApi's real signatures."""

    calls: list = []

    def __init__(self, *args, **kwargs):
        type(self).calls.append(("__init__", kwargs))

    def _record(self, name, *args, **kwargs):
        from huggingface_hub import HfApi

        inspect.signature(getattr(HfApi, name)).bind(self, *args, **kwargs)
        type(self).calls.append((name, kwargs))
        return f"https://hub.example/{name}"

    def create_repo(self, *args, **kwargs):
        return self._record("create_repo", *args, **kwargs)

    def create_branch(self, *args, **kwargs):
        return self._record("create_branch", *args, **kwargs)

    def upload_folder(self, *args, **kwargs):
        return self._record("upload_folder", *args, **kwargs)


@pytest.fixture
def recording_api(monkeypatch):
    import huggingface_hub

    _RecordingApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", _RecordingApi)
    return _RecordingApi


def test_offline_fails_before_anything_is_sent(runs, tmp_path, capsys, monkeypatch, recording_api):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    stage = tmp_path / "stage"
    rc = main(
        [
            "publish",
            "space",
            str(runs["space"]),
            "--repo-id",
            "me/demo",
            "--token",
            "hf_x",
            "--stage-dir",
            str(stage),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("trustvl: error: ") and err.count("\n") == 1 and "HF_HUB_OFFLINE" in err
    assert recording_api.calls == [] and not stage.exists()


def test_no_token_fails_before_anything_is_sent(runs, tmp_path, capsys, monkeypatch, recording_api):
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    rc = main(
        ["publish", "space", str(runs["space"]), "--repo-id", "me/demo", "--stage-dir", str(tmp_path / "s")]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "no Hugging Face token" in err and err.count("\n") == 1
    assert recording_api.calls == []


def test_upload_creates_repo_then_uploads_the_staged_folder(runs, tmp_path, monkeypatch, recording_api):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    result = publish(
        PublishConfig(
            "space",
            str(runs["space"]),
            "me/demo",
            private=True,
            revision="v1",
            token="hf_x",
            stage_dir=str(tmp_path / "s"),
        )
    )
    names = [name for name, _ in recording_api.calls]
    assert names == ["__init__", "create_repo", "create_branch", "upload_folder"]
    create = recording_api.calls[1][1]
    assert create["repo_type"] == "space" and create["private"] is True and create["exist_ok"] is True
    assert create["space_sdk"] == "gradio"
    upload = recording_api.calls[3][1]
    assert upload["folder_path"] == result.stage_dir and upload["revision"] == "v1"
    assert result.uploaded and sorted(f.path for f in result.files) == [
        "README.md",
        "app.py",
        "requirements.txt",
    ]


@pytest.mark.parametrize("pickle_name", ["pytorch_model.bin", "extra_weights.dat"])
def test_pickle_files_are_refused(runs, tmp_path, capsys, pickle_name):
    model = tmp_path / "model"
    shutil.copytree(runs["safe_run"] / "model", model)
    payload = b"\x80\x04\x95" + b"\x00" * 16  # the first bytes of a protocol-4 pickle
    (model / pickle_name).write_bytes(payload)
    stage = tmp_path / "stage"
    rc = main(["publish", "model", str(model), "--repo-id", "me/x", "--dry-run", "--stage-dir", str(stage)])
    err = capsys.readouterr().err
    assert rc == 2 and "pickle" in err and pickle_name in err
    assert not stage.exists()


def test_missing_path_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nope"
    rc = main(["publish", "dataset", str(missing), "--repo-id", "me/x", "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 2 and str(missing) in err and "does not exist" in err


def test_bad_folders_are_refused(runs, tmp_path, capsys):
    cases = [
        (
            ["metric", str(runs["metric"]), "--repo-id", "me/other_name"],
            "toy_accuracy.py",
        ),  # evaluate.load name
        (["adapter", str(runs["cf_run"]), "--repo-id", "me/a"], "--base-model"),  # base is a local folder
        (["model", str(runs["dataset"]), "--repo-id", "me/a"], "config.json"),
        (["space", str(runs["cf_run"]), "--repo-id", "me/a"], "README.md"),
        (["model", str(runs["cf_run"]), "--repo-id", "not-a-repo-id"], "OWNER/NAME"),
    ]
    for args, needle in cases:
        rc = main(["publish", *args, "--dry-run", "--stage-dir", str(tmp_path / "s")])
        err = capsys.readouterr().err
        assert rc == 2 and needle in err, (args, err)
        assert not (tmp_path / "s").exists()


def test_remote_code_that_imports_trustvl_is_refused(runs, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(runs["cf_run"] / "model", model)
    path = model / "modeling_cf_alpha_clip.py"
    path.write_text("from trustvl.errors import TrustVLInputError\n" + path.read_text())
    rc = main(
        ["publish", "model", str(model), "--repo-id", "me/x", "--dry-run", "--stage-dir", str(tmp_path / "s")]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "imports 'trustvl.errors'" in err


def _publish_cli(capsys, *argv: str) -> tuple[int, str]:
    rc = main(["publish", *argv])
    return rc, capsys.readouterr().err


def test_stage_dir_is_checked_like_every_output_folder(runs, tmp_path, capsys):
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "old.txt").write_text("kept")
    base = ["space", str(runs["space"]), "--repo-id", "me/demo", "--dry-run", "--stage-dir", str(stage)]
    rc, err = _publish_cli(capsys, *base)
    assert rc == 2 and err.count("\n") == 1 and str(stage) in err and "--overwrite" in err
    assert (stage / "old.txt").read_text() == "kept"  # refused before anything was written
    rc, err = _publish_cli(capsys, *base, "--overwrite")
    assert rc == 0, err
    assert sorted(p.name for p in stage.iterdir()) == ["README.md", "app.py", "requirements.txt"]
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    rc, err = _publish_cli(capsys, *base[:-1], str(a_file))
    assert rc == 2 and "file.txt" in err and a_file.read_text() == "x"
    # the folder being published is never replaced
    rc, err = _publish_cli(
        capsys, "space", str(runs["space"]), "--repo-id", "me/demo", "--dry-run", "--overwrite",
        "--stage-dir", str(runs["root"]),
    )  # fmt: skip
    assert rc == 2 and (runs["space"] / "app.py").is_file()


def test_failed_publish_leaves_no_staging_or_temp_folder(runs, tmp_path, capsys, monkeypatch):
    import tempfile

    from trustvl.hub.publish import stage_space

    temp_root = tmp_path / "temp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    # refused while staging: no README.md in a "space"; no stage dir given, then one below new folders
    rc, err = _publish_cli(capsys, "space", str(runs["cf_run"]), "--repo-id", "me/a", "--dry-run")
    assert rc == 2 and "README.md" in err
    assert list(temp_root.iterdir()) == []  # no empty trustvl-publish-* folder
    work = tmp_path / "work"
    work.mkdir()
    deep = work / "new" / "parents" / "stage"
    rc, err = _publish_cli(
        capsys, "space", str(runs["cf_run"]), "--repo-id", "me/a", "--dry-run", "--stage-dir", str(deep)
    )
    assert rc == 2 and list(work.iterdir()) == []  # neither the hidden folder nor the parents made for it

    # a failure after some files were written (a disk filling up while copying)
    def copy_then_fail(root, files, dest):
        (dest / "app.py").write_text("partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(stage_space, "copy_files", copy_then_fail)
    with pytest.raises(OSError):
        publish(
            PublishConfig("space", str(runs["space"]), "me/demo", dry_run=True, stage_dir=str(work / "s"))
        )
    with pytest.raises(OSError):
        publish(PublishConfig("space", str(runs["space"]), "me/demo", dry_run=True))
    assert list(work.iterdir()) == [] and list(temp_root.iterdir()) == []


def test_publish_options_come_from_publish_config(runs, tmp_path, capsys):
    recipe = tmp_path / "publish.yaml"
    recipe.write_text(f"repo_id: me/from-file\ndry_run: true\nstage_dir: {tmp_path / 'from_file'}\n")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["publish", "space", str(runs["space"]), "--config", str(recipe)])
    assert rc == 0 and "would upload to space repo me/from-file" in buf.getvalue()
    assert (tmp_path / "from_file" / "app.py").is_file()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):  # flags override the file; both spellings of a flag work
        rc = main(
            ["publish", "space", str(runs["space"]), "--config", str(recipe), "--repo_id", "me/flag",
             "--stage_dir", str(tmp_path / "from_flag")]
        )  # fmt: skip
    assert rc == 0 and "space repo me/flag" in buf.getvalue() and (tmp_path / "from_flag").is_dir()
    # switches stay switches: a PATH after --dry-run is the folder, not the switch's value
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["publish", "space", "--dry-run", str(runs["space"]), "--repo-id", "me/y", "--private"])
    assert rc == 0 and "would upload to space repo me/y (private)" in buf.getvalue()
    # options that a kind does not use are not flags of it, nor fields of its recipe
    with pytest.raises(SystemExit) as exit_:
        main(["publish", "space", str(runs["space"]), "--repo-id", "me/x", "--metrics", "m.json"])
    assert exit_.value.code == 2 and "--metrics" in capsys.readouterr().err
    recipe.write_text("repo_id: me/x\nbase_model: me/base\n")
    with pytest.raises(SystemExit) as exit_:
        main(["publish", "space", str(runs["space"]), "--config", str(recipe)])
    assert exit_.value.code == 2 and "base_model" in capsys.readouterr().err
    with pytest.raises(Exception, match="--base-model"):
        publish(PublishConfig("space", str(runs["space"]), "me/x", dry_run=True, base_model="me/base"))


def test_model_index_is_asked_of_the_typed_result_a_file_holds():
    from trustvl.evaluation.audit import AuditResult
    from trustvl.evaluation.safe_clip import Rate, SafeCLIPEvalResult, SafeCLIPModelEvaluation

    evaluation = _evaluation(0.1)
    audit = AuditResult("me/clip", "me/faces", "validation", False, evaluation)
    by_type = {m.metric_type: m for m in model_index_from_metrics(audit.to_dict())}
    assert by_type["accuracy"].value == pytest.approx(0.7) and by_type["ndkl"].value == pytest.approx(0.2)
    assert by_type["max_skew@10"].name == "skin_tone MaxSkew@10"
    assert {(m.dataset_name, m.split) for m in by_type.values()} == {("me/faces", "validation")}
    bare = model_index_from_metrics(evaluation.to_dict())
    assert [m.metric_type for m in bare] == list(by_type) and bare[0].dataset_name == "evaluation data"

    model = SafeCLIPModelEvaluation(
        4, {"s2v": {1: Rate(0.5)}}, Rate(0.25), Rate(0.75), model="safe", nsfw_k=5
    )
    safe = SafeCLIPEvalResult("me/quads", "test", 4, None, model)
    metrics = {m.metric_type: m.value for m in model_index_from_metrics(safe.to_dict())}
    assert metrics == {"recall@1": 0.5, "nsfw_rate@5": 0.25, "accuracy": 0.75}

    summary = {
        "final_eval": {"r1_s2v": 0.25},
        "config": {"dataset": "/data/quads", "eval_split": "validation"},
    }
    (metric,) = model_index_from_metrics(summary)
    assert (metric.metric_type, metric.value, metric.dataset_name, metric.split) == (
        "r1_s2v", 0.25, "quads", "validation"
    )  # fmt: skip
    assert model_index_from_metrics({"method": "demo", "summary": {}}) is None
