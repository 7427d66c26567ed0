"""The CNN reward member: shapes, ensemble use on uint8 frames, learning, checkpoints."""

from __future__ import annotations

import doctest
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import prefrl.reward.cnn as cnn_mod
from prefrl.reward.cnn import CNNRewardNet
from prefrl.reward.ensemble import RewardEnsemble
from prefrl.reward.nets import make_reward_net, net_from_config
from prefrl.reward.trainer import RewardTrainer, TrainerConfig
from prefrl.store import PreferenceDataset

OBS = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
ACT = gym.spaces.Discrete(6)


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    """One torch thread: on a shared CPU, more threads spin and run several times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _frames(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 4, 84, 84), generator=g, dtype=torch.uint8)


def test_default_is_the_papers_shape() -> None:
    net = make_reward_net(OBS, ACT)
    assert isinstance(net, CNNRewardNet)
    convs = [m for m in net.conv if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (16, (7, 7), (3, 3)), (16, (5, 5), (2, 2)), (16, (3, 3), (1, 1)), (16, (3, 3), (1, 1))]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.conv) == 4
    assert [m.p for m in net.conv if isinstance(m, torch.nn.Dropout)] == [0.5] * 4
    assert all(m.negative_slope == 0.01 for m in net.modules()
               if isinstance(m, torch.nn.LeakyReLU))
    lin = [m for m in net.head if isinstance(m, torch.nn.Linear)]
    assert [(x.in_features, x.out_features) for x in lin] == [(16 * 7 * 7, 64), (64, 1)]
    assert not net.use_actions
    out = net.eval()(_frames(5), torch.zeros(5, dtype=torch.long))
    assert out.shape == (5,) and out.dtype == torch.float32


def test_actions_and_layouts() -> None:
    x = _frames(4)
    a = torch.tensor([0, 1, 2, 5])
    torch.manual_seed(0)
    net = CNNRewardNet((4, 84, 84), "discrete", 6, use_actions=True).eval()
    assert not torch.allclose(net(x, a), net(x, torch.zeros(4, dtype=torch.long)))
    no_act = CNNRewardNet((4, 84, 84), "discrete", 6).eval()
    torch.testing.assert_close(no_act(x, a), no_act(x, torch.zeros(4)))  # actions unused
    box = CNNRewardNet((4, 84, 84), "box", 3, use_actions=True).eval()
    assert box(x, torch.zeros(4, 3)).shape == (4,)
    with pytest.raises(ValueError, match="3 dims"):
        box(x, torch.zeros(4, 2))
    last = make_reward_net(gym.spaces.Box(0, 255, (84, 84, 4), np.uint8), ACT).eval()
    assert isinstance(last, CNNRewardNet) and last.channels_last
    assert last(x.permute(0, 2, 3, 1), a).shape == (4,)
    with pytest.raises(ValueError, match="expected obs"):
        net(_frames(2)[:, :3], a[:2])
    with pytest.raises(ValueError, match="too small"):
        CNNRewardNet((4, 20, 20), "discrete", 6)
    small = CNNRewardNet((1, 40, 40), "discrete", 2, channels=(8, 8), kernels=(4, 3),
                         strides=(2, 1), hidden=(32, 16), dropout=0.0, batch_norm=False)
    assert small(torch.zeros(3, 1, 40, 40), torch.zeros(3)).shape == (3,)


def test_eval_chunks_match_one_batch() -> None:
    torch.manual_seed(0)
    net = CNNRewardNet((4, 84, 84), "discrete", 6, eval_chunk=3).eval()
    x, a = _frames(10), torch.zeros(10)
    whole = net_from_config({**net.config(), "eval_chunk": 100}).eval()
    whole.load_state_dict(net.state_dict())
    torch.testing.assert_close(net(x, a), whole(x, a))


def test_config_round_trip() -> None:
    torch.manual_seed(1)
    net = CNNRewardNet((4, 84, 84), "discrete", 6, dropout=0.25, use_actions=True)
    cfg = net.config()
    assert cfg["kind"] == "cnn" and json.loads(json.dumps(cfg)) == cfg
    other = net_from_config(cfg)
    assert isinstance(other, CNNRewardNet) and other.config() == cfg
    other.load_state_dict(net.state_dict())
    x, a = _frames(3), torch.tensor([1, 2, 3])
    torch.testing.assert_close(net.eval()(x, a), other.eval()(x, a))


def test_ensemble_predicts_on_uint8_batches() -> None:
    ens = RewardEnsemble.from_spaces(OBS, ACT, n_members=3, seed=0, device="cpu")
    assert ens.input_stats_set() and ens._fused_path() is None
    obs = _frames(8).numpy()
    acts = np.arange(8) % 6
    ens.train()
    r, spread = ens.predict(obs, acts)
    assert r.shape == (8,) and spread.shape == (8,) and (spread > 0).all()
    assert ens.training  # predict restores the mode
    r2, _ = ens.predict(obs, acts)
    np.testing.assert_array_equal(r, r2)  # eval mode: no dropout, fixed batch-norm statistics
    r1, _ = ens.predict(obs[:1], acts[:1])
    np.testing.assert_allclose(r1, r[:1], rtol=1e-5, atol=1e-5)  # independent of the batch
    clips = obs.reshape(2, 4, 4, 84, 84)
    assert ens.clip_returns(clips, acts.reshape(2, 4)).shape == (3, 2)


def _clips(rng: np.random.Generator, n: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy frames; the reward of a step is the brightness of a 24x24 patch."""
    obs = rng.integers(0, 60, size=(n, t, 4, 84, 84), dtype=np.uint8)
    bright = rng.integers(0, 256, size=(n, t)).astype(np.uint8)
    obs[:, :, :, 24:48, 24:48] = bright[:, :, None, None, None]
    return obs, bright.astype(np.float64).sum(1)


def _pairs(rng: np.random.Generator, n: int,
           t: int) -> tuple[PreferenceDataset, np.ndarray, np.ndarray]:
    lo, lr = _clips(rng, n, t)
    ro, rr = _clips(rng, n, t)
    acts = np.zeros((n, t), np.int64)
    mu = (rr > lr).astype(np.float32)
    keys = [f"p{i}" for i in range(n)]
    return PreferenceDataset(lo, acts, ro, acts.copy(), mu, keys, keys, keys,
                             np.arange(n)), lr, rr


def test_learns_a_visible_reward_and_survives_a_checkpoint() -> None:
    rng = np.random.default_rng(0)
    data, _, _ = _pairs(rng, 240, 1)
    ens = RewardEnsemble.from_spaces(OBS, ACT, n_members=1, seed=0, device="cpu")
    # device_data_bytes=0: pairs are fetched batch by batch (the path big Atari datasets take)
    trainer = RewardTrainer(ens, TrainerConfig(epochs=3, batch_size=16, device_data_bytes=0),
                            rng=np.random.default_rng(0))
    stats = trainer.train(data)
    assert stats.n_val > 0 and np.isfinite(stats.val_loss)
    test, lr, rr = _pairs(rng, 300, 1)
    ret_l = ens.clip_returns(test.left_obs, test.left_acts)[0]
    ret_r = ens.clip_returns(test.right_obs, test.right_acts)[0]
    acc = float(((ret_r > ret_l) == (rr > lr)).mean())
    assert acc > 0.85, (acc, stats.summary())
    # checkpoint round trip: same predictions from the rebuilt ensemble
    configs = json.loads(json.dumps(ens.member_configs()))
    again = RewardEnsemble.from_checkpoint(configs, ens.state_dict(), device="cpu")
    obs = test.left_obs[:6].reshape(-1, 4, 84, 84)
    np.testing.assert_array_equal(again.predict(obs, np.zeros(len(obs)))[0],
                                  ens.predict(obs, np.zeros(len(obs)))[0])
    assert configs[0]["kind"] == "cnn"


def test_module_docstring_examples() -> None:
    result = doctest.testmod(cnn_mod)
    assert result.failed == 0 and result.attempted > 0
