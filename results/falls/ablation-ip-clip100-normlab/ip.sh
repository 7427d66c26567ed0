#!/bin/bash
# IP whole-episode clips + --reward-norm labelled, seeds in sequence
cd /work/g17; export OMP_NUM_THREADS=1 MUJOCO_GL=disable; O=/work/gridout/s7; mkdir -p $O
for s in "$@"; do
/work/main/.venv/bin/python -m prefrl.cli train --env /work/exp/s7/IP-clip100.toml --reward learned --labels 700 --oracle paper --reward-norm labelled --steps 200000 --seed $s --no-progress --run-dir $O/ip-clip100-normlab-$s > $O/ip-clip100-normlab-$s.log 2>&1
done
