"""Offline: do other trainers fit Hopper's trade pairs (one clip faster, the other healthier)?

Usage: python trade_offline.py RUN/labels.sqlite. Trains each TrainerConfig variant on the store's
labels (100 epochs at most) and prints its agreement with the true order on all labelled pairs
and on the trade pairs, and how often it picks the healthier clip of a trade pair.
"""

import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from linear_bt import clip_features

from prefrl.reward.offline import train_offline
from prefrl.reward.trainer import TrainerConfig
from prefrl.store import LabelStore

VARIANTS = {
    "fast (run default)": TrainerConfig.fast(),
    "full, adaptive L2": TrainerConfig(),
    "full, no L2": TrainerConfig(adapt_l2=False, l2_init=0.0),
}


def main(path):
    torch.set_num_threads(1)
    store = LabelStore(path, create=False)
    labels = list(store.labels(include_skips=False))
    hashes = sorted({h for lab in labels for h in (lab.left, lab.right)})
    clips = dict(zip(hashes, store.get_clips(hashes, render_state=False)))
    ret = {h: float(c.true_rews.sum()) for h, c in clips.items()}
    feats = {h: clip_features(c) for h, c in clips.items()}
    dx = np.array([feats[lab.right] - feats[lab.left] for lab in labels])
    truth = np.array([ret[lab.right] > ret[lab.left] for lab in labels])
    trade = np.sign(dx[:, 0]) * np.sign(dx[:, 1]) < 0
    late = np.array([i >= len(labels) // 2 for i in range(len(labels))])
    for name, cfg in VARIANTS.items():
        t0 = time.process_time()
        model, tr = train_offline(path, env="Hopper", epochs=100, trainer=cfg, device="cpu")
        r = {h: float(model.ensemble.predict(c.obs, c.acts)[0].sum()) for h, c in clips.items()}
        pred = np.array([r[lab.right] > r[lab.left] for lab in labels])
        ok = pred == truth
        print(
            f"  {name:20s}: val acc {tr.get('val_acc', float('nan')):.3f}; agrees with truth: all {ok.mean():.3f}, "
            f"trade {ok[trade].mean():.3f}, later half {ok[late].mean():.3f}, later-half trade "
            f"{ok[late & trade].mean():.3f}; picks healthier in trade {np.mean(pred[trade] == (dx[trade, 1] > 0)):.3f}"
            f" ({time.process_time() - t0:.0f} s CPU)",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1])
