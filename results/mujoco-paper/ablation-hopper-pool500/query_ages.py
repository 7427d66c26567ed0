"""Where a Hopper run's labels came from: clip health by step, pair kinds, clip age at query.

Usage: ``python query_ages.py RUN/labels.sqlite``. A step is healthy when z = obs[0] > 0.7 and
the torso angle obs[1] is within 0.2 rad (Gymnasium's Hopper ranges); a healthy clip is healthy
on every step.
"""

import sys

import numpy as np

from prefrl.store import LabelStore

BINS = ((0, 10_000), (10_000, 100_000), (100_000, 200_000), (200_000, 400_000))


def unhealthy_share(clip):
    """Share of the clip's steps outside the healthy z and angle ranges."""
    z, angle = clip.obs[:, 0], clip.obs[:, 1]
    return float(np.mean((z <= 0.7) | (np.abs(angle) >= 0.2)))


def main(path):
    """Print the tables of ``query_ages.txt`` for one label store."""
    store = LabelStore(path, create=False)
    labels = store.labels(include_skips=False)
    hashes = sorted({h for lab in labels for h in (lab.left, lab.right)})
    clips = {c.hash: c for c in store.get_clips(hashes, render_state=False)}
    unh = {h: unhealthy_share(c) for h, c in clips.items()}
    ret = {h: float(c.true_rews.sum()) for h, c in clips.items()}
    print("labels", len(labels), "clips", len(clips))
    for lo, hi in BINS:
        sel = [h for h, c in clips.items() if lo <= c.step < hi]
        if sel:
            u = np.array([unh[h] for h in sel])
            print(f"clips from steps {lo}-{hi}: {len(sel)}, unhealthy frac mean {u.mean():.2f}, "
                  f"all-healthy {np.mean(u == 0):.2f}, all-fallen {np.mean(u == 1):.2f}, "
                  f"return mean {np.mean([ret[h] for h in sel]):.1f}")
    kinds = {"HH": 0, "FF": 0, "mixed": 0}
    wrong = {"HH": 0, "FF": 0, "mixed": 0}
    ties = 0
    for lab in labels:
        left_ok, right_ok = unh[lab.left] == 0, unh[lab.right] == 0
        kind = "HH" if left_ok and right_ok else "FF" if not (left_ok or right_ok) else "mixed"
        kinds[kind] += 1
        if lab.mu == 0.5:
            ties += 1
            continue
        if (lab.mu > 0.5) != (ret[lab.right] > ret[lab.left]):
            wrong[kind] += 1
    print("pair kinds (H = clip fully healthy)", kinds,
          "teacher vs true return disagreements", wrong, "ties", ties)
    healthy = [ret[h] for h in clips if unh[h] == 0]
    print("healthy clip returns: n", len(healthy), "pct 10/50/90",
          np.percentile(healthy, [10, 50, 90]).round(1) if healthy else None)
    falls = [ret[h] for h in clips if unh[h] > 0]
    print("clips with falls: returns pct 10/50/90", np.percentile(falls, [10, 50, 90]).round(1))
    print("--- clip age at query time (labels by query env_step)")
    answered = [q for q in store.queries() if q.status == "answered"]
    for lo, hi in BINS:
        sel = [q for q in answered if lo <= q.env_step < hi]
        if not sel:
            continue
        pairs = [(q, h) for q in sel for h in (q.left, q.right) if h in clips]
        ages = np.array([q.env_step - clips[h].step for q, h in pairs])
        ok = np.array([unh[h] == 0 for _, h in pairs])
        print(f"queries at {lo}-{hi}: {len(sel)}; clip age pct 10/50/90 "
              f"{np.percentile(ages, [10, 50, 90]).round(0)}; healthy clips {ok.mean():.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
