import copy
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl.reward import RewardEnsemble, RewardTrainer, TrainerConfig
from prefrl.reward.trainer import is_validation
from prefrl.store import PreferenceDataset

OBS = gym.spaces.Box(-1, 1, (5,))
ACT = gym.spaces.Box(-1, 1, (2,))


def ensemble(seed=0, act=ACT, device="cpu"):
    ens = RewardEnsemble.from_spaces(OBS, act, n_members=3, seed=seed, device=device)
    rng = np.random.default_rng(seed)
    o = rng.normal(size=(300, 5)).astype(np.float32)
    a = (rng.integers(0, act.n, 300) if isinstance(act, gym.spaces.Discrete)
         else rng.normal(size=(300, 2)).astype(np.float32))
    ens.set_input_stats(o, a)
    ens.fit_normalisation(o, a)
    return ens, o, a


@pytest.mark.parametrize("act", [ACT, gym.spaces.Discrete(4)])
@pytest.mark.parametrize("n", [1, 7, 16, 100])
def test_fused_cpu_path_matches_torch(act, n):
    ens, o, a = ensemble(act=act)
    fast_mean, fast_std = ens.predict(o[:n], a[:n])
    ens.fused_max_batch = 0
    ref_mean, ref_std = ens.predict(o[:n], a[:n])
    assert fast_mean.shape == (n,) and fast_std.shape == (n,)
    np.testing.assert_allclose(fast_mean, ref_mean, atol=1e-4)
    np.testing.assert_allclose(fast_std, ref_std, atol=1e-4)


def test_normalised_members_have_zero_mean_unit_std():
    ens, o, a = ensemble()
    with torch.no_grad():
        r = ens.normalised_rewards(torch.from_numpy(o), torch.from_numpy(a)).numpy()
    np.testing.assert_allclose(r.mean(1), 0, atol=1e-4)
    np.testing.assert_allclose(r.std(1, ddof=1), 1, atol=1e-3)
    mean, spread = ens.predict(o, a)
    np.testing.assert_allclose(mean, r.mean(0), atol=1e-4)
    assert (spread > 0).all()  # independently initialised members disagree


def test_cache_is_invalidated_by_training_and_loading():
    ens, o, a = ensemble()
    before = ens.predict(o[:3], a[:3])[0]
    other, _, _ = ensemble(seed=5)
    ens.load_state_dict(other.state_dict())
    np.testing.assert_allclose(ens.predict(o[:3], a[:3])[0], other.predict(o[:3], a[:3])[0],
                               atol=1e-5)
    assert not np.allclose(before, ens.predict(o[:3], a[:3])[0])


def test_checkpoint_round_trip():
    ens, o, a = ensemble()
    copy = RewardEnsemble.from_checkpoint(ens.member_configs(), ens.state_dict(), "cpu")
    np.testing.assert_allclose(copy.predict(o, a)[0], ens.predict(o, a)[0], atol=1e-6)


def toy_dataset(n, t=6, seed=0, noise=0.0):
    """Reward = first obs feature; labels from true returns."""
    rng = np.random.default_rng(seed)
    lo, ro = rng.normal(size=(n, t, 5)), rng.normal(size=(n, t, 5))
    la, ra = rng.normal(size=(n, t, 2)), rng.normal(size=(n, t, 2))
    mu = (ro[:, :, 0].sum(1) > lo[:, :, 0].sum(1)).astype(np.float32)
    flip = rng.random(n) < noise
    mu[flip] = 1 - mu[flip]
    keys = [f"k{seed}-{i}" for i in range(n)]
    return PreferenceDataset(lo.astype(np.float32), la.astype(np.float32), ro.astype(np.float32),
                             ra.astype(np.float32), mu, keys, keys, keys, np.arange(n))


def test_trainer_learns_toy_reward_and_reports_diagnostics():
    ens = RewardEnsemble.from_spaces(OBS, ACT, seed=0, device="cpu")
    tr = RewardTrainer(ens, TrainerConfig(epochs=30), rng=np.random.default_rng(0))
    stats = tr.train(toy_dataset(400))
    assert stats.val_acc > 0.9 and stats.train_acc > 0.9
    assert stats.n_train + stats.n_val == 400
    assert abs(stats.n_val / 400 - 1 / np.e) < 0.08  # the paper's 1/e validation share
    assert stats.pairs_per_s > 0 and stats.seconds > 0
    s = stats.summary()
    assert set(s) >= {"reward/val_acc", "reward/l2", "reward/val_loss", "reward/ece"}


def test_val_frac_zero_trains_on_every_label_and_reports_no_held_out_metrics():
    cfg = TrainerConfig(epochs=30, val_frac=0.0, adapt_l2=False, l2_init=0.0)
    ens = RewardEnsemble.from_spaces(OBS, ACT, seed=0, device="cpu")
    tr = RewardTrainer(ens, cfg, rng=np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" on the empty held-out set
        stats = tr.train(toy_dataset(60))
    assert (stats.n_train, stats.n_val) == (60, 0) and stats.train_acc > 0.9
    assert np.isnan(stats.val_acc) and np.isnan(stats.val_loss) and np.isnan(stats.ece)
    assert stats.member_val_acc == [] or all(np.isnan(stats.member_val_acc))
    # the split always holds out labels otherwise, even from a handful
    held = RewardTrainer(RewardEnsemble.from_spaces(OBS, ACT, seed=0, device="cpu"),
                         TrainerConfig(epochs=1), rng=np.random.default_rng(0))
    assert held.train(toy_dataset(60)).n_val > 0
    with pytest.raises(ValueError, match="val_frac 0 holds no labels out"):
        TrainerConfig(val_frac=0.0)  # adaptive L2 on
    with pytest.raises(ValueError, match="val_frac 0 holds no labels out"):
        TrainerConfig.for_run("fast", "off", 0.0)  # early stopping on


def test_validation_split_is_stable_as_labels_grow():
    keys = [f"pair-{i}" for i in range(1000)]
    first = [is_validation(k, 1 / np.e) for k in keys[:500]]
    again = [is_validation(k, 1 / np.e) for k in keys][:500]
    assert first == again
    assert abs(np.mean([is_validation(k, 1 / np.e) for k in keys]) - 1 / np.e) < 0.05


def test_adaptive_l2_grows_when_overfitting_and_shrinks_when_not():
    ens = RewardEnsemble.from_spaces(OBS, ACT, seed=0, device="cpu", hidden=(256, 256))
    tr = RewardTrainer(ens, TrainerConfig(epochs=60, l2_init=1e-6), rng=np.random.default_rng(0))
    tr.train(toy_dataset(40, noise=0.3))  # tiny, noisy: validation loss >> training loss
    assert tr.l2 > 1e-5
    ens2 = RewardEnsemble.from_spaces(OBS, ACT, seed=0, device="cpu", hidden=(8,))
    tr2 = RewardTrainer(ens2, TrainerConfig(epochs=20, l2_init=1.0), rng=np.random.default_rng(0))
    tr2.train(toy_dataset(600))  # heavily regularised small net: val ~ train
    assert tr2.l2 < 1.0


def test_trainer_state_round_trip_continues_identically():
    data = toy_dataset(100)
    runs = []
    for _ in range(2):
        ens = RewardEnsemble.from_spaces(OBS, ACT, seed=0, device="cpu")
        tr = RewardTrainer(ens, TrainerConfig(epochs=2), rng=np.random.default_rng(0))
        tr.train(data)
        runs.append((ens, tr))
    (e1, t1), (e2, t2) = runs
    state, ens_state = copy.deepcopy(t1.state_dict()), copy.deepcopy(e1.state_dict())
    t1.train(data)
    e2.load_state_dict(ens_state)
    t2.load_state_dict(state)
    t2.train(data)
    for p, q in zip(e1.parameters(), e2.parameters(), strict=True):
        torch.testing.assert_close(p, q)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_path_matches_cpu():
    ens, o, a = ensemble()
    gpu = RewardEnsemble.from_checkpoint(ens.member_configs(), ens.state_dict(), "cuda")
    np.testing.assert_allclose(gpu.predict(o, a)[0], ens.predict(o, a)[0], atol=1e-4)
