"""``action_squares``: squared actions as extra reward-net inputs, on every inference path."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from reward_fit import fit_and_score

from prefrl.reward import RewardEnsemble
from prefrl.reward.batched import StackedMLP
from prefrl.reward.model import RewardModel, load_reward
from prefrl.reward.nets import MLPRewardNet
from prefrl.store import PreferenceDataset

OBS = gym.spaces.Box(-1, 1, (30,))
ACT = gym.spaces.Box(-1, 1, (6,))


def quadratic_pairs(n, seed, t=10):
    """Pairs of clips whose true reward is the control cost -|a|^2; 30 distracting obs dims."""
    rng = np.random.default_rng(seed)
    lo, ro = (rng.normal(size=(n, t, 30)).astype(np.float32) for _ in range(2))
    la, ra = (rng.uniform(-1, 1, (n, t, 6)).astype(np.float32) for _ in range(2))
    mu = ((ra ** 2).sum((1, 2)) < (la ** 2).sum((1, 2))).astype(np.float32)
    keys = [f"q{seed}-{i}" for i in range(n)]
    return PreferenceDataset(lo, la, ro, ra, mu, keys, keys, keys, np.arange(n))


def held_out_accuracy(squares: bool) -> float:
    ens = RewardEnsemble.from_spaces(OBS, ACT, n_members=1, seed=0, device="cpu",
                                     action_squares=squares)
    return fit_and_score(ens, quadratic_pairs(300, 0), quadratic_pairs(500, 1))


def test_squares_let_a_small_net_learn_a_control_cost_from_few_labels():
    with_squares, without = held_out_accuracy(True), held_out_accuracy(False)
    assert with_squares > 0.8  # measured 0.85; without the squares 0.51, chance
    assert with_squares > without + 0.2


def ensemble_with_squares():
    ens = RewardEnsemble.from_spaces(OBS, ACT, n_members=3, seed=2, device="cpu",
                                     action_squares=True)
    rng = np.random.default_rng(0)
    o = rng.normal(size=(200, 30)).astype(np.float32)
    a = rng.uniform(-1, 1, (200, 6)).astype(np.float32)
    ens.set_input_stats(o, a)
    ens.fit_normalisation(o, a)
    return ens, o, a


def test_inputs_hold_the_squares_and_every_path_agrees(tmp_path):
    ens, o, a = ensemble_with_squares()
    net = ens.members[0]
    x = net._inputs(torch.from_numpy(o[:4]), torch.from_numpy(a[:4]))
    assert x.shape == (4, 30 + 12)
    torch.testing.assert_close(x[:, 36:], torch.from_numpy(a[:4] ** 2))
    fused = ens.predict(o[:7], a[:7])[0]  # the fused numpy path for small batches
    ens.fused_max_batch = 0
    np.testing.assert_allclose(fused, ens.predict(o[:7], a[:7])[0], atol=1e-4)
    stacked = StackedMLP(list(ens.members))
    ref = torch.stack([m(torch.from_numpy(o), torch.from_numpy(a)) for m in ens.members])
    torch.testing.assert_close(stacked(torch.from_numpy(o), torch.from_numpy(a)), ref,
                               atol=1e-5, rtol=1e-5)
    model = RewardModel(ens, OBS, ACT, "Ant-v5", 30)
    model.save(tmp_path / "m")
    back = load_reward(tmp_path / "m", device="cpu")
    assert back.ensemble.members[0].config()["action_squares"] is True
    np.testing.assert_array_equal(back(o[:64], a[:64]), model(o[:64], a[:64]))


@pytest.mark.parametrize("kw", [{"act_kind": "discrete"}, {"use_actions": False}])
def test_squares_need_box_actions_that_are_used(kw):
    args = {"obs_dim": 3, "act_kind": "box", "act_dim": 2, "action_squares": True, **kw}
    with pytest.raises(ValueError, match="action_squares"):
        MLPRewardNet(**args)
