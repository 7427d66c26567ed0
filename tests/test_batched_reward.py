"""The stacked K-member model equals K separate members; early stopping and replay."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl.reward import RewardEnsemble, RewardTrainer, TrainerConfig
from prefrl.reward.batched import StackedMLP, can_stack
from prefrl.reward.engines import PairSource
from prefrl.reward.loss import misclick_bt_loss
from tests.test_ensemble import ACT, OBS, toy_dataset


def members(act=ACT, **kw):
    ens = RewardEnsemble.from_spaces(OBS, act, n_members=3, seed=1, device="cpu", **kw)
    rng = np.random.default_rng(0)
    o = rng.normal(size=(200, 5)).astype(np.float32)
    a = (rng.integers(0, act.n, 200) if isinstance(act, gym.spaces.Discrete)
         else rng.normal(size=(200, 2)).astype(np.float32))
    ens.set_input_stats(o * 3 + 1, a)
    return ens, torch.from_numpy(o), torch.from_numpy(np.asarray(a))


@pytest.mark.parametrize("act", [ACT, gym.spaces.Discrete(4)])
def test_stacked_forward_and_gradients_equal_separate_members(act):
    ens, o, a = members(act)
    stacked = StackedMLP(list(ens.members))
    ref = torch.stack([m(o, a) for m in ens.members])
    torch.testing.assert_close(stacked(o, a), ref, atol=1e-5, rtol=1e-5)
    # each member on its own inputs; summed loss gives each member its own gradient
    per_o, per_a = o[:180].reshape(3, 60, 5), a[:180].reshape(3, 60, *a.shape[1:])
    mu = torch.rand(3, 30)
    r = stacked.per_member(per_o, per_a).reshape(3, 2, 30)
    misclick_bt_loss(r[:, 0], r[:, 1], mu, reduction="none").mean(1).sum().backward()
    for k, m in enumerate(ens.members):
        rk = m(per_o[k], per_a[k]).reshape(2, 30)
        misclick_bt_loss(rk[0], rk[1], mu[k]).backward()
        lins = [layer for layer in m.body if isinstance(layer, torch.nn.Linear)]
        for i, layer in enumerate(lins):
            torch.testing.assert_close(stacked.weights[i].grad[k], layer.weight.grad.T,
                                       atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(stacked.biases[i].grad[k, 0], layer.bias.grad,
                                       atol=1e-5, rtol=1e-4)


def test_dropout_or_mixed_members_are_not_stacked():
    ens, _, _ = members(dropout=0.1)
    assert not can_stack(list(ens.members))
    assert can_stack(list(members()[0].members))


def trained(batched, epochs=3, data=None, **cfg):
    ens = RewardEnsemble.from_spaces(OBS, ACT, seed=0, device="cpu")
    tr = RewardTrainer(ens, TrainerConfig(epochs=epochs, batched=batched, **cfg),
                       rng=np.random.default_rng(0))
    stats = tr.train(data or toy_dataset(200))
    return ens, tr, stats


def test_batched_training_follows_the_per_member_path():
    """Same seed, same bootstrap batches: the same weights, L2 and Adam moments."""
    e1, t1, s1 = trained(True)
    e2, t2, s2 = trained(False)
    for p, q in zip(e1.parameters(), e2.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=2e-4, rtol=1e-3)
    assert t1.l2 == t2.l2 and abs(s1.val_acc - s2.val_acc) < 0.02
    st1, st2 = t1.optimizers[0].state_dict(), t2.optimizers[0].state_dict()
    for i in st2["state"]:
        torch.testing.assert_close(st1["state"][i]["exp_avg"], st2["state"][i]["exp_avg"],
                                   atol=1e-5, rtol=1e-3)
    # and a checkpointed batched trainer continues like one that never stopped
    state, ens_state = copy.deepcopy(t1.state_dict()), copy.deepcopy(e1.state_dict())
    e3, t3, _ = trained(True)
    e3.load_state_dict(ens_state)
    t3.load_state_dict(state)
    data = toy_dataset(200)
    t1.train(data)
    t3.train(data)
    for p, q in zip(e1.parameters(), e3.parameters(), strict=True):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize("batched", [True, False])
def test_early_stopping_stops_and_keeps_the_best_epoch(batched):
    # tiny noisy set, big net: validation loss soon rises
    data = toy_dataset(40, noise=0.3)
    ens = RewardEnsemble.from_spaces(OBS, ACT, seed=0, device="cpu", hidden=(256, 256))
    tr = RewardTrainer(ens, TrainerConfig(epochs=200, patience=3, adapt_l2=False,
                                          l2_init=0.0, lr=3e-3, batched=batched),
                       rng=np.random.default_rng(0))
    stats = tr.train(data)
    assert 3 < stats.epochs < 200
    # the reported validation loss is the best epoch's, and the weights are that epoch's
    src = PairSource(data, ens.device, 1 << 30)
    src_loss = tr._engine().evaluate(src, tr.split(data)[1])[0]
    assert abs(float(np.mean(src_loss)) - stats.val_loss) < 1e-4


@pytest.mark.parametrize("batched", [True, False])
def test_epoch_validation_subset_still_reports_the_whole_validation_set(batched):
    # early stopping watches 16 validation pairs; the stats still cover all of them
    data = toy_dataset(200, noise=0.2)
    ens = RewardEnsemble.from_spaces(OBS, ACT, seed=0, device="cpu", hidden=(64, 64))
    tr = RewardTrainer(ens, TrainerConfig(epochs=30, patience=2, epoch_val_pairs=16,
                                          batched=batched), rng=np.random.default_rng(0))
    seen = []
    engine = tr._engine
    def spy():
        e = engine()
        evaluate = e.evaluate
        e.evaluate = lambda src, idx: (seen.append(len(idx)), evaluate(src, idx))[1]
        return e
    tr._engine = spy
    stats = tr.train(data)
    val = tr.split(data)[1]
    assert stats.n_val == len(val) > 16
    assert seen.count(16) == stats.epochs  # each epoch: the 16-pair subset
    assert seen.count(len(val) - 16) == 1  # the rest, once, at the end
    src = PairSource(data, ens.device, 1 << 30)
    loss, p_right = tr._engine().evaluate(src, val)
    assert abs(float(np.mean(loss)) - stats.val_loss) < 1e-4
    mu = np.asarray(data.mu)[val]
    decided = np.abs(mu - 0.5) > 1e-6
    acc = float(np.mean((p_right.mean(0)[decided] > 0.5) == (mu[decided] > 0.5)))
    assert abs(acc - stats.val_acc) < 1e-9


def test_replay_trains_new_labels_plus_a_share_of_old():
    data = toy_dataset(300)
    ens = RewardEnsemble.from_spaces(OBS, ACT, seed=0, device="cpu")
    tr = RewardTrainer(ens, TrainerConfig(epochs=2, replay=1.0, replay_min=10),
                       rng=np.random.default_rng(0))
    s1 = tr.train(data)  # first call: every training label is new
    assert len(tr.trained_keys) == s1.n_train
    s2 = tr.train(data)  # nothing new: only the replayed minimum per epoch
    assert s2.pairs_per_s > 0
    new, old = tr._new_and_old(data, tr.split(data)[0])
    assert len(new) == 0 and len(old) == s1.n_train
    assert len(tr._epoch_set(new, old)) == 10
    assert len(tr._epoch_set(old[:20], old[20:])) == 20 + 20
