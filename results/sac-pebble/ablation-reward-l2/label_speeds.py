"""What speeds a run's labelled clips show, in the order the labels were asked (issue 16).

Usage: ``python label_speeds.py RUN_DIR [BLOCK]`` (default block: 20 labels). Reads
RUN_DIR's ``labels.sqlite`` (read-only). Per block of labels: the lowest, highest and mean
forward speed (``obs[8]``, HalfCheetah-v5 / Walker2d-v5) of the clips compared, and the median
difference in mean speed and in true return between the two clips of a pair.
"""

import sys

import numpy as np

from prefrl.reward.offline import open_labels


def main() -> None:
    """Print one line per block of labels."""
    run = sys.argv[1]
    block = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with open_labels(run) as src:
        rows = src.store.label_rows()  # (id, left, right, pair_key, mu), in id order
        hashes = list(dict.fromkeys(h for r in rows for h in (r[1], r[2])))
        speed, ret = {}, {}
        for i in range(0, len(hashes), 256):
            for clip in src.store.get_clips(hashes[i:i + 256], render_state=False):
                speed[clip.hash] = float(clip.obs[:, 8].mean())
                ret[clip.hash] = float(clip.true_rews.sum())
    print(f"{len(rows)} labels of {run}")
    for b in range(0, len(rows), block):
        part = rows[b:b + block]
        left = np.array([speed[r[1]] for r in part])
        right = np.array([speed[r[2]] for r in part])
        both = np.r_[left, right]
        d_ret = np.abs([ret[r[1]] - ret[r[2]] for r in part])
        print(f"labels {b:3d}-{b + len(part) - 1:3d}: clip speed {both.min():+.2f} to "
              f"{both.max():+.2f} m/s (mean {both.mean():+.2f}); within a pair, median "
              f"|speed difference| {np.median(np.abs(left - right)):.2f} m/s, median "
              f"|true-return difference| {np.median(d_ret):.2f}")


if __name__ == "__main__":
    main()
