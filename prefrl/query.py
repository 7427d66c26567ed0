"""Which pairs to ask about, and when.

*Selectors* score an oversampled set of candidate pairs and keep the best ``n``:
:class:`RandomSelector`; :class:`DisagreementSelector` (variance of the members' P(right), the
paper's choice); :class:`EntropySelector` (entropy of the ensemble's mean P(right));
:class:`KCenterDisagreementSelector` (the more disputed half, then pairs far apart from each
other, BPref's ``kcenter_disagree``).
The :class:`LabelSchedule` spends a label budget: a share before RL starts, then at a rate
decaying as ``tau / (T + tau)`` in environment steps T (tau = 2e6 in the paper), scaled so that
exactly the budget is spent by the last step.

>>> s = LabelSchedule(total=100, total_steps=1_000_000, pretrain_frac=0.25)
>>> s.target(0), s.target(1_000_000)
(25, 100)
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Container, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
from scipy.special import expit

from prefrl.reward.ensemble import RewardEnsemble
from prefrl.types import Clip, ClipPair


class PairSource(Protocol):
    """Anything that can draw candidate pairs (``prefrl.segments.SegmentBuffer`` does)."""

    def sample_pairs(
        self, n: int, rng: np.random.Generator | None = None, exclude_keys: Container[str] = ()
    ) -> list[ClipPair]:
        """Up to ``n`` distinct pairs whose keys are not in ``exclude_keys``."""
        ...


CACHE_MAX_CLIPS = 200_000
"""At most this many clips' returns are cached per model version."""


def clip_returns(ensemble: RewardEnsemble, clips: Sequence[Clip]) -> np.ndarray:
    """Every member's normalised return of each clip, ``(K, len(clips))``.

    Each distinct clip is scored once per model version: returns are cached in
    ``ensemble.return_cache`` by clip hash, and the cache is emptied when the model changes
    (``mark_changed``). Clips are stacked a chunk at a time (within
    ``ensemble.max_batch_bytes``), so scoring thousands of pixel clips never builds one huge
    array.
    """
    k = len(ensemble.members)
    if not clips:
        return np.zeros((k, 0), np.float32)
    cache: dict[str, np.ndarray] = getattr(ensemble, "return_cache", {})  # duck-typed: none
    todo = list({c.hash: c for c in clips if c.hash not in cache}.values())
    scored: dict[str, np.ndarray] = {}
    if todo:
        step = ensemble.rows_per_batch(todo[0].obs[None], 1024)
        fresh = np.concatenate([
            ensemble.clip_returns(np.stack([c.obs for c in todo[i : i + step]]),
                                  np.stack([c.acts for c in todo[i : i + step]]))
            for i in range(0, len(todo), step)], axis=1)
        scored = {c.hash: fresh[:, j] for j, c in enumerate(todo)}
        if len(cache) + len(todo) > CACHE_MAX_CLIPS:
            cache.clear()
        cache.update(scored)
    return np.stack([scored[c.hash] if c.hash in scored else cache[c.hash] for c in clips],
                    axis=1).astype(np.float32, copy=False)


def member_p_right(ensemble: RewardEnsemble, pairs: Sequence[ClipPair]) -> np.ndarray:
    """Every member's Bradley-Terry P(right is better), shape ``(K, len(pairs))``.

    Each distinct clip is scored once, however many candidate pairs share it.
    """
    index: dict[str, int] = {}
    clips: list[Clip] = []
    for p in pairs:
        for c in (p.left, p.right):
            if c.hash not in index:
                index[c.hash] = len(clips)
                clips.append(c)
    ret = clip_returns(ensemble, clips)
    left = np.array([index[p.left.hash] for p in pairs], np.int64)
    right = np.array([index[p.right.hash] for p in pairs], np.int64)
    # normalisation shifts both clips equally; the difference is what matters
    return expit(ret[:, right] - ret[:, left])


class QuerySelector(ABC):
    """Scores candidate pairs; higher = more worth asking."""

    name: str = "base"

    def __init__(self, oversample: int = 10) -> None:
        if oversample < 1:
            raise ValueError(f"oversample must be >= 1, got {oversample}")
        self.oversample = oversample

    @abstractmethod
    def score(
        self, pairs: Sequence[ClipPair], ensemble: RewardEnsemble, rng: np.random.Generator
    ) -> np.ndarray:
        """One score per pair."""

    def select(
        self, pairs: Sequence[ClipPair], n: int, ensemble: RewardEnsemble,
        rng: np.random.Generator,
    ) -> list[tuple[ClipPair, float]]:
        """The ``n`` best-scoring pairs with their scores, best first."""
        if n <= 0 or not pairs:
            return []
        scores = self.score(pairs, ensemble, rng)
        return [(pairs[i], float(scores[i])) for i in self.pick(pairs, scores, n)]

    def pick(self, pairs: Sequence[ClipPair], scores: np.ndarray, n: int) -> np.ndarray:
        """Indices of the pairs to ask about, best first: here the ``n`` top scores."""
        return np.argsort(-scores, kind="stable")[:n]

    def choose(
        self, source: PairSource, n: int, ensemble: RewardEnsemble, rng: np.random.Generator,
        exclude_keys: Container[str] = (),
    ) -> list[tuple[ClipPair, float]]:
        """Draw ``n * oversample`` candidates from ``source`` and keep the best ``n``."""
        candidates = source.sample_pairs(n * self.oversample, rng, exclude_keys)
        return self.select(candidates, n, ensemble, rng)


class RandomSelector(QuerySelector):
    """Uniformly random pairs (the baseline)."""

    name = "random"

    def __init__(self, oversample: int = 1) -> None:
        super().__init__(oversample)

    def score(self, pairs: Sequence[ClipPair], ensemble: RewardEnsemble,
              rng: np.random.Generator) -> np.ndarray:
        """Random scores."""
        return rng.random(len(pairs))


class DisagreementSelector(QuerySelector):
    """Variance of the members' P(right): ask where the ensemble disagrees (the paper)."""

    name = "disagreement"

    def score(self, pairs: Sequence[ClipPair], ensemble: RewardEnsemble,
              rng: np.random.Generator) -> np.ndarray:
        """Variance across members."""
        return member_p_right(ensemble, pairs).var(0)


class EntropySelector(QuerySelector):
    """Binary entropy of the ensemble's mean P(right): ask where the model is unsure."""

    name = "entropy"

    def score(self, pairs: Sequence[ClipPair], ensemble: RewardEnsemble,
              rng: np.random.Generator) -> np.ndarray:
        """Entropy in nats."""
        p = np.clip(member_p_right(ensemble, pairs).mean(0), 1e-7, 1 - 1e-7)
        return -(p * np.log(p) + (1 - p) * np.log(1 - p))


KCENTER_MAX_DIMS = 2048
"""Pair features longer than this are randomly projected down to it (distances are kept
approximately, Johnson-Lindenstrauss)."""


def pair_features(pairs: Sequence[ClipPair], max_dims: int = KCENTER_MAX_DIMS) -> np.ndarray:
    """One row per pair: both clips' observations and actions, flattened and standardised.

    Standardised per column over ``pairs``, so no observation dimension dominates by its
    units; rows longer than ``max_dims`` are multiplied by a fixed seeded Gaussian matrix.
    Raises ``ValueError`` for image observations, where raw-pixel distances mean little.
    """
    first = pairs[0].left
    if first.obs.ndim > 2:
        raise ValueError("the kcenter-disagreement selector needs vector observations, "
                         f"got clips of shape {first.obs.shape}")

    def flat(c: Clip) -> np.ndarray:
        return np.concatenate([c.obs.reshape(-1), c.acts.reshape(-1)]).astype(np.float32)

    feats = np.stack([np.concatenate([flat(p.left), flat(p.right)]) for p in pairs])
    feats -= feats.mean(0)
    feats /= feats.std(0) + 1e-6
    if feats.shape[1] > max_dims:
        proj = np.random.default_rng(0).standard_normal((feats.shape[1], max_dims))
        feats = feats @ (proj.astype(np.float32) / np.sqrt(max_dims))
    return feats


def greedy_kcenter(feats: np.ndarray, n: int) -> list[int]:
    """Indices of ``n`` rows chosen greedily, each the farthest from those already chosen.

    Row 0 comes first (the caller puts its most disputed pair there).

    >>> greedy_kcenter(np.array([[0.0], [0.1], [5.0], [10.0]]), 3)
    [0, 3, 2]
    """
    n = min(n, len(feats))
    if n <= 0:
        return []
    chosen = [0]
    dist = np.linalg.norm(feats - feats[0], axis=1)
    for _ in range(n - 1):
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(feats - feats[i], axis=1))
    return chosen


class KCenterDisagreementSelector(DisagreementSelector):
    """The more disputed half of the candidates, thinned to ``n`` pairs far apart (BPref).

    Disagreement alone can spend many labels on near-identical pairs, e.g. two clips of a
    pendulum lying fallen, which a teacher can only call equal. Greedy k-center on the pairs'
    standardised observations and actions (:func:`pair_features`) keeps the chosen pairs
    diverse (Lee et al. 2021, BPref, ``kcenter_disagree``). Scores are the disagreement.
    """

    name = "kcenter-disagreement"

    def pick(self, pairs: Sequence[ClipPair], scores: np.ndarray, n: int) -> np.ndarray:
        """Top half by disagreement (at least ``n``), then greedy k-center, best first."""
        top = np.argsort(-scores, kind="stable")[: max(n, len(pairs) // 2)]
        picked = top[greedy_kcenter(pair_features([pairs[i] for i in top]), n)]
        return picked[np.argsort(-scores[picked], kind="stable")]


SELECTORS: dict[str, type[QuerySelector]] = {
    c.name: c for c in (RandomSelector, DisagreementSelector, EntropySelector,
                        KCenterDisagreementSelector)
}


def make_selector(name: str, oversample: int | None = None) -> QuerySelector:
    """Selector by name (``random``, ``disagreement``, ``entropy``, ``kcenter-disagreement``)."""
    try:
        cls = SELECTORS[name]
    except KeyError:
        known = ", ".join(SELECTORS)
        raise ValueError(f"unknown query selector {name!r}; known: {known}") from None
    return cls() if oversample is None else cls(oversample)


@dataclass
class LabelSchedule:
    """Spend exactly ``total`` labels over ``total_steps`` environment steps.

    ``target(T)`` is the number of labels that should have been asked by step T:
    ``n_pre + (total - n_pre) * log(1 + T/tau) / log(1 + total_steps/tau)``, the integral of a
    rate proportional to ``tau / (T + tau)``; it reaches ``total`` exactly at ``total_steps``.
    """

    total: int
    total_steps: int
    pretrain_frac: float = 0.25
    tau: float = 2e6

    def __post_init__(self) -> None:
        if self.total < 0:
            raise ValueError(f"label budget must be >= 0, got {self.total}")
        if self.total_steps <= 0:
            raise ValueError(f"total_steps must be > 0, got {self.total_steps}")
        if not 0.0 <= self.pretrain_frac <= 1.0:
            raise ValueError(f"pretrain_frac must be in [0, 1], got {self.pretrain_frac}")
        if self.tau <= 0:
            raise ValueError(f"tau must be > 0, got {self.tau}")

    @property
    def n_pretrain(self) -> int:
        """Labels asked before RL starts."""
        return int(round(self.total * self.pretrain_frac))

    def target(self, step: int) -> int:
        """Labels due in total by environment step ``step``."""
        if step >= self.total_steps:
            return self.total
        frac = math.log1p(max(step, 0) / self.tau) / math.log1p(self.total_steps / self.tau)
        return min(self.total, self.n_pretrain + int(math.floor((self.total - self.n_pretrain)
                                                                 * frac)))

    def due(self, step: int, asked: int) -> int:
        """How many more labels to ask now, given ``asked`` so far."""
        return max(0, self.target(step) - asked)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able settings."""
        return asdict(self)


@dataclass
class SessionSchedule(LabelSchedule):
    """Feedback sessions at a fixed step interval (PEBBLE's way), spending exactly ``total``.

    Sessions happen at steps ``start, start + every, ...`` (those before ``total_steps``). The
    first gets ``pretrain_frac`` of the budget (all of it if it is the only one), the others
    share the rest evenly; the last session brings the count to ``total`` exactly. ``tau`` is
    unused.

    >>> s = SessionSchedule(total=100, total_steps=50_000, pretrain_frac=0.2, every=10_000,
    ...                     start=10_000)
    >>> [s.target(t) for t in (9_999, 10_000, 19_999, 20_000, 40_000, 50_000)]
    [0, 20, 20, 46, 100, 100]
    """

    every: int = 10_000
    start: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.every < 1:
            raise ValueError(f"feedback interval must be >= 1 step, got {self.every}")
        if self.start < 0:
            raise ValueError(f"first feedback session must be at step >= 0, got {self.start}")

    @property
    def n_sessions(self) -> int:
        """Number of feedback sessions before ``total_steps`` (at least one)."""
        return max(1, -(-(self.total_steps - self.start) // self.every))

    @property
    def n_pretrain(self) -> int:
        """Labels of the first session."""
        return self.total if self.n_sessions == 1 else int(round(self.total * self.pretrain_frac))

    def target(self, step: int) -> int:
        """Labels due in total by environment step ``step``."""
        if step >= self.total_steps:
            return self.total
        if step < self.start:
            return 0
        n, first = self.n_sessions, self.n_pretrain
        j = min((step - self.start) // self.every, n - 1)  # sessions held after the first
        return first + (self.total - first) * j // (n - 1) if n > 1 else self.total
