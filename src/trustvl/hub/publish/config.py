"""What ``trustvl publish`` is asked to do (:class:`PublishConfig`, also the command's flags) and what it did
(:class:`PublishResult`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from trustvl.errors import TrustVLInputError
from trustvl.utils.options import overwrite_option

__all__ = ["KINDS", "PublishConfig", "PublishResult", "StagedFile", "check_kind", "check_repo_id"]

#: artefact kind -> Hub repo type
KINDS: dict[str, str] = {
    "model": "model",
    "adapter": "model",
    "dataset": "dataset",
    "metric": "space",
    "space": "space",
}
#: the kinds whose card is a model card made from a run's results (``--metrics``, ``--base-model``)
MODEL_KINDS = ("model", "adapter")

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


@dataclass
class PublishConfig:
    """What to publish and where (the fields are ``trustvl publish KIND PATH``'s flags).

    Attributes:
        kind: one of :data:`KINDS`.
        path: the local folder (or run folder) to publish.
        repo_id: ``owner/name`` on the Hub.
        private: create the repo private (an existing repo keeps its visibility).
        revision: branch to upload to (created from main when missing); None: main.
        dry_run: stage only; nothing is sent.
        token: Hub token; None: ``HF_TOKEN`` or the stored login.
        stage_dir: where to stage (must not exist or be empty unless ``overwrite``); None: a new temporary
            folder, kept.
        overwrite: replace a ``stage_dir`` that is not empty.
        metrics: metrics JSON for the model-index (models and adapters); None: the run's ``metrics.json``
            or ``train_summary.json`` where present.
        base_model: Hub id of the base model (adapters: required when the adapter names a local folder).
        license: the card's license when the card is made here.
    """

    kind: str = field(metadata={"help": f"what to publish: one of {', '.join(KINDS)}"})
    path: str = field(metadata={"help": "local folder to publish"})
    repo_id: str = field(metadata={"help": "OWNER/NAME on the Hub"})
    private: bool = field(default=False, metadata={"help": "create the repo private"})
    revision: str | None = field(
        default=None, metadata={"help": "branch to upload to, created when missing; unset: main"}
    )
    dry_run: bool = field(default=False, metadata={"help": "stage only and list what would be uploaded"})
    token: str | None = field(
        default=None, metadata={"help": "Hub token; unset: HF_TOKEN or the stored login"}
    )
    stage_dir: str | None = field(
        default=None,
        metadata={
            "help": "folder to stage into, empty unless --overwrite; unset: a new temporary folder (kept)"
        },
    )
    overwrite: bool = overwrite_option("--stage-dir")
    metrics: str | None = field(
        default=None,
        metadata={
            "help": "model/adapter: metrics JSON for the card's model-index; unset: the run's metrics.json or"
            " train_summary.json"
        },
    )
    base_model: str | None = field(default=None, metadata={"help": "model/adapter: Hub id of the base model"})
    license: str = field(
        default="apache-2.0", metadata={"help": "model/adapter/dataset: license of a card made here"}
    )


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


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise TrustVLInputError(f"kind {kind!r}; expected one of {', '.join(KINDS)}")


def check_repo_id(repo_id: str) -> None:
    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id) or ".." in repo_id:
        raise TrustVLInputError(
            f"--repo-id {repo_id!r}; expected OWNER/NAME (letters, digits, '-', '_', '.')"
        )


def check_model_options(cfg: PublishConfig) -> None:
    """``metrics`` and ``base_model`` describe a model card; other kinds refuse them rather than ignore them."""
    if cfg.kind in MODEL_KINDS:
        return
    for name in ("metrics", "base_model"):
        if getattr(cfg, name) is not None:
            flag = "--" + name.replace("_", "-")
            raise TrustVLInputError(
                f"{flag} {getattr(cfg, name)!r} is for models and adapters; publish {cfg.kind} takes no {flag}"
            )
