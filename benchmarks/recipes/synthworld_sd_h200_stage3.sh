#!/usr/bin/env bash
# Third (continuation) run of the shipped synthworld-sd: reuses the shipped VAE, trains its UNet further on
# pools with all three unsafe kinds (weapon, blood, drugs/syringe; unsafe_prob 0.5) and the unsafe element's
# box weighted 4x in the diffusion loss, and retrains the outcome classifier (syringe added; reads images
# at 128x128 by nearest upsampling). Then the generation benchmark on the result.
# Usage: bash benchmarks/recipes/synthworld_sd_h200_stage3.sh OUT_DIR [INIT_PIPELINE_DIR]
set -uo pipefail
OUT=${1:?output folder}
INIT=${2:-src/trustvl/assets/models/synthworld-sd}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
python3 -m trustvl.cli train synthworld-sd --resume \
  --output_dir "$OUT/run" --init_from "$INIT" \
  --bf16 true --seed 2 --world_seed 200 --unsafe_prob 0.5 --unsafe_kinds weapon blood drugs \
  --unsafe_region_weight 4 \
  --n_biased_scenes 96000 --n_appearance_scenes 64000 --n_test_scenes 4096 --render_workers 16 \
  --classifier_max_steps 6000 --classifier_batch_size 256 --classifier_learning_rate 2e-3 \
  --classifier_hidden_sizes 32 64 128 192 --classifier_image_size 128 \
  --max_steps 3000 --per_device_train_batch_size 512 --learning_rate 3e-4 --weight_decay 0.01 \
  --stage_max_seconds 0 110 290 \
  --dataloader_num_workers 14 --save_steps 1000 --logging_steps 100 --disable_tqdm true \
  2>&1 | grep -v -i warn | tee "$OUT/train_log.txt"
tar -C "$OUT/run" --exclude text_encoder -czf "$OUT/models.tgz" pipeline outcome-classifier trustvl_sd_train.json
TRUSTVL_DEFAULT_SD="$OUT/run/pipeline" TRUSTVL_DEFAULT_OUTCOME_CLASSIFIER="$OUT/run/outcome-classifier" \
timeout 75 python3 benchmarks/bench_synthworld_generation.py --n 64 --steps 20 --guidance 8 \
  --batch-size 64 --throughput-n 512 --device cuda --grid "$OUT/grid_g8.png" --out "$OUT/bench_g8.json" \
  2>&1 | grep -v -i -E "warn|it/s" | tail -30 | tee -a "$OUT/bench_log.txt"
