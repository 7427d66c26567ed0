"""Particle state entropy (PEBBLE's unsupervised pre-training reward).

The reward of a state is the distance to its k-th nearest neighbour among the states seen so
far, in an observation space standardised by those states' mean and std: large where the
agent has rarely been. Distances are computed with ``torch.cdist`` a chunk of the pool at a
time (chunks capped in bytes), keeping a running top-k, so a large pool never builds one big
distance matrix.

>>> import torch
>>> pool = torch.zeros(100, 2)
>>> pool[:, 0] = torch.linspace(0, 1, 100)
>>> d = knn_distance(torch.tensor([[0.5, 0.0], [0.5, 3.0]]), pool, k=5)
>>> bool(d[1] > d[0])
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.running_mean_std import RunningMeanStd


@torch.no_grad()
def knn_distance(x: torch.Tensor, pool: torch.Tensor, k: int = 5,
                 max_chunk_bytes: int = 64 << 20) -> torch.Tensor:
    """Distance from each row of ``x (B, D)`` to its ``k``-th nearest row of ``pool (N, D)``.

    ``pool`` is processed in chunks whose distance matrix stays within ``max_chunk_bytes``.
    With fewer than ``k`` pool rows the farthest one is used.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if len(pool) == 0:
        return torch.zeros(len(x), device=x.device)
    rows = max(1, max_chunk_bytes // (4 * max(1, len(x))))
    best: torch.Tensor | None = None  # (B, <=k) smallest distances so far
    for i in range(0, len(pool), rows):
        d = torch.cdist(x, pool[i : i + rows])
        if best is not None:
            d = torch.cat([best, d], dim=1)
        best = torch.topk(d, min(k, d.shape[1]), dim=1, largest=False).values
    assert best is not None
    return best[:, -1]


class StateEntropy:
    """Intrinsic reward: k-NN distance in standardised observation space, scaled by its std.

    PEBBLE divides the raw distance by a running estimate of its standard deviation, so the
    reward's scale does not drift as the pool grows. ``k + 1`` neighbours are looked up because
    the states scored are themselves in the pool (their nearest neighbour is at distance 0).
    """

    def __init__(self, k: int = 5, max_chunk_bytes: int = 64 << 20) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k, self.max_chunk_bytes = k, max_chunk_bytes
        self.stats = RunningMeanStd(shape=())

    @torch.no_grad()
    def reward(self, states: torch.Tensor, pool: np.ndarray | torch.Tensor,
               update_stats: bool = True) -> torch.Tensor:
        """Intrinsic reward of each row of ``states (B, D)`` given the ``pool (N, D)``."""
        pool_t = torch.as_tensor(pool, device=states.device).float().reshape(len(pool), -1)
        x = states.float().reshape(len(states), -1)
        mean, std = pool_t.mean(0), pool_t.std(0, unbiased=False).clamp_min(1e-6)
        dist = knn_distance((x - mean) / std, (pool_t - mean) / std, self.k + 1,
                            self.max_chunk_bytes)
        if update_stats:
            self.stats.update(dist.cpu().double().numpy())
        return dist / float(np.sqrt(self.stats.var) + 1e-8)

    def state_dict(self) -> dict[str, Any]:
        """Running statistics (plain numbers)."""
        return {"k": self.k, "mean": float(self.stats.mean), "var": float(self.stats.var),
                "count": float(self.stats.count)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.stats.mean = np.asarray(state["mean"], np.float64)
        self.stats.var = np.asarray(state["var"], np.float64)
        self.stats.count = float(state["count"])
