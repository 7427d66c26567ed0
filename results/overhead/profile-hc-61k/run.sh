#!/bin/bash
# cProfile of a true-reward and a learned-reward HalfCheetah run: the first 61,440 steps of a
# 300k-step run (its label count by then, its update interval). Run from the repo root; dumps in $O.
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=1 MUJOCO_GL=disable
O=${O:-/tmp/prefrl-prof}; rm -rf $O; mkdir -p $O
N=$($PY -c "from prefrl.query import LabelSchedule; print(LabelSchedule(700, 300000).target(61440))")
$PY -m cProfile -o $O/true.prof -m prefrl.cli train --env HalfCheetah --steps 61440 --seed 0 --run-dir $O/true --no-progress --torch-threads 1 --reward true > $O/true.log 2>&1
$PY -m cProfile -o $O/learned.prof -m prefrl.cli train --env HalfCheetah --steps 61440 --seed 0 --run-dir $O/learned --no-progress --torch-threads 1 --reward learned --labels $N --update-every 7500 > $O/learned.log 2>&1
