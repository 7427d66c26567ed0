"""Old (numpy per statistic) vs new (plain floats) VecNormalize reward replay: equal outputs, CPU seconds."""
import copy
import time

import numpy as np
from types import SimpleNamespace
from stable_baselines3.common.running_mean_std import RunningMeanStd
from prefrl.sb3.deferred import DeferredRewards
class VN:  # the reward-path parts of VecNormalize
    def __init__(s, n):
        s.ret_rms = RunningMeanStd(shape=()); s.returns = np.zeros(n); s.gamma = 0.99; s.epsilon = 1e-8; s.clip_reward = 10.0
    def normalize_reward(s, r):
        return np.clip(r / np.sqrt(s.ret_rms.var + s.epsilon), -s.clip_reward, s.clip_reward)
def old(vn, rewards, dones):
    out = np.empty_like(rewards, dtype=np.float32)
    for t in range(len(rewards)):
        vn.returns = vn.returns * vn.gamma + rewards[t]
        vn.ret_rms.update(vn.returns)
        out[t] = vn.normalize_reward(rewards[t])
        vn.returns[dones[t]] = 0
    return out
rng = np.random.default_rng(0)
for n in (1, 3):
    T = 2048
    r = (rng.normal(size=(T, n)) * 3).astype(np.float32); d = rng.random((T, n)) < 0.01
    a, b = VN(n), VN(n)
    for vn in (a, b):  # warm statistics
        vn.ret_rms.update(rng.normal(size=50) * 0 + 2.0)
    b.ret_rms = copy.deepcopy(a.ret_rms)
    t0 = time.process_time(); oa = old(a, r, d); t1 = time.process_time()
    dr = DeferredRewards.__new__(DeferredRewards); dr._norm_state = None
    ob = dr._replay_normalisation(b, r, d); t2 = time.process_time()
    print(n, "max |diff| out", np.abs(oa - ob).max(), "var", a.ret_rms.var - b.ret_rms.var, "mean", a.ret_rms.mean - b.ret_rms.mean,
          "count", a.ret_rms.count, b.ret_rms.count, "returns", np.abs(a.returns - b.returns).max(),
          "time old %.3f new %.3f s" % (t1 - t0, t2 - t1))
