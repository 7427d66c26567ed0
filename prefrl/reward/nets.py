"""Reward networks: map one step ``(obs, action)`` to a scalar reward.

Every network implements :class:`RewardNet`; the ensemble, loss and trainer only see that
interface, so a CNN for pixels joins the same machinery as the MLP for vector observations.

>>> import gymnasium as gym, torch
>>> net = make_reward_net(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-2, 2, (1,)))
>>> net(torch.zeros(5, 3), torch.zeros(5, 1)).shape
torch.Size([5])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn


class RewardNet(nn.Module, ABC):
    """Maps a batch of steps ``obs (N, *obs_shape)``, ``acts (N, *act_shape)`` to ``(N,)``."""

    @abstractmethod
    def forward(self, obs: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        """Per-step rewards, shape ``(N,)``."""

    def config(self) -> dict[str, Any]:
        """JSON-able constructor arguments, to rebuild the net from a checkpoint."""
        return {}


def _act_encoding(act_space: gym.Space) -> tuple[str, int]:
    if isinstance(act_space, gym.spaces.Box):
        return "box", int(np.prod(act_space.shape))
    if isinstance(act_space, gym.spaces.Discrete):
        return "discrete", int(act_space.n)
    raise ValueError(f"unsupported action space {act_space}")


class MLPRewardNet(RewardNet):
    """MLP on flattened observations and actions (one-hot for discrete actions).

    The paper's MuJoCo predictor: two hidden layers of 64 units with leaky ReLU. Inputs are
    standardised with fixed statistics set once from early data (:meth:`set_input_stats`).

    ``action_squares`` appends each action component squared to the input (box actions only).
    MuJoCo's control costs are quadratic in the action, and from 700 labels a small MLP on
    Ant's 105 observation dims does not learn that quadratic by itself
    (``results/falls/ablation-ant``); with the squares as inputs it does.

    ``obs_dims`` restricts the observation features the net sees to those indices (all when
    None). Clips keep every feature; only the net's input is narrowed. On InvertedPendulum,
    whose velocities in random-policy clips mark the fall and so win every informative
    comparison, the cart position and pole angle alone let the model credit being upright
    (``results/falls/ablation-ip-reward-inputs``).
    """

    in_mean: torch.Tensor
    in_std: torch.Tensor
    stats_set: torch.Tensor
    obs_index: torch.Tensor

    def __init__(
        self,
        obs_dim: int,
        act_kind: str,
        act_dim: int,
        hidden: Sequence[int] = (64, 64),
        dropout: float = 0.0,
        use_actions: bool = True,
        action_squares: bool = False,
        obs_dims: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if act_kind not in ("box", "discrete"):
            raise ValueError(f"act_kind must be 'box' or 'discrete', got {act_kind!r}")
        if action_squares and (act_kind != "box" or not use_actions):
            raise ValueError("action_squares needs box actions and use_actions=True")
        self.obs_dim, self.act_kind, self.act_dim = obs_dim, act_kind, act_dim
        self.hidden, self.dropout, self.use_actions = list(hidden), dropout, use_actions
        self.action_squares = bool(action_squares)
        self.obs_dims = None if obs_dims is None else [int(d) for d in obs_dims]
        if self.obs_dims is not None and (
                not self.obs_dims or len(set(self.obs_dims)) != len(self.obs_dims)
                or not all(0 <= d < obs_dim for d in self.obs_dims)):
            raise ValueError(f"obs_dims must be distinct indices in [0, {obs_dim}), "
                             f"got {list(obs_dims or [])}")
        self.obs_in = obs_dim if self.obs_dims is None else len(self.obs_dims)
        """Observation features the net's first layer sees (``obs_dims`` applied)."""
        act_in = act_dim * (2 if self.action_squares else 1)
        in_dim = self.obs_in + (act_in if use_actions else 0)
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(in_dim, h), nn.LeakyReLU(0.01)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            in_dim = h
        layers.append(nn.Linear(in_dim, 1))
        self.body = nn.Sequential(*layers)
        self.register_buffer("in_mean", torch.zeros(self.obs_in + act_in))
        self.register_buffer("in_std", torch.ones(self.obs_in + act_in))
        self.register_buffer("obs_index", torch.tensor(self.obs_dims or [], dtype=torch.long),
                             persistent=False)
        self.register_buffer("stats_set", torch.zeros((), dtype=torch.bool))

    def _inputs(self, obs: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        n = obs.shape[0]
        x = obs.reshape(n, -1).float()
        if x.shape[1] != self.obs_dim:
            raise ValueError(f"expected obs with {self.obs_dim} features, got {x.shape[1]}")
        if self.obs_dims is not None:
            x = x.index_select(1, self.obs_index)
        if self.act_kind == "discrete":
            a = nn.functional.one_hot(acts.reshape(n).long(), self.act_dim).float()
        else:
            a = acts.reshape(n, -1).float()
            if a.shape[1] != self.act_dim:
                raise ValueError(f"expected actions with {self.act_dim} dims, got {a.shape[1]}")
            if self.action_squares:
                a = torch.cat([a, a * a], dim=1)
        return torch.cat([x, a], dim=1)

    @torch.no_grad()
    def set_input_stats(self, obs: torch.Tensor, acts: torch.Tensor) -> None:
        """Fix the input standardisation from a sample of steps (done once, before training)."""
        x = self._inputs(obs, acts)
        self.in_mean.copy_(x.mean(0))
        self.in_std.copy_(x.std(0).clamp_min(1e-3))
        if self.act_kind == "discrete":  # leave one-hot inputs as they are
            self.in_mean[self.obs_in:] = 0.0
            self.in_std[self.obs_in:] = 1.0
        self.stats_set.fill_(True)

    def forward(self, obs: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        """Per-step rewards, shape ``(N,)``."""
        x = (self._inputs(obs, acts) - self.in_mean) / self.in_std
        if not self.use_actions:
            x = x[:, : self.obs_in]
        return self.body(x).squeeze(-1)

    @torch.no_grad()
    def folded_layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(W, b)`` per layer as float64 numpy, input standardisation folded into layer 1.

        ``W`` is ``(in, out)``; hidden layers use leaky ReLU (slope 0.01). Used by the
        ensemble's fused CPU inference path. Layer 1 takes the whole observation (then the
        actions): features left out by ``obs_dims`` get zero rows.
        """
        lin = [m for m in self.body if isinstance(m, nn.Linear)]
        mean = self.in_mean.double().cpu().numpy()
        std = self.in_std.double().cpu().numpy()
        if not self.use_actions:
            mean, std = mean[: self.obs_in], std[: self.obs_in]
        w0 = lin[0].weight.double().cpu().numpy().T / std[:, None]
        b0 = lin[0].bias.double().cpu().numpy() - mean @ w0
        if self.obs_dims is not None:
            full = np.zeros((self.obs_dim + len(w0) - self.obs_in, w0.shape[1]))
            full[self.obs_dims] = w0[: self.obs_in]
            full[self.obs_dim:] = w0[self.obs_in:]
            w0 = full
        out = [(w0, b0)]
        for layer in lin[1:]:
            out.append((layer.weight.double().cpu().numpy().T, layer.bias.double().cpu().numpy()))
        return out

    def config(self) -> dict[str, Any]:
        """Constructor arguments."""
        return {
            "kind": "mlp", "obs_dim": self.obs_dim, "act_kind": self.act_kind,
            "act_dim": self.act_dim, "hidden": self.hidden, "dropout": self.dropout,
            "use_actions": self.use_actions, "action_squares": self.action_squares,
            **({} if self.obs_dims is None else {"obs_dims": list(self.obs_dims)}),
        }


def make_reward_net(
    obs_space: gym.Space, act_space: gym.Space, kind: str = "auto", **kwargs: Any
) -> RewardNet:
    """Build the default reward network for a pair of spaces.

    ``kind="auto"`` picks the MLP for vector observations and the CNN
    (:class:`~prefrl.reward.cnn.CNNRewardNet`) for images. Extra ``kwargs`` go to the net.
    """
    if kind == "auto":
        kind = "cnn" if len(obs_space.shape or ()) == 3 else "mlp"
    act_kind, act_dim = _act_encoding(act_space)
    if kind == "mlp":
        obs_dim = int(np.prod(obs_space.shape or ()))
        return MLPRewardNet(obs_dim, act_kind, act_dim, **kwargs)
    if kind == "cnn":
        from prefrl.reward.cnn import CNNRewardNet

        return CNNRewardNet(tuple(obs_space.shape or ()), act_kind, act_dim, **kwargs)
    raise ValueError(f"unknown reward net kind {kind!r} (available: mlp, cnn)")


def net_from_config(cfg: dict[str, Any]) -> RewardNet:
    """Rebuild a net from :meth:`RewardNet.config`."""
    cfg = dict(cfg)
    kind = cfg.pop("kind")
    if kind == "mlp":
        return MLPRewardNet(**cfg)
    if kind == "cnn":
        from prefrl.reward.cnn import CNNRewardNet

        return CNNRewardNet(**cfg)
    raise ValueError(f"unknown reward net kind {kind!r}")
