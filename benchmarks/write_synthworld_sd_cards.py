"""Write the model cards of the shipped synthworld-sd and outcome classifier from a training summary and a
generation benchmark (benchmarks/bench_synthworld_generation.py) of the same checkpoint.

    python benchmarks/write_synthworld_sd_cards.py \
        --train benchmarks/results/synthworld_sd_train_stage3_h200.json \
        --bench benchmarks/results/synthworld_generation_g8_h200.json --unet-steps 2085 1324 2842
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from trustvl.hub.generation_cards import outcome_classifier_card, sd_model_card

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "src" / "trustvl" / "assets" / "models"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True, help="trustvl_sd_train.json of the shipped run")
    ap.add_argument("--bench", required=True, help="generation benchmark JSON of the shipped checkpoint")
    ap.add_argument(
        "--unet-steps", type=int, nargs="+", help="UNet steps of each training run, first to last"
    )
    ap.add_argument("--grid", default=None, help="sample grid PNG to put next to the card in model_cards/")
    args = ap.parse_args()
    train = json.loads(Path(args.train).read_text())
    bench = json.loads(Path(args.bench).read_text())
    sd_model_card(train, bench, unet_steps=args.unet_steps).save(ASSETS / "synthworld-sd" / "README.md")
    if args.grid:
        shutil.copyfile(args.grid, ROOT / "model_cards" / "synthworld-sd-grid.png")
    sd_model_card(train, bench, "synthworld-sd-grid.png", unet_steps=args.unet_steps).save(
        ROOT / "model_cards" / "synthworld-sd.md"
    )
    card = outcome_classifier_card(train)
    card.save(ASSETS / "synthworld-outcome-classifier" / "README.md")
    card.save(ROOT / "model_cards" / "synthworld-outcome-classifier.md")


if __name__ == "__main__":
    main()
