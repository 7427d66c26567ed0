#!/bin/bash
# $1 env (preset name or toml path), $2 reward (true|learned), $3 steps, $4 run name, $5 seed
set -u
cd ${WT:-/work/g15}
export OMP_NUM_THREADS=1 MUJOCO_GL=disable
O=/work/gridout/s6; mkdir -p $O
extra=""; [ "$2" = learned ] && extra="--labels 700 --oracle paper"
/work/main/.venv/bin/python -m prefrl.cli train --env $1 --reward $2 $extra --steps $3 --seed $5 --no-progress --run-dir $O/$4 > $O/$4.log 2>&1
