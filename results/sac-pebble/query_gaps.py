"""What each feedback session's queries compared, read from a run's label store (issue 16).

Usage::

    python results/sac-pebble/query_gaps.py RUN/labels.sqlite [--entropy-steps 10000]
        [--replay RUN/checkpoint/replay.npz]

One line per feedback session (the env step it was asked at): the queries asked, how many of
their clips come from the first ``--entropy-steps`` steps (PEBBLE's state-entropy phase), the
mean gap in true clip return between the two clips of a pair, and the pairs' mean true clip
return. Reads through :class:`~prefrl.store.LabelStore` (never creates one), as
``label_check.py`` does.

Before commit 6c5ce4b a resumed run stamped the clips it recorded with steps counted from the
resume, not from the run's start. ``--replay`` (the run's SAC replay buffer, which holds every
step) dates each clip by finding its first two observations there instead.
"""

import argparse
from collections import defaultdict

import numpy as np

from prefrl.store import LabelStore


def main() -> None:
    """Print the per-session table for one label store."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", help="a run's labels.sqlite")
    ap.add_argument("--entropy-steps", type=int, default=10_000)
    ap.add_argument("--replay", help="the run's checkpoint/replay.npz: date clips by it")
    args = ap.parse_args()
    store = LabelStore(args.store, create=False)
    queries = store.queries()
    hashes = sorted({h for q in queries for h in (q.left, q.right)})
    clips = dict(zip(hashes, store.get_clips(hashes, render_state=False), strict=True))
    store.close()
    step_of = {h: c.step for h, c in clips.items()}
    if args.replay:
        with np.load(args.replay) as replay:
            rows = np.asarray(replay["observations"][: int(replay["pos"]), 0], np.float32)
        # two rows, not one: a resumed env repeats its first reset states (same seed)
        index = {rows[t : t + 2].tobytes(): t for t in range(len(rows) - 1)}
        # None: not in the replay, a segment a resume rolled back (its labels were kept)
        step_of = {h: index.get(np.asarray(c.obs[:2], np.float32).tobytes())
                   for h, c in clips.items()}
    sessions = defaultdict(list)
    for q in queries:
        sessions[q.env_step].append((clips[q.left], clips[q.right]))
    print("step      queries  entropy-phase clips  mean |true gap|  mean true return")
    for step, pairs in sorted(sessions.items()):
        early = sum(step_of[c.hash] is not None and step_of[c.hash] < args.entropy_steps
                    for pair in pairs for c in pair)
        left, right = (np.array([float(p[i].true_rews.sum()) for p in pairs]) for i in (0, 1))
        gap, mean = np.abs(left - right).mean(), ((left + right) / 2).mean()
        print(f"{step:>7}  {len(pairs):>8}  {early:>19}  {gap:>15.2f}  {mean:>16.1f}")
    undated = sum(s is None for s in step_of.values())
    if undated:
        print(f"{undated} of {len(clips)} clips are not in the replay buffer (a segment rolled "
              "back by a resume); counted as not from the entropy phase")


if __name__ == "__main__":
    main()
