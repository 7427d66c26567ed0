"""Offline: a run's own first labels, trained on by each trainer setting, 10 inits each.

Usage: ``python first_labels_of_run.py RUN_DIR RUNNER_REPLAY [N ...]`` (default N: 25 35).
RUN_DIR's ``labels.sqlite`` is opened read-only; its first N labels (in the order asked) train
a fresh 3-member ensemble of the preset's net for 100 epochs with each setting of
``first_labels.SETTINGS`` named in :data:`COMPARED`; printed is the Spearman of learned
against true clip return on 600 clips of RUNNER_REPLAY (steps 20k-300k, as in
``first_labels.py``): mean, minimum and maximum over ensemble seeds 0-9.
"""

import sys

import numpy as np
import torch
from first_labels import SETTINGS, learned_returns, runner_clips
from scipy.stats import spearmanr

from prefrl.envs import load_preset
from prefrl.reward.ensemble import RewardEnsemble
from prefrl.reward.offline import open_labels, spaces_of
from prefrl.reward.trainer import RewardTrainer

COMPARED = ("fast (a run's default: early stopping, val 1/e, adaptive L2)",
            "full (no early stopping, val 1/e, adaptive L2)",
            "full, L2 off, no held-out labels")


class FirstLabels:
    """The first ``n`` labels of a store's :class:`LabelledPairs` (the trainer's protocol)."""

    def __init__(self, data, n: int) -> None:
        self.data, self.idx = data, np.arange(n)

    @property
    def mu(self) -> np.ndarray:
        """P(right is better) per pair."""
        return self.data.mu[self.idx]

    @property
    def pair_keys(self) -> list[str]:
        """The pairs' keys (the trainer's hash split reads them)."""
        return [self.data.pair_keys[i] for i in self.idx]

    def __len__(self) -> int:
        return len(self.idx)

    def pairs(self, idx: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """Left obs, left actions, right obs, right actions of pairs ``idx``."""
        return self.data.pairs(self.idx if idx is None else self.idx[np.asarray(idx)])

    def dense_nbytes(self) -> int:
        """Bytes of all pairs as dense arrays (an upper bound: the whole store's)."""
        return self.data.dense_nbytes()


def main(run: str, runner: str, budgets: list[int]) -> None:
    """Print one row per budget and trainer setting."""
    torch.set_num_threads(1)
    r_obs, r_acts, r_ret = runner_clips(runner)
    preset = load_preset("HalfCheetah")
    obs_space, act_space, _ = spaces_of(preset)
    with open_labels(run) as src:
        for n in budgets:
            for name in COMPARED:
                rho = []
                for seed in range(10):
                    ens = RewardEnsemble.from_spaces(obs_space, act_space, 3, seed=seed,
                                                     **dict(preset.reward_model))
                    RewardTrainer(ens, SETTINGS[name], rng=np.random.default_rng(seed)).train(
                        FirstLabels(src.data, n), 100)
                    rho.append(spearmanr(learned_returns(ens, r_obs, r_acts), r_ret)[0])
                r = np.array(rho)
                print(f"labels 0-{n - 1} | {name} | runner clips: Spearman {r.mean():+.2f} "
                      f"(min {r.min():+.2f}, max {r.max():+.2f})", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [int(a) for a in sys.argv[3:]] or [25, 35])
