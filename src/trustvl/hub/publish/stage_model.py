"""Staging a ``model`` (a ``save_pretrained`` folder, its remote code checked) or an ``adapter`` (a peft
adapter whose base is named by a Hub id), each with a model card."""

from __future__ import annotations

from pathlib import Path

from trustvl.errors import TrustVLInputError
from trustvl.hub.cards import is_hub_model_id
from trustvl.hub.publish.config import PublishConfig
from trustvl.hub.publish.folders import copy_files
from trustvl.hub.publish.model_cards import adapter_card, existing_model_card, model_card_for
from trustvl.hub.publish.model_index import MetricsReader, read_json_object, run_metrics
from trustvl.hub.publish.safety import check_remote_code, refuse_pickles, stageable_files
from trustvl.utils.io import write_json, write_text

__all__ = ["stage_adapter", "stage_model"]


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


def stage_model(cfg: PublishConfig, path: Path, dest: Path, read_metrics: MetricsReader | None) -> None:
    model_dir, run_dir = _model_dir(path)
    files = stageable_files(model_dir)
    refuse_pickles(model_dir, files)
    if not any(f.suffix == ".safetensors" for f in files):
        raise TrustVLInputError(
            f"{str(model_dir)!r} holds no .safetensors weights; expected model.safetensors"
        )
    config = read_json_object(model_dir / "config.json")
    remote = check_remote_code(model_dir, config)
    copy_files(model_dir, [f for f in files if f.name != "README.md"], dest)
    card = existing_model_card(model_dir / "README.md") if cfg.metrics is None else None
    if card is None:
        alpha = config.get("alpha") if isinstance(config.get("alpha"), (int, float)) else None
        metrics, source = run_metrics(cfg.metrics, [model_dir, run_dir], alpha, read_metrics)
        card = model_card_for(
            repo_id=cfg.repo_id,
            architecture=(config.get("architectures") or [config.get("model_type", "model")])[0],
            base_model=cfg.base_model or config.get("base_model_name_or_path"),
            remote_code=remote,
            metrics=metrics,
            source=source,
            license=cfg.license,
        )
    elif cfg.base_model:
        card.data.base_model = cfg.base_model
    write_text(dest / "README.md", str(card))


def stage_adapter(cfg: PublishConfig, path: Path, dest: Path, read_metrics: MetricsReader | None) -> None:
    if (path / "adapter_config.json").is_file():
        adapter_dir, run_dir = path, path.parent
    elif (path / "adapter" / "adapter_config.json").is_file():
        adapter_dir, run_dir = path / "adapter", path
    else:
        raise TrustVLInputError(
            f"{str(path)!r} holds no adapter_config.json (nor adapter/adapter_config.json); expected a peft"
            " adapter folder or a training run folder"
        )
    files = stageable_files(adapter_dir)
    refuse_pickles(adapter_dir, files)
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        raise TrustVLInputError(
            f"{str(adapter_dir)!r} holds no adapter_model.safetensors; expected a peft adapter"
        )
    adapter_config = read_json_object(adapter_dir / "adapter_config.json")
    base = cfg.base_model or adapter_config.get("base_model_name_or_path")
    if not is_hub_model_id(base):
        raise TrustVLInputError(
            f"the adapter's base model is {base!r}, not a Hub id; pass --base-model OWNER/NAME naming the base"
            " model on the Hub"
        )
    adapter_config["base_model_name_or_path"] = base
    copy_files(adapter_dir, [f for f in files if f.name not in ("README.md", "adapter_config.json")], dest)
    write_json(dest / "adapter_config.json", adapter_config)
    card = existing_model_card(adapter_dir / "README.md") if cfg.metrics is None else None
    if card is None:
        metrics, source = run_metrics(cfg.metrics, [adapter_dir, run_dir], None, read_metrics)
        card = adapter_card(
            repo_id=cfg.repo_id,
            adapter_config=adapter_config,
            base_model=base,
            metrics=metrics,
            source=source,
            license=cfg.license,
        )
    else:
        card.data.base_model = base
        card.data.library_name = "peft"
    write_text(dest / "README.md", str(card))
