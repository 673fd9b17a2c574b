"""The ``trustvl`` command line.

Each subcommand is a thin layer over a Python API of the same name. Bad input ends with one line on
stderr (``trustvl: error: ...``) and exit code 2, never a traceback; ``TRUSTVL_DEBUG=1`` shows the
traceback anyway.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from trustvl.errors import TrustVLInputError

Handler = Callable[[argparse.Namespace], int]


def _cmd_audit(args: argparse.Namespace) -> int:
    from trustvl.evaluation.audit import AuditConfig, run_audit
    from trustvl.evaluation.wording import evaluation_lines

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
        "--k", nargs="+", type=int, default=None, help="cut-offs (default 10 100 1000, those that fit)"
    )
    p.add_argument("--target", choices=["uniform", "gallery"], default="uniform")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default=None, choices=["fp32", "bf16", "fp16"])
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument(
        "--n-resamples",
        type=int,
        default=200,
        help="gallery-bootstrap resamples for the intervals, floors and verdicts (0: off; default %(default)s)",
    )
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_cmd_audit)


def _cmd_fixtures(args: argparse.Namespace) -> int:
    from trustvl.testing.tiny import build_tiny_fixtures

    paths = build_tiny_fixtures(args.out)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _add_fixtures(sub: Any) -> None:
    p = sub.add_parser("fixtures", help="write tiny random offline models (CLIP, SD, SD-inpaint) for tests")
    p.add_argument("--out", required=True)
    p.set_defaults(handler=_cmd_fixtures)


_CORE_COMMANDS: list[Callable[[Any], None]] = [_add_audit, _add_fixtures]


def build_parser() -> argparse.ArgumentParser:
    from trustvl import __version__

    parser = argparse.ArgumentParser(prog="trustvl", description="Fairer, safer, more robust CLIP models.")
    parser.add_argument("--version", action="version", version=f"trustvl {__version__}")
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "quiet", False):
        _silence_library_progress()
    try:
        return int(args.handler(args) or 0)
    except TrustVLInputError as err:
        if os.environ.get("TRUSTVL_DEBUG"):
            raise
        print(f"trustvl: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trustvl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
