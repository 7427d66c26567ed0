"""Where a running SAC cell spends its time, from a py-spy raw profile.

Record one (py-spy is not a prefrl dependency; ``pip install py-spy``), then summarise::

    py-spy record -p PID -d 120 -r 50 -f raw -o spy.txt --nonblocking
    python results/sac-pebble/profile/profile_shares.py spy.txt   # or spy.txt.gz

PID is the bench worker process (the child of ``prefrl bench run`` that runs the cell). Each
line of a raw profile is ``frame;frame;...;frame COUNT``. Printed: the share of samples whose
stack passes through SB3's gradient step (``SAC.train``), through rollout collection (env step,
reward wrapper, callbacks), through any prefrl frame, and the prefrl frames themselves
(inclusive, largest first).
"""

from __future__ import annotations

import argparse
import gzip
from collections import Counter
from pathlib import Path

GROUPS = {
    "SB3 gradient steps (SAC.train)": "SAC.train (",
    "rollout collection (collect_rollouts)": "collect_rollouts (",
    "MuJoCo physics (mujoco frames)": "mujoco/",
}


def shares(lines: list[str]) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, samples per group, and inclusive samples per prefrl frame.

    >>> total, groups, frames = shares(["a;SAC.train (sac.py:1) 3", "a;f (prefrl/x.py:2) 1"])
    >>> total, groups["SB3 gradient steps (SAC.train)"], frames["f (prefrl/x.py:2)"]
    (4, 3, 1)
    """
    total, groups, frames = 0, Counter[str](), Counter[str]()
    for line in lines:
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        n = int(count)
        total += n
        for name, marker in GROUPS.items():
            if marker in stack:
                groups[name] += n
        ours = {f for f in stack.split(";") if "prefrl/" in f}
        ours -= {f for f in ours if "bench/runner.py" in f or "training.py" in f}  # whole run
        if ours:
            groups["any prefrl frame below the run loop"] += n
        for f in ours:
            frames[f] += n
    return total, groups, frames


def main() -> None:
    """Print the shares of one raw profile."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("raw", type=Path, help="py-spy record -f raw output (.gz read as gzip)")
    ap.add_argument("--top", type=int, default=15, help="prefrl frames to list")
    args = ap.parse_args()
    opened = gzip.open(args.raw, "rt") if args.raw.suffix == ".gz" else args.raw.open()
    with opened as f:
        total, groups, frames = shares(f.read().splitlines())
    print(f"{args.raw.name}: {total} samples")
    for name in [*GROUPS, "any prefrl frame below the run loop"]:
        print(f"{groups[name] / total:6.1%}  {name}")
    print("prefrl frames (inclusive):")
    for frame, n in frames.most_common(args.top):
        print(f"{n / total:6.1%}  {frame}")


if __name__ == "__main__":
    main()
