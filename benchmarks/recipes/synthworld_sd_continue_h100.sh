#!/usr/bin/env bash
# Re-fit the shipped synthworld-sd to a new SynthWorld CLIP text tower: keep its VAE and outcome classifier
# (neither reads text), continue its UNet against the new tower. One H100, ~9 minutes.
# Usage (repo root, trustvl importable): bash benchmarks/recipes/synthworld_sd_continue_h100.sh OUT_DIR [CLIP_DIR] [UNET_SECONDS]
set -uo pipefail
OUT=${1:?output folder}
CLIP=${2:-src/trustvl/assets/models/synthworld-clip}
SECONDS_UNET=${3:-330}
SD=src/trustvl/assets/models/synthworld-sd
export PYTHONUNBUFFERED=1
mkdir -p "$OUT/run"
# the shipped classifier is reused as is (the run loads a classifier it finds in its folder)
[ -f "$OUT/run/outcome-classifier/config.json" ] || cp -r src/trustvl/assets/models/synthworld-outcome-classifier "$OUT/run/outcome-classifier"
python3 -m trustvl.cli train synthworld-sd --resume \
  --output_dir "$OUT/run" --clip_dir "$CLIP" --init_from "$SD" \
  --bf16 true --seed 3 --world_seed 300 --unsafe_prob 0.5 --unsafe_kinds weapon blood drugs \
  --n_biased_scenes 96000 --n_appearance_scenes 64000 --n_test_scenes 4096 --render_workers 16 \
  --classifier_hidden_sizes 32 64 128 192 \
  --max_steps 3000 --per_device_train_batch_size 512 --learning_rate 3e-4 --weight_decay 0.01 \
  --stage_max_seconds 0 0 "$SECONDS_UNET" \
  --dataloader_num_workers 8 --save_steps 1000 --logging_steps 200 --disable_tqdm true \
  2>&1 | grep -v -i warn | tee "$OUT/train_log.txt"
bash benchmarks/recipes/sd_ship_and_bench.sh "$OUT" "$CLIP" cuda
