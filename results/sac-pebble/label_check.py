"""Does the teacher's answer agree with the true order of the two clips? Per ten labels, in order.

Usage: ``python label_check.py RUN/labels.sqlite``. Prints, for each block of ten labels (skips
left out), the share of left/right answers that agree with the clips' true returns, the median
return gap of the pairs and the range of the clips' returns.
"""

import sys

import numpy as np

from prefrl.store import LabelStore


def main(path: str) -> None:
    """Print the per-block table for the label store at ``path``."""
    store = LabelStore(path, create=False)
    labels = store.labels(include_skips=False)
    hashes = sorted({h for lab in labels for h in (lab.left, lab.right)})
    clips = store.get_clips(hashes, render_state=False)
    returns = {h: float(c.true_rews.sum()) for h, c in zip(hashes, clips, strict=True)}
    print("labels", len(labels))
    for start in range(0, len(labels), 10):
        block = labels[start:start + 10]
        pairs = [(returns[lab.left], returns[lab.right], lab.mu) for lab in block]
        agree = [(mu > 0.5) == (right > left) for left, right, mu in pairs
                 if mu != 0.5 and right != left]
        gaps = [abs(right - left) for left, right, _ in pairs]
        rets = [r for left, right, _ in pairs for r in (left, right)]
        print(f"labels {start:3d}-{start + len(block) - 1:3d}: agree {np.mean(agree):.2f}  "
              f"|gap| median {np.median(gaps):6.1f}  "
              f"clip returns {min(rets):7.1f}..{max(rets):7.1f}")


if __name__ == "__main__":
    main(sys.argv[1])
