#!/bin/bash
# learned-reward run: $1 preset stem, $2 steps, $3 run name, $4 labels
set -u
cd ${WT:-/work/g12}
export OMP_NUM_THREADS=1 MUJOCO_GL=disable
O=/work/gridout/hop-post; mkdir -p $O
/work/main/.venv/bin/python -m prefrl.cli train --env /work/exp/s5/$1.toml --reward learned --labels $4 --oracle paper --steps $2 --seed 0 --no-progress --run-dir $O/$3 > $O/$3.log 2>&1
