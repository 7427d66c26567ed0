"""Collect clips from an environment with a given policy (random by default).

Used for reward-model pre-training on a random policy (the paper's Atari recipe), for tests and
for benchmarks. The render state of MuJoCo envs (``qpos``/``qvel``) is recorded with every step.

>>> import gymnasium as gym, numpy as np
>>> clips = collect_clips(gym.make("Pendulum-v1"), n_clips=3, clip_len=10,
...                       rng=np.random.default_rng(0))
>>> len(clips), clips[0].obs.shape
(3, (10, 3))
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from prefrl.envs import mujoco_render_state
from prefrl.types import Clip

Policy = Callable[[np.ndarray], np.ndarray]


def collect_clips(
    env: gym.Env,
    n_clips: int,
    clip_len: int,
    rng: np.random.Generator,
    policy: Policy | None = None,
    clips_per_episode: int = 4,
    source_run: str = "random",
    obs_transform: Callable[[np.ndarray], np.ndarray] | None = None,
    episode_steps: int | None = None,
) -> list[Clip]:
    """Run ``policy`` (uniform random actions by default) and cut ``n_clips`` clips.

    Each episode yields up to ``clips_per_episode`` non-overlapping clips at random offsets.
    ``obs_transform`` (e.g. Atari score masking) is applied to each clip's observations;
    ``episode_steps`` cuts long episodes short (the env is reset for the next one).
    """
    env_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    env.action_space.seed(int(rng.integers(2**31)))
    clips: list[Clip] = []
    step0 = 0
    while len(clips) < n_clips:
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
        o_buf, a_buf, r_buf, s_buf = [], [], [], []
        done = False
        while not done:
            act = env.action_space.sample() if policy is None else policy(obs)
            s_buf.append(mujoco_render_state(env))
            o_buf.append(obs)
            a_buf.append(act)
            obs, rew, term, trunc, _ = env.step(act)
            r_buf.append(float(rew))
            done = term or trunc or (episode_steps is not None and len(r_buf) >= episode_steps)
        n_slots = len(o_buf) // clip_len
        if n_slots == 0:
            step0 += len(o_buf)
            continue
        slots = rng.choice(n_slots, size=min(clips_per_episode, n_slots), replace=False)
        slack = len(o_buf) - n_slots * clip_len
        shift = int(rng.integers(slack + 1))
        for s in sorted(slots):
            i = shift + int(s) * clip_len
            sl = slice(i, i + clip_len)
            rs = {k: np.stack([d[k] for d in s_buf[sl]]) for k in s_buf[0]}
            obs_arr = np.asarray(o_buf[sl])
            if obs_arr.dtype != np.uint8:
                obs_arr = obs_arr.astype(np.float32)
            if obs_transform is not None:
                obs_arr = obs_transform(obs_arr)
            clips.append(Clip(
                obs=obs_arr,
                acts=np.asarray(a_buf[sl]), true_rews=np.asarray(r_buf[sl], np.float32),
                env_id=env_id, render_state=rs, source_run=source_run, step=step0 + i,
            ))
            if len(clips) >= n_clips:
                break
        step0 += len(o_buf)
    return clips
