"""CPU seconds of recording 300k env steps into the clip pool, as the reward wrapper does.

Swimmer's shapes (obs 8, action 2, render state qpos 5 / qvel 5), 38-step clips cut from
76-step windows, one env. Times the accumulator alone and with the SegmentBuffer cutting clips.
usage: PYTHONPATH=<checkout> python results/overhead/record_bench.py [steps]
"""
import sys
import time

import numpy as np

from prefrl.segments import SegmentBuffer
from prefrl.trajectories import TrajectoryAccumulator

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
rng = np.random.default_rng(0)
obs, act = rng.normal(size=(64, 8)).astype(np.float32), rng.normal(size=(64, 2)).astype(np.float32)
rs = [{"qpos": rng.normal(size=5), "qvel": rng.normal(size=5)} for _ in range(64)]
for with_pool in (False, True):
    acc = TrajectoryAccumulator(1, 76)
    pool = SegmentBuffer(38, capacity=2000, rng=np.random.default_rng(0))
    t = time.process_time()
    for s in range(steps):
        j = s % 64
        acc.append(0, obs[j], act[j], 0.1 * j, rs[j], step=s)
        if acc.length(0) >= 76 and (w := acc.pop_if_ready(0)) is not None and with_pool:
            pool.add_trajectory(w["obs"], w["acts"], w["true_rews"], env_id="Swimmer-v5",
                                render_state=w["render_state"], start_step=w["start_step"])
    what = "accumulator + clip pool" if with_pool else "accumulator"
    print(f"{what}: {time.process_time() - t:.2f} CPU s for {steps} steps")
