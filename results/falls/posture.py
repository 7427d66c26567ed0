"""How a run's final policy moves in the fixed-horizon env: torso height and angle, distance.

``.venv/bin/python results/falls/posture.py RUN_DIR [RUN_DIR ...]`` (Hopper and Walker2d runs):
one deterministic 1000-step episode (seed 7); prints the true return, the forward distance,
the mean torso height z and angle, and the share of steps outside Gymnasium's healthy z and
angle ranges (the standard env ends the episode on the first such step).
"""

import sys
from pathlib import Path

import numpy as np

from prefrl.envs import make_env
from prefrl.evaluate import _load_policy

for arg in sys.argv[1:]:
    pol, rms, rc, _ = _load_policy(Path(arg))
    env = make_env(rc.preset, seed=5)
    inner = env.unwrapped
    z_lo, z_hi = inner._healthy_z_range
    a_lo, a_hi = inner._healthy_angle_range
    o, _ = env.reset(seed=7)
    z, ang, ret = [], [], 0.0
    for _ in range(rc.preset.horizon):
        x = o if rms is None else np.clip((o - rms[0]) / np.sqrt(rms[1] + 1e-8), -10, 10)
        a, _ = pol.predict(x, deterministic=True)
        o, r, _, trunc, _ = env.step(a)
        ret += float(r)
        z.append(inner.data.qpos[1])
        ang.append(inner.data.qpos[2])
        if trunc:
            break
    z, ang = np.array(z), np.array(ang)
    print(f"{arg}: return {ret:.0f}, x {inner.data.qpos[0]:.1f} m, z mean {z.mean():.2f} "
          f"(outside [{z_lo}, {z_hi}]: {((z < z_lo) | (z > z_hi)).mean():.2f}), "
          f"angle mean {ang.mean():.2f} (outside [{a_lo}, {a_hi}]: "
          f"{((ang < a_lo) | (ang > a_hi)).mean():.2f})")
