"""Atari presets, preprocessing, in-place resets, score masking and the clip pool's memory cap."""

from __future__ import annotations

import dataclasses
import doctest
import logging
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest

import prefrl.atari as atari_mod
from prefrl.atari import (
    GAMES,
    SCORE_RAM,
    SCORE_REGIONS,
    game_name,
    mask_score,
    reward_observation_fn,
    score_mask,
    write_score_ram,
)
from prefrl.envs import FixedHorizon, env_dt, load_preset, make_env
from prefrl.segments import SegmentBuffer

MASK_DIR = Path("/tmp/atari_masks")

# per game: score byte values (see SCORE_RAM) drawn by the masking test; the first is the baseline
SCORES: dict[str, list[tuple[int, ...]]] = {
    "Pong": [(0, 0), (1, 0), (0, 1), (7, 3), (12, 0), (0, 15), (20, 19)],
    "Breakout": [(0, 0), (0, 1), (0, 42), (3, 5), (8, 64)],
    "BeamRider": [(0, 0, 0), (0, 0, 44), (0, 12, 34), (1, 23, 45), (99, 99, 99)],
    "Enduro": [(2, 0), (1, 99), (1, 23), (0, 45), (0, 7)],
    "Qbert": [(0, 0, 0), (0, 0, 25), (0, 12, 50), (1, 23, 45), (9, 99, 99)],
    "Seaquest": [(0, 0, 0), (0, 0, 20), (0, 12, 40), (1, 23, 45), (99, 99, 99)],
    "SpaceInvaders": [(0, 0), (0, 5), (12, 35), (99, 99)],
}


def _save_png(path: Path, frame: np.ndarray, scale: int = 4) -> None:
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.ascontiguousarray(frame.repeat(scale, 0).repeat(scale, 1)))


@pytest.mark.parametrize("game", GAMES)
def test_preset_makes_preprocessed_env(game: str) -> None:
    p = load_preset(game)
    assert p.env_id == f"ALE/{game}-v5" and p.clip_len == 25 and p.labels == 5500
    assert p.algo == "a2c" and p.sticky_actions == 0.0 and p.score_mask
    assert p.termination_penalty == 0.0 and p.horizon >= 1000
    assert p.preference == {"pretrain_frac": 0.0909, "pretrain_clips": 1000,
                            "pretrain_epochs": 20, "update_epochs": 3, "ensemble_size": 3,
                            "background_reward": True}
    assert p.dt == pytest.approx(env_dt(p.env_id)) == pytest.approx(4 / 60)
    env = make_env(p, seed=0)
    assert isinstance(env, FixedHorizon) and env.horizon == p.horizon
    u: Any = env.unwrapped
    assert u.ale.getFloat("repeat_action_probability") == 0.0 and u._frameskip == 1
    assert env.action_space.n == len(u.ale.getMinimalActionSet())  # minimal action set
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    obs, _ = env.reset()
    for _ in range(8):
        assert type(obs) is np.ndarray and obs.dtype == np.uint8 and obs.shape == (4, 84, 84)
        assert obs.flags.c_contiguous and obs.flags.owndata
        obs, rew, term, trunc, info = env.step(env.action_space.sample())
        assert not term and not trunc and info["true_reward"] == rew
    env.close()


def test_a2c_recipe_resolves_and_trains_with_cnn_policy() -> None:
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike

    p = load_preset("Pong")
    kwargs = p.algo_kwargs_for("a2c")
    assert kwargs["policy_kwargs"]["optimizer_class"] is RMSpropTFLike
    assert p.algo_kwargs_for("a2c", resolve=False)["policy_kwargs"]["optimizer_class"] == (
        "RMSpropTFLike")
    assert p.n_envs_for("a2c") == 16 and p.n_envs_for("ppo") == 8
    ppo = p.algo_kwargs_for("ppo")
    assert (ppo["n_steps"], ppo["n_epochs"], ppo["batch_size"], ppo["clip_range"]) == (
        128, 4, 256, 0.1)
    venv = make_vec_env(lambda: make_env(p), n_envs=2, seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared CPU runs one thread several times faster than two
    try:
        model = A2C("CnnPolicy", venv, seed=0, device="cpu", **kwargs)
        assert isinstance(model.policy.optimizer, RMSpropTFLike)
        model.learn(20)  # channel-first uint8 frames go straight into SB3's CnnPolicy
        assert model.num_timesteps >= 20
    finally:
        torch.set_num_threads(threads)
        venv.close()


def test_bad_optimizer_name_is_rejected(tmp_path: Path) -> None:
    text = load_preset("Pong").path.read_text()  # type: ignore[union-attr]
    bad = tmp_path / "Bad.toml"
    bad.write_text(text.replace('"RMSpropTFLike"', '"NoSuchOpt"'))
    with pytest.raises(ValueError, match="optimizer_class"):
        load_preset(bad)
    bad.write_text(text.replace("sticky_actions = 0.0", "sticky_actions = 1.5"))
    with pytest.raises(ValueError, match="sticky_actions"):
        load_preset(bad)
    bad.write_text(text.replace("score_mask = true", 'score_mask = "yes"'))
    with pytest.raises(ValueError, match="score_mask"):
        load_preset(bad)


def test_no_episode_end_on_life_loss_or_game_over() -> None:
    p = dataclasses.replace(load_preset("Breakout"), horizon=600)
    env = make_env(p, seed=1)
    env.reset()
    lives, lost, games, ret = 5, 0, [], 0.0
    for t in range(1, p.horizon + 1):
        obs, rew, term, trunc, info = env.step(env.action_space.sample())
        assert term is False and trunc == (t == p.horizon)
        assert obs.shape == (4, 84, 84)
        ret += info["raw_reward"]
        lost += info["lives"] < lives
        lives = info["lives"]
        if "inner_episode" in info:
            ep = info["inner_episode"]
            assert ep["r"] == pytest.approx(ret)
            games.append(ep)
            ret = 0.0
            if ep["ended"]:  # game over: the game restarts in place with all lives
                assert info["lives"] == 0 and "reset_info" in info
                assert info["reset_info"]["lives"] == 5
                lives = 5
    assert lost >= 5  # lives were lost (a random Breakout game lasts ~200 steps)
    ended = [g for g in games if g["ended"]]
    assert len(ended) >= 2 and all(g["l"] > 0 for g in games)
    assert sum(g["l"] for g in games) == p.horizon  # the last one was cut by the horizon
    with pytest.raises(RuntimeError):
        env.step(0)


class _Toy(gymnasium.Env):
    """Reward 1 per step, terminates every 7 steps."""

    observation_space = gymnasium.spaces.Box(0, 1, (1,))
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action: int) -> tuple:
        self.t += 1
        return np.zeros(1, np.float32), 1.0, self.t == 7, False, {}


def test_fixed_horizon_reports_inner_episodes() -> None:
    env = FixedHorizon(_Toy(), horizon=20, termination_penalty=-5.0)
    env.reset()
    eps = {}
    for t in range(1, 21):
        _, rew, _, _, info = env.step(0)
        if "inner_episode" in info:
            eps[t] = info["inner_episode"]
        assert rew == (-4.0 if t in (7, 14) else 1.0)
    assert eps == {7: {"r": 7.0, "l": 7, "ended": True}, 14: {"r": 7.0, "l": 7, "ended": True},
                   20: {"r": 6.0, "l": 6, "ended": False}}
    env.reset()
    _, _, _, _, info = env.step(0)
    assert "inner_episode" not in info


def _score_frames(game: str) -> tuple[list[np.ndarray], list[float]]:
    """Stacked observations after one NOOP step from one state, at each of ``SCORES[game]``."""
    p = dataclasses.replace(load_preset(game), horizon=10_000)
    env = make_env(p, seed=0)
    env.reset()
    for _ in range(100):  # past the intro (Qbert draws no score before its game starts)
        env.step(env.action_space.sample())
    ale = env.unwrapped.ale  # type: ignore[attr-defined]
    state = ale.cloneState()
    frames, rews = [], []
    for values in SCORES[game]:
        ale.restoreState(state)
        write_score_ram(env, values)
        obs, rew, term, _, info = env.step(0)
        assert not info["early_termination"]
        frames.append(obs)
        rews.append(rew)
    env.close()
    return frames, rews


@pytest.mark.parametrize("game", GAMES)
def test_masking_hides_the_score(game: str) -> None:
    frames, rews = _score_frames(game)
    mask = score_mask(f"ALE/{game}-v5")
    assert 0 < mask.mean() < 0.12  # the mask hides the score, not the game
    hide = reward_observation_fn(f"ALE/{game}-v5")
    assert hide is not None
    base = frames[0][-1]
    assert len(set(rews)) > 1  # the bytes written are the score: ALE saw it change
    changed = np.zeros((84, 84), bool)
    for obs in frames[1:]:
        changed |= obs[-1] != base
        masked, masked_base = hide(obs), hide(frames[0])
        np.testing.assert_array_equal(masked[-1], masked_base[-1])  # scores look the same
        assert masked.dtype == np.uint8 and masked.shape == obs.shape
        assert (masked[..., mask] == 0).all()
        np.testing.assert_array_equal(masked[..., ~mask], obs[..., ~mask])
    assert changed.sum() >= 10, "the score should be drawn"
    outside = np.argwhere(changed & ~mask)
    assert len(outside) == 0, f"score pixels outside the mask at (row, col) {outside[:5].tolist()}"
    for r0, r1, c0, c1 in SCORE_REGIONS[game]:  # every box hides something that is drawn...
        assert (np.stack(frames)[:, -1, r0:r1, c0:c1] > 0).any()
    _save_png(MASK_DIR / f"{game}_unmasked.png", frames[-1][-1])
    _save_png(MASK_DIR / f"{game}_masked.png", hide(frames[-1])[-1])


def test_beamrider_enemy_counter_is_masked() -> None:
    """BeamRider's count of enemies left in the sector (RAM byte 84) drops with every reward."""
    env = make_env(load_preset("BeamRider"), seed=0)
    env.reset()
    for _ in range(100):
        env.step(env.action_space.sample())
    ale = env.unwrapped.ale  # type: ignore[attr-defined]
    state = ale.cloneState()
    frames = []
    for left in (15, 14, 9, 1):
        ale.restoreState(state)
        ale.setRAM(84, left)
        frames.append(env.step(0)[0][-1])
    env.close()
    changed = np.any([f != frames[0] for f in frames[1:]], axis=0)
    assert changed.sum() >= 5 and not (changed & ~score_mask("ALE/BeamRider-v5")).any()


@pytest.mark.parametrize("game", ["Pong", "Breakout", "SpaceInvaders"])
def test_score_changes_inside_the_mask_in_real_play(game: str) -> None:
    env = make_env(load_preset(game), seed=0)
    obs, _ = env.reset()
    mask = score_mask(env.spec.id)  # type: ignore[union-attr]
    prev = [obs[-1]]
    for _ in range(2000):
        obs, rew, *_ = env.step(env.action_space.sample())
        prev.append(obs[-1])
        if rew != 0:
            break
    assert rew != 0, "random play should score within 2000 steps"
    before = prev[-2]
    after = [env.step(0)[0][-1] for _ in range(3)]  # the display may lag a step
    assert any((a[mask] != before[mask]).any() for a in after)
    env.close()


def test_reward_observation_fn_shapes_and_copies(caplog: pytest.LogCaptureFixture) -> None:
    hide = reward_observation_fn("ALE/Breakout-v5")
    assert hide is not None
    rng = np.random.default_rng(0)
    single = rng.integers(1, 256, (4, 84, 84), dtype=np.uint8)
    batch = rng.integers(1, 256, (5, 4, 84, 84), dtype=np.uint8)
    for x in (single, batch, single[0]):
        y = hide(x)
        assert y.shape == x.shape and y.dtype == np.uint8 and y is not x
        assert (x > 0).all()  # input untouched
        np.testing.assert_array_equal(y, mask_score(x, "ALE/Breakout-v5"))
        np.testing.assert_array_equal(y[..., 2:6, 18:42], 0)
    np.testing.assert_array_equal(hide(batch)[3], hide(batch[3]))
    with pytest.raises(ValueError, match="84, 84"):
        hide(np.zeros((4, 64, 64), np.uint8))
    assert reward_observation_fn("Pendulum-v1") is None
    assert reward_observation_fn("HalfCheetah-v5") is None
    with caplog.at_level(logging.WARNING):
        assert reward_observation_fn("ALE/Asterix-v5") is None
    assert "Asterix" in caplog.text
    with pytest.raises(ValueError, match="Asterix"):
        score_mask("ALE/Asterix-v5")
    assert game_name("ALE/Pong-v5") == "Pong" and set(SCORE_RAM) == set(GAMES)


def test_candidate_pool_respects_memory_cap() -> None:
    p = load_preset("Pong")
    env = make_env(p, seed=0)
    obs, _ = env.reset()
    traj_obs, acts, rews = [], [], []
    for _ in range(120):
        a = env.action_space.sample()
        traj_obs.append(obs)
        acts.append(a)
        obs, r, *_ = env.step(a)
        rews.append(r)
    env.close()
    o = np.stack(traj_obs)
    assert o.dtype == np.uint8 and o.nbytes == 120 * 4 * 84 * 84
    clip_bytes = 25 * 4 * 84 * 84 + 25 * 8 + 25 * 4  # uint8 frames, int64 actions, f32 rewards
    cap = 6 * clip_bytes + clip_bytes // 2
    buf = SegmentBuffer(clip_len=25, capacity=1000, max_bytes=cap, clips_per_trajectory=3,
                        rng=np.random.default_rng(0))
    for i in range(8):
        lo = 10 * i
        clips = buf.add_trajectory(o[lo:lo + 40], np.asarray(acts[lo:lo + 40], np.int64),
                                   np.asarray(rews[lo:lo + 40], np.float32), env_id=p.env_id)
        assert all(c.obs.dtype == np.uint8 and c.nbytes == clip_bytes for c in clips)
        assert buf.nbytes <= cap
    assert len(buf) == 6 and buf.nbytes == 6 * clip_bytes
    assert clip_bytes == pytest.approx(706_000, rel=1e-3)


def test_module_docstring_examples() -> None:
    result = doctest.testmod(atari_mod)
    assert result.failed == 0 and result.attempted > 0


def test_tiny_end_to_end_pong_run_on_cpu(tmp_path):
    """The whole loop on pixels: CNN reward ensemble, masked score, A2C, a few labels."""
    import torch

    from prefrl.config import TrainConfig
    from prefrl.store import LabelStore
    from prefrl.training import train

    threads = torch.get_num_threads()
    try:
        res = train(TrainConfig(
            env="Pong", steps=1500, labels=8, n_envs=2, pretrain_clips=12, pretrain_epochs=1,
            update_epochs=1, update_every=500, progress=False, tensorboard=False,
            torch_threads=1, run_dir=tmp_path / "pong"))
    finally:
        torch.set_num_threads(threads)
    assert res.algo == "a2c" and res.labels == 8 and res.steps >= 1500
    with LabelStore(tmp_path / "pong" / "labels.sqlite") as store:
        clip = store.get_clip(store.clip_hashes()[0])
    assert clip.obs.dtype == np.uint8 and clip.obs.shape == (25, 4, 84, 84)
    mask = score_mask("ALE/Pong-v5")
    assert not clip.obs[:, :, mask].any()  # the reward model never sees the score
