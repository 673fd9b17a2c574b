"""Copy the shared files into every `evaluate` module folder of evaluate_metrics/ (or check them with --check).

* ``src/trustvl/metrics/_fairness_core.py`` (the numpy maths, the single source of truth) becomes
  ``evaluate_metrics/<name>/_fairness_core.py``: each module imports it relatively, so `evaluate.load`
  copies it along and the module runs without trustvl.
* ``evaluate_metrics/max_skew/app.py`` (the metric Space page; it finds its module by itself) becomes
  every other folder's ``app.py``.

Usage: ``python scripts/sync_evaluate_modules.py [--check]``; ``--check`` changes nothing and exits 1 if a
copy differs (tests/metrics/test_evaluate_modules_standalone.py checks the same).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "src" / "trustvl" / "metrics" / "_fairness_core.py"
MODULES = ROOT / "evaluate_metrics"
APP = MODULES / "max_skew" / "app.py"
NAMES = ("max_skew", "min_skew", "ndkl")


def copies() -> list[tuple[Path, Path]]:
    """(source, copy) pairs that must be byte-identical."""
    pairs = [(CORE, MODULES / name / CORE.name) for name in NAMES]
    return pairs + [(APP, MODULES / name / "app.py") for name in NAMES if MODULES / name / "app.py" != APP]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only report copies that differ (exit 1)")
    args = parser.parse_args(argv)
    stale = [dst for src, dst in copies() if not dst.is_file() or dst.read_bytes() != src.read_bytes()]
    if args.check:
        for dst in stale:
            print(f"out of date: {dst.relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale else 0
    for src, dst in copies():
        if dst in stale:
            tmp = dst.with_suffix(".tmp")
            tmp.write_bytes(src.read_bytes())
            tmp.replace(dst)  # atomic: never a half-written copy
            print(f"wrote {dst.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
