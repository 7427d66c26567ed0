"""Do Hopper's labels hold the health/speed exchange rate? A linear Bradley-Terry model on clip
features, fitted to the run's own labels (and to perfect labels of the same pairs).

Features per clip: sum of x velocity, of healthy steps, and of squared actions. If a linear BT
on these recovers the true reward's exchange rate (health worth about 3.5 units of speed), the
labels carry it and the reward net's training loses it; if not, the labels leave it loose.
Usage: ``python linear_bt.py RUN/labels.sqlite [...]`` prints the fits;
``compare_with_net(STORE, MODEL_DIR)`` (``prefrl reward export RUN --out MODEL_DIR``) prints how
the run's reward net and the linear fit order the labelled pairs (``linear_bt.txt`` has both).
"""

import sys

import numpy as np
import torch

from prefrl.store import LabelStore


def clip_features(c):
    obs, acts = c.obs, c.acts
    healthy = ((obs[:, 0] > 0.7) & (np.abs(obs[:, 1]) < 0.2)).astype(float)
    return np.array([obs[:, 5].sum(), healthy.sum(), (acts**2).sum()])


def fit_bt(dx, mu, eps=0.1, steps=3000):
    """Misclick-aware BT on feature differences (right - left); returns the weights."""
    x = torch.tensor(dx, dtype=torch.float64)
    y = torch.tensor(mu, dtype=torch.float64)
    scale = x.std(0) + 1e-9
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        p = (1 - eps) * torch.sigmoid((x / scale) @ w) + eps / 2
        loss = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
        loss.backward()
        return loss

    opt.step(closure)
    return (w / scale).detach().numpy()


def main(path):
    store = LabelStore(path, create=False)
    labels = list(store.labels(include_skips=False))
    hashes = sorted({h for lab in labels for h in (lab.left, lab.right)})
    clips = dict(zip(hashes, store.get_clips(hashes, render_state=False), strict=True))
    feats = {h: clip_features(c) for h, c in clips.items()}
    ret = {h: float(c.true_rews.sum()) for h, c in clips.items()}
    dx = np.array([feats[lab.right] - feats[lab.left] for lab in labels])
    mu = np.array([lab.mu for lab in labels])
    perfect = np.array(
        [
            1.0
            if ret[lab.right] > ret[lab.left]
            else 0.0
            if ret[lab.right] < ret[lab.left]
            else 0.5
            for lab in labels
        ]
    )
    # the true reward's own linear fit on the same clips (per step, via clip sums)
    F = np.array([feats[h] for h in hashes])
    R = np.array([ret[h] for h in hashes])
    coef, *_ = np.linalg.lstsq(np.c_[F, np.full(len(F), 50.0)], R, rcond=None)
    print(f"{path}: {len(labels)} labels, {len(hashes)} clips")
    print(
        f"  true return ~ {coef[0]:.3f} vx + {coef[1]:.3f} healthy + {coef[2]:.3f} a^2: "
        f"health worth {coef[1] / coef[0]:.2f} vx"
    )
    for name, target, eps in (
        ("run's labels (paper teacher)", mu, 0.1),
        ("perfect labels, same pairs", perfect, 0.0),
    ):
        w = fit_bt(dx, target, eps=eps)
        acc = np.mean((dx @ w > 0) == (perfect > 0.5))
        print(
            f"  linear BT on {name}: {w[0]:.3f} vx + {w[1]:.3f} healthy + {w[2]:.3f} a^2: "
            f"health worth {w[1] / w[0]:.2f} vx (agrees with the true order on {acc:.3f})"
        )
    # how many labelled pairs trade health against speed?
    trade = np.sign(dx[:, 0]) * np.sign(dx[:, 1]) < 0
    print(f"  pairs where one clip is faster and the other healthier: {trade.mean():.3f}")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        main(p)


def compare_with_net(path, model_dir):
    """Accuracy against the true order, on all labelled pairs and on the pairs that trade health
    against speed: the run's final reward net against the linear BT of the same labels.
    """
    from prefrl.reward.model import load_reward

    model = load_reward(model_dir, device="cpu")
    store = LabelStore(path, create=False)
    labels = list(store.labels(include_skips=False))
    hashes = sorted({h for lab in labels for h in (lab.left, lab.right)})
    clips = dict(zip(hashes, store.get_clips(hashes, render_state=False)))
    net_ret = {h: float(model.ensemble.predict(c.obs, c.acts)[0].sum()) for h, c in clips.items()}
    ret = {h: float(c.true_rews.sum()) for h, c in clips.items()}
    feats = {h: clip_features(c) for h, c in clips.items()}
    dx = np.array([feats[lab.right] - feats[lab.left] for lab in labels])
    mu = np.array([lab.mu for lab in labels])
    truth = np.array([ret[lab.right] > ret[lab.left] for lab in labels])
    net = np.array([net_ret[lab.right] > net_ret[lab.left] for lab in labels])
    lin = dx @ fit_bt(dx, mu) > 0
    trade = np.sign(dx[:, 0]) * np.sign(dx[:, 1]) < 0
    # in a trade pair, does the healthier clip win?
    healthier_right = dx[:, 1] > 0
    for name, pred in (("true order", truth), ("reward net", net), ("linear BT", lin)):
        print(
            f"  {name:10s}: agrees with truth on all {np.mean(pred == truth):.3f}, on trade pairs "
            f"{np.mean(pred[trade] == truth[trade]):.3f}; picks the healthier clip in "
            f"{np.mean(pred[trade] == healthier_right[trade]):.3f} of trade pairs"
        )
    print(f"  trade pairs {trade.sum()} of {len(labels)}")
