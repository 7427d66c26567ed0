"""Convolutional reward network for pixel observations (the paper's Atari predictor).

Christiano et al. 2017, appendix A.2: four convolutional layers of 7x7, 5x5, 3x3 and 3x3
kernels with strides 3, 2, 1, 1 and 16 filters each, every one followed by batch norm, dropout
and a leaky ReLU (slope 0.01); then a dense layer of 64 units and a scalar output. Frames are
uint8, scaled to [0, 1] inside :meth:`CNNRewardNet.forward`; the paper's Atari predictor did
not see actions (``use_actions=False``).

Dropout defaults to the paper's 0.5: on small synthetic data it learns a little slower than
without dropout but stably (240 labels, 3 epochs: about 0.97 pairwise accuracy on fresh
pairs, see ``tests/test_cnn_reward.py``). Batch-norm running statistics (used in eval mode,
i.e. for prediction) need a few dozen optimiser steps to settle, so a very short first
training round should use small batches.

>>> import torch
>>> net = CNNRewardNet((4, 84, 84), "discrete", 6)
>>> net.eval()(torch.zeros(3, 4, 84, 84, dtype=torch.uint8), torch.zeros(3)).shape
torch.Size([3])
>>> net.config()["kind"], net.n_features
('cnn', 784)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from prefrl.reward.nets import RewardNet


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


class CNNRewardNet(RewardNet):
    """Per-step reward of image observations ``(N, C, H, W)`` (or ``(N, H, W, C)``).

    Args:
        obs_shape: shape of one observation, channel-first ``(C, H, W)`` (e.g. ``(4, 84, 84)``
            stacked grey frames) or channel-last ``(H, W, C)`` with ``C <= 4``.
        act_kind: ``"discrete"`` (one-hot) or ``"box"`` (flattened), as for the MLP.
        act_dim: number of discrete actions, or action dimensions.
        channels, kernels, strides: the convolutional stack (no padding).
        hidden: units of the dense layer(s) after the convolutions.
        dropout: dropout probability after every convolutional layer (paper: 0.5).
        batch_norm: batch norm after every convolutional layer (paper: yes).
        use_actions: concatenate the action to the conv features before the dense layer.
        eval_chunk: in eval mode, run at most this many frames at once (bounds the memory of
            large inference batches; eval outputs do not depend on the batch).

    Values are expected in [0, 255] (uint8 frames) and are divided by 255.
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        act_kind: str,
        act_dim: int,
        channels: Sequence[int] = (16, 16, 16, 16),
        kernels: Sequence[int] = (7, 5, 3, 3),
        strides: Sequence[int] = (3, 2, 1, 1),
        hidden: int | Sequence[int] = 64,
        dropout: float = 0.5,
        batch_norm: bool = True,
        use_actions: bool = False,
        eval_chunk: int = 2048,
    ) -> None:
        super().__init__()
        if act_kind not in ("box", "discrete"):
            raise ValueError(f"act_kind must be 'box' or 'discrete', got {act_kind!r}")
        if len(obs_shape) != 3:
            raise ValueError(f"obs_shape must be (C, H, W) or (H, W, C), got {tuple(obs_shape)}")
        if not len(channels) == len(kernels) == len(strides) >= 1:
            raise ValueError("channels, kernels and strides must have the same length >= 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.obs_shape = [int(x) for x in obs_shape]
        self.channels_last = self.obs_shape[-1] <= 4 < self.obs_shape[0]
        c, h, w = (
            (self.obs_shape[2], self.obs_shape[0], self.obs_shape[1])
            if self.channels_last else tuple(self.obs_shape)
        )
        self.act_kind, self.act_dim = act_kind, int(act_dim)
        self.channels, self.kernels = [int(x) for x in channels], [int(x) for x in kernels]
        self.strides = [int(x) for x in strides]
        self.hidden = [int(hidden)] if isinstance(hidden, int) else [int(x) for x in hidden]
        self.dropout, self.batch_norm = float(dropout), bool(batch_norm)
        self.use_actions, self.eval_chunk = bool(use_actions), int(eval_chunk)
        layers: list[nn.Module] = []
        for out_c, k, s in zip(self.channels, self.kernels, self.strides, strict=True):
            h, w = _conv_out(h, k, s), _conv_out(w, k, s)
            if h < 1 or w < 1:
                raise ValueError(f"observation {tuple(obs_shape)} too small for the conv stack")
            layers.append(nn.Conv2d(c, out_c, k, stride=s, bias=not self.batch_norm))
            if self.batch_norm:
                layers.append(nn.BatchNorm2d(out_c))
            if self.dropout > 0:
                layers.append(nn.Dropout(self.dropout))
            layers.append(nn.LeakyReLU(0.01))
            c = out_c
        self.conv = nn.Sequential(*layers, nn.Flatten())
        self.n_features = c * h * w
        in_dim = self.n_features + (self.act_dim if self.use_actions else 0)
        dense: list[nn.Module] = []
        for units in self.hidden:
            dense += [nn.Linear(in_dim, units), nn.LeakyReLU(0.01)]
            in_dim = units
        dense.append(nn.Linear(in_dim, 1))
        self.head = nn.Sequential(*dense)

    def _actions(self, acts: torch.Tensor, n: int) -> torch.Tensor:
        if self.act_kind == "discrete":
            return nn.functional.one_hot(acts.reshape(n).long(), self.act_dim).float()
        a = acts.reshape(n, -1).float()
        if a.shape[1] != self.act_dim:
            raise ValueError(f"expected actions with {self.act_dim} dims, got {a.shape[1]}")
        return a

    def _forward(self, obs: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        n = obs.shape[0]
        x = obs.float() / 255.0
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        x = self.conv(x)
        if self.use_actions:
            x = torch.cat([x, self._actions(acts, n)], dim=1)
        return self.head(x).squeeze(-1)

    def forward(self, obs: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        """Per-step rewards, shape ``(N,)``, of ``obs (N, *obs_shape)`` and ``acts (N, ...)``."""
        if list(obs.shape[1:]) != self.obs_shape:
            raise ValueError(f"expected obs of shape (N, {self.obs_shape}), got {tuple(obs.shape)}")
        n = obs.shape[0]
        if self.training or n <= self.eval_chunk:
            return self._forward(obs, acts)
        acts = acts.reshape(n, -1)
        return torch.cat([
            self._forward(obs[i : i + self.eval_chunk], acts[i : i + self.eval_chunk])
            for i in range(0, n, self.eval_chunk)
        ])

    def config(self) -> dict[str, Any]:
        """Constructor arguments."""
        return {
            "kind": "cnn", "obs_shape": list(self.obs_shape), "act_kind": self.act_kind,
            "act_dim": self.act_dim, "channels": self.channels, "kernels": self.kernels,
            "strides": self.strides, "hidden": self.hidden, "dropout": self.dropout,
            "batch_norm": self.batch_norm, "use_actions": self.use_actions,
            "eval_chunk": self.eval_chunk,
        }
