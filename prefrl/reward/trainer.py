"""Train a :class:`~prefrl.reward.ensemble.RewardEnsemble` on labelled clip pairs.

What the paper prescribes, all here: every member trains on its own bootstrap resample of the
training labels; a fixed share (1/e) of labels is held out for validation (chosen by a hash of
the pair, so a label never moves between splits as the set grows); the misclick-aware
Bradley-Terry loss; an L2 coefficient adapted so that validation loss stays about 1.1-1.5x the
training loss; finally each member's output is normalised. :meth:`RewardTrainer.train` returns a
:class:`TrainStats` with losses, accuracies, the L2 coefficient and calibration.

>>> import gymnasium as gym, numpy as np
>>> from prefrl.reward.ensemble import RewardEnsemble
>>> ens = RewardEnsemble.from_spaces(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Box(-1, 1, (1,)))
>>> trainer = RewardTrainer(ens, TrainerConfig(epochs=1), rng=np.random.default_rng(0))
>>> trainer.l2
0.0001
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np
import torch

from prefrl.reward.batched import can_stack
from prefrl.reward.engines import (
    BatchedPath,
    Engine,
    PairSource,
    PerMemberPath,
    TrainingCancelled,
)
from prefrl.reward.ensemble import RewardEnsemble
from prefrl.reward.loss import misclick_bt_loss
from prefrl.reward.metrics import TrainStats, calibration, preference_accuracy
from prefrl.reward.trainer_config import PreferenceData, TrainerConfig, is_validation


class RewardTrainer:
    """Owns the optimisers and the adaptive L2 coefficient of one ensemble."""

    def __init__(
        self, ensemble: RewardEnsemble, config: TrainerConfig | None = None,
        *, rng: np.random.Generator,
    ) -> None:
        self.ensemble = ensemble
        self.config = config or TrainerConfig()
        self.rng = rng
        self.l2 = self.config.l2_init
        self.stop = threading.Event()  # set from another thread to cancel train()
        self.optimizers = [
            torch.optim.Adam(m.parameters(), lr=self.config.lr) for m in ensemble.members
        ]
        self.trained_keys: set[str] = set()  # training labels of earlier train() calls

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Optimiser states, L2 coefficient and RNG state (for checkpoints)."""
        return {
            "l2": self.l2,
            "optimizers": [o.state_dict() for o in self.optimizers],
            "rng": self.rng.bit_generator.state,
            "trained_keys": sorted(self.trained_keys),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.l2 = float(state["l2"])
        for o, s in zip(self.optimizers, state["optimizers"], strict=True):
            o.load_state_dict(s)
        self.rng.bit_generator.state = state["rng"]
        self.trained_keys = set(state.get("trained_keys", []))

    # ------------------------------------------------------------------ training
    def split(self, data: PreferenceData) -> tuple[np.ndarray, np.ndarray]:
        """Indices of training and validation labels."""
        idx = np.arange(len(data))
        if self.config.val_frac == 0:
            return idx, idx[:0]  # every label trains; held-out metrics are NaN
        val = np.array([is_validation(k, self.config.val_frac) for k in data.pair_keys], bool)
        if val.all() or (not val.any() and self.config.val_frac > 0 and len(data) > 3):
            val[:] = False  # degenerate: too few labels for a split; validate on train
            return idx, idx
        return idx[~val], idx[val]

    def _member_returns(
        self, obs: torch.Tensor, acts: torch.Tensor, member: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns of the left and right clips of a :meth:`PairSource.get` batch."""
        b = len(obs) // 2
        dev = self.ensemble.device
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            r = self.ensemble.member_clip_returns(obs, acts, member)
        r = r.float()
        return r[..., :b], r[..., b:]

    def _device_bytes(self, setting: int | None) -> int:
        """A byte cap as configured; None: 1 GiB on CUDA, 64 MiB on the CPU."""
        if setting is not None:
            return setting
        return (1 << 30) if self.ensemble.device.type == "cuda" else (64 << 20)

    def _pairs_per_forward(self, src: PairSource, limit: int) -> int:
        cap = self._device_bytes(self.config.forward_max_bytes)
        return max(1, min(limit, int(cap // max(src.pair_float_bytes, 1))))

    def _chunks(self, src: PairSource, idx: np.ndarray, limit: int) -> list[np.ndarray]:
        step = self._pairs_per_forward(src, limit)
        return [idx[i : i + step] for i in range(0, len(idx), step)]

    def _step(self, m: int, obs: torch.Tensor, acts: torch.Tensor, mu: torch.Tensor,
              per_forward: int) -> None:
        """One optimiser step of member ``m`` on a batch, in micro-batches of ``per_forward``."""
        c, b = self.config, len(mu)
        params = list(self.ensemble.members[m].parameters())
        opt = self.optimizers[m]
        opt.zero_grad(set_to_none=True)
        for i in range(0, b, per_forward):
            j = min(b, i + per_forward)
            if i == 0 and j == b:
                o, a = obs, acts
            else:  # left rows i:j and their right partners b+i:b+j
                o = torch.cat([obs[i:j], obs[b + i : b + j]])
                a = torch.cat([acts[i:j], acts[b + i : b + j]])
            rl, rr = self._member_returns(o, a, m)
            loss = misclick_bt_loss(rl, rr, mu[i:j], c.misclick_eps) * ((j - i) / b)
            if self.l2 > 0 and i == 0:
                loss = loss + self.l2 * sum((p * p).sum() for p in params)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(params, c.max_grad_norm)
        opt.step()

    @torch.no_grad()
    def _evaluate(self, src: PairSource, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-member loss ``(K,)`` and P(right) ``(K, n)`` on ``idx``."""
        self.ensemble.eval()
        k = self.ensemble.n_members
        if len(idx) == 0:
            return np.full(k, np.nan), np.zeros((k, 0))
        rl, rr, mus = [], [], []
        for obs, acts, mu in src.batches(self._chunks(src, idx, 512)):
            a, b = self._member_returns(obs, acts, None)
            rl.append(a)
            rr.append(b)
            mus.append(mu)
        ret_l, ret_r = torch.cat(rl, 1), torch.cat(rr, 1)
        mu_all = torch.cat(mus).to(ret_l.device)
        eps = self.config.misclick_eps
        losses = [float(misclick_bt_loss(ret_l[m], ret_r[m], mu_all, eps)) for m in range(k)]
        self.ensemble.train()
        return np.array(losses), torch.sigmoid(ret_r - ret_l).cpu().numpy()

    def _sample_steps(
        self, src: PairSource, idx: np.ndarray, max_steps: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """At most ``max_steps`` single steps ``(obs, acts)`` from both clips of pairs ``idx``.

        Also at most :attr:`TrainerConfig.sample_max_bytes` of them.
        """
        n_pairs = max(1, min(len(idx), max_steps // max(src.steps_per_pair, 1),
                             int(self.config.sample_max_bytes // max(src.pair_bytes, 1))))
        pick = idx if len(idx) <= n_pairs else self.rng.choice(idx, n_pairs, replace=False)
        obs, acts, _ = src.get(np.sort(pick))
        return obs.flatten(0, 1), acts.flatten(0, 1)

    def _adapt_l2(self, train_loss: float, val_loss: float) -> None:
        c = self.config
        if not c.adapt_l2 or not np.isfinite(val_loss) or train_loss <= 0:
            return
        ratio = val_loss / train_loss
        if ratio > c.l2_ratio_high:
            self.l2 = min(self.l2 * c.l2_factor, c.l2_max)
        elif ratio < c.l2_ratio_low:
            self.l2 = max(self.l2 / c.l2_factor, c.l2_min)

    def _cap(self, idx: np.ndarray, n: int | None = None) -> np.ndarray:
        """A fixed-size random subset of ``idx`` (all of it when small)."""
        n = self.config.eval_max_pairs if n is None else n
        return idx if len(idx) <= n else np.sort(self.rng.choice(idx, n, replace=False))

    def _new_and_old(self, data: PreferenceData, train_idx: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Training labels not trained on before, and those that were (replay off: all new)."""
        if self.config.replay is None or not self.trained_keys:
            return train_idx, train_idx[:0]
        keys = data.pair_keys
        seen = np.array([keys[i] in self.trained_keys for i in train_idx], bool)
        return train_idx[~seen], train_idx[seen]

    def _epoch_set(self, new: np.ndarray, old: np.ndarray) -> np.ndarray:
        """The labels of one epoch: all new ones plus a fresh replayed share of the old."""
        if len(old) == 0:
            return new
        r = self.config.replay or 0.0
        n = min(len(old), max(self.config.replay_min, math.ceil(r * len(new))))
        pick = old if n >= len(old) else self.rng.choice(old, n, replace=False)
        return np.concatenate([new, pick])

    def _engine(self) -> Engine:
        batched = self.config.batched
        if batched is None:
            batched = self.ensemble.device.type == "cuda"
        if batched and can_stack(list(self.ensemble.members)):
            return BatchedPath(self)
        return PerMemberPath(self)

    def train(self, data: PreferenceData, epochs: int | None = None, *,
              normalise: bool = True) -> TrainStats:
        """Train every member for up to ``epochs`` passes over its bootstrap resample.

        ``normalise=False`` leaves the output normalisation to the caller (the learner fits
        it on recent pool clips, which would overwrite the trainer's).
        """
        c = self.config
        epochs = c.epochs if epochs is None else epochs
        start = time.perf_counter()
        train_idx, val_idx = self.split(data)
        no_val = len(val_idx) == 0 and len(train_idx) > 0  # val_frac 0: nothing held out
        has_val = val_idx is not train_idx and not no_val
        src = PairSource(data, self.ensemble.device, self._device_bytes(c.device_data_bytes))
        if not self.ensemble.input_stats_set() and len(train_idx) > 0:
            self.ensemble.set_input_stats(*self._sample_steps(src, train_idx, 200_000))
        n_tr = len(train_idx)
        new_idx, old_idx = self._new_and_old(data, train_idx)
        tr_eval = self._cap(train_idx, c.epoch_eval_pairs)
        va_eval = self._cap(val_idx) if has_val else tr_eval
        va_epoch = self._cap(va_eval, c.epoch_val_pairs) if has_val else va_eval
        engine = self._engine()
        self.ensemble.train()
        pairs_seen = done = bad = 0
        best = float("inf")
        evals: tuple[np.ndarray, ...] | None = None
        best_evals: tuple[np.ndarray, ...] | None = None
        best_snap: Any = None
        for _ in range(epochs if n_tr > 0 else 0):
            pairs_seen += engine.epoch(src, self._epoch_set(new_idx, old_idx))
            done += 1
            tr_loss, tr_p = engine.evaluate(src, tr_eval)
            va_loss, va_p = engine.evaluate(src, va_epoch) if has_val else (tr_loss, tr_p)
            if has_val:
                self._adapt_l2(float(np.mean(tr_loss)), float(np.mean(va_loss)))
            evals = (tr_loss, tr_p, va_loss, va_p)
            if c.patience > 0:
                v = float(np.mean(va_loss))
                if v < best:
                    best, bad, best_evals, best_snap = v, 0, evals, engine.snapshot()
                else:
                    bad += 1
                    if bad >= c.patience:
                        break
        if best_snap is not None and best_evals is not evals:
            engine.restore(best_snap)
            evals = best_evals
        engine.finish()
        train_seconds = time.perf_counter() - start
        self.ensemble.mark_changed()
        self.trained_keys.update(data.pair_keys[i] for i in train_idx)
        if evals is None:  # no epoch ran: diagnostics of the model as it is
            tr_loss, tr_p = engine.evaluate(src, tr_eval)
            va_loss, va_p = engine.evaluate(src, va_eval) if has_val else (tr_loss, tr_p)
        else:
            tr_loss, tr_p, va_loss, va_p = evals
            if len(va_epoch) < len(va_eval):  # the rest of the validation set, once
                rest = np.setdiff1d(va_eval, va_epoch)
                rest_loss, rest_p = engine.evaluate(src, rest)
                va_loss = (va_loss * len(va_epoch) + rest_loss * len(rest)) / len(va_eval)
                va_p, va_eval = np.concatenate([va_p, rest_p], 1), np.concatenate([va_epoch, rest])
        if no_val:  # report no held-out metrics rather than training ones
            va_loss, va_p, va_eval = np.full_like(tr_loss, np.nan), tr_p[:, :0], va_eval[:0]
        mu = np.asarray(data.mu, np.float64)
        mu_tr, mu_va = mu[tr_eval], mu[va_eval]
        eps = c.misclick_eps
        va_mean = va_p.mean(0) if va_p.size else np.zeros(0)
        bins, ece = calibration((1 - eps) * va_mean + eps / 2, mu_va, c.calibration_bins)
        # normalise outputs over (a sample of) the steps of the labelled clips
        if len(data) > 0 and normalise:
            self.ensemble.fit_normalisation(
                *self._sample_steps(src, np.arange(len(data)), c.norm_max_steps))
        return TrainStats(
            n_train=n_tr,
            n_val=len(val_idx) if has_val else 0,
            epochs=done,
            l2=self.l2,
            member_train_loss=[float(x) for x in tr_loss],
            member_val_loss=[float(x) for x in va_loss],
            member_train_acc=[preference_accuracy(p, mu_tr) for p in tr_p],
            member_val_acc=[preference_accuracy(p, mu_va) for p in va_p],
            train_acc=preference_accuracy(tr_p.mean(0), mu_tr) if tr_p.size else float("nan"),
            val_acc=preference_accuracy(va_mean, mu_va) if va_p.size else float("nan"),
            val_loss=float(np.mean(va_loss)),
            calibration=bins,
            ece=ece,
            pairs_per_s=pairs_seen / train_seconds if train_seconds > 0 else float("nan"),
            seconds=train_seconds,
        )


__all__ = ["PreferenceData", "RewardTrainer", "TrainStats", "TrainerConfig", "TrainingCancelled",
           "is_validation"]
