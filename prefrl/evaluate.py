"""Measure true return: of a trained run's policy, or of a uniformly random policy.

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

from prefrl.config import load_run_config
from prefrl.envs import EnvPreset, make_env
from prefrl.rundir import RunDir, load_npz


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


def evaluate_run(run_dir: Path, episodes: int = 5, seed: int = 12345,
                 deterministic: bool = True) -> float:
    """Mean true return of a run's latest checkpointed policy on fresh episodes."""
    from prefrl.training import algo_class, make_vec_env

    rd = RunDir(Path(run_dir))
    ckpt = rd.latest_checkpoint()
    if ckpt is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint to evaluate")
    rc = load_run_config(rd.path).resolve()
    rc = type(rc)(**{**rc.__dict__, "n_envs": 1})
    venv = make_vec_env(rc, seed)
    env = venv
    if (ckpt / "vecnorm.npz").exists():
        v = load_npz(ckpt / "vecnorm.npz")
        env = VecNormalize(venv, training=False, norm_reward=False)
        rms: Any = env.obs_rms
        rms.mean, rms.var = v["obs_mean"], v["obs_var"]
    algo = json.loads(rd.config_path.read_text())["resolved"]["algo"]
    model = algo_class(algo).load(ckpt / "policy.zip", device="cpu")
    returns: list[float] = []
    obs = env.reset()
    ret = 0.0
    while len(returns) < episodes:
        act, _ = model.predict(obs, deterministic=deterministic)  # type: ignore[arg-type]
        obs, _, dones, infos = env.step(act)
        ret += float(infos[0]["true_reward"]) if "true_reward" in infos[0] else 0.0
        if dones[0]:
            returns.append(float(infos[0]["episode"]["r"]))
            ret = 0.0
    env.close()
    return float(np.mean(returns))
