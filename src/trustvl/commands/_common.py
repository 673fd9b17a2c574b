"""Pieces the subcommands share: the one output-folder check (:func:`check_output_dir`), model-folder checks,
subcommand groups, JSON summaries, and subcommands parsed from a configuration dataclass
(:class:`ConfigArgumentParser`, :func:`add_config_command`, :func:`config_from_namespace`).

A new command (``trustvl publish`` included) gets its options, ``--config FILE`` and its checks this way::

    add_config_command(sub, "publish", "trustvl.hub.publish:PublishConfig", _cmd_publish, help="...")

    def _cmd_publish(args):
        cfg = config_from_namespace(args.config_class, args)
        check_output_dir(cfg.stage_dir, overwrite=..., flag="--stage-dir")  # before any work

and raises :class:`~trustvl.errors.TrustVLInputError` for bad input: :func:`trustvl.cli.main` is the one error
path (closes open progress bars, prints one line, exit code 2).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib
import json
import math
import os
import sys
import types
import typing
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
    # under torchrun / accelerate launch rank 0 may already be writing the folder when a slower rank gets
    # here: rank 0 alone refuses a non-empty folder (its error ends the whole launch)
    other_rank = int(os.environ.get("RANK", "0") or 0) > 0
    if out.is_dir() and any(out.iterdir()) and not overwrite and not resume and not other_rank:
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
    (built with ``parser_class``, default :class:`ConfigArgumentParser`: pass ``config_class=`` to their
    ``add_parser``)."""
    p = sub.add_parser(name, help=help)
    inner = p.add_subparsers(
        dest=f"{name}_what", metavar="WHAT", parser_class=parser_class or ConfigArgumentParser
    )
    inner.required = True
    return inner


def add_config_command(sub: Any, name: str, config_class: str, handler: Any, help: str, **kwargs: Any) -> Any:
    """Add the subcommand ``name`` whose options are the fields of ``config_class`` (``"module:Class"``,
    imported only when this subcommand is parsed or its help shown) and whose ``handler`` builds the
    configuration with :func:`config_from_namespace`. ``sub`` must make :class:`ConfigArgumentParser` parsers
    (the top-level subcommands and :func:`add_group` groups do). ``kwargs`` go to ``add_parser``
    (``description``...). Returns the parser, for options that are not configuration fields (``--resume``).
    """
    kwargs.setdefault("description", help)
    p = sub.add_parser(name, help=help, config_class=config_class, **kwargs)
    p.set_defaults(handler=handler)
    return p


#: trustvl's own keys in a configuration field's ``metadata`` (HfArgumentParser passes every other key, such
#: as ``help``, ``aliases`` and ``choices``, to ``add_argument``):
#:
#: - ``min`` / ``max``: bounds of a number flag, checked when the flag is parsed so that the error names the
#:   flag (an integer's ``max`` defaults to :data:`MAX_COUNT`; ``"max": None`` lifts it);
#: - ``cli``: ``False`` for a field without a flag (a ``--config`` file may still set it);
#: - ``negative_aliases``: more spellings of the ``--no_<field>`` switch of a bool that defaults to True
#:   (``progress``: ``--quiet``);
#: - ``flags``: on a field that holds a nested configuration dataclass (``DemoConfig.cf_alpha``), the nested
#:   fields given a flag of their own name, each mapped to metadata overrides (``{"max_steps": {"min": 1}}``);
#:   a ``--config`` file sets any nested field with a mapping (``cf_alpha: {beta_cf: 10}``), and one with a
#:   flag also by its flag name as a top-level key (``max_steps: 40``).
TRUSTVL_METADATA_KEYS = ("min", "max", "cli", "negative_aliases", "flags")

#: field names kept for trustvl's own global flags: ``--debug`` is trustvl's traceback switch wherever it
#: is placed, never transformers' ``TrainingArguments.debug`` (still settable in a ``--config`` file)
RESERVED_FLAG_NAMES = frozenset({"debug"})


def nested_config_fields(config_class: type) -> dict[str, dataclasses.Field]:
    """The fields of ``config_class`` that hold a nested configuration dataclass (``metadata["flags"]``)."""
    return {f.name: f for f in dataclasses.fields(config_class) if f.init and "flags" in f.metadata}


class ConfigArgumentParser(HfArgumentParser):
    """An :class:`~transformers.HfArgumentParser` that also reads ``--config FILE`` (YAML or JSON; a class
    with its own recipe format gives a classmethod ``config_file_values(path) -> {field: value}`` and a
    ``config_file_help`` string).

    Every field of the configuration dataclass is a flag (``--learning_rate``, or ``--learning-rate``, plus
    the ``aliases`` in its metadata) with its default and doc in ``--help``; :data:`TRUSTVL_METADATA_KEYS`
    adds bounds, fields without a flag and nested configurations. The file's values replace the defaults;
    flags given on the command line override the file. Subcommands are made with ``add_parser(...,
    config_class="package.module:ClassName")`` (:func:`add_config_command`): the class is imported (and its
    flags added) only when this subcommand is parsed or its help shown, so that ``trustvl --help`` and the
    other commands stay fast (a ``TrainingArguments`` import costs seconds). The parsed namespace holds the
    class as ``config_class``; :func:`config_from_namespace` builds the configuration.
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
        # a nested field's flag name may also be a top-level key of a --config file (``n_train: 4`` as well
        # as ``quadruplets: {n_train: 4}``): flag names are unique, so the key names one field
        for f in nested_config_fields(self.dataclass_types[0]).values():
            self.config_fields |= set(f.metadata["flags"])
        self.set_defaults(config_class=self.dataclass_types[0])
        self.add_argument(
            "--config",
            metavar="FILE",
            default=None,
            help=getattr(self.dataclass_types[0], "config_file_help", None)
            or "YAML or JSON file of field values (a recipe); flags on the command line override it",
        )

    def _add_dataclass_arguments(self, dtype: Any) -> None:
        hints = typing.get_type_hints(dtype)
        for f in dataclasses.fields(dtype):
            if not f.init or f.metadata.get("cli", True) is False or f.name in RESERVED_FLAG_NAMES:
                continue
            if "flags" in f.metadata:
                self._add_nested_flags(f, hints[f.name])
            else:
                self._add_field_flag(f, hints[f.name], dest=f.name)

    def _add_nested_flags(self, f: dataclasses.Field, nested_class: type) -> None:
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        nested = {g.name: g for g in dataclasses.fields(nested_class)}
        hints = typing.get_type_hints(nested_class)
        for name, overrides in f.metadata["flags"].items():
            g = nested[name]
            flag_field = dataclasses.field(
                default=getattr(default, name), metadata={**g.metadata, **(overrides or {})}
            )
            flag_field.name = name
            self._add_field_flag(flag_field, hints[name], dest=f"{f.name}.{name}")

    def _add_field_flag(self, f: dataclasses.Field, type_hint: Any, dest: str) -> None:
        """Add ``f``'s flag(s) through HfArgumentParser, then trustvl's metadata (bounds, negative aliases)."""
        plain = copy.copy(f)
        plain.metadata = types.MappingProxyType(
            {k: v for k, v in f.metadata.items() if k not in TRUSTVL_METADATA_KEYS}
        )
        plain.type = _listed_tuple(type_hint)
        n_before = len(self._actions)
        self._parse_dataclass_field(self, plain)
        added = self._actions[n_before:]
        value_type = _value_type(type_hint)
        for action in added:
            if dest != action.dest and action.nargs != 0 and action.metavar is None:
                action.metavar = f.name.upper()
            action.dest = dest
            if action.nargs == "+" and action.default is None and f.default is not dataclasses.MISSING:
                action.default = f.default  # HfArgumentParser keeps only a list field's default_factory
            if action.option_strings[0].startswith("--no_") and action.const is not True:
                action.help, action.default = f"same as --{f.name} false", argparse.SUPPRESS
                for alias in f.metadata.get("negative_aliases", ()):
                    action.option_strings.append(alias)
                    self._option_string_actions[alias] = action
            elif value_type is int and ("min" in f.metadata or "max" in f.metadata):
                action.type = int_arg(f.metadata.get("min"), f.metadata.get("max", MAX_COUNT))
            elif value_type is float:
                action.type = float_arg(f.metadata.get("min"), f.metadata.get("max"))

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
            # a configuration class may read its own recipe format (``build counterfactuals``: the grid YAML)
            reader = getattr(self.dataclass_types[0], "config_file_values", None)
            try:
                values = reader(path) if reader else read_config_file(path, self.config_fields)
            except TrustVLInputError as err:
                self.error(str(err))  # like any bad flag: usage + one line on stderr, exit code 2
            self._use_file_values(values)
        return super().parse_known_args(args, namespace)

    def _use_file_values(self, values: Mapping[str, Any]) -> None:
        nested = nested_config_fields(self.dataclass_types[0])
        flagged = set()
        for action in self._actions:
            if action.dest in values:
                action.default = values[action.dest]
                action.required = False  # given by the file
                flagged.add(action.dest)
            head, _, tail = action.dest.partition(".")
            if tail and tail in values and head not in values:
                action.default = values[tail]  # a nested field's flag name as a top-level key
            if tail and isinstance(values.get(head), Mapping) and tail in values[head]:
                action.default = values[head][tail]
        # fields without a flag of their own (``cli: False``, nested configurations) reach the namespace here
        self.set_defaults(**{k: v for k, v in values.items() if k not in flagged or k in nested})


def _listed_tuple(type_hint: Any) -> Any:
    """``list[X]`` for ``tuple[X, ...]`` (also inside ``| None``), which HfArgumentParser cannot parse; the
    configuration's own ``__post_init__`` turns the list back into a tuple where it needs one."""
    args = typing.get_args(type_hint)
    if typing.get_origin(type_hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return list[args[0]]
    if type(None) in args and len(args) == 2:
        given = next(a for a in args if a is not type(None))
        inner = _listed_tuple(given)
        return type_hint if inner is given else inner | None
    return type_hint


def _value_type(type_hint: Any) -> Any:
    """``int`` for ``int``, ``int | None`` and ``list[int]`` (likewise ``float``); else the hint itself."""
    args = [a for a in typing.get_args(type_hint) if a is not type(None)]
    if typing.get_origin(type_hint) in (list, tuple) and args:
        return args[0]
    if len(args) == 1:
        return _value_type(args[0])
    return type_hint


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
    """Build ``config_class`` from the parsed flags (the namespace's entries named like its fields; a nested
    configuration from its default, the file's mapping and its flags ``<field>.<name>``), then
    ``overrides``. The configuration's own checks (``ValueError``, ``TypeError``) become a one-line input
    error."""
    nested = nested_config_fields(config_class)
    names = {f.name for f in dataclasses.fields(config_class) if f.init}
    values = {name: getattr(args, name) for name in names - set(nested) if hasattr(args, name)}
    for name in RESERVED_FLAG_NAMES & set(values):
        if isinstance(
            values[name], bool
        ):  # trustvl's own switch (``--debug``), not the field: a file sets that
            del values[name]
    for name, f in nested.items():
        if name not in overrides:
            values[name] = _nested_config(f, config_class.__name__, args)
    values.update(overrides)
    try:
        return config_class(**values)
    except TrustVLInputError:
        raise
    except (ValueError, TypeError) as err:
        raise TrustVLInputError(f"{config_class.__name__}: {err}") from None


def _nested_config(f: dataclasses.Field, owner: str, args: argparse.Namespace) -> Any:
    """The nested configuration of field ``f``: its default with the ``--config`` file's mapping and the
    flags ``<field>.<name>`` applied (re-validated by its own ``__post_init__``)."""
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    given = getattr(args, f.name, None)
    if given is not None and not isinstance(given, Mapping) and not dataclasses.is_dataclass(given):
        raise TrustVLInputError(
            f"{owner}.{f.name} is a {type(given).__name__}; expected a mapping of "
            f"{type(default).__name__} fields"
        )
    if dataclasses.is_dataclass(given):
        default, given = given, None
    changes = dict(given or {})
    prefix = f.name + "."
    changes.update({k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix)})
    changes = {k: v for k, v in changes.items() if not hasattr(default, k) or getattr(default, k) != v}
    if not changes:
        return default
    try:
        return dataclasses.replace(default, **changes)
    except TrustVLInputError:
        raise
    except (ValueError, TypeError) as err:
        raise TrustVLInputError(f"{owner}.{f.name}: {err}") from None


def print_json_summary(summary: Mapping[str, Any], keys: Iterable[str] | None = None) -> None:
    """Print one JSON line of ``summary``: the entries ``keys`` in that order, or else every entry whose
    value is a number or a string."""
    if keys is None:
        picked = {k: v for k, v in summary.items() if isinstance(v, (int, float, str))}
    else:
        picked = {k: summary[k] for k in keys}
    print(json.dumps(picked))
