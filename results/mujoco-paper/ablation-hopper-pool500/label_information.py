"""Is Hopper's missing cliff the net or the labels? Two offline checks on one run's clips.

Usage: ``python label_information.py RUN/labels.sqlite``.

1. Other pairs of the same clips, labelled by the ``paper`` teacher and trained with the run's
   fast schedule: random pairs, pairs of near neighbours (clips alike in their observations'
   mean and std), and half of each.
2. Random pairs with more information per label: the ``perfect`` teacher, the Boltzmann
   ``noisy`` teacher (whose answers carry the margin), 4x the labels, and 10- or 25-step pieces
   of the clips; last, the paper's full schedule without L2.
3. The reward net's shape (64x64, leaky ReLU) fitted to the true reward of every step by least
   squares, i.e. with per-step supervision instead of preferences over clips.

Each prints the drop of the reward where the torso angle passes 0.2 rad (healthy z only).
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from prefrl.oracles.synthetic import SyntheticOracle
from prefrl.reward.offline import train_offline
from prefrl.reward.trainer import TrainerConfig
from prefrl.store import LabelStore
from prefrl.types import Clip, ClipPair


def cliff(reward, obs):
    """Mean reward at |angle| 0.15-0.2 less that at 0.2-0.25, on steps with z > 0.7."""
    angle, upright = np.abs(obs[:, 1]), obs[:, 0] > 0.7
    below = upright & (angle >= 0.15) & (angle < 0.2)
    above = upright & (angle >= 0.2) & (angle < 0.25)
    return float(reward[below].mean() - reward[above].mean())


def health_worth(reward, obs):
    """Health worth ``b / a`` and ``a``, fitting reward = a * x-velocity + b * healthy + c."""
    healthy = ((obs[:, 0] > 0.7) & (np.abs(obs[:, 1]) < 0.2)).astype(float)
    design = np.stack([obs[:, 5], healthy, np.ones_like(healthy)], 1)
    (a, b, _), *_ = np.linalg.lstsq(design, reward, rcond=None)
    return float(b / a), float(a)


def draw_pairs(n, k, rng, neighbours=None):
    """``k`` distinct index pairs of ``n`` items: at random, or each with one of its neighbours."""
    out = set()
    while len(out) < k:
        i = int(rng.integers(n))
        j = int(rng.integers(n)) if neighbours is None else int(
            neighbours[i, rng.integers(neighbours.shape[1])])
        if i != j:
            out.add((min(i, j), max(i, j)))
    return list(out)


def pair_sets(clips, n_labels, rng):
    """Random pairs, near-neighbour pairs and half of each, as index pairs into ``clips``."""
    feat = np.stack([np.concatenate([c.obs.mean(0), c.obs.std(0)]) for c in clips])
    feat = (feat - feat.mean(0)) / (feat.std(0) + 1e-8)
    dist = ((feat[:, None] - feat[None]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    neighbours = np.argsort(dist, 1)[:, :5]
    n, half = len(clips), n_labels // 2
    return {"random pairs": draw_pairs(n, n_labels, rng),
            "near pairs (top-5 neighbours)": draw_pairs(n, n_labels, rng, neighbours),
            "half near, half random": (draw_pairs(n, half, rng, neighbours)
                                       + draw_pairs(n, n_labels - half, rng))}


def preference_fit(pool, pairs, teacher, trainer, obs, acts):
    """Label ``pairs`` of ``pool`` by ``teacher``, train on them; return the step rewards."""
    tmp = Path(tempfile.mkdtemp()) / "labels.sqlite"
    fresh = LabelStore(tmp)
    fresh.add_clips(pool)
    oracle = SyntheticOracle(teacher, rng=np.random.default_rng(1))
    fresh.add_labels([oracle.label(ClipPair(pool[i], pool[j])) for i, j in pairs])
    fresh.close()
    model, tr = train_offline(tmp, env="Hopper", epochs=100, trainer=trainer, device="cpu")
    learned, _ = model.ensemble.predict(obs, acts)
    return learned, tr["val_acc"]


def main(path, n_labels=1400):
    """Print the lines of ``label_information.txt``."""
    torch.set_num_threads(1)
    store = LabelStore(path, create=False)
    clips = store.get_clips(store.clip_hashes(), render_state=False)
    obs = np.concatenate([c.obs for c in clips])
    acts = np.concatenate([c.acts for c in clips])
    true = np.concatenate([c.true_rews for c in clips]).astype(np.float32)
    worth, _ = health_worth(true, obs)
    print(f"clips {len(clips)}, steps {len(true)}; true reward: health worth {worth:.2f} vx, "
          f"cliff {cliff(true, obs):.3f}")
    def report(name, pool, pairs, teacher="paper", trainer=None):
        learned, val_acc = preference_fit(pool, pairs, teacher, trainer or TrainerConfig.fast(),
                                          obs, acts)
        worth, a = health_worth(learned, obs)
        c = cliff(learned, obs)
        print(f"{name}: labels {len(pairs)}, val acc {val_acc:.3f}, health worth "
              f"{worth:.2f} vx, cliff {c:.3f} ({c / a:.2f} vx), "
              f"pearson {np.corrcoef(learned, true)[0, 1]:.3f}", flush=True)

    for name, pairs in pair_sets(clips, n_labels, np.random.default_rng(0)).items():
        report(name, clips, pairs)
    for teacher, n in (("perfect", n_labels), ("paper", 4 * n_labels), ("perfect", 4 * n_labels),
                       ("noisy", 4 * n_labels)):
        pairs = draw_pairs(len(clips), n, np.random.default_rng(0))
        report(f"random pairs, {teacher} teacher", clips, pairs, teacher)
    for length in (10, 25):
        pieces = [Clip(obs=c.obs[i:i + length], acts=c.acts[i:i + length],
                       true_rews=c.true_rews[i:i + length], env_id=c.env_id, step=c.step + i)
                  for c in clips for i in range(0, len(c.obs) - length + 1, length)]
        for n in (n_labels, 4 * n_labels):
            pairs = draw_pairs(len(pieces), n, np.random.default_rng(0))
            report(f"random pairs of {length}-step pieces, paper teacher", pieces, pairs)
        if length == 10:
            report("random pairs of 10-step pieces, perfect teacher, full schedule without L2",
                   pieces, pairs, "perfect", TrainerConfig(adapt_l2=False, l2_init=0.0))
    torch.manual_seed(0)
    x = np.concatenate([obs, acts], 1)
    x = ((x - x.mean(0)) / (x.std(0) + 1e-8)).astype(np.float32)
    inputs, target = torch.tensor(x), torch.tensor(true)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 64), torch.nn.LeakyReLU(0.01),
                              torch.nn.Linear(64, 64), torch.nn.LeakyReLU(0.01),
                              torch.nn.Linear(64, 1))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(30):
        for batch in torch.randperm(len(inputs)).split(256):
            loss = ((net(inputs[batch]).squeeze(1) - target[batch]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        fit = net(inputs).squeeze(1).numpy()
    print(f"64x64 net fitted per step to the true reward (30 epochs): mse "
          f"{float(((fit - true) ** 2).mean()):.3f}, cliff {cliff(fit, obs):.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
