#!/bin/bash
# Ant with squared actions as reward-net inputs, learned (700 labels, paper teacher), 300k steps.
# ant-squares.sh TOML NAME SEED [true]: from the clean worktree $WT; outputs under /work/gridout/s8
cd ${WT:?}; export OMP_NUM_THREADS=1 MUJOCO_GL=disable; O=/work/gridout/s8; mkdir -p $O
toml=$1; name=$2; seed=$3; r=${4:-learned}
extra=""; [ "$r" = learned ] && extra="--labels 700 --oracle paper"
/work/main/.venv/bin/python -m prefrl.cli train --env $toml --reward $r $extra --steps 300000 \
    --seed $seed --no-progress --run-dir $O/$name-$r-$seed > $O/$name-$r-$seed.log 2>&1
