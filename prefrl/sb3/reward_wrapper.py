"""Replace the environment reward by the learned one inside an SB3 ``VecEnv``.

:class:`RecordRenderState` (a Gymnasium wrapper, one per env) puts the render state of the
observation the agent acted on into ``info["render_state"]``. :class:`LearnedRewardVecEnv`
(a ``VecEnvWrapper``) then, at every step:

* predicts the reward of ``(obs_t, action_t)`` for all envs in one batched ensemble call
  (on the GPU when present) and hands it to the agent, unless ``mode="true"``;
* keeps the true reward in ``info["true_reward"]`` and the learned one in
  ``info["learned_reward"]``, and the learned episodic return in
  ``info["episode_learned_return"]`` at episode ends;
* records windows of steps and cuts clips from them into a
  :class:`~prefrl.segments.SegmentBuffer` (the candidates for queries).

>>> from stable_baselines3.common.env_util import make_vec_env
>>> import gymnasium as gym, numpy as np
>>> from prefrl.segments import SegmentBuffer
>>> from prefrl.reward import RewardEnsemble
>>> venv = make_vec_env("Pendulum-v1", n_envs=2, seed=0, wrapper_class=RecordRenderState)
>>> ens = RewardEnsemble.from_spaces(venv.observation_space, venv.action_space, device="cpu")
>>> buf = SegmentBuffer(10, rng=np.random.default_rng(0))
>>> env = LearnedRewardVecEnv(venv, ens, buf, env_id="Pendulum-v1")
>>> _ = env.reset()
>>> for _ in range(25):
...     obs, rew, done, info = env.step(np.zeros((2, 1), np.float32))
>>> rew.shape, "true_reward" in info[0], len(buf) > 0
((2,), True, True)
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from prefrl.envs import mujoco_render_state
from prefrl.reward.ensemble import RewardEnsemble
from prefrl.segments import SegmentBuffer
from prefrl.trajectories import TrajectoryAccumulator

RewardMode = Literal["learned", "true"]


class RecordRenderState(gym.Wrapper):
    """Add ``info["render_state"]``: the MuJoCo state of the observation acted on."""

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        """Step, reporting the state *before* the step (that of the acted-on observation)."""
        state = mujoco_render_state(self.env)
        obs, rew, term, trunc, info = self.env.step(action)
        info["render_state"] = state
        return obs, rew, term, trunc, info


class LearnedRewardVecEnv(VecEnvWrapper):
    """Feed the agent the ensemble's reward; keep the true one in ``info``; record clips.

    Args:
        venv: the vectorised env (true reward, fixed horizon).
        ensemble: the reward model; may be None in ``mode="true"``.
        buffer: where recorded clips go (None: record nothing).
        env_id: written into every clip.
        mode: ``"learned"`` feeds the learned reward, ``"true"`` the true one (the baseline).
        window: steps per recorded window (clips are cut from windows); default 2x clip length.
        record_every: record one window in every ``record_every`` (to bound recording cost).
        source_run: run id written into clips.
        obs_transform: applied to observations before the reward model sees or records them
            (e.g. Atari score masking); the agent still gets the untouched observation.
        pessimism: K >= 0; the agent gets ``mean - K * std`` of the members' rewards (and that
            is the learned reward reported), so it is paid less where the ensemble disagrees.
        renormalise_every: for a frozen model (no learner refits it): every this many env
            steps, refit the ensemble's output normalisation on the last ``renormalise_steps``
            steps the agent took, as a run does after each reward update (0: never).
        deferred: on-policy runs (``mode="learned"``): return 0 as each step's reward and keep
            the step; :meth:`score_pending` then scores the whole rollout in one batched call
            and :mod:`prefrl.sb3.deferred` writes the rewards into the rollout buffer before
            PPO trains on it. Same rewards, about 40x less inference time than one call per
            step. ``info["learned_reward"]`` and ``info["episode_learned_return"]`` are then
            not set per step; the episode returns arrive in :attr:`learned_returns`.
    """

    def __init__(
        self,
        venv: VecEnv,
        ensemble: RewardEnsemble | None,
        buffer: SegmentBuffer | None,
        *,
        env_id: str,
        mode: RewardMode = "learned",
        window: int | None = None,
        record_every: int = 1,
        source_run: str = "",
        obs_transform: Callable[[np.ndarray], np.ndarray] | None = None,
        pessimism: float = 0.0,
        renormalise_every: int = 0,
        renormalise_steps: int = 10_000,
        deferred: bool = False,
    ) -> None:
        super().__init__(venv)
        if not pessimism >= 0:
            raise ValueError(f"reward pessimism must be >= 0, got {pessimism}")
        self.pessimism = float(pessimism)
        if mode not in ("learned", "true"):
            raise ValueError(f"reward mode must be 'learned' or 'true', got {mode!r}")
        if mode == "learned" and ensemble is None:
            raise ValueError("mode='learned' needs a reward ensemble")
        self.ensemble, self.buffer, self.mode = ensemble, buffer, mode
        self.env_id, self.source_run = env_id, source_run
        self.obs_transform = obs_transform
        clip_len = buffer.clip_len if buffer is not None else 1
        self.window = window or 2 * clip_len
        self.record_every = max(1, int(record_every))
        self._acc = (
            TrajectoryAccumulator(self.num_envs, self.window) if buffer is not None else None
        )
        self._windows_done = np.zeros(self.num_envs, np.int64)
        self._last_obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._ep_learned = np.zeros(self.num_envs, np.float64)
        self.learned_returns: deque[float] = deque(maxlen=100)
        self.num_steps = 0  # environment steps through this wrapper (all envs)
        self.reward_seconds = 0.0  # time spent in reward inference
        self.record_seconds = 0.0  # time spent recording windows and cutting clips into the pool
        self.renormalise_every = int(renormalise_every) if mode == "learned" else 0
        self._recent: deque[tuple[np.ndarray, np.ndarray]] = deque(
            maxlen=max(1, renormalise_steps // self.num_envs))
        self._next_renorm = self.renormalise_every
        self.deferred = bool(deferred) and mode == "learned"
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def resume_at(self, steps: int) -> None:
        """Count on from ``steps`` env steps, a resumed run's checkpoint.

        Clips recorded from now on carry the run's own step, as in a run never stopped (the
        guard's trends and the label store read it), and a frozen model's next
        renormalisation falls where it would have.
        """
        self.num_steps = int(steps)
        if self.renormalise_every:
            every = self.renormalise_every
            self._next_renorm = (self.num_steps // every + 1) * every

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> np.ndarray:
        """Reset all envs and forget partial windows."""
        obs: Any = self.venv.reset()
        self._last_obs = np.asarray(obs)
        self._ep_learned[:] = 0.0
        if self._acc is not None:
            for i in range(self.num_envs):
                self._acc.reset(i)
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Remember the actions (the reward is r(obs_t, action_t))."""
        self._actions = np.asarray(actions)
        self.venv.step_async(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step all envs, swap in the learned reward, record clips."""
        obs: Any
        obs, true_r, dones, infos = self.venv.step_wait()
        prev, acts = self._last_obs, self._actions
        if prev is None or acts is None:
            raise RuntimeError("step_wait called before reset/step_async")
        true_r = np.asarray(true_r, np.float32)
        if self.obs_transform is not None and (self.mode == "learned" or self._acc is not None):
            prev = self.obs_transform(prev)
        if self.deferred:
            self._pending.append((np.array(prev), np.array(acts), np.array(dones, bool)))
            learned = np.zeros_like(true_r)
        elif self.mode == "learned":
            t0 = time.perf_counter()
            learned = self._learned(prev, acts)
            self.reward_seconds += time.perf_counter() - t0
        else:
            learned = true_r
        if not self.deferred:
            self._ep_learned += learned
        t_rec = time.perf_counter()
        for i, info in enumerate(infos):
            info["true_reward"] = float(true_r[i])
            if not self.deferred:
                info["learned_reward"] = float(learned[i])
            if self._acc is not None:
                self._record(i, prev[i], acts[i], float(true_r[i]), info.get("render_state"))
            if dones[i]:
                if not self.deferred:
                    info["episode_learned_return"] = float(self._ep_learned[i])
                    self.learned_returns.append(float(self._ep_learned[i]))
                    self._ep_learned[i] = 0.0
                if self._acc is not None:
                    self._flush(i, min_len=self.buffer.clip_len)  # type: ignore[union-attr]
        if self._acc is not None:
            self.record_seconds += time.perf_counter() - t_rec
        self.num_steps += self.num_envs
        if self.renormalise_every:
            self._renormalise(prev, acts)
        self._last_obs = np.asarray(obs)
        rewards = learned if self.mode == "learned" else true_r
        return obs, np.asarray(rewards, np.float32), dones, infos

    def _learned(self, obs: np.ndarray, acts: np.ndarray) -> np.ndarray:
        learned, spread = self.ensemble.predict(obs, acts)  # type: ignore[union-attr]
        if self.pessimism:
            learned = learned - self.pessimism * spread
        return learned

    def score_pending(self) -> tuple[np.ndarray, np.ndarray, list[float]] | None:
        """Score the steps kept since the last call (``deferred``) in one batched call.

        Returns ``(rewards, dones, episode_returns)``: rewards and dones ``(T, num_envs)`` in
        step order, and the learned returns of the episodes that ended (also added to
        :attr:`learned_returns`); None when no steps were kept.
        """
        if not self._pending:
            return None
        t0 = time.perf_counter()
        steps, n = len(self._pending), self.num_envs
        obs = np.concatenate([o for o, _, _ in self._pending])
        acts = np.concatenate([a for _, a, _ in self._pending])
        dones = np.stack([d for _, _, d in self._pending])
        self._pending = []
        rewards = self._learned(obs, acts).reshape(steps, n)
        ended: list[float] = []
        for t in range(steps):
            self._ep_learned += rewards[t]
            for i in np.flatnonzero(dones[t]):
                ended.append(float(self._ep_learned[i]))
                self._ep_learned[i] = 0.0
        self.learned_returns.extend(ended)
        self.reward_seconds += time.perf_counter() - t0
        return rewards, dones, ended

    def _renormalise(self, obs: np.ndarray, acts: np.ndarray) -> None:
        self._recent.append((np.array(obs), np.array(acts)))
        if self.num_steps >= self._next_renorm:
            self._next_renorm = self.num_steps + self.renormalise_every
            self.ensemble.fit_normalisation(  # type: ignore[union-attr]
                np.concatenate([o for o, _ in self._recent]),
                np.concatenate([a for _, a in self._recent]))

    # ------------------------------------------------------------------ recording
    def _record(
        self, i: int, obs: np.ndarray, act: np.ndarray, rew: float, rs: dict | None
    ) -> None:
        assert self._acc is not None
        self._acc.append(i, obs, act, rew, rs, step=self.num_steps)
        if self._acc.length(i) >= self.window:
            self._flush(i, min_len=None)

    def _flush(self, i: int, min_len: int | None) -> None:
        assert self._acc is not None and self.buffer is not None
        traj = self._acc.pop_if_ready(i, min_len)
        self._acc.reset(i)
        if traj is None:
            return
        self._windows_done[i] += 1
        if self._windows_done[i] % self.record_every:
            return
        self.buffer.add_trajectory(
            traj["obs"], traj["acts"], traj["true_rews"], env_id=self.env_id,
            render_state=traj["render_state"], source_run=self.source_run,
            start_step=traj["start_step"],
        )
