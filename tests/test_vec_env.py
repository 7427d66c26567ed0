"""FreshInfoDummyVecEnv: SB3's DummyVecEnv, less the deep copy of fresh info dicts."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv

from prefrl.envs import load_preset, make_env
from prefrl.sb3.vec_env import FreshInfoDummyVecEnv


def _roll(venv: Any, actions: np.ndarray) -> list[tuple[Any, ...]]:
    venv.seed(3)
    out = [(venv.reset(), None, None, None)]
    for a in actions:
        obs, rew, done, infos = venv.step(a)
        out.append((obs, rew, done, infos))
    return out


def test_same_steps_as_sb3_dummy_vec_env_through_resets() -> None:
    """Observations, rewards, dones and every info value match SB3's, across auto-resets."""
    preset = load_preset("Pendulum")
    fns = [lambda i=i: make_env(preset, seed=i) for i in range(2)]
    actions = np.random.default_rng(0).uniform(-2, 2, size=(450, 2, 1)).astype(np.float32)
    ours, sb3 = _roll(FreshInfoDummyVecEnv(fns), actions), _roll(DummyVecEnv(fns), actions)
    n_done = 0
    for (o1, r1, d1, i1), (o2, r2, d2, i2) in zip(ours, sb3, strict=True):
        np.testing.assert_array_equal(o1, o2)
        if r1 is None:
            continue
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        n_done += int(d1.sum())
        for a, b in zip(i1, i2, strict=True):
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])
    assert n_done == 4  # Pendulum's 200-step horizon ended twice in each env


class _ReusedInfo(gym.Wrapper):
    """Returns one and the same info dict on every step, updated in place."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.info: dict[str, Any] = {}

    def step(self, action: Any) -> Any:
        obs, rew, term, trunc, _ = self.env.step(action)
        self.info["count"] = self.info.get("count", 0) + 1
        return obs, rew, term, trunc, self.info


def test_an_env_that_reuses_its_info_dict_gets_copies() -> None:
    """Infos handed out earlier keep their values when the env updates its dict in place."""
    venv = FreshInfoDummyVecEnv([lambda: _ReusedInfo(gym.make("Pendulum-v1"))])
    venv.reset()
    seen = [venv.step(np.zeros((1, 1), np.float32))[3][0] for _ in range(3)]
    assert [info["count"] for info in seen] == [1, 2, 3]
    assert seen[1] is not seen[2]
