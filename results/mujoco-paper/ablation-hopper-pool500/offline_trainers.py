"""Offline: can another reward trainer make Hopper's learned reward value health as the truth does.

Usage: ``python offline_trainers.py RUN/labels.sqlite [VARIANT ...]``: trains each variant (all
by default) on the store's labels for at most 100 epochs and prints its held-out accuracy, the
worth of health in units of x velocity (as ``reward_probe.py`` fits it) and the drop of the
reward where the torso angle passes 0.2 rad.
"""

import sys
import time

import numpy as np
import torch
from reward_probe import labelled_steps

from prefrl.reward.offline import train_offline
from prefrl.reward.trainer import TrainerConfig

VARIANTS = {
    "fast (run default)": TrainerConfig.fast(),
    "full, adaptive L2": TrainerConfig(),
    "full, no L2": TrainerConfig(adapt_l2=False, l2_init=0.0),
    "full, misclick 0.02": TrainerConfig(misclick_eps=0.02),
}


def main(path, names):
    """Print one line of ``offline_trainers.txt`` per variant."""
    torch.set_num_threads(1)
    obs, acts, true = labelled_steps(path)
    healthy = ((obs[:, 0] > 0.7) & (np.abs(obs[:, 1]) < 0.2)).astype(float)
    design = np.stack([obs[:, 5], healthy, np.ones_like(healthy)], 1)
    angle, upright = np.abs(obs[:, 1]), obs[:, 0] > 0.7
    below = upright & (angle >= 0.15) & (angle < 0.2)
    above = upright & (angle >= 0.2) & (angle < 0.25)
    for name in names or VARIANTS:
        t0 = time.process_time()
        model, tr = train_offline(path, env="Hopper", epochs=100, trainer=VARIANTS[name],
                                  device="cpu")
        learned, _ = model.ensemble.predict(obs, acts)
        (a, b, _), *_ = np.linalg.lstsq(design, learned, rcond=None)
        cliff = learned[below].mean() - learned[above].mean()
        true_cliff = true[below].mean() - true[above].mean()
        print(f"{name}: val acc {tr.get('val_acc', float('nan')):.3f} "
              f"train acc {tr.get('train_acc', float('nan')):.3f} "
              f"health worth {b / a:.2f} vx (true ~3.5); cliff at 0.2 rad {cliff:.3f} "
              f"(per unit of vx {cliff / a:.2f}, true {true_cliff / 1.5:.2f}); "
              f"pearson {np.corrcoef(learned, true)[0, 1]:.3f}; "
              f"cpu {time.process_time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
