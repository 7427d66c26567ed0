"""Offline: how a reward trained on a SAC run's labels rises with forward speed (issue 16).

Usage::

    python reward_vs_speed.py RUN_DIR [--from-step 150000] [--bins -1,0,1,2,3,4,4.5,5,5.5,6,7]
                              [--l2 0.1] [--epochs 100] [--settings adaptive,off]

RUN_DIR is a finished run with ``labels.sqlite`` and ``checkpoint/replay.npz`` (HalfCheetah-v5
or Walker2d-v5: ``obs[8]`` is the forward velocity). Over the replay buffer's steps from
``--from-step`` on, it prints the mean reward per forward-speed bin (each reward standardised
over those steps) and its per-step Pearson correlation with the true reward for: the true
reward, the run's own final model (the buffer's relabelled ``rewards`` column), and fresh
3-member ensembles of the preset's net trained on all of the run's labels for ``--epochs``
epochs (the full schedule) with: adaptive L2 and 1/e held out (PPO's default, session 23's
``full``), L2 off with nothing held out (SAC's default since session 24), and each fixed L2
weight of ``--l2`` with nothing held out. ``--settings`` picks among ``adaptive``, ``off`` and
``off-heldout`` (L2 off, 1/e held out and not trained on). Ensemble seeds 0 and 1 each.
"""

import argparse
import dataclasses

import numpy as np

from prefrl.reward.offline import train_offline
from prefrl.reward.trainer_config import TrainerConfig


def main() -> None:
    """Print the reward-per-speed-bin table for one run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--from-step", type=int, default=150_000)
    ap.add_argument("--bins", default="-1,0,1,2,3,4,4.5,5,5.5,6,7")
    ap.add_argument("--l2", default="", help="comma-separated fixed L2 weights (val 0)")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--settings", default="adaptive,off")
    args = ap.parse_args()

    z = np.load(f"{args.run}/checkpoint/replay.npz")
    lo = args.from_step
    obs, acts = z["observations"][lo:, 0], z["actions"][lo:, 0]
    true, run_model = z["true_rewards"][lo:, 0], z["rewards"][lo:, 0]
    speed = z["next_observations"][lo:, 0, 8]
    edges = np.array([float(x) for x in args.bins.split(",")])
    which = np.digitize(speed, edges) - 1

    def row(name: str, reward: np.ndarray) -> None:
        r = (reward - reward.mean()) / reward.std()
        cells = [f"{r[which == b].mean():+.2f}" if (which == b).sum() > 200 else "n/a"
                 for b in range(len(edges) - 1)]
        print(f"{name:34s} " + " ".join(f"{c:>6s}" for c in cells)
              + f" | per-step Pearson {np.corrcoef(r, true)[0, 1]:.3f}")

    print(f"steps {lo}-{lo + len(obs)} of {args.run}")
    print(f"{'speed bin from (m/s)':34s} "
          + " ".join(f"{e:>+6.1f}" for e in edges[:-1]) + f"  (last bin to {edges[-1]:+.1f})")
    print(f"{'steps in bin':34s} "
          + " ".join(f"{(which == b).sum():>6d}" for b in range(len(edges) - 1)))
    row("true reward", true)
    row("the run's own final model", run_model)
    off = TrainerConfig.for_run("full", "off", 0.0)
    named = {"adaptive": ("adaptive L2, 1/e held out", TrainerConfig.for_run("full", "adaptive")),
             "off": ("L2 off, none held out", off),
             "off-heldout": ("L2 off, 1/e held out",
                             TrainerConfig.for_run("full", "off", 1 / np.e))}
    settings = dict(named[k] for k in args.settings.split(",") if k)
    for v in [x for x in args.l2.split(",") if x]:
        settings[f"fixed L2 {v}, none held out"] = dataclasses.replace(off, l2_init=float(v))
    for name, cfg in settings.items():
        for seed in (0, 1):
            model, stats = train_offline(args.run, epochs=args.epochs, seed=seed, trainer=cfg)
            reward, _ = model.ensemble.predict(obs, acts)
            row(f"{name}, s{seed}", np.asarray(reward))
            print(f"{'':34s} final L2 {stats['l2']:.3g}, train acc {stats['train_acc']:.2f}")


if __name__ == "__main__":
    main()
