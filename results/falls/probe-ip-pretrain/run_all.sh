#!/bin/bash
# Every variant of the table, seeds 0-5; one line each in probe.txt.
cd "$(dirname "$0")/../../.."
for v in "" "acts=0" "hidden=16,16" "hidden=256,256" "full=1" "clip_len=20" "clip_len=60" \
         "pclips=1000" "explore=0.1" "explore=0.1 mix=1" "labels=1400 pclips=1000" "labels=2800 pclips=1000" \
         "scale=0.01" "posonly=1" "posonly=1 acts=0"; do
  for s in 0 1 2 3 4 5; do
    OMP_NUM_THREADS=1 .venv/bin/python results/falls/probe-ip-pretrain/probe_pretrain.py $s $v 2>&1 | grep '^seed'
  done
done
