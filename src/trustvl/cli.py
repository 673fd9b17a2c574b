"""The ``trustvl`` command line.

Each subcommand is a thin layer over a Python API of the same name. There is one error path
(:func:`main`): bad input -- a bad flag (argparse), a :class:`~trustvl.errors.TrustVLInputError`, a missing,
unreadable or corrupt file (``OSError``, ``SafetensorError``, ``JSONDecodeError``, a bad Hub id) -- ends
with one line on stderr, ``trustvl: error: ...``, and exit code 2, never a traceback. Any other exception is
a bug in trustvl: one line ``trustvl: internal error: ...`` and exit code 1. ``trustvl --debug ...`` (or
``TRUSTVL_DEBUG=1``) lets the exception propagate, with its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from trustvl.commands._common import (
    ConfigArgumentParser,
    OneLineErrorParser,
    UsageError,
    add_config_command,
    check_model_path,
    check_output_dir,
    config_from_namespace,
)
from trustvl.errors import TrustVLInputError


def _cmd_audit(args: argparse.Namespace) -> int:
    from trustvl.evaluation.audit import AuditResult
    from trustvl.evaluation.trust_report import run_trust_report
    from trustvl.evaluation.trust_report.summary import summary_lines

    cfg = config_from_namespace(args.config_class, args)
    check_output_dir(cfg.out_dir, overwrite=cfg.overwrite)
    check_model_path(cfg.model, "--model")
    check_model_path(cfg.compare, "--compare")
    result = run_trust_report(cfg)
    if result is None:  # a rank other than 0 of `accelerate launch`: rank 0 prints and writes the report
        return 0
    for line in summary_lines(result.evaluation if isinstance(result, AuditResult) else result):
        print(line)
    print(f"report: {os.path.join(os.path.abspath(cfg.out_dir), 'report.html')}")
    return 0


def _cmd_fixtures(args: argparse.Namespace) -> int:
    from trustvl.testing.tiny import build_tiny_fixtures

    cfg = config_from_namespace(args.config_class, args)
    check_output_dir(cfg.out_dir, overwrite=cfg.overwrite)
    paths = build_tiny_fixtures(cfg.out_dir, seed=cfg.seed)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _add_core_commands(sub: Any) -> None:
    add_config_command(
        sub,
        "audit",
        "trustvl.evaluation.trust_report.config:TrustReportConfig",
        _cmd_audit,
        help="trust report of a CLIP model: social bias, unsafe content, spurious features (--axes bias: fairness only)",
        description="Audit a CLIP-style model on three axes, each with 95% intervals: retrieval fairness "
        "(MaxSkew@k, MinSkew@k, NDKL per attribute, the over-represented group per prompt, zero-shot and "
        "worst-group accuracy), unsafe content (NSFW rate text→image and image→text, separability) and "
        "spurious region features (RaVL). --compare M0 adds paired verdicts against a baseline. Without "
        "--dataset, a SynthWorld-Web gallery is rendered on the fly.",
    )
    add_config_command(
        sub,
        "fixtures",
        "trustvl.testing.tiny:TinyFixturesConfig",
        _cmd_fixtures,
        help="write tiny random offline models (CLIP, SD, SD-inpaint) for tests",
    )


def build_parser() -> argparse.ArgumentParser:
    from trustvl import __version__

    parser = OneLineErrorParser(prog="trustvl", description="Fairer, safer, more robust CLIP models.")
    parser.add_argument("--version", action="version", version=f"trustvl {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (also: TRUSTVL_DEBUG=1)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ConfigArgumentParser)
    sub.required = True
    from trustvl.commands import METHOD_COMMANDS

    # each adder(subparsers) creates one subcommand's parser and sets its ``handler``
    for adder in [_add_core_commands, *METHOD_COMMANDS]:
        adder(sub)
    return parser


def _silence_library_progress() -> None:
    """``--quiet``: also hide the progress bars of datasets ("Generating train split") and transformers
    ("Loading weights"), not only trustvl's own."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def _input_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions that mean bad input (one line, exit code 2) rather than a bug in trustvl."""
    import json

    types: list[type[BaseException]] = [TrustVLInputError, OSError, json.JSONDecodeError]
    try:
        from safetensors import SafetensorError

        types.append(SafetensorError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from huggingface_hub.errors import HFValidationError

        types.append(HFValidationError)
    except ImportError:  # pragma: no cover
        pass
    try:
        import yaml

        types.append(yaml.YAMLError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, OSError) and err.filename is not None and str(err.filename) not in text:
        text = f"{err.filename}: {text}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``trustvl`` with ``argv`` (default: ``sys.argv[1:]``) and return its exit code (0, 1, 2, 130).

    A bad flag raises ``SystemExit(2)`` after its one line, like argparse; ``--help`` and ``--version``
    raise ``SystemExit(0)``.
    """
    argv, debug_flag = _take_debug_flag(list(sys.argv[1:] if argv is None else argv))
    debug = bool(os.environ.get("TRUSTVL_DEBUG")) or debug_flag
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as err:
        if debug:
            raise
        print(f"trustvl: error: {_one_line(err)}", file=sys.stderr)
        raise SystemExit(2) from None
    if getattr(args, "quiet", False) or getattr(args, "progress", True) is False:
        _silence_library_progress()
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        _close_progress_bars()
        print("trustvl: interrupted", file=sys.stderr)
        return 130
    except _input_error_types() as err:
        _close_progress_bars()
        if debug:
            raise
        print(f"trustvl: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:  # a bug: say so in one line; --debug shows the traceback
        _close_progress_bars()
        if debug:
            raise
        print(
            f"trustvl: internal error: {type(err).__name__}: {_one_line(err)} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


def _take_debug_flag(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without trustvl's ``--debug`` switch, and whether it was given: wherever it is placed
    (``trustvl train cf-alpha ... --debug`` too), it is trustvl's, never transformers' ``debug`` option.
    Arguments after ``--`` are left alone."""
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [arg for arg in argv[:end] if arg != "--debug"]
    return kept + argv[end:], len(kept) < end


def _close_progress_bars() -> None:
    """Close the progress bars an error left open, so that they do not redraw over the error line."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


if __name__ == "__main__":
    sys.exit(main())
