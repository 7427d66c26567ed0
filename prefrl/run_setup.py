"""The parts a run is built from, which :mod:`prefrl.training` wires together.

Its SB3 algorithm class, its vec env, its torch threads and allocator threshold, and what its
reward model sees of an observation; :mod:`prefrl.evaluate` and :mod:`prefrl.reward.offline`
use them on their own.

>>> algo_class("sac").__name__
'SAC'
"""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecEnv

from prefrl.config import ResolvedConfig
from prefrl.envs import EnvPreset, make_env
from prefrl.memory import MMAP_THRESHOLD_IMAGES, MMAP_THRESHOLD_VECTORS
from prefrl.sb3.reward_wrapper import RecordRenderState
from prefrl.sb3.vec_env import FreshInfoDummyVecEnv

ALGO_CLASSES = {"ppo": ("stable_baselines3", "PPO"), "a2c": ("stable_baselines3", "A2C"),
                "trpo": ("sb3_contrib", "TRPO"), "sac": ("stable_baselines3", "SAC")}


def algo_class(name: str) -> type[BaseAlgorithm]:
    """SB3 / sb3-contrib class of an algorithm name."""
    import importlib

    mod, cls = ALGO_CLASSES[name]
    return getattr(importlib.import_module(mod), cls)


def make_vec_env(rc: ResolvedConfig, seed: int) -> VecEnv:
    """``n_envs`` copies of the preset's fixed-horizon env, with Monitor on the true reward."""
    def thunk(i: int) -> Any:
        return lambda: Monitor(RecordRenderState(make_env(rc.preset, seed=seed + i)))
    return FreshInfoDummyVecEnv([thunk(i) for i in range(rc.n_envs)])


def torch_threads_for(requested: int | None, observation_space: Any) -> int | None:
    """Torch CPU threads of a run (None: leave torch's choice).

    ``requested`` wins (0: torch's choice). By default 1 for vector observations: the MLP
    policy and reward nets multiply small matrices, where more OpenMP threads only wait on each
    other (and stall when another process holds a core); images (CNNs) keep torch's choice.

    >>> import gymnasium
    >>> box = gymnasium.spaces.Box(0, 1, (17,))
    >>> torch_threads_for(None, box), torch_threads_for(3, box), torch_threads_for(0, box)
    (1, 3, None)
    """
    if requested is not None:
        return requested or None
    return None if image_observations(observation_space) else 1


def image_observations(observation_space: Any) -> bool:
    """Whether a run sees images (3-D observations: CNN nets) rather than vectors (MLPs)."""
    return len(getattr(observation_space, "shape", None) or ()) == 3


def mmap_threshold_for(observation_space: Any) -> int:
    """The glibc mmap threshold for a run (:func:`prefrl.memory.tame_allocator`).

    >>> import gymnasium
    >>> mmap_threshold_for(gymnasium.spaces.Box(0, 1, (17,))) >> 20
    4
    >>> mmap_threshold_for(gymnasium.spaces.Box(0, 255, (4, 84, 84))) >> 10
    256
    """
    if image_observations(observation_space):
        return MMAP_THRESHOLD_IMAGES
    return MMAP_THRESHOLD_VECTORS


def reward_observation_fn(preset: EnvPreset) -> Any:
    """What the reward model sees of an observation (Atari: the score masked); None = as is."""
    if not preset.env_id.startswith("ALE/") or not getattr(preset, "score_mask", True):
        return None
    from prefrl.atari import reward_observation_fn as atari_fn

    return atari_fn(preset.env_id)
