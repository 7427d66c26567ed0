#!/bin/bash
cd /work/g23; export OMP_NUM_THREADS=1 MUJOCO_GL=disable; O=/work/gridout/s9
seed=$1; name=ip-full500k-$seed
/work/main/.venv/bin/python -m prefrl.cli train --env InvertedPendulum --reward learned --labels 700 \
   --oracle paper --steps 500000 --seed $seed --reward-schedule full --no-progress --run-dir $O/$name > $O/$name.log 2>&1
PYTHONPATH=/work/g23 /work/main/.venv/bin/python /work/g23/results/falls/ablation-hopper-posture/evalstd.py $O/$name >> $O/$name.log 2>&1
