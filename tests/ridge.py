"""A tiny env built to be exploitable, for the reward-hacking guard's tests.

``Ridge``: a point on a line, pushed by the action. The true reward rises with x up to a ridge
at x = 1, then falls steeply. Random-policy clips (the pre-training labels) almost never pass
x = 1, so a reward model taught on them learns "more x is better" and extrapolates it: the agent
runs past the ridge, where the learned reward keeps rising and the true one collapses.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

ENV_ID = "prefrl-test/Ridge-v0"


class Ridge(gym.Env):
    """1-D walk; true reward ``x`` up to the ridge at 1, then ``1 - 4 (x - 1)``."""

    observation_space = gym.spaces.Box(-5.0, 5.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, render_mode=None) -> None:
        self.render_mode, self.x = render_mode, 0.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = 0.0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        a = float(np.clip(np.asarray(action).reshape(-1)[0], -1.0, 1.0))
        self.x = float(np.clip(self.x + 0.1 * a, -5.0, 5.0))
        r = self.x if self.x <= 1.0 else 1.0 - 4.0 * (self.x - 1.0)
        return np.array([self.x], np.float32), r, False, False, {}


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=Ridge)

PRESET = f"""
env_id = "{ENV_ID}"
horizon = 50
termination_penalty = 0.0
clip_len = 10
labels = 40
steps = 20000
algo = "ppo"
n_envs = 4
normalize_obs = false

[ppo]
n_steps = 128
batch_size = 128
n_epochs = 10
learning_rate = 0.003
gamma = 0.9

[reward_model]
hidden = [32, 32]
"""


def write_preset(folder: Path) -> Path:
    """Write the Ridge preset as ``folder/Ridge.toml`` and return its path."""
    path = Path(folder) / "Ridge.toml"
    path.write_text(PRESET)
    return path
