"""Pieces the method subcommands share: subcommand groups, the common run options, JSON summaries, and
subcommands parsed into a configuration dataclass (:class:`ConfigArgumentParser`)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from transformers import HfArgumentParser

from trustvl.errors import TrustVLInputError

T = TypeVar("T")

#: the largest count of images/scenes/rows a command accepts: far above any real run, far below what fills
#: a machine's memory by mistake (``--n-test 1000000000000``)
MAX_COUNT = 100_000_000


class UsageError(Exception):
    """A bad flag found by argparse; :func:`trustvl.cli.main` prints it as one line."""


class OneLineErrorParser(argparse.ArgumentParser):
    """An argparse parser whose errors raise :class:`UsageError` (one line, no usage block) instead of
    printing the usage and exiting; its subparsers are of the same class."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        where = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        raise UsageError(f"{where}{message}")


def int_arg(low: int | None = None, high: int | None = MAX_COUNT) -> Any:
    """An argparse ``type``: an integer in ``[low, high]`` (a bound of None: unbounded)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"{text!r} is out of range; expected an integer {_range(low, high)}"
            )
        return value

    parse.__name__ = "int"
    return parse


def float_arg(low: float | None = None, high: float | None = None, *, open_high: bool = False) -> Any:
    """An argparse ``type``: a finite number in ``[low, high]`` (``[low, high)`` with ``open_high``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        bad = not math.isfinite(value) or (low is not None and value < low)
        bad = bad or (high is not None and (value >= high if open_high else value > high))
        if bad:
            rng = (
                _range(low, high).replace("<= " + str(high), "< " + str(high))
                if open_high
                else _range(low, high)
            )
            raise argparse.ArgumentTypeError(f"{text!r} is out of range; expected a finite number {rng}")
        return value

    parse.__name__ = "float"
    return parse


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f">= {low} and <= {high}"
    if low is not None:
        return f">= {low}"
    if high is not None:
        return f"<= {high}"
    return "(any)"


def parse_json_object(text: str, flag: str) -> dict[str, Any]:
    """The JSON object ``text`` given to ``flag``; anything else (bad JSON, a list) is an input error."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise TrustVLInputError(
            f"{flag} {text!r} is not valid JSON ({err}); expected a JSON object"
        ) from None
    if not isinstance(value, dict):
        raise TrustVLInputError(f"{flag} {text!r} is a JSON {type(value).__name__}; expected a JSON object")
    return value


#: files that mark a folder as a loadable model: transformers/peft/diffusers/sentence-transformers configs
MODEL_CONFIG_FILES = ("config.json", "adapter_config.json", "model_index.json", "preprocessor_config.json")


def looks_like_path(value: str) -> bool:
    """Whether ``value`` names a local path rather than a Hub id (``org/name``)."""
    return (
        os.path.isabs(value)
        or value.startswith((".", "~"))
        or value.count("/") > 1
        or os.sep != "/"
        and os.sep in value
        or os.path.exists(value)
    )


def check_model_path(value: str | None, flag: str) -> None:
    """Refuse, before any compute, a model folder that cannot load: missing, not a folder, without a config
    file, or with a ``.safetensors`` file whose header is unreadable or that is shorter than its header
    says (a truncated download or copy). Hub ids (``org/name``) are left to the loader."""
    if value is None or not looks_like_path(str(value)):
        return
    path = Path(str(value)).expanduser()
    if not path.exists():
        raise TrustVLInputError(f"{flag} {str(value)!r} does not exist; expected a model folder or a Hub id")
    if not path.is_dir():
        raise TrustVLInputError(f"{flag} {str(value)!r} is a file; expected a model folder (save_pretrained)")
    if not any((path / name).is_file() for name in MODEL_CONFIG_FILES):
        raise TrustVLInputError(
            f"{flag} {str(value)!r} holds no model config ({', '.join(MODEL_CONFIG_FILES)}); expected a folder "
            "written with save_pretrained"
        )
    for weights in sorted(path.rglob("*.safetensors")):
        check_safetensors_file(weights, flag)


def check_safetensors_file(path: Path, flag: str) -> None:
    """Read a ``.safetensors`` header (8-byte length + JSON) and check the file holds every tensor's bytes."""
    size = path.stat().st_size
    problem = None
    with open(path, "rb") as fh:
        head = fh.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            problem = "its header is cut short"
        else:
            try:
                header = json.loads(fh.read(n))
                end = max(
                    (int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0
                )
            except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError):
                problem = "its header is not valid safetensors JSON"
            else:
                if 8 + n + end > size:
                    problem = f"it is truncated ({size} bytes; its header needs {8 + n + end})"
    if problem:
        raise TrustVLInputError(
            f"{flag}: the weights file {str(path)!r} is corrupt: {problem}; expected a complete .safetensors file"
        )


def check_output_dir(
    path: str | os.PathLike | None,
    *,
    overwrite: bool = False,
    resume: bool | None = None,
    flag: str = "--out",
) -> Path | None:
    """Refuse, before any compute, an output folder that cannot or must not be written.

    ``path`` must be a folder path (not a file) whose nearest existing ancestor is a writable folder (the
    atomic writers stage next to it); an existing non-empty folder needs ``overwrite`` (or ``resume``, for
    commands that can continue a run: pass ``resume=False`` when the flag exists but is off, None when the
    command has no ``--resume``).
    """
    if path is None:
        return None
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise TrustVLInputError(f"{flag} {str(path)!r} is an existing file; expected a folder path")
    if out.is_dir() and any(out.iterdir()) and not overwrite and not resume:
        how = "--overwrite to replace it" + (" or --resume to continue it" if resume is not None else "")
        raise TrustVLInputError(
            f"{flag} {str(path)!r} exists and is not empty; choose another folder or pass {how}"
        )
    ancestor = out.absolute()
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise TrustVLInputError(
            f"{flag} {str(path)!r} cannot be created: {str(ancestor)!r} is a file, not a folder"
        )
    for folder in {ancestor, out.absolute().parent} if out.exists() else {ancestor}:
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            raise TrustVLInputError(f"{flag} {str(path)!r}: the folder {str(folder)!r} is not writable")
    return out


def add_group(sub: Any, name: str, help: str, parser_class: type | None = None) -> Any:
    """Add the subcommand ``name`` whose own subcommands (one per method) go into the returned subparsers
    (built with ``parser_class``, e.g. :class:`ConfigArgumentParser`, when given)."""
    p = sub.add_parser(name, help=help)
    kwargs = {"parser_class": parser_class} if parser_class is not None else {}
    inner = p.add_subparsers(dest=f"{name}_what", metavar="WHAT", **kwargs)
    inner.required = True
    return inner


class ConfigArgumentParser(HfArgumentParser):
    """An :class:`~transformers.HfArgumentParser` that also reads ``--config FILE`` (YAML or JSON).

    Every field of the configuration dataclass is a flag (``--learning_rate``, or ``--learning-rate``) with its
    default and doc in ``--help``. The file's values replace the defaults; flags given on the command line
    override the file. Use it as the ``parser_class`` of a subcommand group (:func:`add_group`) with
    ``config_class="package.module:ClassName"``: the class is imported (and its flags added) only when this
    subcommand is parsed or its help shown, so that ``trustvl --help`` and the other commands stay fast
    (a ``TrainingArguments`` import costs seconds). The parsed namespace holds the class as ``config_class``;
    :func:`config_from_namespace` builds the configuration.
    """

    def __init__(
        self, dataclass_types: Any = None, *, config_class: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(dataclass_types, **kwargs)
        self._lazy_config_class = config_class
        self.config_fields: set[str] = set()
        if self.dataclass_types:
            self._config_loaded()

    def _load_config_class(self) -> None:
        if self._lazy_config_class is None:
            return
        module_name, _, class_name = self._lazy_config_class.partition(":")
        self._lazy_config_class = None
        config_class = getattr(importlib.import_module(module_name), class_name)
        self.dataclass_types = [config_class]
        self._add_dataclass_arguments(config_class)
        self._config_loaded()

    def _config_loaded(self) -> None:
        self.config_fields = {
            f.name for dtype in self.dataclass_types for f in dataclasses.fields(dtype) if f.init
        }
        self.set_defaults(config_class=self.dataclass_types[0])
        self.add_argument(
            "--config",
            metavar="FILE",
            default=None,
            help="YAML or JSON file of field values (a recipe); flags on the command line override it",
        )

    def error(self, message: str) -> Any:  # type: ignore[override]
        return OneLineErrorParser.error(self, message)  # type: ignore[arg-type]

    def format_help(self) -> str:
        self._load_config_class()
        return super().format_help()

    def format_usage(self) -> str:
        self._load_config_class()
        return super().format_usage()

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        self._load_config_class()
        args = list(sys.argv[1:] if args is None else args)
        path = _config_path(args)
        if path is not None and self.config_fields:
            try:
                values = read_config_file(path, self.config_fields)
            except TrustVLInputError as err:
                self.error(str(err))  # like any bad flag: usage + one line on stderr, exit code 2
            self._use_file_values(values)
        return super().parse_known_args(args, namespace)

    def _use_file_values(self, values: Mapping[str, Any]) -> None:
        for action in self._actions:
            if action.dest in values:
                action.default = values[action.dest]
                action.required = False  # given by the file


def _config_path(args: Sequence[str]) -> str | None:
    path = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--config" and i + 1 < len(args):
            path = args[i + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
    return path


def read_config_file(path: str | os.PathLike, fields: Iterable[str]) -> dict[str, Any]:
    """The mapping of field values in a YAML (``.yaml``/``.yml``) or JSON file; unknown keys are an error."""
    path = Path(path)
    if not path.is_file():
        raise TrustVLInputError(f"--config {str(path)!r} is not a file; expected a YAML or JSON recipe")
    text = path.read_text(encoding="utf-8")
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise TrustVLInputError(f"--config {str(path)!r} is not valid YAML/JSON: {err}") from None
    if not isinstance(values, dict):
        raise TrustVLInputError(
            f"--config {str(path)!r} holds a {type(values).__name__}; expected a mapping of field names to values"
        )
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise TrustVLInputError(
            f"--config {str(path)!r} has unknown fields {unknown}; see --help for the fields of this command"
        )
    return values


def config_from_namespace(config_class: type[T], args: argparse.Namespace, **overrides: Any) -> T:
    """Build ``config_class`` from the parsed flags (the namespace's entries named like its fields), then
    ``overrides``. transformers' own consistency checks (``ValueError``) become a one-line input error."""
    names = {f.name for f in dataclasses.fields(config_class) if f.init}
    values = {name: getattr(args, name) for name in names if hasattr(args, name)}
    values.update(overrides)
    try:
        return config_class(**values)
    except TrustVLInputError:
        raise
    except ValueError as err:
        raise TrustVLInputError(f"{config_class.__name__}: {err}") from None


def add_run_options(
    p: argparse.ArgumentParser,
    *,
    seed: int | None = None,
    overwrite: bool = False,
    resume: bool = False,
    quiet: bool = False,
) -> None:
    """Add the options many subcommands share, in this order: ``--seed`` (only when ``seed`` is given,
    as its default), then the switches ``--overwrite``, ``--resume`` and ``--quiet`` that are asked for."""
    if seed is not None:
        p.add_argument("--seed", type=int, default=seed)
    for name, wanted in (("overwrite", overwrite), ("resume", resume), ("quiet", quiet)):
        if wanted:
            p.add_argument(f"--{name}", action="store_true")


def print_json_summary(summary: Mapping[str, Any], keys: Iterable[str] | None = None) -> None:
    """Print one JSON line of ``summary``: the entries ``keys`` in that order, or else every entry whose
    value is a number or a string."""
    if keys is None:
        picked = {k: v for k, v in summary.items() if isinstance(v, (int, float, str))}
    else:
        picked = {k: summary[k] for k in keys}
    print(json.dumps(picked))
