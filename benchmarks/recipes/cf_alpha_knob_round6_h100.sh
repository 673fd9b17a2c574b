#!/usr/bin/env bash
# Issue 26, rounds 6 and 7: the two best CPU-proxy candidates (R6a of
# benchmarks/recipes/recipes_cf_alpha_knob_round6.json, S2 of recipes_cf_alpha_knob_round7.json) on the benchmark (bench_cf_alpha_synthworld.py: the demo's recipe + the --cf-alpha overrides, the sweep on
# the three 4,000-image galleries with paired verdicts against the base and the previous α), training seeds
# 0, 1, 2: six processes side by side on one H100 (16 CPU cores: 2 threads each), each under `timeout 520`.
#
# Writes OUT_DIR/cf_alpha_web_v4_<NAME>_seed<S>_h100.json (6 files) and one combined log,
# OUT_DIR/log_knob_round6.txt (the per-process logs OUT_DIR/log_<name>_<s>.txt are merged into it at the
# end): 7 files, under the device's 8-file transfer limit. Runs and caches live in WORK_DIR (default
# /tmp/cf_alpha_knob_round6), never under OUT_DIR.
#
# Usage (repo root, trustvl importable, e.g. PYTHONPATH=src):
#   bash benchmarks/recipes/cf_alpha_knob_round6_h100.sh OUT_DIR [WORK_DIR]
# Smoke test (CPU, tiny sizes, one gallery; --quick writes no JSON, the reports go to the log):
#   QUICK=1 bash benchmarks/recipes/cf_alpha_knob_round6_h100.sh OUT_DIR [WORK_DIR]
set -uo pipefail
OUT=${1:?output folder}
WORK=${2:-/tmp/cf_alpha_knob_round6}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 MPLBACKEND=Agg
export OMP_NUM_THREADS=${THREADS:-2} MKL_NUM_THREADS=${THREADS:-2}
EXTRA=()
if [ "${QUICK:-0}" = 1 ]; then EXTRA=(--quick --world-seeds 0); fi
mkdir -p "$OUT" "$WORK"

# NAME -> --cf-alpha overrides of the demo's recipe (recipes_cf_alpha_knob_round{6,7}.json)
# R6a: the linear α path with 75 % of the steps at α = 1 (CPU, seed 0, three galleries: body type worse at
# α = 1). S2: R6a + L_effect (β_e = 30) on the own caption for gender / age / body type (CPU, seed 0, three
# galleries: α = 1 within noise of the base in every attribute; body type worse at α = 0.25). Round 6's R6e
# (gender worse at α = 0.75) made way for S2 (docs/results.md, CF_α).
NAMES=(R6a S2)
declare -A RECIPE=(
  [R6a]='{"alpha_range": [0.0, 1.0], "alpha_path_target": "linear", "alpha_endpoint_prob": 0.75}'
  [S2]='{"alpha_range": [0.0, 1.0], "alpha_path_target": "linear", "alpha_endpoint_prob": 0.75, "beta_effect": 30.0, "effect_own_caption": true, "effect_attributes": ["gender_presentation", "age", "body_type"]}'
)

PIDS=()
for name in "${NAMES[@]}"; do
  for s in 0 1 2; do
    log="$OUT/log_${name}_${s}.txt"
    (
      # own cache per process: no two processes write one cache folder
      export TRUSTVL_CACHE="$WORK/cache_${name}_${s}"
      echo "$name seed $s: --cf-alpha ${RECIPE[$name]}" > "$log"
      # stdout holds the demo's progress lines and then the report JSON (also in --json-out): the progress
      # lines go to the log, the JSON stays in WORK_DIR
      timeout 520 "$PY" benchmarks/bench_cf_alpha_synthworld.py --seed "$s" --cf-alpha "${RECIPE[$name]}" \
        --out "$WORK/run_${name}_seed${s}" \
        --json-out "$OUT/cf_alpha_web_v4_${name}_seed${s}_h100.json" ${EXTRA[@]+"${EXTRA[@]}"} \
        > "$WORK/stdout_${name}_${s}.json" 2>> "$log"
      rc=$?
      grep '^\[trustvl' "$WORK/stdout_${name}_${s}.json" >> "$log"
      echo "$name seed $s rc=$rc at ${SECONDS}s" >> "$log"
      if [ "${QUICK:-0}" = 1 ]; then  # --quick writes no JSON: show that the report came out
        "$PY" -c "import json,sys; t=open(sys.argv[1]).read(); r=json.loads(t[t.index('\n{') + 1:]); g=r['galleries'];
print('quick report:', 'monotone', g['monotone'], 'alphas', g['alphas'], 'recipe', {k: r['recipe'].get(k) for k in ('alpha_range', 'alpha_path_target', 'alpha_path_keep_power', 'alpha_endpoint_prob', 'max_steps', 'lora_r')})" \
          "$WORK/stdout_${name}_${s}.json" >> "$log" 2>&1
      fi
    ) &
    PIDS+=($!)
  done
done
wait "${PIDS[@]}"
for name in "${NAMES[@]}"; do
  for s in 0 1 2; do
    log="$OUT/log_${name}_${s}.txt"
    echo "=== $log"
    cat "$log" 2>/dev/null
  done
done > "$WORK/log_knob_round6.txt"
for name in "${NAMES[@]}"; do for s in 0 1 2; do rm -f "$OUT/log_${name}_${s}.txt"; done; done
echo "all done at ${SECONDS}s" >> "$WORK/log_knob_round6.txt"
mv "$WORK/log_knob_round6.txt" "$OUT/log_knob_round6.txt"
ls -la "$OUT"
echo "all done at ${SECONDS}s"
