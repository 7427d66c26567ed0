#!/usr/bin/env bash
# Issue 5 benchmark: the same PPO cell on the learned reward (700 synthetic labels, 'paper'
# teacher) and on the true reward, side by side (one process per core), same seed and steps.
# Usage: results/loop-benchmark/run.sh ENV STEPS [SEED]
set -euo pipefail
cd "$(dirname "$0")/../.."
ENV=$1; STEPS=$2; SEED=${3:-0}
OUT=results/loop-benchmark/$ENV-$SEED
mkdir -p "$OUT"
common=(--env "$ENV" --steps "$STEPS" --seed "$SEED" --no-progress --torch-threads 1)
.venv/bin/prefrl train "${common[@]}" --labels 700 --oracle paper --run-dir "$OUT/learned" \
    > "$OUT/learned.log" 2>&1 &
.venv/bin/prefrl train "${common[@]}" --reward true --run-dir "$OUT/true" > "$OUT/true.log" 2>&1 &
wait
