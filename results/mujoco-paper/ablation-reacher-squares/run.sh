#!/bin/bash
# Reacher with squared actions as reward-net inputs: run.sh LABELS SEED, 300k steps (the grid's
# 0.3 scale), paper teacher, from the clean worktree $WT; outputs under /work/gridout/s8
cd ${WT:?}; export OMP_NUM_THREADS=1 MUJOCO_GL=disable; O=/work/gridout/s8; mkdir -p $O
labels=$1; seed=$2; name=reacher-sq-$labels-$seed
/work/main/.venv/bin/python -m prefrl.cli train --env $WT/results/mujoco-paper/ablation-reacher-squares/Reacher-squares.toml \
    --reward learned --labels $labels --oracle paper --steps 300000 --seed $seed --no-progress \
    --run-dir $O/$name > $O/$name.log 2>&1
PYTHONPATH=$WT /work/main/.venv/bin/python $WT/results/falls/ablation-hopper-posture/evalstd.py $O/$name >> $O/$name.log 2>&1
