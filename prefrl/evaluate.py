"""Measure true return: of a trained run's policy, or of a uniformly random policy.

:func:`evaluate_run` plays the run's own fixed-horizon env; :func:`evaluate_standard` plays
the standard Gymnasium env with its own time limit and termination, which shows whether an
agent stays up (a fixed-horizon return can hide an agent that falls and respawns).

>>> from prefrl.envs import load_preset
>>> r = random_policy_return(load_preset("Pendulum"), episodes=2, seed=0)
>>> r < 0
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecNormalize

from prefrl.config import resolve_run
from prefrl.envs import EnvPreset, make_env
from prefrl.rundir import RunDir, load_npz

_TERMINATION_KWARGS = ("terminate_when_unhealthy",)
"""Env constructor arguments that :func:`evaluate_standard` leaves at Gymnasium's default."""


def random_policy_return(preset: EnvPreset, episodes: int = 5, seed: int = 0) -> float:
    """Mean true return of uniformly random actions over ``episodes`` fixed-horizon episodes."""
    env = make_env(preset, seed=seed)
    total = []
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        ret, done = 0.0, False
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            ret += float(r)
            done = term or trunc
        total.append(ret)
    env.close()
    return float(np.mean(total))


def _load_policy(run_dir: Path) -> tuple[Any, Any, Any, str]:
    """A run's latest policy: ``(model, obs_rms or None, resolved config, algo)``."""
    from prefrl.run_setup import algo_class

    rd = RunDir(Path(run_dir))
    ckpt = rd.latest_checkpoint()
    if ckpt is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint to evaluate")
    rc = resolve_run(rd.path)
    obs_rms = None
    if (ckpt / "vecnorm.npz").exists():
        v = load_npz(ckpt / "vecnorm.npz")
        obs_rms = (v["obs_mean"], v["obs_var"])
    algo = json.loads(rd.config_path.read_text())["resolved"]["algo"]
    model = algo_class(algo).load(ckpt / "policy.zip", device="cpu")
    return model, obs_rms, rc, algo


def evaluate_run(run_dir: Path, episodes: int = 5, seed: int = 12345,
                 deterministic: bool = True) -> float:
    """Mean true return of a run's latest checkpointed policy on fresh episodes."""
    from prefrl.run_setup import make_vec_env

    model, obs_rms, rc, _ = _load_policy(run_dir)
    rc = type(rc)(**{**rc.__dict__, "n_envs": 1})
    venv = make_vec_env(rc, seed)
    env = venv
    if obs_rms is not None:
        env = VecNormalize(venv, training=False, norm_reward=False)
        rms: Any = env.obs_rms
        rms.mean, rms.var = obs_rms
    returns: list[float] = []
    obs = env.reset()
    while len(returns) < episodes:
        act, _ = model.predict(obs, deterministic=deterministic)  # type: ignore[arg-type]
        obs, _, dones, infos = env.step(act)
        if dones[0]:
            returns.append(float(infos[0]["episode"]["r"]))
    env.close()
    return float(np.mean(returns))


def evaluate_standard(run_dir: Path, episodes: int = 10, seed: int = 12345,
                      deterministic: bool = True) -> dict[str, Any] | None:
    """A run's policy on the standard Gymnasium env (its own time limit and termination).

    Returns mean ``return`` and ``length``, the per-episode ``returns`` and ``lengths``,
    ``falls``: how many of ``episodes`` ended by termination before the time limit, and
    ``falls_within_horizon``: how many of those came within the run's training horizon (an
    agent trained on 300-step episodes that falls at step 390 fell where it was never
    trained). The env gets the preset's ``env_kwargs`` except those that switch termination
    off. ``None`` for Atari runs. Observations are normalised with the run's saved
    ``VecNormalize`` statistics, as in training.
    """
    import gymnasium

    model, obs_rms, rc, _ = _load_policy(run_dir)
    if rc.env_id.startswith("ALE/"):
        return None
    # the preset's constructor arguments (e.g. what the observation holds), but the standard
    # env's own termination: that is what this evaluation checks
    kwargs = {k: v for k, v in rc.preset.env_kwargs.items() if k not in _TERMINATION_KWARGS}
    env = gymnasium.make(rc.env_id, **kwargs)
    returns, lengths, falls, early = [], [], 0, 0
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        ret, n, done = 0.0, 0, False
        while not done:
            x = np.asarray(obs, dtype=np.float64)
            if obs_rms is not None:
                x = np.clip((x - obs_rms[0]) / np.sqrt(obs_rms[1] + 1e-8), -10.0, 10.0)
            act, _ = model.predict(x.astype(np.float32), deterministic=deterministic)
            obs, r, term, trunc, _ = env.step(act)
            ret, n, done = ret + float(r), n + 1, term or trunc
        returns.append(ret)
        lengths.append(n)
        falls += bool(term)
        early += bool(term) and n <= rc.preset.horizon
    env.close()
    return {"env_id": rc.env_id, "episodes": episodes, "return": float(np.mean(returns)),
            "length": float(np.mean(lengths)), "falls": falls, "returns": returns,
            "lengths": lengths, "horizon": rc.preset.horizon, "falls_within_horizon": early}
