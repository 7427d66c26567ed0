#!/bin/bash
set -u
cd /work/g14
export OMP_NUM_THREADS=1 MUJOCO_GL=disable
O=/work/gridout/swim-true; mkdir -p $O
for s in 3 4; do
/work/main/.venv/bin/python -m prefrl.cli train --env Swimmer --reward true --steps 300000 --seed $s --no-progress --run-dir $O/Swimmer-true-$s > $O/$s.log 2>&1
done
