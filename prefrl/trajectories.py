"""Gather per-env trajectories from a vectorised env, one step at a time.

The learned-reward VecEnv wrapper feeds every step here and hands full windows to the
:class:`~prefrl.segments.SegmentBuffer`, which cuts clips from them.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class TrajectoryAccumulator:
    """Gather per-env trajectories from a vectorised env, one step at a time.

    Call :meth:`append` for every env after each step, then :meth:`pop_if_ready` (no
    ``min_len``): it hands back a full window of ``max_len`` steps and restarts that env. At an
    episode end call ``pop_if_ready(i, min_len=clip_len)`` to flush a long-enough tail, then
    :meth:`reset`.

    >>> acc = TrajectoryAccumulator(n_envs=2, max_len=3)
    >>> for t in range(3):
    ...     acc.append(0, np.array([t, t]), np.array([0.0]), float(t), None, step=10 + t)
    >>> w = acc.pop_if_ready(0)
    >>> w["obs"].shape, w["true_rews"].tolist(), w["start_step"], acc.pop_if_ready(1)
    ((3, 2), [0.0, 1.0, 2.0], 10, None)
    """

    def __init__(self, n_envs: int, max_len: int) -> None:
        if n_envs < 1 or max_len < 1:
            raise ValueError(f"n_envs and max_len must be >= 1, got {n_envs}, {max_len}")
        self.n_envs = int(n_envs)
        self.max_len = int(max_len)
        # per env: preallocated (max_len, ...) arrays, filled row by row, allocated at the first
        # step (when shapes and dtypes are known) and reused for every later window: one copy
        # per step into place and one per window out, instead of a list of per-step copies
        # stacked at the end (2-3x less CPU per step; results/overhead/record_bench.py)
        self._obs: list[np.ndarray | None] = [None] * n_envs
        self._acts: list[np.ndarray | None] = [None] * n_envs
        self._rews = [np.zeros(self.max_len, np.float32) for _ in range(n_envs)]
        self._rs: list[dict[str, np.ndarray]] = [{} for _ in range(n_envs)]
        self._n = [0] * n_envs
        self._start = [0] * n_envs

    def length(self, env_idx: int) -> int:
        """Return the number of steps accumulated for env ``env_idx``."""
        return self._n[env_idx]

    def _fitted(self, buf: np.ndarray | None, like: np.ndarray) -> np.ndarray:
        """``buf`` if it holds ``max_len`` steps shaped and typed like ``like``, else a new one."""
        if buf is not None and buf.shape[1:] == like.shape and buf.dtype == like.dtype:
            return buf
        return np.empty((self.max_len, *like.shape), like.dtype)

    def append(
        self,
        env_idx: int,
        obs: np.ndarray,
        act: np.ndarray,
        true_rew: float,
        render_state: dict[str, np.ndarray] | None,
        step: int,
    ) -> None:
        """Append one step of env ``env_idx`` (arrays are copied; ``step`` = global step).

        Every step of a window must have the first step's obs and action shapes and
        render-state keys; values are stored in the first step's dtypes.
        """
        n = self._n[env_idx]
        if n >= self.max_len:
            raise RuntimeError(f"accumulator of env {env_idx} is full ({self.max_len} steps)")
        obs, act, rs = np.asarray(obs), np.asarray(act), render_state or {}
        bufs = self._rs[env_idx]
        if n == 0:  # a new window: reuse the buffers that fit, allocate the others
            self._start[env_idx] = int(step)
            self._obs[env_idx] = self._fitted(self._obs[env_idx], obs)
            self._acts[env_idx] = self._fitted(self._acts[env_idx], act)
            bufs = self._rs[env_idx] = {k: self._fitted(bufs.get(k), np.asarray(v))
                                        for k, v in rs.items()}
        else:
            if rs.keys() != bufs.keys():
                raise ValueError(f"render_state keys changed: {sorted(bufs)} -> {sorted(rs)}")
            o, a = self._obs[env_idx], self._acts[env_idx]
            assert o is not None and a is not None
            if o.shape[1:] != obs.shape or a.shape[1:] != act.shape:
                raise ValueError(f"step shapes changed within a window: obs {o.shape[1:]} -> "
                                 f"{obs.shape}, act {a.shape[1:]} -> {act.shape}")
        self._obs[env_idx][n] = obs  # type: ignore[index]
        self._acts[env_idx][n] = act  # type: ignore[index]
        self._rews[env_idx][n] = true_rew
        for k, v in rs.items():
            bufs[k][n] = v
        self._n[env_idx] = n + 1

    def pop_if_ready(self, env_idx: int, min_len: int | None = None) -> dict[str, Any] | None:
        """Return and restart env ``env_idx``'s trajectory once it is ready, else None.

        Ready means ``max_len`` steps, or at least ``min_len`` steps when ``min_len`` is given.
        The dict has ``obs``, ``acts``, ``true_rews`` (float32), ``render_state`` (dict, maybe
        empty) and ``start_step``, matching :meth:`SegmentBuffer.add_trajectory`. Its arrays
        are copies: later steps do not change them.
        """
        n = self._n[env_idx]
        need = self.max_len if min_len is None else min(max(int(min_len), 1), self.max_len)
        if n < need:
            return None
        out = {
            "obs": self._obs[env_idx][:n].copy(),  # type: ignore[index]
            "acts": self._acts[env_idx][:n].copy(),  # type: ignore[index]
            "true_rews": self._rews[env_idx][:n].copy(),
            "render_state": {k: v[:n].copy() for k, v in self._rs[env_idx].items()},
            "start_step": self._start[env_idx],
        }
        self.reset(env_idx)
        return out

    def reset(self, env_idx: int) -> None:
        """Drop whatever env ``env_idx`` has accumulated (e.g. at an episode end)."""
        self._n[env_idx] = 0
