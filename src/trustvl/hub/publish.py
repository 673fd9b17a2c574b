"""``trustvl publish``: stage a Hub-ready folder for one artefact and upload it with ``huggingface_hub``.

Five kinds (SPEC §8), each staged from a local folder into a fresh folder that is exactly the repo's
content, then uploaded with ``HfApi.create_repo`` + ``HfApi.upload_folder``:

* ``model`` (repo type ``model``): a ``save_pretrained`` folder, or a run folder holding ``model/``.
  Weights must be safetensors. A model whose ``model_type`` transformers does not know (CF_α's
  ``cf_alpha_clip``) must carry its remote code: ``config.json``'s ``auto_map`` names module files that are
  in the folder and import no trustvl, so ``AutoModel.from_pretrained(repo, trust_remote_code=True)``
  works without trustvl. The card is a ``ModelCard``: the folder's own card when it already holds a
  ``model-index`` (the demo's and Safe-CLIP's), otherwise one made here whose ``model-index`` comes from
  the run's metrics JSON (:func:`eval_results_from_metrics`).
* ``adapter`` (repo type ``model``): a peft adapter folder (``adapter_config.json`` +
  ``adapter_model.safetensors``), or a run folder holding ``adapter/``. Its base must be named by a Hub id
  (``base_model_name_or_path`` in the staged ``adapter_config.json`` and the card's ``base_model``);
  a run's base is often a local folder, so ``--base-model ID`` names it.
* ``dataset`` (repo type ``dataset``): Parquet shards plus a ``DatasetCard`` whose YAML has ``configs``
  (with ``config_name``) whose ``data_files`` match shards in the folder. A folder of Parquet shards
  without such a card gets one from the shards' schema (``hub/dataset_cards.py``); the shards are
  named ``<split>-*.parquet`` or ``<split>.parquet``. Loading scripts are refused (datasets ≥ 4 does not
  run them).
* ``metric`` (repo type ``space``, which is where ``evaluate.load("user/name")`` looks): an ``evaluate``
  module folder staged as it is: ``<name>.py`` (``evaluate.load`` on the Hub fetches the file named after
  the repo, so the repo's name must be ``<name>``), ``README.md`` with ``sdk``/``app_file`` front matter,
  ``app.py`` and ``requirements.txt`` that names every third-party import of the module files.
* ``space`` (repo type ``space``): a Space folder staged as it is: ``README.md`` front matter with ``sdk``
  and ``app_file``, and the app file itself.

In every kind, pickle-based files (``.bin``, ``.pt``, ``.pth``, ``.ckpt``, ``.pkl``, ``.pickle``,
``.joblib``, and any file that starts like a pickle or a ``torch.save`` zip) are refused, never staged.
Hidden files, ``__pycache__`` and training ``checkpoint-*`` folders are not staged.

Uploading needs the Hub: with ``HF_HUB_OFFLINE`` set or no token (``--token``, ``HF_TOKEN`` or a stored
login) :func:`publish` fails before staging or sending anything. ``dry_run`` stages only.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.hub.cards import Metric, eval_results
from trustvl.hub.dataset_cards import DatasetCardMetadata, SplitMetadata, dataset_card
from trustvl.hub.loading import hub_offline
from trustvl.utils.io import write_json, write_text

__all__ = [
    "KINDS",
    "PublishConfig",
    "PublishResult",
    "StagedFile",
    "check_upload_possible",
    "eval_results_from_metrics",
    "publish",
    "stage",
]

#: artefact kind -> Hub repo type
KINDS: dict[str, str] = {
    "model": "model",
    "adapter": "model",
    "dataset": "dataset",
    "metric": "space",
    "space": "space",
}

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib")
#: formats that never hold pickles (their first bytes are not checked)
_KNOWN_SAFE_SUFFIXES = {
    ".safetensors",
    ".parquet",
    ".json",
    ".md",
    ".txt",
    ".py",
    ".yaml",
    ".yml",
    ".csv",
    ".html",
    ".css",
    ".js",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".webp",
    ".svg",
    ".model",
    ".toml",
    ".cfg",
}
_SKIPPED_DIRS = {"__pycache__", ".git", ".cache", ".ipynb_checkpoints"}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
_HUB_MODEL_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
#: import names whose distribution has another name (for the metric requirements check)
_DISTRIBUTION_OF = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml", "cv2": "opencv-python"}
#: what an ``evaluate`` module may import without listing it: evaluate and what evaluate itself installs
_EVALUATE_PROVIDES = {"evaluate", "datasets", "numpy", "huggingface_hub", "pandas", "requests", "tqdm"}


@dataclass
class PublishConfig:
    """What to publish and where.

    Attributes:
        kind: one of :data:`KINDS`.
        path: the local folder (or run folder) to publish.
        repo_id: ``owner/name`` on the Hub.
        private: create the repo private (an existing repo keeps its visibility).
        revision: branch to upload to (created from main when missing); None: main.
        dry_run: stage only; nothing is sent.
        token: Hub token; None: ``HF_TOKEN`` or the stored login.
        stage_dir: where to stage (must not exist or be empty); None: a new temporary folder, kept.
        metrics: metrics JSON for the model-index (models and adapters); None: the run's ``metrics.json``
            or ``train_summary.json`` where present.
        base_model: Hub id of the base model (adapters: required when the adapter names a local folder).
        license: the card's license when the card is made here.
    """

    kind: str
    path: str
    repo_id: str
    private: bool = False
    revision: str | None = None
    dry_run: bool = False
    token: str | None = None
    stage_dir: str | None = None
    metrics: str | None = None
    base_model: str | None = None
    license: str = "apache-2.0"


@dataclass(frozen=True)
class StagedFile:
    """One file of the staged folder: its path relative to the folder and its size in bytes."""

    path: str
    size: int


@dataclass
class PublishResult:
    """What was staged (and uploaded unless ``dry_run``)."""

    kind: str
    repo_id: str
    repo_type: str
    stage_dir: str
    files: list[StagedFile] = field(default_factory=list)
    uploaded: bool = False
    revision: str | None = None
    private: bool = False
    commit_url: str | None = None

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


# --------------------------------------------------------------------------------------------- checks


def check_upload_possible(token: str | None) -> str:
    """The token to upload with; raises :class:`TrustVLInputError` when the Hub must not or cannot be used
    (``HF_HUB_OFFLINE`` set, no token). Called before anything is staged or sent."""
    if hub_offline():
        raise TrustVLInputError(
            f"cannot publish: HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE')!r} forbids contacting the Hub;"
            " unset it to upload, or pass --dry-run to stage only"
        )
    if not token:
        from huggingface_hub import get_token

        token = get_token()
    if not token:
        raise TrustVLInputError(
            "cannot publish: no Hugging Face token; pass --token, set HF_TOKEN or run `hf auth login`"
            " (or pass --dry-run to stage only)"
        )
    return token


def _check_repo_id(repo_id: str) -> None:
    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id) or ".." in repo_id:
        raise TrustVLInputError(
            f"--repo-id {repo_id!r}; expected OWNER/NAME (letters, digits, '-', '_', '.')"
        )


def _is_pickle(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        return True
    if suffix in _KNOWN_SAFE_SUFFIXES:  # e.g. a safetensors header length can start with 0x80 0x05
        return False
    with open(path, "rb") as f:
        head = f.read(4)
    # pickle protocol 2+ starts with PROTO (0x80) and a protocol number; torch.save writes a zip whose
    # entries are pickles (a zip is not otherwise expected among model, dataset or Space files)
    return (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or head == b"PK\x03\x04"


def _files(root: Path) -> list[Path]:
    """The files under ``root`` to stage (sorted; hidden files, caches and checkpoint folders left out)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and d not in _SKIPPED_DIRS and not d.startswith("checkpoint-")
        )
        for name in sorted(filenames):
            if not name.startswith("."):
                out.append(Path(dirpath) / name)
    return out


def _refuse_pickles(root: Path, files: Iterable[Path]) -> None:
    bad = [str(p.relative_to(root)) for p in files if _is_pickle(p)]
    if bad:
        raise TrustVLInputError(
            f"{str(root)!r} holds pickle-based files {bad[:5]}; trustvl publishes safetensors/Parquet only"
            " (re-save weights with safe_serialization=True and remove the pickles)"
        )


def _existing_dir(path: str | os.PathLike, kind: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise TrustVLInputError(f"{kind} path {str(path)!r} does not exist; expected a local folder")
    if not p.is_dir():
        raise TrustVLInputError(f"{kind} path {str(path)!r} is not a folder; expected a local folder")
    return p.resolve()


def _front_matter(readme: Path) -> dict[str, Any]:
    from huggingface_hub import metadata_load

    if not readme.is_file():
        return {}
    try:
        return metadata_load(readme) or {}
    except Exception as err:  # a YAML error: name the file
        raise TrustVLInputError(f"{str(readme)!r} has unreadable YAML front matter: {err}") from None


def _is_hub_model_id(name: str | None) -> bool:
    return bool(name) and bool(_HUB_MODEL_ID.match(str(name))) and not Path(str(name)).expanduser().exists()


# ------------------------------------------------------------------------------------- eval results


def _dataset_label(dataset: Any) -> tuple[str, str]:
    """(name, type) for a model-index entry: a Hub id is both; a local folder is named by its basename."""
    text = str(dataset or "evaluation data")
    if _is_hub_model_id(text):
        return text, text
    base = Path(text).name or text
    return base, base


def _evaluation_metrics(evaluation: dict[str, Any], dataset: Any, split: str) -> list[Metric]:
    """Zero-shot accuracy and per attribute MaxSkew@k (largest k) and NDKL of an ``EvaluationResult`` dict."""
    name, dtype = _dataset_label(dataset)
    out = []
    if evaluation.get("zero_shot_top1") is not None:
        out.append(Metric("zero-shot top-1", "accuracy", evaluation["zero_shot_top1"], name, dtype, split))
    for attr, fairness in (evaluation.get("fairness") or {}).items():
        at_k = fairness.get("at_k") or {}
        if at_k:
            k = max(at_k, key=int)
            out.append(
                Metric(f"{attr} MaxSkew@{k}", f"max_skew@{k}", at_k[k]["max_skew"], name, dtype, split)
            )
        if fairness.get("ndkl") is not None:
            out.append(Metric(f"{attr} NDKL", "ndkl", fairness["ndkl"], name, dtype, split))
    recall = evaluation.get("recall") or {}
    for direction in ("text_to_image", "image_to_text"):
        for k, value in (recall.get(direction) or {}).items():
            out.append(
                Metric(
                    f"{direction} R@{k}",
                    f"recall@{k}",
                    value,
                    name,
                    dtype,
                    split,
                    task_type="image-text-retrieval",
                )
            )
    return out


def _rate(value: Any) -> float | None:
    if isinstance(value, dict):
        value = value.get("value")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def eval_results_from_metrics(data: dict[str, Any], *, alpha: float | None = None) -> list[Metric]:
    """The model-index numbers in one of trustvl's metrics JSON files (read as data: the hub layer does not
    import the evaluation layer that writes them). Recognised:

    * an α sweep (``trustvl eval cf-alpha``: ``points``): the point at ``alpha`` (the model's α), else the
      largest α;
    * an audit (``evaluation``) or a bare evaluation (``fairness`` + ``ks``);
    * a Safe-CLIP evaluation (``safe_clip``): the Safe-CLIP model's recall, NSFW rate and zero-shot accuracy;
    * a training summary with ``final_eval`` (Safe-CLIP's validation recalls).

    Anything else (e.g. the demo's summary, whose model card already holds the results) gives ``[]``.
    """
    split = str(data.get("split") or "test")
    if isinstance(data.get("points"), list) and data["points"]:
        points = data["points"]
        chosen = next((p for p in points if alpha is not None and float(p["alpha"]) == float(alpha)), None)
        chosen = chosen or max(points, key=lambda p: float(p["alpha"]))
        return _evaluation_metrics(chosen["evaluation"], data.get("dataset"), split)
    if isinstance(data.get("evaluation"), dict):
        return _evaluation_metrics(data["evaluation"], data.get("dataset"), split)
    if "fairness" in data and "ks" in data:
        return _evaluation_metrics(data, data.get("dataset"), split)
    if isinstance(data.get("safe_clip"), dict):
        model_eval = data["safe_clip"]
        name, dtype = _dataset_label(data.get("dataset"))
        out = []
        for direction, by_k in (model_eval.get("recall") or {}).items():
            for k, rate in by_k.items():
                if (v := _rate(rate)) is not None:
                    out.append(
                        Metric(
                            f"{direction} R@{k}", f"recall@{k}", v, name, dtype, split, "image-text-retrieval"
                        )
                    )
        nsfw_k = model_eval.get("nsfw_k", 10)
        if (v := _rate(model_eval.get("nsfw_rate"))) is not None:
            out.append(
                Metric(
                    f"NSFW rate@{nsfw_k}",
                    f"nsfw_rate@{nsfw_k}",
                    v,
                    name,
                    dtype,
                    split,
                    "image-text-retrieval",
                )
            )
        if (v := _rate(model_eval.get("zero_shot_accuracy"))) is not None:
            out.append(Metric("zero-shot accuracy", "accuracy", v, name, dtype, split))
        return out
    if isinstance(data.get("final_eval"), dict):
        config = data.get("config") or {}
        name, dtype = _dataset_label(config.get("dataset"))
        split = str(config.get("eval_split") or "validation")
        return [
            Metric(key, key, float(v), name, dtype, split, "image-text-retrieval")
            for key, v in data["final_eval"].items()
            if _rate(v) is not None
        ]
    return []


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise TrustVLInputError(f"metrics file {str(path)!r} is not readable JSON: {err}") from None
    if not isinstance(data, dict):
        raise TrustVLInputError(
            f"metrics file {str(path)!r} holds {type(data).__name__}; expected a JSON object"
        )
    return data


def _run_metrics(
    metrics: str | None, folders: Sequence[Path], alpha: float | None
) -> tuple[list[Metric], Path | None]:
    """The eval results of ``metrics`` (a file that must exist) or of the first recognised
    ``metrics.json`` / ``train_summary.json`` in ``folders``."""
    if metrics is not None:
        path = Path(metrics).expanduser()
        if not path.is_file():
            raise TrustVLInputError(f"--metrics {metrics!r} is not a file; expected a metrics JSON file")
        results = eval_results_from_metrics(_read_json(path), alpha=alpha)
        if not results:
            raise TrustVLInputError(
                f"--metrics {metrics!r} is not a metrics file trustvl knows (an α sweep, audit, evaluation,"
                " Safe-CLIP evaluation or training summary with final_eval)"
            )
        return results, path
    for folder in folders:
        for name in ("metrics.json", "train_summary.json"):
            path = folder / name
            if path.is_file():
                results = eval_results_from_metrics(_read_json(path), alpha=alpha)
                if results:
                    return results, path
    return [], None


# -------------------------------------------------------------------------------------------- cards


def _card_body(title: str, lines: Sequence[str]) -> str:
    return f"# {title}\n\n" + "\n\n".join(lines) + "\n"


def _new_model_card(
    *,
    repo_id: str,
    metrics: Sequence[Metric],
    base_model: str | None,
    library_name: str,
    tags: Sequence[str],
    license: str,
    body: str,
) -> Any:
    from huggingface_hub import ModelCard, ModelCardData

    evals = eval_results(metrics)
    data = ModelCardData(
        model_name=repo_id.split("/")[-1],
        eval_results=evals or None,
        base_model=base_model if _is_hub_model_id(base_model) else None,
        library_name=library_name,
        license=license,
        tags=["trustvl", *tags],
        pipeline_tag="zero-shot-image-classification",
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def _existing_model_card(readme: Path) -> Any | None:
    """The folder's own card when it already carries a ``model-index`` (made by trustvl's cards)."""
    from huggingface_hub import ModelCard

    if not readme.is_file() or "model-index" not in _front_matter(readme):
        return None
    return ModelCard.load(readme)


def _results_lines(metrics: Sequence[Metric], source: Path | None) -> list[str]:
    if not metrics:
        return ["No evaluation results were found next to this model; evaluate it with `trustvl eval`."]
    rows = "\n".join(f"| {m.name} | {m.dataset_name} ({m.split}) | {float(m.value):.4f} |" for m in metrics)
    where = f" (from `{source.name}`)" if source is not None else ""
    return [f"## Evaluation{where}\n\n| metric | data | value |\n| --- | --- | --- |\n{rows}"]


# ------------------------------------------------------------------------------------------- staging


def _copy(root: Path, files: Iterable[Path], dest: Path) -> None:
    for src in files:
        target = dest / src.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def _model_dir(path: Path) -> tuple[Path, Path]:
    """(model folder, run folder) of ``path``: a save_pretrained folder, or a run folder with ``model/``."""
    if (path / "config.json").is_file():
        return path, path.parent
    if (path / "model" / "config.json").is_file():
        return path / "model", path
    raise TrustVLInputError(
        f"{str(path)!r} holds no config.json (nor model/config.json); expected a save_pretrained model folder"
        " or a training run folder"
    )


def _imports(source: str, filename: str) -> list[tuple[str, int]]:
    """(absolute module name, relative level) of every import statement in ``source``."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as err:
        raise TrustVLInputError(f"{filename!r} is not valid Python: {err.msg} (line {err.lineno})") from None
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.module or "", node.level))
    return out


def _check_remote_code(model_dir: Path, config: dict[str, Any]) -> list[str]:
    """Check that the ``auto_map`` modules are in the folder and import neither trustvl nor a module that is
    not shipped; returns their file names."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    auto_map = config.get("auto_map") or {}
    model_type = config.get("model_type")
    if not auto_map:
        if model_type not in CONFIG_MAPPING_NAMES:
            raise TrustVLInputError(
                f"{str(model_dir)!r}: model_type {model_type!r} is not a transformers model and config.json has no"
                " auto_map; save the model from a class registered with register_for_auto_class so its code"
                " travels with it"
            )
        return []
    if "AutoConfig" not in auto_map or not ({"AutoModel"} & set(auto_map)):
        raise TrustVLInputError(
            f"{str(model_dir)!r}: auto_map {sorted(auto_map)} lacks AutoConfig or AutoModel; expected both so"
            " AutoModel.from_pretrained(..., trust_remote_code=True) works"
        )
    files = []
    for ref in auto_map.values():
        for item in ref if isinstance(ref, list) else [ref]:
            if item and "--" not in item:  # "repo--module.Class" points into another repo
                files.append(item.rsplit(".", 1)[0] + ".py")
    for name in sorted(set(files)):
        path = model_dir / name
        if not path.is_file():
            raise TrustVLInputError(
                f"{str(model_dir)!r}: auto_map names {name!r}, which is not in the folder"
            )
        for module, level in _imports(path.read_text(encoding="utf-8"), str(path)):
            if level == 0 and (module == "trustvl" or module.startswith("trustvl.")):
                raise TrustVLInputError(
                    f"remote-code file {str(path)!r} imports {module!r}; it must load where trustvl is not installed"
                )
            if level > 0 and not (model_dir / (module.replace(".", "/") + ".py")).is_file():
                raise TrustVLInputError(
                    f"remote-code file {str(path)!r} imports .{module}, which is not in the folder"
                )
    return sorted(set(files))


def _stage_model(cfg: PublishConfig, path: Path, dest: Path) -> None:
    model_dir, run_dir = _model_dir(path)
    files = _files(model_dir)
    _refuse_pickles(model_dir, files)
    if not any(f.suffix == ".safetensors" for f in files):
        raise TrustVLInputError(
            f"{str(model_dir)!r} holds no .safetensors weights; expected model.safetensors"
        )
    config = _read_json(model_dir / "config.json")
    remote = _check_remote_code(model_dir, config)
    _copy(model_dir, [f for f in files if f.name != "README.md"], dest)
    card = _existing_model_card(model_dir / "README.md") if cfg.metrics is None else None
    if card is None:
        alpha = config.get("alpha") if isinstance(config.get("alpha"), (int, float)) else None
        metrics, source = _run_metrics(cfg.metrics, [model_dir, run_dir], alpha)
        base = cfg.base_model or config.get("base_model_name_or_path")
        architecture = (config.get("architectures") or [config.get("model_type", "model")])[0]
        lines = [
            f"A `{architecture}` published with `trustvl publish model`."
            + (" Base model: `" + str(base) + "`." if base else ""),
            'Load it with `AutoModel.from_pretrained("'
            + cfg.repo_id
            + '"'
            + (", trust_remote_code=True" if remote else "")
            + ")`"
            + (
                " (the model code ships in this repo: " + ", ".join(f"`{r}`" for r in remote) + ")."
                if remote
                else "."
            ),
            *_results_lines(metrics, source),
        ]
        card = _new_model_card(
            repo_id=cfg.repo_id,
            metrics=metrics,
            base_model=base,
            library_name="transformers",
            tags=["clip", *(["custom_code"] if remote else [])],
            license=cfg.license,
            body=_card_body(cfg.repo_id.split("/")[-1], lines),
        )
    elif cfg.base_model:
        card.data.base_model = cfg.base_model
    write_text(dest / "README.md", str(card))


def _stage_adapter(cfg: PublishConfig, path: Path, dest: Path) -> None:
    if (path / "adapter_config.json").is_file():
        adapter_dir, run_dir = path, path.parent
    elif (path / "adapter" / "adapter_config.json").is_file():
        adapter_dir, run_dir = path / "adapter", path
    else:
        raise TrustVLInputError(
            f"{str(path)!r} holds no adapter_config.json (nor adapter/adapter_config.json); expected a peft"
            " adapter folder or a training run folder"
        )
    files = _files(adapter_dir)
    _refuse_pickles(adapter_dir, files)
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        raise TrustVLInputError(
            f"{str(adapter_dir)!r} holds no adapter_model.safetensors; expected a peft adapter"
        )
    adapter_config = _read_json(adapter_dir / "adapter_config.json")
    base = cfg.base_model or adapter_config.get("base_model_name_or_path")
    if not _is_hub_model_id(base):
        raise TrustVLInputError(
            f"the adapter's base model is {base!r}, not a Hub id; pass --base-model OWNER/NAME naming the base"
            " model on the Hub"
        )
    adapter_config["base_model_name_or_path"] = base
    _copy(adapter_dir, [f for f in files if f.name not in ("README.md", "adapter_config.json")], dest)
    write_json(dest / "adapter_config.json", adapter_config)
    card = _existing_model_card(adapter_dir / "README.md") if cfg.metrics is None else None
    if card is None:
        metrics, source = _run_metrics(cfg.metrics, [adapter_dir, run_dir], None)
        lines = [
            f"A {adapter_config.get('peft_type', 'peft')} adapter (r = {adapter_config.get('r')}, lora_alpha ="
            f" {adapter_config.get('lora_alpha')}) for `{base}`, published with `trustvl publish adapter`.",
            "```python\nfrom peft import PeftModel\nfrom transformers import CLIPModel\n\n"
            f'base = CLIPModel.from_pretrained("{base}")\nmodel = PeftModel.from_pretrained(base, "{cfg.repo_id}")\n```',
            *_results_lines(metrics, source),
        ]
        card = _new_model_card(
            repo_id=cfg.repo_id,
            metrics=metrics,
            base_model=base,
            library_name="peft",
            tags=["lora", "peft", f"base_model:adapter:{base}"],
            license=cfg.license,
            body=_card_body(cfg.repo_id.split("/")[-1], lines),
        )
    else:
        card.data.base_model = base
        card.data.library_name = "peft"
    write_text(dest / "README.md", str(card))


def _split_of(shard: Path, root: Path) -> str:
    stem = shard.stem
    match = re.match(r"^([A-Za-z][\w]*?)(-\d+(-of-\d+)?|-[0-9a-f]{6,})?$", stem)
    if match is None:
        raise TrustVLInputError(
            f"cannot tell the split of shard {str(shard.relative_to(root))!r}; expected <split>.parquet or"
            " <split>-00000-of-00001.parquet (or a README.md with configs)"
        )
    return match.group(1)


def _make_dataset_card(root: Path, shards: list[Path], license: str) -> Any:
    import pyarrow.parquet as pq
    from datasets import Features

    splits: dict[str, list[Path]] = {}
    for shard in shards:
        splits.setdefault(_split_of(shard, root), []).append(shard)
    features = None
    metas = []
    for name, files in splits.items():
        feats = Features.from_arrow_schema(pq.read_schema(files[0]))
        if features is not None and feats != features:
            raise TrustVLInputError(
                f"split {name!r} has other columns than the first split; expected one schema"
            )
        features = feats
        rel = sorted({str(f.parent.relative_to(root)) for f in files})
        pattern = f"{rel[0]}/{name}*.parquet" if rel != ["."] else f"{name}*.parquet"
        if len(rel) > 1:
            raise TrustVLInputError(
                f"split {name!r} has shards in several folders {rel}; expected one folder"
            )
        metas.append(
            SplitMetadata(
                name,
                num_examples=sum(pq.read_metadata(f).num_rows for f in files),
                num_bytes=sum(f.stat().st_size for f in files),
                data_files=pattern,
            )
        )
    metadata = DatasetCardMetadata(
        pretty_name=root.name,
        features=features,
        splits=metas,
        license=license,
        tags=["trustvl"],
        download_size=sum(f.stat().st_size for f in shards),
    )
    return dataset_card(
        metadata, f"# {root.name}\n\nParquet shards published with `trustvl publish dataset`.\n"
    )


def _check_dataset_configs(root: Path, meta: dict[str, Any], shards: list[Path]) -> None:
    rel = {str(s.relative_to(root)) for s in shards}
    for config in meta["configs"]:
        if not isinstance(config, dict) or "config_name" not in config:
            raise TrustVLInputError(f"{str(root / 'README.md')!r}: a configs entry lacks config_name")
        data_files = config.get("data_files") or []
        entries = [data_files] if isinstance(data_files, (str, dict)) else data_files
        for entry in entries:
            patterns = entry.get("path") if isinstance(entry, dict) else entry
            for pattern in [patterns] if isinstance(patterns, str) else patterns or []:
                if not any(Path(r).match(pattern) or _glob_match(r, pattern) for r in rel):
                    raise TrustVLInputError(
                        f"{str(root / 'README.md')!r}: config {config['config_name']!r} names data_files"
                        f" {pattern!r}, which matches no Parquet shard in the folder"
                    )


def _glob_match(path: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatch(path, pattern)


def _stage_dataset(cfg: PublishConfig, path: Path, dest: Path) -> None:
    files = _files(path)
    _refuse_pickles(path, files)
    scripts = [str(f.relative_to(path)) for f in files if f.suffix == ".py"]
    if scripts:
        raise TrustVLInputError(
            f"{str(path)!r} holds Python files {scripts[:3]}; a dataset is Parquet + a card (datasets ≥ 4 does not"
            " run loading scripts)"
        )
    shards = [f for f in files if f.suffix == ".parquet"]
    if not shards:
        raise TrustVLInputError(
            f"{str(path)!r} holds no .parquet shards; expected a dataset folder of Parquet files"
        )
    unexpected = [str(f.relative_to(path)) for f in files if f.suffix in (".arrow",)]
    if unexpected:
        raise TrustVLInputError(
            f"{str(path)!r} holds Arrow files {unexpected[:3]} (save_to_disk); write Parquet shards instead"
        )
    meta = _front_matter(path / "README.md")
    _copy(path, [f for f in files if f.name != "README.md" or f.parent != path], dest)
    if meta.get("configs"):
        _check_dataset_configs(path, meta, shards)
        shutil.copy2(path / "README.md", dest / "README.md")
    else:
        write_text(dest / "README.md", str(_make_dataset_card(path, shards, cfg.license)))


def _check_space_readme(path: Path, what: str) -> dict[str, Any]:
    readme = path / "README.md"
    if not readme.is_file():
        raise TrustVLInputError(
            f"{what} folder {str(path)!r} has no README.md; expected one with sdk/app_file front matter"
        )
    meta = _front_matter(readme)
    missing = [key for key in ("sdk", "app_file") if not meta.get(key)]
    if missing:
        raise TrustVLInputError(
            f"{str(readme)!r} front matter lacks {missing}; a Space needs sdk and app_file"
        )
    if not (path / str(meta["app_file"])).is_file():
        raise TrustVLInputError(
            f"{str(readme)!r} names app_file {meta['app_file']!r}, which is not in the folder"
        )
    return meta


def _requirement_names(path: Path) -> set[str]:
    names = set()
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.add(re.split(r"[\s<>=!~;\[@]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _stage_metric(cfg: PublishConfig, path: Path, dest: Path) -> None:
    slug = path.name
    module = path / f"{slug}.py"
    if not module.is_file():
        raise TrustVLInputError(
            f"metric folder {str(path)!r} has no {slug}.py; evaluate.load(folder) reads the module named after"
            " the folder"
        )
    repo_name = cfg.repo_id.split("/")[-1]
    if repo_name != slug:
        raise TrustVLInputError(
            f"--repo-id {cfg.repo_id!r}: evaluate.load('{cfg.repo_id}') fetches {repo_name}.py, but the module is"
            f" {slug}.py; use --repo-id OWNER/{slug}"
        )
    files = _files(path)
    _refuse_pickles(path, files)
    _check_space_readme(path, "metric")
    if not (path / "requirements.txt").is_file():
        raise TrustVLInputError(f"metric folder {str(path)!r} has no requirements.txt")
    required = _requirement_names(path / "requirements.txt")
    local = {f.stem for f in files if f.suffix == ".py"}
    stdlib = set(sys.stdlib_module_names)
    for source in [f for f in files if f.suffix == ".py" and f.name != "app.py"]:
        for name, level in _imports(source.read_text(encoding="utf-8"), str(source)):
            top = name.split(".")[0]
            if level or not top or top in stdlib or top in local or top in _EVALUATE_PROVIDES:
                continue
            dist = _DISTRIBUTION_OF.get(top, top).lower().replace("_", "-")
            if dist not in required:
                raise TrustVLInputError(
                    f"{str(source)!r} imports {top!r}, which requirements.txt does not name; list {dist!r} there"
                )
    _copy(path, files, dest)


def _stage_space(cfg: PublishConfig, path: Path, dest: Path) -> None:
    files = _files(path)
    _refuse_pickles(path, files)
    _check_space_readme(path, "space")
    _copy(path, files, dest)


_STAGERS = {
    "model": _stage_model,
    "adapter": _stage_adapter,
    "dataset": _stage_dataset,
    "metric": _stage_metric,
    "space": _stage_space,
}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise TrustVLInputError(f"kind {kind!r}; expected one of {', '.join(KINDS)}")


def stage(cfg: PublishConfig) -> PublishResult:
    """Stage ``cfg.path`` as a Hub-ready folder (see the module docstring) and return what it holds.

    The folder is ``cfg.stage_dir`` (which must not exist or be empty), or ``<new temp dir>/<repo name>``
    (named after the repo, as ``evaluate.load(folder)`` of a metric needs). It is filled in a hidden sibling
    folder and renamed into place, so it is never half-written.
    """
    _check_kind(cfg.kind)
    _check_repo_id(cfg.repo_id)
    source = _existing_dir(cfg.path, cfg.kind)
    if cfg.stage_dir is not None:
        out = Path(cfg.stage_dir).expanduser().resolve()
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise TrustVLInputError(f"--stage-dir {cfg.stage_dir!r} exists and is not an empty folder")
        if out == source or source in out.parents:
            raise TrustVLInputError(f"--stage-dir {cfg.stage_dir!r} is inside the folder being published")
    else:
        out = Path(tempfile.mkdtemp(prefix="trustvl-publish-")) / cfg.repo_id.split("/")[-1]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging-"))
    try:
        _STAGERS[cfg.kind](cfg, source, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        out.rmdir()
    os.replace(tmp, out)
    files = [StagedFile(str(f.relative_to(out)), f.stat().st_size) for f in _files(out)]
    return PublishResult(
        kind=cfg.kind,
        repo_id=cfg.repo_id,
        repo_type=KINDS[cfg.kind],
        stage_dir=str(out),
        files=files,
        revision=cfg.revision,
        private=cfg.private,
    )


def _space_sdk(stage_dir: str) -> str | None:
    return _front_matter(Path(stage_dir) / "README.md").get("sdk")


def publish(cfg: PublishConfig, api: Any = None) -> PublishResult:
    """Stage ``cfg.path`` and, unless ``cfg.dry_run``, upload it to ``cfg.repo_id``.

    Order: the kind, repo id and path are checked, then (uploads only) the Hub is checked to be usable
    (:func:`check_upload_possible`), then the folder is staged, then ``HfApi.create_repo(exist_ok=True)``,
    the branch (``revision``, created when missing) and ``HfApi.upload_folder``. ``api``: an ``HfApi``-like
    object (tests); default ``HfApi(token=...)``.
    """
    _check_kind(cfg.kind)
    _check_repo_id(cfg.repo_id)
    _existing_dir(cfg.path, cfg.kind)
    token = None if cfg.dry_run else check_upload_possible(cfg.token)
    result = stage(cfg)
    if cfg.dry_run:
        return result
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    repo_type = KINDS[cfg.kind]
    extra = {"space_sdk": _space_sdk(result.stage_dir)} if repo_type == "space" else {}
    api.create_repo(cfg.repo_id, repo_type=repo_type, private=cfg.private, exist_ok=True, **extra)
    if cfg.revision and cfg.revision != "main":
        api.create_branch(cfg.repo_id, branch=cfg.revision, repo_type=repo_type, exist_ok=True)
    commit = api.upload_folder(
        folder_path=result.stage_dir,
        repo_id=cfg.repo_id,
        repo_type=repo_type,
        revision=cfg.revision,
        commit_message=f"trustvl publish {cfg.kind}",
    )
    result.uploaded = True
    result.commit_url = str(getattr(commit, "commit_url", commit))
    return result
