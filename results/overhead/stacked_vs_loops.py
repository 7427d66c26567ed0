"""CPU seconds per epoch: K member loops vs the stacked model, on random clips of given shape.

Usage: PYTHONPATH=. python results/overhead/stacked_vs_loops.py OBS_DIM ACT_DIM CLIP_LEN
(Pendulum: 3 1 25; Walker2d: 17 6 188). 400 pairs,
3 members, batch 64, one torch thread; each path measured twice, alternating.
"""

import sys
import time

import gymnasium as gym
import numpy as np
import torch

from prefrl.reward import RewardEnsemble, RewardTrainer, TrainerConfig
from prefrl.reward.engines import BatchedPath, PairSource, PerMemberPath
from prefrl.store import PreferenceDataset

torch.set_num_threads(1)
D, A, T, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), 400
rng = np.random.default_rng(0)
lo, ro = (rng.normal(size=(n, T, D)).astype(np.float32) for _ in range(2))
la, ra = (rng.normal(size=(n, T, A)).astype(np.float32) for _ in range(2))
mu = (rng.random(n) < 0.5).astype(np.float32)
keys = [str(i) for i in range(n)]
data = PreferenceDataset(lo, la, ro, ra, mu, keys, keys, keys, np.arange(n))
ens = RewardEnsemble.from_spaces(gym.spaces.Box(-1, 1, (D,)), gym.spaces.Box(-1, 1, (A,)),
                                 seed=0, device="cpu")
tr = RewardTrainer(ens, TrainerConfig(), rng=rng)
src = PairSource(data, ens.device, 1 << 30)
idx = np.arange(n)
for name, cls in [("loops", PerMemberPath), ("stacked", BatchedPath)] * 2:
    e = cls(tr)
    t0 = time.process_time()
    for _ in range(5):
        e.epoch(src, idx)
    t1 = time.process_time()
    for _ in range(5):
        e.evaluate(src, idx)
    t2 = time.process_time()
    e.finish()
    print(f"{name:<8} train epoch {(t1 - t0) / 5:.4f} s CPU, evaluation {(t2 - t1) / 5:.4f} s CPU")
