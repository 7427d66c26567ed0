"""Sum of a final policy's reward terms over one 1000-step episode (seed 7): Ant and the like.

``.venv/bin/python results/falls/reward_parts.py RUN_DIR [RUN_DIR ...]``; terms from the env's
``info`` (reward_forward, reward_ctrl, reward_contact, reward_survive).
"""

import sys
from pathlib import Path

import numpy as np

from prefrl.envs import make_env
from prefrl.evaluate import _load_policy

TERMS = ("reward_forward", "reward_ctrl", "reward_contact", "reward_survive")

for run in sys.argv[1:]:
    pol, rms, rc, _ = _load_policy(Path(run))
    env = make_env(rc.preset, seed=5)
    o, _ = env.reset(seed=7)
    total = dict.fromkeys(TERMS, 0.0)
    for _ in range(rc.preset.horizon):
        x = o if rms is None else np.clip((o - rms[0]) / np.sqrt(rms[1] + 1e-8), -10, 10)
        a, _ = pol.predict(x, deterministic=True)
        o, _, _, trunc, info = env.step(a)
        for k in TERMS:
            total[k] += float(info.get(k, 0.0))
        if trunc:
            break
    print(run, {k: round(v, 1) for k, v in total.items()})
