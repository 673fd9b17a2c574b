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
from collections.abc import Callable, Sequence
from typing import Any

from trustvl.commands._common import (
    OneLineErrorParser,
    UsageError,
    check_model_path,
    check_output_dir,
    int_arg,
)
from trustvl.errors import TrustVLInputError

Handler = Callable[[argparse.Namespace], int]


def _cmd_audit(args: argparse.Namespace) -> int:
    from trustvl.evaluation.audit import AuditConfig, run_audit
    from trustvl.evaluation.wording import evaluation_lines

    check_output_dir(args.out, overwrite=args.overwrite)
    check_model_path(args.model, "--model")
    cfg = AuditConfig(
        model=args.model,
        dataset=args.dataset,
        out_dir=args.out,
        split=args.split,
        image_column=args.image_column,
        attributes=args.attributes,
        label_column=args.label_column,
        prompts_file=args.prompts_file,
        prompt_template=args.prompt_template,
        ks=args.k,
        target=args.target,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        max_images=args.max_images,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        overwrite=args.overwrite,
        progress=not args.quiet,
        n_resamples=args.n_resamples,
    )
    evaluation = run_audit(cfg).evaluation
    for line in evaluation_lines(evaluation):
        print(line)
    if evaluation.zero_shot_top1 is not None:
        print(f"zero-shot top-1: {evaluation.zero_shot_top1:.3f}")
    print(f"report: {os.path.join(os.path.abspath(args.out), 'report.html')}")
    return 0


def _add_audit(sub: Any) -> None:
    p = sub.add_parser(
        "audit",
        help="measure retrieval fairness (MaxSkew/MinSkew/NDKL) of a CLIP model",
        description="Rank an attributed image set for each concept prompt and report MaxSkew@k, "
        "MinSkew@k and NDKL per attribute.",
    )
    p.add_argument("--model", required=True, help="Hub id or local folder of a CLIP-style model")
    p.add_argument("--dataset", required=True, help="Hub id, local dataset folder or .parquet file")
    p.add_argument("--out", required=True, help="output folder (must be empty unless --overwrite)")
    p.add_argument("--split", default="test")
    p.add_argument("--image-column", default="image")
    p.add_argument(
        "--attributes", nargs="+", default=None, help="attribute columns (default: ClassLabel columns)"
    )
    p.add_argument("--label-column", default=None, help="class column: adds zero-shot accuracy")
    p.add_argument("--prompts-file", default=None, help="text file with one prompt per line")
    p.add_argument("--prompt-template", default="a photo of a {}")
    p.add_argument(
        "--k", nargs="+", type=int_arg(1), default=None, help="cut-offs (default 10 100 1000, those that fit)"
    )
    p.add_argument("--target", choices=["uniform", "gallery"], default="uniform")
    p.add_argument("--batch-size", type=int_arg(1), default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default=None, choices=["fp32", "bf16", "fp16"])
    p.add_argument("--max-images", type=int_arg(1), default=None)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument(
        "--n-resamples",
        type=int_arg(0),
        default=200,
        help="gallery-bootstrap resamples for the intervals, floors and verdicts (0: off; default %(default)s)",
    )
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_cmd_audit)


def _cmd_fixtures(args: argparse.Namespace) -> int:
    from trustvl.testing.tiny import build_tiny_fixtures

    check_output_dir(args.out, overwrite=args.overwrite)
    paths = build_tiny_fixtures(args.out)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _add_fixtures(sub: Any) -> None:
    p = sub.add_parser("fixtures", help="write tiny random offline models (CLIP, SD, SD-inpaint) for tests")
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty")
    p.set_defaults(handler=_cmd_fixtures)


_CORE_COMMANDS: list[Callable[[Any], None]] = [_add_audit, _add_fixtures]


def build_parser() -> argparse.ArgumentParser:
    from trustvl import __version__

    parser = OneLineErrorParser(prog="trustvl", description="Fairer, safer, more robust CLIP models.")
    parser.add_argument("--version", action="version", version=f"trustvl {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (also: TRUSTVL_DEBUG=1)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    from trustvl.commands import METHOD_COMMANDS

    # each adder(subparsers) creates one subcommand's parser and sets its ``handler``
    for adder in [*_CORE_COMMANDS, *METHOD_COMMANDS]:
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
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = bool(os.environ.get("TRUSTVL_DEBUG")) or "--debug" in argv[: _first_command(argv)]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as err:
        if debug:
            raise
        print(f"trustvl: error: {_one_line(err)}", file=sys.stderr)
        raise SystemExit(2) from None
    if getattr(args, "quiet", False):
        _silence_library_progress()
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("trustvl: interrupted", file=sys.stderr)
        return 130
    except _input_error_types() as err:
        if debug:
            raise
        print(f"trustvl: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:  # a bug: say so in one line; --debug shows the traceback
        if debug:
            raise
        print(
            f"trustvl: internal error: {type(err).__name__}: {_one_line(err)} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


def _first_command(argv: Sequence[str]) -> int:
    """Index of the first argument that is not a top-level option (where the subcommand starts)."""
    for i, arg in enumerate(argv):
        if not arg.startswith("-"):
            return i
    return len(argv)


if __name__ == "__main__":
    sys.exit(main())
