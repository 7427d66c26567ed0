"""How the trainer feeds and steps the members: pairs as device tensors, K loops or stacked.

:class:`PairSource` serves labelled pairs as device tensors (all resident when small, else
decoded per batch with the next batch prepared in a thread). :class:`PerMemberPath` trains the
K members in K optimiser loops (any member type); :class:`BatchedPath` trains same-shaped MLP
members as one stacked model (:class:`~prefrl.reward.batched.BatchedEngine`). Both draw each
member's bootstrap resample from the trainer's RNG in the same order, so with the same seed
they see the same batches.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from prefrl.reward.batched import BatchedEngine
from prefrl.reward.ensemble import as_tensor
from prefrl.reward.loss import misclick_bt_loss

if TYPE_CHECKING:
    from prefrl.reward.trainer import PreferenceData, RewardTrainer


class TrainingCancelled(Exception):
    """:meth:`RewardTrainer.train` stopped early because ``trainer.stop`` was set."""


class PairSource:
    """Labelled pairs as device tensors: all resident when small, else fetched per batch."""

    def __init__(self, data: PreferenceData, device: torch.device, resident_bytes: int) -> None:
        self.data, self.device = data, device
        self.mu = torch.as_tensor(np.asarray(data.mu, np.float32), device=device)
        dense = data.dense_nbytes()
        first = data.pairs(np.zeros(1, np.int64)) if len(data) else ()
        self.pair_float_bytes = 4 * sum(a.size for a in first)  # one pair as float32
        self.pair_bytes = sum(a.nbytes for a in first)
        self.steps_per_pair = 2 * first[0].shape[1] if first else 0
        self.resident = ([as_tensor(a, device) for a in data.pairs(None)]
                         if dense <= resident_bytes else None)

    def get(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``obs (2b, T, ...)``, ``acts (2b, T, ...)`` (left clips, then right) and ``mu (b,)``."""
        j = torch.as_tensor(idx, device=self.device)
        if self.resident is not None:
            lo, la, ro, ra = (a[j] for a in self.resident)
        else:
            lo, la, ro, ra = (as_tensor(a, self.device) for a in self.data.pairs(idx))
        return torch.cat([lo, ro]), torch.cat([la, ra]), self.mu[j]

    def batches(
        self, chunks: list[np.ndarray]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """:meth:`get` of each chunk; when not resident the next one is prepared meanwhile."""
        if self.resident is not None or len(chunks) < 2:
            yield from (self.get(c) for c in chunks)
            return
        with ThreadPoolExecutor(1, thread_name_prefix="prefrl-batch") as pool:
            ahead = pool.submit(self.get, chunks[0])
            for nxt in chunks[1:]:
                cur = ahead.result()
                ahead = pool.submit(self.get, nxt)
                yield cur
            yield ahead.result()


class Engine(Protocol):
    """How the members are trained: one by one or as one stacked model."""

    def epoch(self, src: PairSource, idx: np.ndarray) -> int: ...  # noqa: D102 - as below
    def evaluate(self, src: PairSource, idx: np.ndarray  # noqa: D102
                 ) -> tuple[np.ndarray, np.ndarray]: ...
    def snapshot(self) -> Any: ...  # noqa: D102
    def restore(self, snap: Any) -> None: ...  # noqa: D102
    def finish(self) -> None: ...  # noqa: D102


def bootstraps(t: RewardTrainer, idx: np.ndarray) -> list[np.ndarray]:
    """Each member's resample of ``idx`` for one epoch (bootstrap, or a permutation)."""
    return [t.rng.choice(idx, size=len(idx), replace=True) if t.config.bootstrap
            else t.rng.permutation(idx) for _ in t.optimizers]


class PerMemberPath:
    """K separate optimiser loops (any member type)."""

    def __init__(self, t: RewardTrainer) -> None:
        self.t = t

    def epoch(self, src: PairSource, idx: np.ndarray) -> int:
        """One epoch over ``idx``: every member on its own resample; pairs seen."""
        t, bs = self.t, self.t.config.batch_size
        per_forward = t._pairs_per_forward(src, bs)
        seen = 0
        for m, member_idx in enumerate(bootstraps(t, idx)):
            chunks = [member_idx[i : i + bs] for i in range(0, len(member_idx), bs)]
            for obs, acts, mu_b in src.batches(chunks):
                if t.stop.is_set():
                    raise TrainingCancelled("reward training cancelled")
                t._step(m, obs, acts, mu_b, per_forward)
                seen += len(mu_b)
        return seen

    def evaluate(self, src: PairSource, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-member loss ``(K,)`` and P(right) ``(K, n)`` on pairs ``idx``."""
        return self.t._evaluate(src, idx)

    def snapshot(self) -> Any:
        """The current weights, to come back to."""
        return copy.deepcopy(self.t.ensemble.members.state_dict())

    def restore(self, snap: Any) -> None:
        """Back to a :meth:`snapshot`."""
        self.t.ensemble.members.load_state_dict(snap)

    def finish(self) -> None:
        """Leave the members (and optimisers) holding the trained state."""
        pass


class BatchedPath:
    """The K MLP members as one stacked model (:class:`~prefrl.reward.batched.BatchedEngine`)."""

    def __init__(self, t: RewardTrainer) -> None:
        self.t = t
        self.engine = BatchedEngine(list(t.ensemble.members), t.optimizers, t.config.lr)
        self.cuda = t.ensemble.device.type == "cuda"

    def epoch(self, src: PairSource, idx: np.ndarray) -> int:
        """One epoch over ``idx``: every member on its own resample; pairs seen."""
        t, c = self.t, self.t.config
        k, bs = len(t.optimizers), c.batch_size
        per_forward = max(1, t._pairs_per_forward(src, k * bs) // k)
        boots = np.stack(bootstraps(t, idx))  # (K, n)
        chunks = [boots[:, i : i + bs].reshape(-1) for i in range(0, boots.shape[1], bs)]
        for obs, acts, mu_b in src.batches(chunks):
            if t.stop.is_set():
                raise TrainingCancelled("reward training cancelled")
            self.engine.step(obs, acts, mu_b, l2=t.l2, eps=c.misclick_eps,
                             max_grad_norm=c.max_grad_norm, per_forward=per_forward,
                             autocast=self.cuda)
        return boots.size

    def evaluate(self, src: PairSource, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-member loss ``(K,)`` and P(right) ``(K, n)`` on pairs ``idx``."""
        t = self.t
        k = len(t.optimizers)
        if len(idx) == 0:
            return np.full(k, np.nan), np.zeros((k, 0))
        rl, rr, mus = [], [], []
        for obs, acts, mu in src.batches(t._chunks(src, idx, max(1, 512 // k))):
            b = len(mu)
            r = self.engine.clip_returns(obs, acts, self.cuda)
            rl.append(r[:, :b])
            rr.append(r[:, b:])
            mus.append(mu)
        ret_l, ret_r = torch.cat(rl, 1), torch.cat(rr, 1)
        mu_all = torch.cat(mus).to(ret_l.device).expand(k, -1)
        losses = misclick_bt_loss(ret_l, ret_r, mu_all, t.config.misclick_eps,
                                  reduction="none").mean(1)
        return losses.cpu().numpy().astype(np.float64), torch.sigmoid(ret_r - ret_l).cpu().numpy()

    def snapshot(self) -> Any:
        """The current weights, to come back to."""
        return self.engine.snapshot()

    def restore(self, snap: Any) -> None:
        """Back to a :meth:`snapshot`."""
        self.engine.restore(snap)

    def finish(self) -> None:
        """Leave the members (and optimisers) holding the trained state."""
        self.engine.finish()
