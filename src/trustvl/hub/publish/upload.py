""":func:`publish`: stage, then ``HfApi.create_repo`` + ``HfApi.upload_folder``; the Hub is checked to be
usable before anything is staged."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.hub.loading import hub_offline
from trustvl.hub.publish.config import (
    KINDS,
    PublishConfig,
    PublishResult,
    check_kind,
    check_model_options,
    check_repo_id,
)
from trustvl.hub.publish.folders import existing_dir, front_matter
from trustvl.hub.publish.model_index import MetricsReader
from trustvl.hub.publish.staging import check_stage_dir, stage

__all__ = ["check_upload_possible", "publish"]


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


def publish(cfg: PublishConfig, api: Any = None, read_metrics: MetricsReader | None = None) -> PublishResult:
    """Stage ``cfg.path`` and, unless ``cfg.dry_run``, upload it to ``cfg.repo_id``.

    Order: the kind, repo id, path and stage folder are checked, then (uploads only) the Hub is checked to
    be usable (:func:`check_upload_possible`), then the folder is staged, then
    ``HfApi.create_repo(exist_ok=True)``, the branch (``revision``, created when missing) and
    ``HfApi.upload_folder``. ``api``: an ``HfApi``-like object (tests); default ``HfApi(token=...)``.
    ``read_metrics``: see :func:`~trustvl.hub.publish.staging.stage`.
    """
    check_kind(cfg.kind)
    check_repo_id(cfg.repo_id)
    check_model_options(cfg)
    check_stage_dir(cfg, existing_dir(cfg.path, cfg.kind))
    token = None if cfg.dry_run else check_upload_possible(cfg.token)
    result = stage(cfg, read_metrics)
    if cfg.dry_run:
        return result
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    repo_type = KINDS[cfg.kind]
    extra = (
        {"space_sdk": front_matter(Path(result.stage_dir) / "README.md").get("sdk")}
        if repo_type == "space"
        else {}
    )
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
