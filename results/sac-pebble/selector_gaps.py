"""Offline: what each query selector would ask from a finished run's final pool and model.

Usage::

    python results/sac-pebble/selector_gaps.py RUN [--pairs N] [--draws D]

Loads the run's checkpoint (its final reward ensemble via ``export_run_model`` and its clip pool
from ``buffer.npz``), then for each selector makes ``D`` independent choices of ``N`` pairs from
``N * 10`` candidates, as a feedback session does. Prints the chosen pairs' mean gap in true clip
return, the shares of gaps under 1 and under 5, and the chosen clips' mean true return, beside
the pool's own spread. Read-only; no labels are asked.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from prefrl.query import SELECTORS, make_selector
from prefrl.reward.offline import export_run_model
from prefrl.rundir import load_npz
from prefrl.segments import SegmentBuffer


def main() -> None:
    """Print one line per selector for one run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a finished run's folder (with checkpoint/)")
    ap.add_argument("--pairs", type=int, default=10, help="pairs per feedback session")
    ap.add_argument("--draws", type=int, default=20, help="independent sessions per selector")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ensemble = export_run_model(args.run).ensemble
    state = load_npz(args.run / "checkpoint" / "buffer.npz")
    pool = SegmentBuffer(int(state["clip_len"]), capacity=10**6, rng=np.random.default_rng(0))
    pool.load_state_dict(state)
    returns = np.array([c.true_rews.sum() for c in pool.clips()])
    print(f"{args.run}: pool {len(pool)} clips, true clip return mean {returns.mean():.1f} "
          f"sd {returns.std():.1f}; {args.pairs} pairs per session, {args.draws} sessions")
    print("selector              mean |gap|  gap < 1  gap < 5  mean return")
    for name in SELECTORS:
        selector = make_selector(name, 10)
        gaps, clip_returns = [], []
        for draw in range(args.draws):
            for pair, _ in selector.choose(pool, args.pairs, ensemble,
                                           np.random.default_rng(draw)):
                left, right = float(pair.left.true_rews.sum()), float(pair.right.true_rews.sum())
                gaps.append(abs(left - right))
                clip_returns += [left, right]
        g = np.array(gaps)
        print(f"{name:20s}  {g.mean():10.2f}  {(g < 1).mean():7.2f}  {(g < 5).mean():7.2f}  "
              f"{np.mean(clip_returns):11.1f}")


if __name__ == "__main__":
    main()
