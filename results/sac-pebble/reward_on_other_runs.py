"""Offline: a finished run's final learned reward, scored on replay-buffer windows of other runs.

Usage: python reward_on_other_runs.py MODEL_RUN NAME=RUN[:START:END] ...
Prints, per window, the mean standardised reward per step (the model's own normalisation),
the mean true reward per step, the share of flipped steps (|rooty| > 1.5 rad) and the speed.
"""
import sys, torch, numpy as np
from pathlib import Path
from prefrl.reward.offline import export_run_model
torch.set_num_threads(1)
run = Path(sys.argv[1])
ens = export_run_model(run).ensemble  # the checkpoint's (final) ensemble
print(f"model: {run}")
print("window                                  learned/step  true/step  flipped  speed m/s")
for spec in sys.argv[2:]:
    name, rest = spec.split("=", 1)
    path, *rng = rest.split(":")
    z = np.load(Path(path) / "checkpoint" / "replay.npz")
    a, b = (int(rng[0]), int(rng[1])) if rng else (270000, 300000)
    o, ac = z["observations"][a:b, 0], z["actions"][a:b, 0]
    learned, _ = ens.predict(o.astype(np.float32), ac.astype(np.float32))
    pitch = (o[:, 1] + np.pi) % (2 * np.pi) - np.pi
    print(f"{name:38s}  {learned.mean():10.3f}  {z['true_rewards'][a:b, 0].mean():9.3f}  "
          f"{(np.abs(pitch) > 1.5).mean():7.2f}  {o[:, 8].mean():8.2f}")
