"""CPU seconds of VecNormalize's reward path against the plain-float deferred replay.

VecNormalize's own path runs step by step, one numpy call per statistic (what the deferred
replay did before); ``DeferredRewards._replay_normalisation`` is the plain-float replay. Both
must give the same numbers, which the script checks.

    python results/overhead/replay_bench.py
"""

import time

import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from prefrl.sb3.deferred import DeferredRewards


def vecnormalize_path(vn: VecNormalize, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
    """VecNormalize.step_wait's reward path, one numpy call per statistic."""
    out = np.empty_like(rewards)
    for t in range(len(rewards)):
        vn._update_reward(rewards[t])
        out[t] = vn.normalize_reward(rewards[t])
        vn.returns[dones[t]] = 0
    return out


rng = np.random.default_rng(0)
for n in (1, 3):
    steps = 2048
    rewards = (rng.normal(size=(steps, n)) * 3).astype(np.float32)
    dones = rng.random((steps, n)) < 0.01
    ref, fast = (VecNormalize(make_vec_env("Pendulum-v1", n_envs=n), gamma=0.99)
                 for _ in range(2))
    for vn in (ref, fast):  # the same warm statistics to start from
        vn.ret_rms.update(np.full(50, 2.0))
    t0 = time.process_time()
    expected = vecnormalize_path(ref, rewards, dones)
    t1 = time.process_time()
    replay = DeferredRewards.__new__(DeferredRewards)
    replay._norm_state = None
    got = replay._replay_normalisation(fast, rewards, dones)
    t2 = time.process_time()
    print(f"{n} env(s), {steps} steps: max |diff| {np.abs(got - expected).max()}, "
          f"var diff {fast.ret_rms.var - ref.ret_rms.var}, "
          f"CPU VecNormalize path {t1 - t0:.3f} s, plain floats {t2 - t1:.3f} s")
