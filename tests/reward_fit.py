"""Shared by reward-net tests: fit a one-member ensemble on pairs, score held-out pairs."""

import numpy as np

from prefrl.reward import RewardEnsemble, RewardTrainer, TrainerConfig
from prefrl.store import PreferenceDataset


def fit_and_score(ens: RewardEnsemble, train: PreferenceDataset, test: PreferenceDataset,
                  epochs: int = 30) -> float:
    """Train ``ens`` on ``train`` (input stats from its left clips); accuracy on ``test``."""
    obs_dim, act_dim = train.left_obs.shape[-1], train.left_acts.shape[-1]
    ens.set_input_stats(train.left_obs.reshape(-1, obs_dim), train.left_acts.reshape(-1, act_dim))
    RewardTrainer(ens, TrainerConfig(epochs=epochs), rng=np.random.default_rng(0)).train(train)
    n = len(test.mu)
    flat = lambda x: x.reshape(-1, x.shape[-1])  # noqa: E731
    rl = ens.predict(flat(test.left_obs), flat(test.left_acts))[0].reshape(n, -1).sum(1)
    rr = ens.predict(flat(test.right_obs), flat(test.right_acts))[0].reshape(n, -1).sum(1)
    return float(((rr > rl) == (test.mu > 0.5)).mean())
