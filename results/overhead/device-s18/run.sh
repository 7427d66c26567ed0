#!/bin/bash
# device check, session 18: wheels, CUDA tests, 12 grid-style cells; ends by T0+DEADLINE
set -u
T0=$(date +%s); DEADLINE=${DEADLINE:-530}
[ -n "${SKIPWHL:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || { echo "wheel install failed"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD MUJOCO_GL=disable OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
L=$OUT/machine.txt
{ date -u; cat .devrun/COMMIT; nproc --all; lscpu | grep -E "Model name|Thread|Core|Socket|MHz|NUMA node"; free -g | head -2; nvidia-smi -L
  python3 -c "import torch,mujoco,gymnasium,stable_baselines3 as s;print('torch',torch.__version__,'mujoco',mujoco.__version__,'gymnasium',gymnasium.__version__,'sb3',s.__version__,'cuda',torch.cuda.is_available())"; } > $L 2>&1
mkdir -p /tmp/g
for spec in "Swimmer:0 1:8" "Hopper:0:4"; do
  IFS=: read env seeds w <<< "$spec"
  setsid python3 -m prefrl.cli bench run .devrun/suite.json --envs $env --seeds $seeds --workers $w \
     --steps-scale ${SCALE:-0.3} --out /tmp/g/$env > /tmp/g/$env.log 2>&1 < /dev/null &
done
sleep 2
timeout 360 python3 -m pytest -q -p no:cacheprovider -x tests/test_ensemble.py tests/test_sac.py \
  tests/test_batched_reward.py tests/test_deferred_reward.py tests/test_reward_wrapper.py \
  tests/test_cnn_reward.py tests/test_reward_artifact.py tests/test_dataset.py tests/test_query.py \
  tests/test_action_squares.py tests/test_reward_obs_dims.py tests/test_guard.py -rs > $OUT/pytest.txt 2>&1
echo "pytest rc $? at $(( $(date +%s) - T0 )) s" >> $L
while pgrep -f "prefrl.cli bench run" > /dev/null && [ $(( $(date +%s) - T0 )) -lt $DEADLINE ]; do sleep 5; done
echo "cells stopped waiting at $(( $(date +%s) - T0 )) s" >> $L
uptime >> $L; nvidia-smi --query-gpu=memory.used --format=csv >> $L 2>&1
cd /tmp/g && find . -name "*.json" -o -name "*.csv" -o -name "*.log" -o -name "*.txt" -o -name "*.md" | tar czf $OUT/cells.tgz -T -
ls -la $OUT; tail -n 5 /tmp/g/*.log
