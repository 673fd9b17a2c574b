#!/usr/bin/env bash
# Issue 26: CF_α recipes on the benchmark (bench_cf_alpha_synthworld.py: the demo's recipe + a recipe's
# --cf-alpha overrides, the sweep on the three 4,000-image galleries with paired verdicts against the base and
# the previous α), training seeds 0, 1, 2 (SEEDS), every (recipe, seed) a process, all side by side on one GPU
# host (16 CPU cores: THREADS=2 each by default), each under `timeout ${TIMEOUT:-520}`.
#
# RECIPES_FILE is one of benchmarks/recipes/recipes_cf_alpha_knob_round*.json; NAMES the recipes of it to run
# (a recipe's "demo" object, e.g. {"n_base_per_occupation": 192}, sets the benchmark's build sizes).
#
# Writes OUT_DIR/cf_alpha_knob_gpu.tar.gz (one JSON per process, cf_alpha_web_v4_<NAME>_seed<S>_gpu.json, and
# the combined log log_knob_gpu.txt): one file, under the device's 8-file transfer limit. Runs and caches live
# in WORK_DIR (default /tmp/cf_alpha_knob_gpu), never under OUT_DIR.
#
# Usage (repo root, trustvl importable, e.g. PYTHONPATH=src):
#   bash benchmarks/recipes/cf_alpha_knob_gpu.sh RECIPES_FILE "NAME ..." OUT_DIR [WORK_DIR]
# e.g. the round-6/7 pair: bash benchmarks/recipes/cf_alpha_knob_gpu.sh \
#   benchmarks/recipes/recipes_cf_alpha_knob_round7.json "S2 S6" OUT_DIR
# Smoke test (CPU, tiny sizes, one gallery; --quick writes no JSON, the reports go to the log):
#   QUICK=1 SEEDS=0 bash benchmarks/recipes/cf_alpha_knob_gpu.sh RECIPES_FILE "NAME" OUT_DIR [WORK_DIR]
set -uo pipefail
RECIPES_FILE=${1:?recipes JSON file}
read -r -a NAMES <<< "${2:?recipe names}"
OUT=${3:?output folder}
WORK=${4:-/tmp/cf_alpha_knob_gpu}
read -r -a SEED_LIST <<< "${SEEDS:-0 1 2}"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 MPLBACKEND=Agg
export OMP_NUM_THREADS=${THREADS:-2} MKL_NUM_THREADS=${THREADS:-2}
EXTRA=()
if [ "${QUICK:-0}" = 1 ]; then EXTRA=(--quick --world-seeds 0); fi
mkdir -p "$OUT" "$WORK/json"

# NAME -> the benchmark's arguments: --cf-alpha JSON, then the build sizes of the recipe's "demo" object
recipe_args() {
  "$PY" - "$RECIPES_FILE" "$1" <<'PYEOF'
import json, sys
recipes = {r["name"]: r for r in json.load(open(sys.argv[1]))}
if sys.argv[2] not in recipes:
    sys.exit(f"recipe {sys.argv[2]!r} is not in {sys.argv[1]}; expected one of {', '.join(recipes)}")
r = recipes[sys.argv[2]]
print(json.dumps(r["cf_alpha"]))
for key, value in r.get("demo", {}).items():
    print("--" + key.replace("_", "-"))
    print(value)
PYEOF
}

PIDS=()
for name in "${NAMES[@]}"; do
  mapfile -t ARGS < <(recipe_args "$name") || exit 2
  [ "${#ARGS[@]}" -gt 0 ] || exit 2
  for s in "${SEED_LIST[@]}"; do
    log="$WORK/log_${name}_${s}.txt"
    (
      # own cache per process: no two processes write one cache folder
      export TRUSTVL_CACHE="$WORK/cache_${name}_${s}"
      echo "$name seed $s: --cf-alpha ${ARGS[0]} ${ARGS[*]:1}" > "$log"
      # stdout holds the demo's progress lines and then the report JSON (also in --json-out): the progress
      # lines go to the log, the JSON stays in WORK_DIR
      timeout "${TIMEOUT:-520}" "$PY" benchmarks/bench_cf_alpha_synthworld.py --seed "$s" --cf-alpha "${ARGS[0]}" \
        "${ARGS[@]:1}" --out "$WORK/run_${name}_seed${s}" \
        --json-out "$WORK/json/cf_alpha_web_v4_${name}_seed${s}_gpu.json" ${EXTRA[@]+"${EXTRA[@]}"} \
        > "$WORK/stdout_${name}_${s}.json" 2>> "$log"
      rc=$?
      grep '^\[trustvl' "$WORK/stdout_${name}_${s}.json" >> "$log"
      echo "$name seed $s rc=$rc at ${SECONDS}s" >> "$log"
      if [ "${QUICK:-0}" = 1 ]; then  # --quick writes no JSON: show that the report came out
        "$PY" -c "import json,sys; t=open(sys.argv[1]).read(); r=json.loads(t[t.index('\n{') + 1:]); g=r['galleries'];
print('quick report:', 'monotone', g['monotone'], 'alphas', g['alphas'], 'recipe', {k: r['recipe'].get(k) for k in ('alpha_range', 'alpha_path_target', 'effect_momentum', 'max_steps', 'lora_r')})" \
          "$WORK/stdout_${name}_${s}.json" >> "$log" 2>&1
      fi
    ) &
    PIDS+=($!)
  done
done
wait "${PIDS[@]}"
for name in "${NAMES[@]}"; do
  for s in "${SEED_LIST[@]}"; do
    echo "=== $name seed $s"
    cat "$WORK/log_${name}_${s}.txt" 2>/dev/null
  done
done > "$WORK/json/log_knob_gpu.txt"
echo "all done at ${SECONDS}s" >> "$WORK/json/log_knob_gpu.txt"
tar -czf "$OUT/cf_alpha_knob_gpu.tar.gz" -C "$WORK/json" .
ls -la "$OUT"
echo "all done at ${SECONDS}s"
