"""CPU time per env step of the run's vectorised env: SB3's DummyVecEnv against
FreshInfoDummyVecEnv (no deep copy of fresh info dicts). Same wrappers as a run
(Monitor(RecordRenderState(preset env))), random actions, alternating rounds.

    python results/overhead/vec-env-infos/step_bench.py [ENV ...]
"""
import sys
import time

import numpy as np
import torch
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from prefrl.envs import load_preset, make_env
from prefrl.sb3.reward_wrapper import RecordRenderState
from prefrl.sb3.vec_env import FreshInfoDummyVecEnv

torch.set_num_threads(1)
STEPS, ROUNDS = 20_000, 5


def cpu_us_per_step(cls, preset, n_envs):
    venv = cls([lambda i=i: Monitor(RecordRenderState(make_env(preset, seed=i)))
                for i in range(n_envs)])
    venv.seed(0)
    venv.reset()
    acts = np.random.default_rng(0).uniform(-1, 1, (STEPS // n_envs, n_envs) + venv.action_space.shape)
    t = time.process_time()
    for a in acts:
        venv.step(a.astype(np.float32))
    return (time.process_time() - t) / (len(acts) * n_envs) * 1e6


for env in sys.argv[1:] or ["Swimmer", "Hopper", "HalfCheetah"]:
    preset = load_preset(env)
    res = {"DummyVecEnv": [], "FreshInfoDummyVecEnv": []}
    for _ in range(ROUNDS):
        for cls in (DummyVecEnv, FreshInfoDummyVecEnv):
            res[cls.__name__].append(cpu_us_per_step(cls, preset, preset.n_envs))
    a, b = np.median(res["DummyVecEnv"]), np.median(res["FreshInfoDummyVecEnv"])
    print(f"{env} (n_envs {preset.n_envs}): DummyVecEnv {a:.1f} us/step, FreshInfoDummyVecEnv "
          f"{b:.1f} us/step (median of {ROUNDS} rounds of {STEPS} CPU-timed steps): "
          f"{a - b:.1f} us saved, {100 * (a - b) / a:.1f}%")
