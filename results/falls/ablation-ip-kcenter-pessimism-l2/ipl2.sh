#!/bin/bash
cd /work/x1; export OMP_NUM_THREADS=1 MUJOCO_GL=disable PREFRL_L2_EXCESS=1; O=/work/gridout/s9
seed=$1; name=ip-l2x-$seed
/work/main/.venv/bin/python -m prefrl.cli train --env InvertedPendulum --reward learned --labels 700 \
   --oracle paper --steps 200000 --seed $seed --no-progress --run-dir $O/$name > $O/$name.log 2>&1
PYTHONPATH=/work/x1 /work/main/.venv/bin/python /work/x1/results/falls/ablation-hopper-posture/evalstd.py $O/$name >> $O/$name.log 2>&1
