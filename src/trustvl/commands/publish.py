"""``trustvl publish {model,adapter,dataset,metric,space} PATH --repo-id ID``: stage a Hub-ready folder and
upload it (:mod:`trustvl.hub.publish`).

Each kind's options are :class:`~trustvl.hub.publish.PublishConfig` parsed by
:class:`~trustvl.commands._common.ConfigArgumentParser`: one flag per field (``--repo-id`` or ``--repo_id``),
its default and help from the field, and ``--config recipe.yaml`` for field values that flags override. The
kind is the subcommand and the folder the positional ``PATH``; ``--metrics`` and ``--base-model`` exist for
models and adapters, ``--license`` for the kinds whose card may be made here.
"""

from __future__ import annotations

import argparse
from typing import Any

from trustvl.commands._common import ConfigArgumentParser, check_output_dir, config_from_namespace
from trustvl.hub.publish import PublishConfig, publish

_KIND_HELP = {
    "model": "a save_pretrained model folder or a run folder with model/ (safetensors, card, remote code)",
    "adapter": "a peft adapter folder or a run folder with adapter/ (base model named by its Hub id)",
    "dataset": "a dataset folder of Parquet shards (+ a DatasetCard with configs, made when missing)",
    "metric": "an evaluate module folder (evaluate_metrics/<name>/), uploaded as a Space",
    "space": "a Space folder (spaces/<name>/): README front matter with sdk and app_file, the app file",
}
#: the PublishConfig fields that are not flags of a kind: set by the subcommand, the positional, or not
#: used by that kind
_NOT_FLAGS = {
    "model": ("kind", "path"),
    "adapter": ("kind", "path"),
    "dataset": ("kind", "path", "metrics", "base_model"),
    "metric": ("kind", "path", "metrics", "base_model", "license"),
    "space": ("kind", "path", "metrics", "base_model", "license"),
}


def add_publish(sub: Any) -> None:
    p = sub.add_parser(
        "publish",
        help="stage a Hub-ready folder (model, adapter, dataset, metric, space) and upload it",
        description="Stage PATH as a Hub repo folder (safetensors only, a huggingface_hub card) and upload it"
        " with HfApi.create_repo + upload_folder. Needs the Hub and a token unless --dry-run.",
    )
    inner = p.add_subparsers(dest="publish_what", metavar="KIND", parser_class=ConfigArgumentParser)
    inner.required = True
    for kind, help_text in _KIND_HELP.items():
        k = inner.add_parser(
            kind, help=help_text, description=f"Publish {help_text}.", dataclass_types=[PublishConfig]
        )
        for name in _NOT_FLAGS[kind]:
            _drop_option(k, name)
        _bool_fields_as_switches(k)
        k.add_argument("path", metavar="PATH", help="local folder to publish")
        k.config_fields -= set(_NOT_FLAGS[kind]) - {"path"}  # a recipe may name the folder, not the kind
        k.set_defaults(handler=_cmd_publish, kind=kind)


def _drop_option(parser: argparse.ArgumentParser, dest: str) -> None:
    """Remove the flag(s) that store ``dest`` (a field the subcommand fixes or does not use)."""
    for action in [a for a in parser._actions if a.dest == dest and a.option_strings]:
        parser._remove_action(action)
        for option in action.option_strings:
            parser._option_string_actions.pop(option, None)
        for group in parser._action_groups:
            if action in group._group_actions:
                group._group_actions.remove(action)


def _bool_fields_as_switches(parser: argparse.ArgumentParser) -> None:
    """Make each bool field a plain switch (``--dry-run``), as publish's flags always were: HfArgumentParser's
    ``--dry-run [BOOL]`` would take a following PATH as its value."""
    for action in [a for a in parser._actions if a.option_strings and a.nargs == "?" and a.const is True]:
        _drop_option(parser, action.dest)
        parser.add_argument(
            *action.option_strings,
            dest=action.dest,
            action="store_true",
            default=action.default,
            help=action.help,
        )


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _cmd_publish(args: argparse.Namespace) -> int:
    from trustvl.evaluation.model_index import model_index_from_metrics  # imports torch: only when run

    cfg = config_from_namespace(PublishConfig, args)
    check_output_dir(cfg.stage_dir, overwrite=cfg.overwrite, flag="--stage-dir")
    result = publish(cfg, read_metrics=model_index_from_metrics)
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
