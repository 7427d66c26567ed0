"""Per-state learned reward of a pre-trained InvertedPendulum model: ``states.py SEED [key=value ...]``
(keys as in probe_pretrain.py), for hand-made states (x, theta, x', theta') and actions 0 and 3.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from probe_pretrain import pretrain

from prefrl.envs import make_env
from prefrl.presets import load_preset

preset = load_preset("InvertedPendulum")
kv = dict(a.split("=", 1) for a in sys.argv[2:])
env = make_env(preset, seed=int(sys.argv[1]) + 10_000)
ln, _ = pretrain(int(sys.argv[1]), kv, env, preset)
S = {"upright static": [0, 0, 0, 0], "upright cart moving": [0, 0, 1.0, 0], "upright pole moving": [0, 0.1, 0, 1.0],
     "falling fast": [0, 0.6, 0, 4.0], "fallen static centre": [0, 1.57, 0, 0], "fallen static rail": [0.95, 1.57, 0, 0],
     "fallen static rail-": [-0.95, -1.57, 0, 0], "fallen moving": [0.3, 1.57, 2.0, 0.5]}
for a in (0.0, 3.0):
    obs = np.array(list(S.values()), np.float32)[:, None, :]
    acts = np.full((len(S), 1, 1), a, np.float32)
    r = ln.ensemble.clip_returns(obs, acts).mean(0)
    print(f"seed {sys.argv[1]} act {a}: " + ", ".join(f"{k} {v:.2f}" for k, v in zip(S, r)))
