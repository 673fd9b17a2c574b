"""``trustvl publish {model,adapter,dataset,metric,space} PATH --repo-id ID``: stage a Hub-ready folder and
upload it (:mod:`trustvl.hub.publish`)."""

from __future__ import annotations

import argparse
from typing import Any

_KIND_HELP = {
    "model": "a save_pretrained model folder or a run folder with model/ (safetensors, card, remote code)",
    "adapter": "a peft adapter folder or a run folder with adapter/ (base model named by its Hub id)",
    "dataset": "a dataset folder of Parquet shards (+ a DatasetCard with configs, made when missing)",
    "metric": "an evaluate module folder (evaluate_metrics/<name>/), uploaded as a Space",
    "space": "a Space folder (spaces/<name>/): README front matter with sdk and app_file, the app file",
}


def add_publish(sub: Any) -> None:
    p = sub.add_parser(
        "publish",
        help="stage a Hub-ready folder (model, adapter, dataset, metric, space) and upload it",
        description="Stage PATH as a Hub repo folder (safetensors only, a huggingface_hub card) and upload it"
        " with HfApi.create_repo + upload_folder. Needs the Hub and a token unless --dry-run.",
    )
    inner = p.add_subparsers(dest="publish_what", metavar="KIND")
    inner.required = True
    for kind, help_text in _KIND_HELP.items():
        k = inner.add_parser(kind, help=help_text, description=f"Publish {help_text}.")
        k.add_argument("path", metavar="PATH", help="local folder to publish")
        k.add_argument("--repo-id", required=True, help="OWNER/NAME on the Hub")
        k.add_argument("--private", action="store_true", help="create the repo private")
        k.add_argument(
            "--revision", default=None, help="branch to upload to (created when missing; default main)"
        )
        k.add_argument("--dry-run", action="store_true", help="stage only and list what would be uploaded")
        k.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the stored login)")
        k.add_argument(
            "--stage-dir", default=None, help="folder to stage into (default: a new temporary folder, kept)"
        )
        if kind in ("model", "adapter"):
            k.add_argument(
                "--metrics", default=None, help="metrics JSON for the card's model-index (default: the run's)"
            )
            k.add_argument("--base-model", default=None, help="Hub id of the base model")
        if kind in ("model", "adapter", "dataset"):
            k.add_argument("--license", default="apache-2.0", help="license of a card made here")
        k.set_defaults(handler=_cmd_publish, publish_kind=kind)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _cmd_publish(args: argparse.Namespace) -> int:
    from trustvl.hub.publish import PublishConfig, publish

    cfg = PublishConfig(
        kind=args.publish_kind,
        path=args.path,
        repo_id=args.repo_id,
        private=args.private,
        revision=args.revision,
        dry_run=args.dry_run,
        token=args.token,
        stage_dir=args.stage_dir,
        metrics=getattr(args, "metrics", None),
        base_model=getattr(args, "base_model", None),
        license=getattr(args, "license", "apache-2.0"),
    )
    result = publish(cfg)
    where = f"{result.repo_type} repo {result.repo_id}" + (" (private)" if result.private else "")
    where += f", revision {result.revision or 'main'}"
    print(("would upload to " if not result.uploaded else "uploaded to ") + where + ":")
    width = max((len(f.path) for f in result.files), default=0)
    for f in result.files:
        print(f"  {f.path.ljust(width)}  {_size(f.size):>9}")
    print(f"  {len(result.files)} files, {_size(result.total_bytes)}")
    print(f"staged folder: {result.stage_dir}")
    if result.commit_url:
        print(f"commit: {result.commit_url}")
    return 0
