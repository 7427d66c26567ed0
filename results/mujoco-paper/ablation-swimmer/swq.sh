#!/bin/bash
# Swimmer ablation: reward model without actions, 700 labels, 300k steps, seeds 2 0 1
set -u
while pgrep -f "bench run mujoco-paper" >/dev/null; do sleep 15; done
cd /work/g14
export OMP_NUM_THREADS=1 MUJOCO_GL=disable
O=/work/gridout/swim-noact; mkdir -p $O
for s in 2 0 1; do
/work/main/.venv/bin/python -m prefrl.cli train --env /work/exp/s5/Swimmer-noact.toml --reward learned --labels 700 --oracle paper --steps 300000 --seed $s --no-progress --run-dir $O/Swimmer-noact-learned-$s > $O/$s.log 2>&1
done
