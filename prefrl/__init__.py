"""prefrl: deep reinforcement learning from human preferences.

>>> from prefrl import TrainConfig, train                                   # doctest: +SKIP
>>> result = train(TrainConfig(env="Pendulum", labels=300, steps=100_000))  # doctest: +SKIP
>>> result.true_return, result.labels, result.reward_val_acc               # doctest: +SKIP

``train`` returns a :class:`~prefrl.training.RunResult`; everything the run made (config, label
store, metrics CSV, TensorBoard events, checkpoints) is in ``result.run_dir``, and
``resume(run_dir)`` continues a stopped or killed run. The parts can be used on their own:
:mod:`prefrl.reward` (ensemble, loss, trainer), :mod:`prefrl.store` (label store),
:mod:`prefrl.oracles` (synthetic teachers), :mod:`prefrl.query` (selectors, schedule),
:mod:`prefrl.segments` (clip pool), :mod:`prefrl.envs` (presets, fixed-horizon wrapper).
``import prefrl`` registers the presets' envs with Gymnasium: ``gymnasium.make("prefrl/Hopper-v0")``
(:mod:`prefrl.registration`).

A trained reward is a model folder (:mod:`prefrl.reward.model`): ``load_reward(path)`` scores
batches of ``(obs, action)``, and ``LearnedReward(env, path)`` puts it into any Gymnasium env.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["LearnedReward", "RunResult", "TrainConfig", "load_reward", "resume", "train"]

from prefrl.registration import register_quietly as _register  # noqa: E402

_register()


def __getattr__(name: str) -> Any:  # lazy: `import prefrl.types` stays light
    if name in ("train", "resume", "RunResult"):
        import importlib

        return getattr(importlib.import_module("prefrl.training"), name)
    if name == "load_reward":
        from prefrl.reward.model import load_reward

        return load_reward
    if name == "LearnedReward":
        from prefrl.reward.gym_wrapper import LearnedReward

        return LearnedReward
    if name == "TrainConfig":
        from prefrl.config import TrainConfig

        return TrainConfig
    raise AttributeError(f"module 'prefrl' has no attribute {name!r}")
