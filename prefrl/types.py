"""Frozen, shape-checked data types shared by every stage of the preference loop.

A :class:`Clip` is a fixed-length slice of one trajectory; a :class:`ClipPair` is what a teacher
is asked about; an :class:`Answer` is what it says; a :class:`Label` is an answer with its
provenance, as stored in the :class:`~prefrl.store.LabelStore`; a :class:`PreferenceDataset`
is labelled pairs as dense arrays (``LabelStore.training_set``).

Conventions: an answer's training target is ``mu`` = P(right clip is better):
``0.0`` = left, ``1.0`` = right, ``0.5`` = equal; a skip ("can't tell") has no value and is
stored but never trained on.

>>> import numpy as np
>>> c = Clip(obs=np.zeros((5, 3), np.float32), acts=np.zeros((5, 1), np.float32),
...          true_rews=np.ones(5, np.float32), env_id="Pendulum-v1")
>>> c.length, float(c.true_return), len(c.hash)
(5, 5.0, 16)
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

FORMAT_VERSION = 1  # version of every file format prefrl writes (store schema has its own)


class Answer(StrEnum):
    """A teacher's answer about a pair (left, right)."""

    LEFT = "left"
    RIGHT = "right"
    EQUAL = "equal"
    SKIP = "skip"  # "can't tell": stored, never trained on

    @property
    def mu(self) -> float | None:
        """Training target mu = P(right is better), or None for a skip."""
        return _ANSWER_MU[self]

    @classmethod
    def from_mu(cls, v: float | None) -> Answer:
        """Inverse of :attr:`mu` (0 -> LEFT, 1 -> RIGHT, 0.5 -> EQUAL, None -> SKIP)."""
        if v is None:
            return cls.SKIP
        for a, av in _ANSWER_MU.items():
            if av is not None and abs(av - v) < 1e-9:
                return a
        raise ValueError(f"label value must be 0, 0.5, 1 or None, got {v!r}")


_ANSWER_MU: dict[Answer, float | None] = {
    Answer.LEFT: 0.0,
    Answer.RIGHT: 1.0,
    Answer.EQUAL: 0.5,
    Answer.SKIP: None,
}


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    if a.flags.writeable:
        a = a.copy() if a.base is not None else a
        a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Clip:
    """A fixed-length slice of a trajectory.

    Attributes:
        obs: ``(T, *obs_shape)`` observations (float32 for vector envs, uint8 frames for pixels).
        acts: ``(T, *act_shape)`` actions (float32 continuous, int64 discrete).
        true_rews: ``(T,)`` hidden true rewards (what synthetic teachers judge by).
        render_state: what is needed to render the clip again, each array with leading dim T,
            e.g. ``{"qpos": (T, nq), "qvel": (T, nv)}`` for MuJoCo or ``{"frames": (T,H,W,C)}``.
        env_id: environment the clip came from.
        source_run: id of the run that produced it.
        step: global environment step at which the clip starts.
    """

    obs: np.ndarray
    acts: np.ndarray
    true_rews: np.ndarray
    env_id: str
    render_state: dict[str, np.ndarray] = field(default_factory=dict)
    source_run: str = ""
    step: int = 0
    _hash: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        t = len(self.obs)
        if t == 0:
            raise ValueError("a clip needs at least one step")
        rews = np.asarray(self.true_rews, dtype=np.float32).reshape(-1)
        if len(self.acts) != t or len(rews) != t:
            raise ValueError(
                f"clip arrays disagree on length: obs {len(self.obs)}, acts {len(self.acts)}, "
                f"true_rews {len(rews)}"
            )
        for k, v in self.render_state.items():
            if len(v) != t:
                raise ValueError(f"render_state[{k!r}] has length {len(v)}, clip has {t}")
        object.__setattr__(self, "obs", _readonly(np.asarray(self.obs)))
        object.__setattr__(self, "acts", _readonly(np.asarray(self.acts)))
        object.__setattr__(self, "true_rews", _readonly(rews))
        rs = {k: _readonly(np.asarray(v)) for k, v in self.render_state.items()}
        object.__setattr__(self, "render_state", rs)
        if not self._hash:
            object.__setattr__(self, "_hash", self._content_hash())

    def _content_hash(self) -> str:
        h = hashlib.sha256()
        h.update(self.env_id.encode())
        for a in (self.obs, self.acts, self.true_rews):
            h.update(str(a.dtype).encode() + str(a.shape).encode())
            h.update(a.tobytes())
        return h.hexdigest()[:16]

    @property
    def hash(self) -> str:
        """Stable 16-hex-digit content hash (env id, observations, actions, rewards)."""
        return self._hash

    @property
    def length(self) -> int:
        """Number of steps T."""
        return len(self.obs)

    @property
    def true_return(self) -> float:
        """Undiscounted sum of the hidden true reward."""
        return float(self.true_rews.sum())

    @property
    def nbytes(self) -> int:
        """Memory held by the clip's arrays."""
        return int(
            self.obs.nbytes + self.acts.nbytes + self.true_rews.nbytes
            + sum(v.nbytes for v in self.render_state.values())
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Clip) and other.hash == self.hash

    def __hash__(self) -> int:
        return hash(self._hash)


def pair_key(a: str, b: str) -> str:
    """Order-free key of a pair of clip hashes: asking (a, b) and (b, a) is the same question."""
    lo, hi = sorted((a, b))
    return f"{lo}:{hi}"


@dataclass(frozen=True)
class ClipPair:
    """Two clips shown side by side. ``left`` and ``right`` must differ."""

    left: Clip
    right: Clip

    def __post_init__(self) -> None:
        if self.left.hash == self.right.hash:
            raise ValueError("a pair needs two different clips")

    @property
    def key(self) -> str:
        """Order-free identity of the question (see :func:`pair_key`)."""
        return pair_key(self.left.hash, self.right.hash)

    def swapped(self) -> ClipPair:
        """The same pair with sides exchanged."""
        return ClipPair(self.right, self.left)


@dataclass(frozen=True)
class Label:
    """An answer about a pair, with provenance.

    ``left``/``right`` are clip hashes; ``source`` is ``"synthetic"`` or ``"human"``.
    """

    left: str
    right: str
    answer: Answer
    source: str = "synthetic"
    annotator: str = ""
    created_at: float = field(default_factory=time.time)
    response_time_s: float | None = None
    query_id: int | None = None

    def __post_init__(self) -> None:
        if self.left == self.right:
            raise ValueError("a label needs two different clips")
        object.__setattr__(self, "answer", Answer(self.answer))
        if self.source not in ("synthetic", "human"):
            raise ValueError(f"label source must be 'synthetic' or 'human', got {self.source!r}")

    @property
    def mu(self) -> float | None:
        """Training target mu = P(right is better); None for a skip."""
        return self.answer.mu

    @property
    def key(self) -> str:
        """Order-free pair key."""
        return pair_key(self.left, self.right)


@dataclass(frozen=True, eq=False)
class PreferenceDataset:
    """Reward-model training data: N labelled pairs of equal-length clips (no skips).

    ``*_obs`` are ``(N, T, *obs_shape)``, ``*_acts`` ``(N, T, *act_shape)``, ``mu`` ``(N,)``
    float32 P(right is better), ``label_ids`` the labels' ids. Empty: arrays of shape ``(0,)``.
    """

    left_obs: np.ndarray
    left_acts: np.ndarray
    right_obs: np.ndarray
    right_acts: np.ndarray
    mu: np.ndarray
    left_hashes: list[str]
    right_hashes: list[str]
    pair_keys: list[str]
    label_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.mu)

    def pairs(self, idx: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """``(left_obs, left_acts, right_obs, right_acts)`` of pairs ``idx`` (None: all)."""
        arrays = (self.left_obs, self.left_acts, self.right_obs, self.right_acts)
        return arrays if idx is None else tuple(a[np.asarray(idx)] for a in arrays)

    def dense_nbytes(self) -> int:
        """Bytes of the four observation and action arrays."""
        return sum(a.nbytes for a in self.pairs())

    def subset(self, idx: np.ndarray) -> PreferenceDataset:
        """Return the pairs selected by integer indices or a boolean mask."""
        idx = np.asarray(idx)
        idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64).reshape(-1)
        pick = [int(i) for i in idx]
        return PreferenceDataset(
            self.left_obs[idx], self.left_acts[idx], self.right_obs[idx], self.right_acts[idx],
            self.mu[idx], [self.left_hashes[i] for i in pick],
            [self.right_hashes[i] for i in pick], [self.pair_keys[i] for i in pick],
            self.label_ids[idx])
