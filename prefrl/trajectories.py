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
        # per env: list of (obs, act, true_rew, render_state) steps, and the first step's number
        self._steps: list[list[tuple[np.ndarray, np.ndarray, float, dict]]] = [
            [] for _ in range(n_envs)
        ]
        self._start = [0] * n_envs

    def length(self, env_idx: int) -> int:
        """Return the number of steps accumulated for env ``env_idx``."""
        return len(self._steps[env_idx])

    def append(
        self,
        env_idx: int,
        obs: np.ndarray,
        act: np.ndarray,
        true_rew: float,
        render_state: dict[str, np.ndarray] | None,
        step: int,
    ) -> None:
        """Append one step of env ``env_idx`` (arrays are copied; ``step`` = global step)."""
        steps = self._steps[env_idx]
        if len(steps) >= self.max_len:
            raise RuntimeError(f"accumulator of env {env_idx} is full ({self.max_len} steps)")
        rs = {k: np.array(v, copy=True) for k, v in (render_state or {}).items()}
        if not steps:
            self._start[env_idx] = int(step)
        elif rs.keys() != steps[0][3].keys():
            raise ValueError(f"render_state keys changed: {sorted(steps[0][3])} -> {sorted(rs)}")
        steps.append((np.array(obs, copy=True), np.array(act, copy=True), float(true_rew), rs))

    def pop_if_ready(self, env_idx: int, min_len: int | None = None) -> dict[str, Any] | None:
        """Return and restart env ``env_idx``'s trajectory once it is ready, else None.

        Ready means ``max_len`` steps, or at least ``min_len`` steps when ``min_len`` is given.
        The dict has ``obs``, ``acts``, ``true_rews`` (float32), ``render_state`` (dict, maybe
        empty) and ``start_step``, matching :meth:`SegmentBuffer.add_trajectory`.
        """
        steps = self._steps[env_idx]
        need = self.max_len if min_len is None else min(max(int(min_len), 1), self.max_len)
        if len(steps) < need:
            return None
        out = {
            "obs": np.stack([s[0] for s in steps]),
            "acts": np.stack([s[1] for s in steps]),
            "true_rews": np.array([s[2] for s in steps], dtype=np.float32),
            "render_state": {k: np.stack([s[3][k] for s in steps]) for k in steps[0][3]},
            "start_step": self._start[env_idx],
        }
        self.reset(env_idx)
        return out

    def reset(self, env_idx: int) -> None:
        """Drop whatever env ``env_idx`` has accumulated (e.g. at an episode end)."""
        self._steps[env_idx] = []
