#!/usr/bin/env bash
# The tail every SynthWorld SD recipe shares: ship the trained pipeline without a copy of the CLIP's text tower
# (modeling.synthworld_sd.detach_text_encoder; the folder names ../synthworld-clip), pack it, then the
# generation benchmark at guidance 5 and 8 with the run's own classifier, then drop the run's bulk.
# Usage (from a recipe, repo root): bash benchmarks/recipes/sd_ship_and_bench.sh OUT_DIR CLIP_DIR [DEVICE]
# BENCH_TIMEOUT (default 75 s per bench), BENCH_N, BENCH_STEPS, BENCH_THROUGHPUT_N shrink the benches.
set -uo pipefail
OUT=${1:?output folder}
CLIP=${2:?CLIP folder whose text tower the SD reads}
DEVICE=${3:-cuda}
rm -rf "$OUT/ship" && mkdir -p "$OUT/ship" && cp -r "$OUT/run/pipeline" "$OUT/ship/synthworld-sd"
python3 -c "import sys; from trustvl.modeling.synthworld_sd import detach_text_encoder as t
t(sys.argv[1], sys.argv[2], reference='../synthworld-clip')" "$OUT/ship/synthworld-sd" "$CLIP"
tar -C "$OUT/ship" -czf "$OUT/models.tgz" synthworld-sd
cp "$OUT/run/trustvl_sd_train.json" "$OUT/" 2>/dev/null
for G in 5 8; do
  TRUSTVL_DEFAULT_SD="$OUT/run/pipeline" TRUSTVL_DEFAULT_OUTCOME_CLASSIFIER="$OUT/run/outcome-classifier" \
  timeout "${BENCH_TIMEOUT:-75}" python3 benchmarks/bench_synthworld_generation.py --n "${BENCH_N:-64}" \
    --steps "${BENCH_STEPS:-20}" --guidance $G --batch-size 64 --throughput-n "${BENCH_THROUGHPUT_N:-512}" \
    --device "$DEVICE" --grid "$OUT/grid_g$G.png" --out "$OUT/bench_g$G.json" \
    2>&1 | grep -v -i -E "warn|it/s" | tail -30 | tee -a "$OUT/bench_log.txt"
done
find "$OUT/run" -mindepth 1 -maxdepth 1 ! -name trustvl_sd_train.json -exec rm -rf {} +
