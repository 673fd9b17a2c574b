#!/usr/bin/env bash
# What the 2x-down SynthWorld SD still owes issue 23 (items 5 and 6), in one GPU call (~5 minutes on one H100):
# Fair Diffusion's effect table on it, and safe generation (the SD with Safe-CLIP's text tower) at the
# benchmark's size with the three Safe-CLIP seeds of docs/synthworld_web.md section 10 (trained here again,
# kept by the validation NSFW rate). Fair Diffusion runs beside the Safe-CLIP training; the safe-generation
# runs follow, one per seed. Writes OUT_DIR/*.json and OUT_DIR/log_*.txt (small files only: the device's
# transfer limit is 16 MiB a file).
# Usage (repo root, trustvl importable): bash benchmarks/recipes/sd2x_followups_h100.sh OUT_DIR [WORK_DIR]
set -uo pipefail
OUT=${1:?output folder}
WORK=${2:-/tmp/sd2x-followups}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$WORK"
(timeout 330 python3 benchmarks/bench_fair_diffusion_effect.py --device cuda --edit-scale 7 --warmup 2 \
  --batch-size 512 --out "$OUT/fair_diffusion_effect_web_sd2x_h100.json" > "$OUT/log_fd.txt" 2>&1
 echo "fair diffusion rc=$? at ${SECONDS}s" >> "$OUT/log_fd.txt") &
ARGS="--world-preset web --device cuda --n-train 2000 --n-val 500 --n-test 1000 --workers 2"
python3 benchmarks/bench_safe_clip_synthworld.py $ARGS --base-only --work "$WORK/base" \
  --out "$WORK/base.json" > "$OUT/log_safe_clip.txt" 2>&1
DATA=$(ls -d "$WORK"/base/quadruplets-*)
PIDS=()
for s in 0 1 2; do
  timeout 300 python3 benchmarks/bench_safe_clip_synthworld.py $ARGS --batch-size 16 --epochs 7 --seed $s \
    --selection-metric nsfw_rate_t2i --data "$DATA" --work "$WORK/seed$s" \
    --out "$OUT/safe_clip_synthworld_web_v4_sel_seed${s}_rerun_h100.json" >> "$OUT/log_safe_clip.txt" 2>&1 &
  PIDS+=($!)
done
wait "${PIDS[@]}"  # the Safe-CLIP seeds only: Fair Diffusion may still be running
for s in 0 1 2; do
  timeout 120 python3 benchmarks/bench_safe_generation.py --safe-clip "$WORK/seed$s/run/model" --device cuda \
    --out "$OUT/safe_generation_web_sd2x_seed${s}_h100.json" > "$OUT/log_safe_generation_seed$s.txt" 2>&1
  echo "safe generation seed $s rc=$? at ${SECONDS}s" | tee -a "$OUT/log_safe_generation_seed$s.txt"
done
wait
echo "all done at ${SECONDS}s"
