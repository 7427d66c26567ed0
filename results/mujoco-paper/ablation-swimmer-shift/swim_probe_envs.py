"""Swimmer-v5 with its true reward shifted: a constant offset, or re-centred on its own recent
steps every so often (what prefrl's 'recent' normalisation does to a learned reward).

Importing this module registers SwimmerShift-v0; use it as "swim_probe_envs:SwimmerShift-v0".
"""
from collections import deque

import gymnasium as gym
import numpy as np


class ShiftReward(gym.Wrapper):
    def __init__(self, env, offset=0.0, recenter_every=0, recenter_window=2500):
        super().__init__(env)
        self.offset, self.every = float(offset), int(recenter_every)
        self.recent = deque(maxlen=int(recenter_window))
        self.steps, self.center = 0, 0.0

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        self.recent.append(float(r))
        self.steps += 1
        if self.every and self.steps % self.every == 0:
            self.center = float(np.mean(self.recent))
        return obs, float(r) + self.offset - self.center, term, trunc, info


def make(offset=0.0, recenter_every=0, recenter_window=2500, **kwargs):
    return ShiftReward(gym.make("Swimmer-v5", **kwargs).unwrapped, offset, recenter_every,
                       recenter_window)


gym.register("SwimmerShift-v0", entry_point=make, max_episode_steps=1000)
