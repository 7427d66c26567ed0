#!/bin/bash
# InvertedPendulum with SB3-default PPO: learned (700 labels) and true, seeds 0 1, in sequence
cd /work/g17; export OMP_NUM_THREADS=1 MUJOCO_GL=disable; O=/work/gridout/s7; mkdir -p $O
for spec in "learned 0" "learned 1" "true 0" "true 1"; do set -- $spec
extra=""; [ "$1" = learned ] && extra="--labels 700 --oracle paper"
/work/main/.venv/bin/python -m prefrl.cli train --env /work/exp/s7/IP-sb3default.toml --reward $1 $extra --steps 200000 --seed $2 --no-progress --run-dir $O/ip-sb3ppo-$1-$2 > $O/ip-sb3ppo-$1-$2.log 2>&1
done
