"""Posture and speed of a HalfCheetah SAC run, read from its replay buffer (issue 16).

Usage::

    python cheetah_posture.py RUN/checkpoint/replay.npz [--block STEPS]

Per block of steps (default 30k): the share of steps with the cheetah on its back or
nose-down (body pitch ``rooty`` beyond 1.5 rad, wrapped to [-pi, pi)), its mean forward speed
and the true reward per step. Then, for the first 12k steps (PEBBLE's state-entropy phase and
the first feedback session's candidates) and the last 30k, the mean and sd of the forward speed
of 30-step clips (the preset's clip length). HalfCheetah-v5 observations: ``obs[1]`` is
``rooty``, ``obs[8]`` the forward velocity.
"""

import argparse

import numpy as np

CLIP_LEN = 30


def main() -> None:
    """Print the per-block posture table and the clip-speed lines for one replay buffer."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("replay")
    ap.add_argument("--block", type=int, default=30_000)
    args = ap.parse_args()
    z = np.load(args.replay)
    obs, true = z["observations"][:, 0], z["true_rewards"][:, 0]
    pitch = (obs[:, 1] + np.pi) % (2 * np.pi) - np.pi
    speed = obs[:, 8]
    n = len(true)
    for lo in range(0, n, args.block):
        s = slice(lo, lo + args.block)
        print(f"{lo // 1000:>4}k-{min(n, lo + args.block) // 1000}k: flipped "
              f"{np.mean(np.abs(pitch[s]) > 1.5):.2f}, speed {speed[s].mean():5.2f} m/s, "
              f"true reward/step {true[s].mean():6.3f}")
    for name, lo, hi in (("first 12k steps", 0, 12_000), ("last 30k steps", n - 30_000, n)):
        lo = max(0, lo)
        clips = speed[lo: lo + (hi - lo) // CLIP_LEN * CLIP_LEN].reshape(-1, CLIP_LEN).mean(1)
        print(f"{name}: {CLIP_LEN}-step clip speed mean {clips.mean():.2f} m/s, "
              f"sd {clips.std():.2f}")


if __name__ == "__main__":
    main()
