#!/usr/bin/env bash
# The first SynthWorld SD run (4x down, 16 x 16 latents; the shipped SD grew from it: synthworld_sd_2x_h100.sh)
# + the synthworld-outcome-classifier: one H200, ~8 minutes.
# Usage (repo root, trustvl importable): bash benchmarks/recipes/synthworld_sd_h200.sh OUT_DIR [CLIP_DIR]
set -uo pipefail
OUT=${1:?output folder}
CLIP=${2:-}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
python3 -m trustvl.cli train synthworld-sd --resume \
  --output_dir "$OUT/run" ${CLIP:+--clip_dir "$CLIP"} \
  --vae_channels 32 48 64 --unet_channels 64 96 128 --unet_plain_levels 0 \
  --bf16 true --seed 0 --world_seed 0 \
  --n_biased_scenes 96000 --n_appearance_scenes 64000 --n_test_scenes 2048 --render_workers 16 \
  --vae_max_steps 3000 --vae_batch_size 256 --vae_learning_rate 1e-3 \
  --classifier_max_steps 2500 --classifier_batch_size 256 --classifier_learning_rate 2e-3 \
  --max_steps 12000 --per_device_train_batch_size 512 --learning_rate 6e-4 --weight_decay 0.01 \
  --stage_max_seconds 70 45 230 \
  --dataloader_num_workers 8 --save_steps 2000 --logging_steps 200 --disable_tqdm true \
  2>&1 | grep -v -i warn | tee "$OUT/train_log.txt"
# the text encoder is the SynthWorld CLIP text tower in fp16: the shipped folder names that CLIP instead of
# holding a copy (modeling.synthworld_sd.detach_text_encoder; it sits beside the CLIP in assets/models)
rm -rf "$OUT/ship" && mkdir -p "$OUT/ship" && cp -r "$OUT/run/pipeline" "$OUT/ship/synthworld-sd"
python3 -c "import sys; from trustvl.modeling.synthworld_clip import default_clip_path as d
from trustvl.modeling.synthworld_sd import detach_text_encoder as t
t(sys.argv[1], sys.argv[2] or d(), reference='../synthworld-clip')" "$OUT/ship/synthworld-sd" "$CLIP"
tar -C "$OUT/ship" -czf "$OUT/models.tgz" synthworld-sd
tar -C "$OUT/run" -czf "$OUT/classifier.tgz" outcome-classifier trustvl_sd_train.json
for G in 5 8; do
  TRUSTVL_DEFAULT_SD="$OUT/run/pipeline" TRUSTVL_DEFAULT_OUTCOME_CLASSIFIER="$OUT/run/outcome-classifier" \
  timeout 75 python3 benchmarks/bench_synthworld_generation.py --n 64 --steps 20 --guidance $G \
    --batch-size 64 --throughput-n 512 --device cuda --grid "$OUT/grid_g$G.png" --out "$OUT/bench_g$G.json" \
    2>&1 | grep -v -i -E "warn|it/s" | tail -30 | tee -a "$OUT/bench_log.txt"
done
