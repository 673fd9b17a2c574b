#!/usr/bin/env bash
# The SynthWorld-Web CLIP (issue 23 item 2, docs/synthworld_web.md): pretrain on the web-like mixture on one
# H100 (~6 minutes), store it in fp16, then measure the issue's bars on held-out scenes.
# Usage (repo root, trustvl importable): bash benchmarks/recipes/synthworld_web_clip_h100.sh OUT_DIR [EXTRA_FLAGS...]
# DEADLINE=S (optional) stops the benchmark S seconds after the start (the model archive is written first),
# for a machine lent for a limited time; the benchmark can be rerun anywhere on the archive.
# BENCH_ARGS (optional) is passed to the benchmark, e.g. BENCH_ARGS="--spurious-probes world,1.0,reduced".
# WORLD (optional): a JSON object of SynthWorldConfig knobs on top of the web preset, given to the training run
# and the benchmark alike (a candidate's world before it becomes the preset).
# Continue the shipped CLIP's image side only (its text tower, and so the SD conditioned on it, unchanged):
#   bash ... OUT --init_from src/trustvl/assets/models/synthworld-clip --train_towers vision --max_steps 2000 ...
set -uo pipefail
OUT=${1:?output folder}
shift
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
RUN=/tmp/synthworld-web-run
mkdir -p "$OUT"
python3 -m trustvl.cli train synthworld-clip --overwrite --disable_tqdm true \
  --output_dir "$RUN" --world_preset web --bf16 true --seed 0 --world_seed 0 \
  --max_steps 6000 --per_device_train_batch_size 512 --learning_rate 5e-4 \
  --dataloader_num_workers 14 --save_steps 100000 --logging_steps 500 --max_train_seconds 380 ${WORLD:+--world "$WORLD"} "$@" \
  2>&1 | grep -v -i warn | tee "$OUT/train_log.txt" || exit 1
[ -f "$RUN/final/model.safetensors" ] || exit 1
# fp16 safetensors, loadable with CLIPModel.from_pretrained + its tokenizer and processor files
python3 - "$RUN/final" "$OUT/synthworld-web-clip" <<'PY'
import shutil, sys
from pathlib import Path
from transformers import CLIPModel, CLIPProcessor
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
CLIPModel.from_pretrained(src).half().save_pretrained(dst, safe_serialization=True)
processor = CLIPProcessor.from_pretrained(src)
processor.save_pretrained(dst)
processor.image_processor.save_pretrained(dst)
for name in ("trustvl_pretrain.json", "README.md"):
    if (src / name).exists():
        shutil.copy(src / name, dst / name)
PY
tar -C "$OUT" -czf /tmp/synthworld-web-clip.tgz synthworld-web-clip && rm -rf "$OUT/synthworld-web-clip"
# in 12 MB parts: a device call returns files of at most 16 MiB
split -b 12M /tmp/synthworld-web-clip.tgz "$OUT/synthworld-web-clip.tgz."
mkdir -p /tmp/web16 && tar -C /tmp/web16 -xzf /tmp/synthworld-web-clip.tgz
timeout $(( ${DEADLINE:-100000} - SECONDS )) python3 benchmarks/bench_synthworld_web_clip.py --model /tmp/web16/synthworld-web-clip --device cuda \
  --out "$OUT/synthworld_web_clip.json" ${WORLD:+--world "$WORLD"} ${BENCH_ARGS:-} 2>&1 | grep -v -i warn | tail -120
