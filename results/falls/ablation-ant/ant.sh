#!/bin/bash
# Ant without contact forces in the observation: learned (700 labels) then true, seed 0, 300k
cd /work/g17; export OMP_NUM_THREADS=1 MUJOCO_GL=disable; O=/work/gridout/s7; mkdir -p $O
for r in learned true; do
extra=""; [ "$r" = learned ] && extra="--labels 700 --oracle paper"
/work/main/.venv/bin/python -m prefrl.cli train --env /work/exp/s7/Ant-nocfrc.toml --reward $r $extra --steps 300000 --seed 0 --no-progress --run-dir $O/ant-nocfrc-$r-0 > $O/ant-nocfrc-$r-0.log 2>&1
done
