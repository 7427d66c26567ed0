"""Offline: how well do the first N teacher labels teach HalfCheetah's reward to an ensemble.

Usage::

    python first_labels.py EXPLORE_REPLAY RUNNER_REPLAY [N ...] [--reps R]

EXPLORE_REPLAY is a SAC run's ``checkpoint/replay.npz`` whose first 10k steps are PEBBLE's
state-entropy exploration (the pool a run's first labels come from); RUNNER_REPLAY is the
replay buffer of a SAC run on the true reward, whose steps 20k-300k show an agent learning to
run. Clips are 30-step windows (the preset's clip length) inside 1000-step episodes.

For each N (default 10 25 50 100) and trainer setting, R repetitions (default 10): N random
pairs from 250 of the exploration clips, answered as the ``paper`` teacher does (the higher
true return, 10% random answers), and a fresh 3-member ensemble of the preset's net trained on
them for 100 epochs (a run's first session).
Printed: Spearman of learned against true clip return on the other exploration clips and on
600 of the runner's clips (mean, minimum, and how many of the R are below 0.3).
"""

import sys
from dataclasses import replace

import numpy as np
import torch
from scipy.stats import spearmanr

from prefrl.envs import load_preset
from prefrl.reward.ensemble import RewardEnsemble, as_tensor
from prefrl.reward.offline import spaces_of
from prefrl.reward.trainer import RewardTrainer, TrainerConfig

CLIP_LEN, EPISODE = 30, 1000
SETTINGS = {
    "fast (a run's default: early stopping, val 1/e, adaptive L2)": TrainerConfig.for_run(),
    "fast without early stopping": replace(TrainerConfig.for_run(), patience=0),
    "full (no early stopping, val 1/e, adaptive L2)": TrainerConfig.for_run("full"),
    "full, L2 off (val 1/e)": TrainerConfig.for_run("full", "off"),
    "full, L2 off, no held-out labels": replace(TrainerConfig.for_run("full", "off"),
                                                val_frac=0.0),
}


def clip_windows(path: str, lo: int, hi: int) -> tuple[np.ndarray, ...]:
    """Observations, actions and true returns of the 30-step windows of steps [lo, hi)."""
    z = np.load(path)
    obs, acts = z["observations"][lo:hi, 0], z["actions"][lo:hi, 0]
    rews = z["true_rewards"][lo:hi, 0]
    starts = np.array([s for s in range(0, hi - lo - CLIP_LEN + 1, CLIP_LEN)
                       if (lo + s) // EPISODE == (lo + s + CLIP_LEN - 1) // EPISODE])
    window = starts[:, None] + np.arange(CLIP_LEN)
    return (obs[window].astype(np.float32), acts[window].astype(np.float32),
            rews[window].sum(1))


def runner_clips(path: str, n: int = 600) -> tuple[np.ndarray, ...]:
    """``n`` fixed random windows of steps 20k-300k of a true-reward run's replay buffer."""
    obs, acts, ret = clip_windows(path, 20_000, 300_000)
    keep = np.random.default_rng(0).choice(len(ret), n, replace=False)
    return obs[keep], acts[keep], ret[keep]


class Pairs:
    """Labelled pairs over a clip array (the trainer's ``PreferenceData`` protocol)."""

    def __init__(self, obs: np.ndarray, acts: np.ndarray, left: np.ndarray, right: np.ndarray,
                 mu: np.ndarray) -> None:
        self.obs, self.acts, self.left, self.right = obs, acts, left, right
        self._mu = mu.astype(np.float32)

    @property
    def mu(self) -> np.ndarray:
        """P(right is better) per pair."""
        return self._mu

    @property
    def pair_keys(self) -> list[str]:
        """One key per pair (the trainer's hash split reads it)."""
        return [f"{k}:{i}|{j}" for k, (i, j) in enumerate(zip(self.left, self.right, strict=True))]

    def __len__(self) -> int:
        return len(self.left)

    def pairs(self, idx: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """Left obs, left actions, right obs, right actions of pairs ``idx``."""
        idx = np.arange(len(self.left)) if idx is None else np.asarray(idx)
        lo, ro = self.left[idx], self.right[idx]
        return self.obs[lo], self.acts[lo], self.obs[ro], self.acts[ro]

    def dense_nbytes(self) -> int:
        """Bytes of all pairs as dense arrays."""
        return 2 * len(self.left) * (self.obs[0].nbytes + self.acts[0].nbytes)


def learned_returns(ens: RewardEnsemble, obs: np.ndarray, acts: np.ndarray) -> np.ndarray:
    """The ensemble's mean clip returns."""
    ens.eval()
    with torch.no_grad():
        out = ens.member_clip_returns(as_tensor(obs, ens.device), as_tensor(acts, ens.device))
    return out.mean(0).cpu().numpy()


def main(explore: str, runner: str, budgets: list[int], reps: int = 10) -> None:
    """Print the table for label budgets ``budgets``, ``reps`` repetitions each."""
    torch.set_num_threads(1)
    e_obs, e_acts, e_ret = clip_windows(explore, 0, 10_000)
    r_obs, r_acts, r_ret = runner_clips(runner)
    preset = load_preset("HalfCheetah")
    obs_space, act_space, _ = spaces_of(preset)
    print(f"exploration clips {len(e_ret)} (true return {e_ret.min():.1f} to {e_ret.max():.1f}, "
          f"sd {e_ret.std():.1f}); runner clips {len(r_ret)} ({r_ret.min():.1f} to "
          f"{r_ret.max():.1f})")
    print("N | trainer | Spearman, held-out exploration clips: mean (min) | runner clips: "
          "mean (min), below 0.3")
    for n in budgets:
        for name, config in SETTINGS.items():
            held_rho, run_rho = [], []
            for rep in range(reps):
                rng = np.random.default_rng(100 + rep)
                perm = rng.permutation(len(e_ret))
                pool, held = perm[:250], perm[250:]
                left, right = rng.choice(pool, n), rng.choice(pool, n)
                left, right = left[left != right], right[left != right]
                truth = (e_ret[right] > e_ret[left]).astype(float)
                coin = rng.random(len(left)) < 0.1
                mu = np.where(coin, (rng.random(len(left)) < 0.5).astype(float), truth)
                ens = RewardEnsemble.from_spaces(obs_space, act_space, 3, seed=rep,
                                                 **dict(preset.reward_model))
                RewardTrainer(ens, config, rng=np.random.default_rng(rep)).train(
                    Pairs(e_obs, e_acts, left, right, mu), 100)
                held_rho.append(spearmanr(learned_returns(ens, e_obs[held], e_acts[held]),
                                          e_ret[held])[0])
                run_rho.append(spearmanr(learned_returns(ens, r_obs, r_acts), r_ret)[0])
            h, r = np.array(held_rho), np.array(run_rho)
            print(f"{n} | {name} | {h.mean():+.2f} ({h.min():+.2f}) | {r.mean():+.2f} "
                  f"({r.min():+.2f}), {int(np.sum(r < 0.3))}/{reps}", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    n_reps = 10
    if "--reps" in args:
        at = args.index("--reps")
        n_reps = int(args[at + 1])
        del args[at:at + 2]
    main(args[0], args[1], [int(a) for a in args[2:]] or [10, 25, 50, 100], n_reps)
