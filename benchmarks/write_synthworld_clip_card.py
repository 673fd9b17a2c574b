"""Write the shipped synthworld-clip's model card (the asset folder's README.md and model_cards/synthworld-clip.md)
from its pretraining summary and, for a SynthWorld-Web CLIP, the web benchmark of the same checkpoint
(benchmarks/bench_synthworld_web_clip.py: the problems it carries, issue 23 item 2).

    python benchmarks/write_synthworld_clip_card.py --web-bench benchmarks/results/synthworld_web_clip_v4_h100.json
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from trustvl.evaluation.synthworld_clip_card import write_synthworld_clip_card

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "src" / "trustvl" / "assets" / "models" / "synthworld-clip"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--web-bench", default=None, help="bench_synthworld_web_clip.py JSON of the shipped checkpoint"
    )
    args = ap.parse_args()
    bench = json.loads(Path(args.web_bench).read_text()) if args.web_bench else None
    source = Path(args.web_bench).resolve().relative_to(ROOT).as_posix() if args.web_bench else ""
    path = write_synthworld_clip_card(CLIP, web_benchmark=bench, web_benchmark_source=source)
    shutil.copyfile(path, ROOT / "model_cards" / "synthworld-clip.md")


if __name__ == "__main__":
    main()
