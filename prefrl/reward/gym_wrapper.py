"""A Gymnasium wrapper that replaces an env's reward by a trained reward model.

Works in any script that takes a Gymnasium env (SB3, CleanRL, ...): the agent sees the learned
reward of ``(obs_t, action_t)``; ``info["true_reward"]`` keeps the env's own reward and
``info["learned_reward"]`` the learned one. The model is checked against the env on
construction: a different env id or different spaces are refused with one line.

>>> import gymnasium as gym, tempfile
>>> from prefrl.reward.ensemble import RewardEnsemble
>>> from prefrl.reward.model import RewardModel
>>> env = gym.make("Pendulum-v1")
>>> ens = RewardEnsemble.from_spaces(env.observation_space, env.action_space, device="cpu")
>>> with tempfile.TemporaryDirectory() as d:
...     path = RewardModel(ens, env.observation_space, env.action_space, "Pendulum-v1", 25).save(
...         f"{d}/model")
...     wrapped = LearnedReward(env, path)
>>> _ = wrapped.reset(seed=0)
>>> _, r, _, _, info = wrapped.step(wrapped.action_space.sample())
>>> sorted(k for k in info if k.endswith("_reward")), r == info["learned_reward"]
(['learned_reward', 'true_reward'], True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from prefrl.reward.model import RewardModel, load_reward


class LearnedReward(gym.Wrapper):
    """Replace the reward by ``model``'s; keep the true one in ``info["true_reward"]``.

    Args:
        env: the Gymnasium env (its id, when it has a spec, and its spaces must be the model's).
        model: a :class:`~prefrl.reward.model.RewardModel` or the path of a model folder.
        check_id: refuse another env id; False accepts it when the spaces agree.
        device: where a model loaded from a path runs (default CPU: one step at a time is
            fastest there).
    """

    def __init__(self, env: gym.Env, model: RewardModel | str | Path, *,
                 check_id: bool = True, device: str = "cpu") -> None:
        super().__init__(env)
        self.model = model if isinstance(model, RewardModel) else load_reward(model, device)
        self.model.check_env(env, check_id=check_id)
        self._obs: np.ndarray | None = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset and remember the first observation."""
        obs, info = self.env.reset(**kwargs)
        self._obs = np.asarray(obs)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step; the reward is the model's reward of the observation acted on and the action."""
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        obs, true_r, term, trunc, info = self.env.step(action)
        learned = float(self.model(self._obs[None], np.asarray(action)[None])[0])
        self._obs = np.asarray(obs)
        info["true_reward"] = float(true_r)
        info["learned_reward"] = learned
        return obs, learned, term, trunc, info
