#!/usr/bin/env bash
# The 2x-down SynthWorld SD (issue 23 item 3: a latent grid fine enough for the knife): a fresh two-level VAE
# (64 px -> 4 x 32 x 32 latents), a UNet with one more level outside the shipped one's (no attention at 32 x 32)
# whose inner levels start from the shipped UNet (grow_unet_weights), trained against the shipped CLIP's text
# tower on the continue recipe's worlds; the shipped outcome classifier is reused. Then the generation
# benchmark at guidance 5 and 8. One H100, ~9 minutes in all (VAE 60 s, UNet 220 s, each bench at most 90 s).
# Usage (repo root, trustvl importable): bash benchmarks/recipes/synthworld_sd_2x_h100.sh OUT_DIR [CLIP_DIR] [UNET_S] [DEVICE]
# CPU smoke test of this script only: DEVICE cpu, TRUSTVL_SD_SMOKE="flags that shrink the run" (appended: later
# flags win), BENCH_N / BENCH_STEPS / BENCH_THROUGHPUT_N / BENCH_TIMEOUT for the benches (see docs/synthworld_web.md)
set -uo pipefail
OUT=${1:?output folder}
CLIP=${2:-src/trustvl/assets/models/synthworld-clip}
UNET_S=${3:-220}
DEVICE=${4:-cuda}
SD=src/trustvl/assets/models/synthworld-sd
export PYTHONUNBUFFERED=1
mkdir -p "$OUT/run"
# the shipped classifier is reused as is (the run loads a classifier it finds in its folder)
[ -f "$OUT/run/outcome-classifier/config.json" ] || cp -r src/trustvl/assets/models/synthworld-outcome-classifier "$OUT/run/outcome-classifier"
python3 -m trustvl.cli train synthworld-sd --resume \
  --output_dir "$OUT/run" --clip_dir "$CLIP" --unet_init_from "$SD" \
  --vae_channels 32 64 --unet_channels 64 64 96 128 --unet_plain_levels 1 \
  --bf16 true --seed 4 --world_seed 300 --unsafe_prob 0.5 --unsafe_kinds weapon blood drugs \
  --unsafe_region_weight 4 --unsafe_region_weights knife=8 \
  --n_biased_scenes 96000 --n_appearance_scenes 64000 --n_test_scenes 4096 --render_workers 16 \
  --classifier_hidden_sizes 32 64 128 192 \
  --vae_max_steps 1000 --vae_batch_size 128 --vae_learning_rate 1e-3 \
  --max_steps 1350 --per_device_train_batch_size 512 --learning_rate 5e-4 --weight_decay 0.01 \
  --stage_max_seconds 60 0 "$UNET_S" \
  --dataloader_num_workers 8 --save_steps 500 --logging_steps 100 --disable_tqdm true \
  ${TRUSTVL_SD_SMOKE:-} \
  2>&1 | grep -v -i warn | tee "$OUT/train_log.txt"
echo "training done at ${SECONDS}s" | tee -a "$OUT/train_log.txt"
# a 2x-down UNet step costs ~1.6x the shipped one's, so each bench gets 90 s (the 4x-down one took ~50 s)
BENCH_TIMEOUT=${BENCH_TIMEOUT:-90} bash benchmarks/recipes/sd_ship_and_bench.sh "$OUT" "$CLIP" "$DEVICE"
echo "all done at ${SECONDS}s" | tee -a "$OUT/bench_log.txt"
