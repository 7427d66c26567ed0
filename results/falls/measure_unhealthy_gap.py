"""Per-step true reward of healthy vs unhealthy steps under a random policy, and the gap per clip.

Run from the repository root: MUJOCO_GL=disable .venv/bin/python results/falls/measure_unhealthy_gap.py
"""
import numpy as np, sys
from prefrl.envs import load_preset, make_env
for name in ["Hopper","Walker2d","Ant","InvertedPendulum","InvertedDoublePendulum"]:
    p = load_preset(name); env = make_env(p, seed=0)
    rh, ru, falls, unh = [], [], [], []
    for ep in range(3):
        env.reset(seed=ep); done=False
        while not done:
            _, r, term, trunc, info = env.step(env.action_space.sample())
            (ru if info["unhealthy"] else rh).append(r); done = term or trunc
        falls.append(info["n_falls"]); unh.append(info["n_unhealthy_steps"])
    print(f"{name}: per-step true reward healthy {np.mean(rh) if rh else float('nan'):.3f} (n={len(rh)}), "
          f"unhealthy {np.mean(ru) if ru else float('nan'):.3f} (n={len(ru)}); clip_len {p.clip_len}: "
          f"clip gap {(np.mean(rh)-np.mean(ru))*p.clip_len if rh and ru else float('nan'):.1f}; falls/ep {falls}, unhealthy steps/ep {unh}")
