"""The run's vectorised env: SB3's ``DummyVecEnv`` without a deep copy of every step's infos.

SB3's ``DummyVecEnv.step_wait`` returns ``deepcopy(self.buf_infos)``, so that a caller never
holds a dict the env could change later. Gymnasium envs and our wrappers build a fresh info
dict on every step, which makes that copy pure cost: 9-16 us per env step, 1-5% of a grid
cell (``results/overhead/vec-env-infos``). :class:`FreshInfoDummyVecEnv` hands the step's
dicts back in a new list instead. It deep-copies as SB3 does on the first step, where it cannot
tell yet, and on every step where an env returns the same dict object as on the step before.

>>> import gymnasium as gym
>>> venv = FreshInfoDummyVecEnv([lambda: gym.make("Pendulum-v1")])
>>> _ = venv.reset()
>>> _, _, _, infos = venv.step(venv.action_space.sample()[None])
>>> infos
[{'TimeLimit.truncated': False}]
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn


class FreshInfoDummyVecEnv(DummyVecEnv):
    """``DummyVecEnv`` whose ``step_wait`` copies the infos only when an env reuses its dict.

    Same observations, rewards, dones and info contents as ``DummyVecEnv`` (the loop below is
    SB3's: ``TimeLimit.truncated``, ``terminal_observation`` and the automatic reset).
    """

    def __init__(self, env_fns: Any) -> None:
        super().__init__(env_fns)
        self._returned: list[Any] = [None] * self.num_envs
        """The envs' info dicts of the last step (held, so ``is`` stays meaningful)."""

    def step_wait(self) -> VecEnvStepReturn:
        """Step every env; infos are the envs' own fresh dicts (deep copies if reused)."""
        for i in range(self.num_envs):
            obs, self.buf_rews[i], terminated, truncated, self.buf_infos[i] = (
                self.envs[i].step(self.actions[i]))
            self.buf_dones[i] = terminated or truncated
            self.buf_infos[i]["TimeLimit.truncated"] = truncated and not terminated
            if self.buf_dones[i]:
                self.buf_infos[i]["terminal_observation"] = obs
                obs, self.reset_infos[i] = self.envs[i].reset()
            self._save_obs(i, obs)
        reused = any(old is None or new is old
                     for new, old in zip(self.buf_infos, self._returned, strict=True))
        infos = deepcopy(self.buf_infos) if reused else list(self.buf_infos)
        self._returned = list(self.buf_infos)
        return self._obs_from_buf(), self.buf_rews.copy(), self.buf_dones.copy(), infos
