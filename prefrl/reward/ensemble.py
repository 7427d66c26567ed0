"""Ensemble of reward predictors with per-member output normalisation.

The predicted reward is the mean of the members' *independently normalised* outputs (zero mean,
unit std over recent data), and the spread between members is their uncertainty, as in
Christiano et al. 2017. Inference is batched and runs on CUDA when present.

>>> import gymnasium as gym, numpy as np
>>> ens = RewardEnsemble.from_spaces(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (1,)),
...                                  n_members=3, seed=0)
>>> r, spread = ens.predict(np.zeros((4, 3), np.float32), np.zeros((4, 1), np.float32))
>>> r.shape, spread.shape
((4,), (4,))
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from prefrl.reward.nets import MLPRewardNet, RewardNet, make_reward_net, net_from_config


def default_device() -> torch.device:
    """CUDA when present, CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def as_tensor(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move an array to ``device`` without copying when it is already there."""
    if isinstance(x, torch.Tensor):
        return x.to(device)
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)


class RewardEnsemble(nn.Module):
    """K reward nets with per-member output normalisation."""

    members: nn.ModuleList
    out_mean: torch.Tensor
    out_std: torch.Tensor

    def __init__(self, members: list[RewardNet], device: torch.device | str | None = None):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        k = len(members)
        self.register_buffer("out_mean", torch.zeros(k))
        self.register_buffer("out_std", torch.ones(k))
        self.device = torch.device(device) if device is not None else default_device()
        self.to(self.device)
        self._fused: _FusedMLP | None = None
        self.version = 0
        """Bumped by :meth:`mark_changed`: which model a cached result belongs to."""
        self.return_cache: dict[str, np.ndarray] = {}
        """Normalised returns ``(K,)`` per clip hash under this version (see
        :func:`prefrl.query.clip_returns`); cleared whenever the model changes."""
        self.fused_max_batch = 16  # above this, torch batching is as fast
        self.max_batch_bytes = 64 << 20
        """Inference runs in chunks of at most this many bytes of float input (pixels: ~600
        frames), so activations stay small whatever the caller passes."""

    def rows_per_batch(self, x: np.ndarray | torch.Tensor, limit: int) -> int:
        """Rows of ``x`` to run at once: ``limit`` at most, within :attr:`max_batch_bytes`."""
        row_bytes = 4 * max(1, int(np.prod(x.shape[1:])))
        return max(1, min(limit, self.max_batch_bytes // row_bytes))

    def mark_changed(self) -> None:
        """Drop cached inference weights and clip returns (after any parameter or buffer change)."""
        self._fused = None
        self.version += 1
        self.return_cache.clear()

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """As ``nn.Module.load_state_dict``, also invalidating the inference cache."""
        self.mark_changed()
        return super().load_state_dict(*args, **kwargs)

    def _fused_path(self) -> _FusedMLP | None:
        if self.device.type != "cpu":
            return None
        if self._fused is None:
            self._fused = _FusedMLP.build(self)
        return self._fused if self._fused.ok else None

    @classmethod
    def from_spaces(
        cls,
        obs_space: gym.Space,
        act_space: gym.Space,
        n_members: int = 3,
        *,
        seed: int = 0,
        device: torch.device | str | None = None,
        **net_kwargs: Any,
    ) -> RewardEnsemble:
        """Build ``n_members`` default nets for the spaces, each with its own seeded init."""
        members = []
        for i in range(n_members):
            torch.manual_seed(seed * 1000 + i)
            members.append(make_reward_net(obs_space, act_space, **net_kwargs))
        return cls(members, device)

    @property
    def n_members(self) -> int:
        """Number of members K."""
        return len(self.members)

    def member_configs(self) -> list[dict[str, Any]]:
        """Constructor arguments of each member (for checkpoints)."""
        return [m.config() for m in self.members]  # type: ignore[operator]

    @classmethod
    def from_checkpoint(
        cls, configs: list[dict[str, Any]], state: dict[str, Any],
        device: torch.device | str | None = None,
    ) -> RewardEnsemble:
        """Rebuild from :meth:`member_configs` and ``state_dict()``."""
        ens = cls([net_from_config(c) for c in configs], device)
        ens.load_state_dict(state)
        return ens

    # ------------------------------------------------------------------ forward passes
    def member_rewards(self, obs: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        """Raw per-step rewards of every member, shape ``(K, N)`` (differentiable)."""
        return torch.stack([m(obs, acts) for m in self.members])

    def member_clip_returns(
        self, obs: torch.Tensor, acts: torch.Tensor, member: int | None = None
    ) -> torch.Tensor:
        """Raw clip returns for clips ``obs (B, T, ...)``: shape ``(K, B)`` or ``(B,)``."""
        b, t = obs.shape[:2]
        flat_o = obs.reshape(b * t, *obs.shape[2:])
        flat_a = acts.reshape(b * t, *acts.shape[2:])
        if member is not None:
            return self.members[member](flat_o, flat_a).reshape(b, t).sum(1)
        return self.member_rewards(flat_o, flat_a).reshape(-1, b, t).sum(2)

    def normalised_rewards(self, obs: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        """Per-member normalised rewards ``(K, N)``."""
        raw = self.member_rewards(obs, acts)
        return (raw - self.out_mean[:, None]) / self.out_std[:, None]

    # ------------------------------------------------------------------ numpy API
    @torch.no_grad()
    def predict(
        self, obs: np.ndarray | torch.Tensor, acts: np.ndarray | torch.Tensor,
        batch_size: int = 65536,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Reward for each step: ``(mean of normalised members, std across members)``.

        ``obs`` is ``(N, *obs_shape)``; batched over N (e.g. all envs of a VecEnv at once).
        """
        n = len(obs)
        fused = self._fused_path() if n <= self.fused_max_batch else None
        if fused is not None and not isinstance(obs, torch.Tensor):
            r = fused(np.asarray(obs), np.asarray(acts))
            return r.mean(1).astype(np.float32), r.std(1).astype(np.float32)
        was_training = self.training
        self.eval()
        means: list[torch.Tensor] = []
        spreads: list[torch.Tensor] = []
        batch_size = self.rows_per_batch(obs, batch_size)
        for i in range(0, n, batch_size):
            o = as_tensor(obs[i : i + batch_size], self.device)
            a = as_tensor(acts[i : i + batch_size], self.device)
            rt = self.normalised_rewards(o, a)
            means.append(rt.mean(0))
            spreads.append(rt.std(0, unbiased=False))
        self.train(was_training)
        if not means:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        return (
            torch.cat(means).float().cpu().numpy(),
            torch.cat(spreads).float().cpu().numpy(),
        )

    @torch.no_grad()
    def clip_returns(
        self, obs: np.ndarray | torch.Tensor, acts: np.ndarray | torch.Tensor,
        batch_size: int = 1024,
    ) -> np.ndarray:
        """Predicted return of each clip ``(B, T, ...)`` per member, normalised: ``(K, B)``."""
        was_training = self.training
        self.eval()
        out = []
        t = obs.shape[1]
        batch_size = self.rows_per_batch(obs, batch_size)
        for i in range(0, len(obs), batch_size):
            o = as_tensor(obs[i : i + batch_size], self.device)
            a = as_tensor(acts[i : i + batch_size], self.device)
            raw = self.member_clip_returns(o, a)
            out.append(raw - t * self.out_mean[:, None])
        self.train(was_training)
        ret = torch.cat(out, dim=1) / self.out_std[:, None]
        return ret.float().cpu().numpy()

    @torch.no_grad()
    def fit_normalisation(
        self, obs: np.ndarray | torch.Tensor, acts: np.ndarray | torch.Tensor,
        batch_size: int = 65536,
    ) -> None:
        """Set each member's output mean/std from a sample of recent steps ``(N, ...)``."""
        if len(obs) < 2:
            return
        was_training = self.training
        self.eval()
        chunks = []
        batch_size = self.rows_per_batch(obs, batch_size)
        for i in range(0, len(obs), batch_size):
            o = as_tensor(obs[i : i + batch_size], self.device)
            a = as_tensor(acts[i : i + batch_size], self.device)
            chunks.append(self.member_rewards(o, a))
        raw = torch.cat(chunks, dim=1)
        self.out_mean.copy_(raw.mean(1))
        self.out_std.copy_(raw.std(1).clamp_min(1e-6))
        self.train(was_training)
        self.mark_changed()

    @torch.no_grad()
    def set_input_stats(
        self, obs: np.ndarray | torch.Tensor, acts: np.ndarray | torch.Tensor
    ) -> None:
        """Fix each member's input standardisation (members that support it)."""
        o = as_tensor(obs, self.device)
        a = as_tensor(acts, self.device)
        for m in self.members:
            if isinstance(m, MLPRewardNet):
                m.set_input_stats(o, a)
        self.mark_changed()

    def input_stats_set(self) -> bool:
        """Whether input standardisation has been fixed."""
        return all(bool(getattr(m, "stats_set", True)) for m in self.members)


class _FusedMLP:
    """All MLP members as one wide numpy MLP, for fast small-batch inference on CPU.

    Hidden layers are block-diagonal; input and output normalisation are folded into the
    weights. For one VecEnv step this is about 10x faster than K torch forward passes.
    """

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], act_kind: str,
                 act_dim: int, use_actions: bool, ok: bool = True,
                 action_squares: bool = False) -> None:
        self.layers, self.act_kind, self.act_dim = layers, act_kind, act_dim
        self.use_actions, self.ok, self.action_squares = use_actions, ok, action_squares

    @classmethod
    def build(cls, ens: RewardEnsemble) -> _FusedMLP:
        members = list(ens.members)
        if not all(isinstance(m, MLPRewardNet) for m in members):
            return cls([], "", 0, False, ok=False)
        m0 = members[0]
        assert isinstance(m0, MLPRewardNet)
        same = all(m.config() == m0.config() for m in members)  # type: ignore[operator]
        if not same:
            return cls([], "", 0, False, ok=False)
        per = [m.folded_layers() for m in members]  # type: ignore[operator]
        k = len(per)
        out_mean = ens.out_mean.double().cpu().numpy()
        out_std = ens.out_std.double().cpu().numpy()
        layers = []
        for li in range(len(per[0])):
            ws, bs = [p[li][0] for p in per], [p[li][1] for p in per]
            if li == len(per[0]) - 1:  # output layer: fold the per-member normalisation
                ws = [w / out_std[j] for j, w in enumerate(ws)]
                bs = [(b - out_mean[j]) / out_std[j] for j, b in enumerate(bs)]
            if li == 0:
                w = np.concatenate(ws, axis=1)
            else:
                w = np.zeros((sum(x.shape[0] for x in ws), sum(x.shape[1] for x in ws)))
                r = c = 0
                for x in ws:
                    w[r:r + x.shape[0], c:c + x.shape[1]] = x
                    r, c = r + x.shape[0], c + x.shape[1]
            layers.append((np.ascontiguousarray(w, np.float32),
                           np.concatenate(bs).astype(np.float32)))
        assert layers[-1][0].shape[1] == k
        return cls(layers, m0.act_kind, m0.act_dim, m0.use_actions,
                   action_squares=m0.action_squares)

    def __call__(self, obs: np.ndarray, acts: np.ndarray) -> np.ndarray:
        n = len(obs)
        x = obs.reshape(n, -1).astype(np.float32, copy=False)
        if self.use_actions:
            if self.act_kind == "discrete":
                a = np.zeros((n, self.act_dim), np.float32)
                a[np.arange(n), acts.reshape(n).astype(np.int64)] = 1.0
            else:
                a = acts.reshape(n, -1).astype(np.float32, copy=False)
                if self.action_squares:
                    a = np.concatenate([a, a * a], axis=1)
            x = np.concatenate([x, a], axis=1)
        for w, b in self.layers[:-1]:
            x = x @ w + b
            x = np.where(x > 0, x, 0.01 * x)
        w, b = self.layers[-1]
        return x @ w + b  # (n, K): normalised member rewards
