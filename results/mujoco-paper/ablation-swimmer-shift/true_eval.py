"""The true Swimmer-v5 return of a run's final policy: 10 deterministic episodes, seeds 12345+,
plain Swimmer-v5 (no shift), observations normalised with the run's saved statistics."""
import json, sys
import numpy as np, gymnasium as gym, torch
from stable_baselines3 import PPO
torch.set_num_threads(1)
out = {}
for run in sys.argv[1:]:
    pol = PPO.load(f"{run}/checkpoint/policy.zip", device="cpu")
    vn = np.load(f"{run}/checkpoint/vecnorm.npz")
    m, v = vn["obs_mean"], vn["obs_var"]
    env = gym.make("Swimmer-v5")
    rets = []
    for e in range(10):
        o, _ = env.reset(seed=12345 + e)
        ret, done = 0.0, False
        while not done:
            a, _ = pol.predict(np.clip((o - m) / np.sqrt(v + 1e-8), -10, 10).astype(np.float32), deterministic=True)
            o, r, term, trunc, _ = env.step(a)
            ret += float(r); done = term or trunc
        rets.append(ret)
    out[run] = {"true_return_swimmer_v5": float(np.mean(rets)), "returns": rets}
    print(run, round(float(np.mean(rets)), 1))
    with open(f"{run}/true_eval.json", "w") as f:
        json.dump({"what": "10 deterministic episodes of the final policy on plain Swimmer-v5 (true reward, no shift), seeds 12345-12354, observations normalised with the run's saved VecNormalize statistics; /work/exp/s21/true_eval.py", **out[run]}, f, indent=1)
