"""How a Hopper reward model weighs health against speed.

Least squares of the per-step reward on [x velocity, healthy, 1] over a run's labelled clips,
for the true and the learned reward, and the mean reward either side of the 0.2 rad torso
angle. Usage: ``python reward_probe.py MODEL_DIR RUN/labels.sqlite`` (make ``MODEL_DIR`` with
``prefrl reward export RUN --out MODEL_DIR``).
"""

import sys

import numpy as np

from prefrl.reward.model import load_reward
from prefrl.store import LabelStore


def labelled_steps(path):
    """Observations, actions and true rewards of every step of the labelled clips."""
    store = LabelStore(path, create=False)
    hashes = sorted({h for lab in store.labels(include_skips=False) for h in (lab.left, lab.right)})
    clips = store.get_clips(hashes, render_state=False)
    return (np.concatenate([c.obs for c in clips]), np.concatenate([c.acts for c in clips]),
            np.concatenate([c.true_rews for c in clips]))


def main(model_dir, path):
    """Print the fits of ``reward_probe.txt``."""
    model = load_reward(model_dir, device="cpu")
    obs, acts, true = labelled_steps(path)
    learned, _ = model.ensemble.predict(obs, acts)
    healthy = ((obs[:, 0] > 0.7) & (np.abs(obs[:, 1]) < 0.2)).astype(float)
    design = np.stack([obs[:, 5], healthy, np.ones_like(healthy)], 1)  # obs[5]: x velocity
    for name, y in (("true", true), ("learned", learned)):
        (a, b, c), *_ = np.linalg.lstsq(design, y, rcond=None)
        print(f"{name:8s} r = {a:.3f} vx + {b:.3f} healthy + {c:.3f}; health worth {b / a:.2f} "
              f"of vx; mean healthy {y[healthy == 1].mean():.3f} "
              f"unhealthy {y[healthy == 0].mean():.3f}")
    print("per-step pearson learned vs true", round(float(np.corrcoef(learned, true)[0, 1]), 3),
          "steps", len(true), "healthy share", round(healthy.mean(), 3))
    angle, upright = np.abs(obs[:, 1]), obs[:, 0] > 0.7
    for lo, hi in ((0.1, 0.15), (0.15, 0.2), (0.2, 0.25), (0.25, 0.3)):
        k = upright & (angle >= lo) & (angle < hi)
        print(f"|angle| {lo}-{hi}: n {k.sum()}, true {true[k].mean():.2f}, "
              f"learned {learned[k].mean():.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
