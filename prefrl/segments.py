"""Cut fixed-length clips from rollouts and keep a bounded pool of query candidates.

:class:`SegmentBuffer` cuts clips at random offsets of each trajectory it is fed, keeps at most
``capacity`` clips (and at most ``max_bytes`` bytes), evicting the oldest or the least useful
ones, and samples candidate pairs for the query selector. :class:`TrajectoryAccumulator`
gathers steps from a vectorised env into per-env trajectories.

>>> import numpy as np
>>> buf = SegmentBuffer(clip_len=4, capacity=3, rng=np.random.default_rng(0))
>>> for i in range(5):
...     _ = buf.add_trajectory(np.full((10, 2), i, np.float32), np.zeros((10, 1), np.float32),
...                            np.arange(10, dtype=np.float32), env_id="toy")
>>> len(buf), [float(c.obs[0, 0]) for c in buf.clips()]  # oldest evicted first
(3, [2.0, 3.0, 4.0])
>>> pairs = buf.sample_pairs(10)  # only 3 distinct pairs exist
>>> len(pairs), len({p.key for p in pairs})
(3, 3)
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
from collections import OrderedDict
from collections.abc import Container, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from prefrl.types import Clip, ClipPair, pair_key

EvictPolicy = Literal["oldest", "least_useful"]
_EXHAUSTIVE_MAX_PAIRS = 2_000_000  # above this, sample_pairs never enumerates all pairs


class SegmentBuffer:
    """Bounded pool of fixed-length clips, the candidates for preference queries.

    Clips are kept in insertion order. After every add, clips are evicted while the pool holds
    more than ``capacity`` clips or more than ``max_bytes`` bytes: the oldest first
    (``evict="oldest"``), or the one with the lowest usefulness score, oldest among equals
    (``evict="least_useful"``; never-scored clips count as ``+inf``, see :meth:`update_scores`).
    """

    def __init__(
        self,
        clip_len: int,
        *,
        capacity: int = 2000,
        max_bytes: int | None = None,
        clips_per_trajectory: int = 1,
        evict: EvictPolicy = "oldest",
        rng: np.random.Generator,
    ) -> None:
        ints = {"clip_len": clip_len, "capacity": capacity, "max_bytes": max_bytes,
                "clips_per_trajectory": clips_per_trajectory}
        for k, v in ints.items():
            if v is not None and v < 1:
                raise ValueError(f"{k} must be >= 1, got {v}")
        if evict not in ("oldest", "least_useful"):
            raise ValueError(f"evict must be 'oldest' or 'least_useful', got {evict!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
        self.clip_len = int(clip_len)
        self.capacity = int(capacity)
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        self.clips_per_trajectory = int(clips_per_trajectory)
        self.evict: EvictPolicy = evict
        self.rng = rng
        self._clips: OrderedDict[str, Clip] = OrderedDict()  # oldest first
        self._seq: dict[str, int] = {}  # insertion number of each pooled clip
        self._scores: dict[str, float] = {}  # max usefulness score seen (scored clips only)
        self._heap: list[tuple[float, int, str]] = []  # (score, seq, hash), lazy deletion
        self._next_seq = 0
        self._nbytes = 0
        self._list_cache: list[Clip] | None = None

    def add_trajectory(
        self,
        obs: np.ndarray,
        acts: np.ndarray,
        true_rews: np.ndarray,
        *,
        env_id: str,
        render_state: dict[str, np.ndarray] | None = None,
        source_run: str = "",
        start_step: int = 0,
    ) -> list[Clip]:
        """Cut ``clips_per_trajectory`` clips at random offsets, add them and return them.

        All arrays share the leading length ``L``; a trajectory shorter than ``clip_len`` gives
        no clip. Offsets are distinct (fewer clips when ``L - clip_len + 1`` offsets do not
        suffice), each uniform in ``[0, L - clip_len]``; a clip starts at ``start_step + offset``.
        The returned clips are sorted by offset; some may already be gone again if the caps
        evicted them straight away (a duplicate of a pooled clip is not added twice).
        """
        obs, acts, rews = np.asarray(obs), np.asarray(acts), np.asarray(true_rews)
        if rews.ndim == 2 and rews.shape[1] == 1:
            rews = rews[:, 0]
        if rews.ndim != 1:
            raise ValueError(f"true_rews must have shape (L,), got {rews.shape}")
        length = len(rews)
        lens = {"obs": len(obs), "acts": len(acts), "true_rews": length}
        for k, v in (render_state or {}).items():
            lens[f"render_state[{k!r}]"] = len(v)
        if len(set(lens.values())) != 1:
            detail = ", ".join(f"{k} {n}" for k, n in lens.items())
            raise ValueError(f"trajectory arrays disagree on length: {detail}")
        if length < self.clip_len:
            return []
        n_off = length - self.clip_len + 1
        n_clips = min(self.clips_per_trajectory, n_off)
        if n_clips == 1:
            offsets = [int(self.rng.integers(n_off))]
        else:
            offsets = sorted(int(o) for o in self.rng.choice(n_off, n_clips, replace=False))
        out = []
        for off in offsets:
            sl = slice(off, off + self.clip_len)
            rs = {key: v[sl] for key, v in (render_state or {}).items()}
            clip = Clip(obs=obs[sl], acts=acts[sl], true_rews=rews[sl], env_id=env_id,
                        render_state=rs, source_run=source_run, step=int(start_step) + off)
            self.add_clip(clip)
            out.append(clip)
        return out

    def add_clip(self, clip: Clip) -> bool:
        """Add one clip (then evict to respect the caps); return False for a duplicate hash.

        Raises ValueError if the clip's length is not ``clip_len`` or if the clip alone is
        larger than ``max_bytes``.
        """
        if clip.length != self.clip_len:
            raise ValueError(f"clip has length {clip.length}, buffer clip_len is {self.clip_len}")
        if self.max_bytes is not None and clip.nbytes > self.max_bytes:
            raise ValueError(f"clip of {clip.nbytes} bytes exceeds max_bytes={self.max_bytes}")
        h = clip.hash
        if h in self._clips:
            return False
        self._insert(clip, math.inf)
        self._enforce_caps()
        return True

    def _insert(self, clip: Clip, score: float) -> None:
        h = clip.hash
        seq = self._next_seq
        self._next_seq += 1
        self._clips[h] = clip
        self._seq[h] = seq
        self._nbytes += clip.nbytes
        self._list_cache = None
        if score != math.inf:
            self._scores[h] = score
        if self.evict == "least_useful":
            heapq.heappush(self._heap, (score, seq, h))

    def _over_caps(self) -> bool:
        if len(self._clips) > self.capacity:
            return True
        return self.max_bytes is not None and self._nbytes > self.max_bytes

    def _enforce_caps(self) -> None:
        while self._clips and self._over_caps():
            self._remove(self._victim())

    def _victim(self) -> str:
        if self.evict == "oldest":
            return next(iter(self._clips))
        while self._heap:
            score, seq, h = self._heap[0]
            if self._seq.get(h) == seq and self._scores.get(h, math.inf) == score:
                return h
            heapq.heappop(self._heap)  # stale entry
        raise RuntimeError("eviction heap out of sync with the pool")  # pragma: no cover

    def _remove(self, h: str) -> None:
        clip = self._clips.pop(h)
        self._nbytes -= clip.nbytes
        del self._seq[h]
        self._scores.pop(h, None)
        self._list_cache = None

    def update_scores(self, hashes: Sequence[str], scores: Sequence[float]) -> None:
        """Record usefulness scores (e.g. disagreement) of pooled clips; keeps the max per clip.

        Unknown hashes (clips already evicted) are ignored; NaN scores are ignored.
        """
        if len(hashes) != len(scores):
            raise ValueError(f"got {len(hashes)} hashes but {len(scores)} scores")
        for h, s in zip(hashes, scores, strict=True):
            s = float(s)
            if h not in self._clips or math.isnan(s):
                continue
            old = self._scores.get(h)
            if old is not None and old >= s:
                continue
            self._scores[h] = s
            if self.evict == "least_useful":
                heapq.heappush(self._heap, (s, self._seq[h], h))
        if len(self._heap) > 2 * len(self._clips) + 64:  # compact away stale entries
            self._heap = [(self._scores.get(h, math.inf), self._seq[h], h) for h in self._clips]
            heapq.heapify(self._heap)

    def score(self, h: str) -> float:
        """Return a pooled clip's usefulness score (``inf`` if never scored)."""
        if h not in self._clips:
            raise KeyError(f"clip {h!r} is not in the buffer")
        return self._scores.get(h, math.inf)

    def sample_pairs(
        self,
        n: int,
        rng: np.random.Generator | None = None,
        exclude_keys: Container[str] = (),
    ) -> list[ClipPair]:
        """Sample up to ``n`` distinct pairs of two different pooled clips, sides at random.

        No pair repeats (order-free, see :func:`~prefrl.types.pair_key`) and none has its key
        in ``exclude_keys``; fewer are returned when the pool cannot supply ``n``. Uses the
        buffer's rng unless ``rng`` is given.
        """
        rng = self.rng if rng is None else rng
        clips = self.clips()
        m = len(clips)
        total = m * (m - 1) // 2
        if n <= 0 or total == 0:
            return []
        out: list[ClipPair] = []
        seen: set[str] = set()

        def take(i: int, j: int) -> None:
            key = pair_key(clips[i].hash, clips[j].hash)
            if key not in seen and key not in exclude_keys:
                seen.add(key)
                out.append(ClipPair(clips[i], clips[j]))

        if total > 8 * n + 64:  # sparse: rejection sampling with a bounded budget
            budget = 50 * n + 1000
            while len(out) < n and budget > 0:
                b = min(budget, 2 * (n - len(out)) + 16)
                budget -= b
                ii = rng.integers(m, size=b)
                jj = rng.integers(m - 1, size=b)
                jj += jj >= ii  # j uniform over the other m - 1 clips
                for i, j in zip(ii.tolist(), jj.tolist(), strict=True):
                    take(i, j)
                    if len(out) == n:
                        return out
            if len(out) == n or total > _EXHAUSTIVE_MAX_PAIRS:
                return out
        # dense (or rejection ran dry): walk all pairs in random order
        iu, ju = np.triu_indices(m, 1)
        order = rng.permutation(total)
        flip = rng.random(total) < 0.5
        for t in order.tolist():
            i, j = int(iu[t]), int(ju[t])
            if flip[t]:
                i, j = j, i
            take(i, j)
            if len(out) == n:
                break
        return out

    def __len__(self) -> int:
        return len(self._clips)

    def __contains__(self, h: object) -> bool:
        if isinstance(h, Clip):
            h = h.hash
        return h in self._clips

    @property
    def nbytes(self) -> int:
        """Bytes held by the pooled clips' arrays."""
        return self._nbytes

    def clips(self) -> list[Clip]:
        """All pooled clips, oldest first."""
        if self._list_cache is None:
            self._list_cache = list(self._clips.values())
        return list(self._list_cache)

    def get(self, h: str) -> Clip:
        """Return the pooled clip with hash ``h`` (KeyError if absent)."""
        try:
            return self._clips[h]
        except KeyError:
            raise KeyError(f"clip {h!r} is not in the buffer") from None

    def recent(self, n: int) -> list[Clip]:
        """Return the ``n`` newest clips, oldest of them first."""
        if n <= 0:
            return []
        newest = list(itertools.islice(reversed(self._clips.values()), n))
        return newest[::-1]

    def state_dict(self) -> dict[str, Any]:
        """Return pool contents, order, scores and RNG state as numpy arrays, ints and strings.

        Safe for ``np.savez`` / ``np.load(allow_pickle=False)``. Clips are grouped by array
        shapes/dtypes; ``g{k}_obs`` etc. stack the clips of group ``k`` in pool order.
        """
        clips = self.clips()
        sigs: dict[tuple, int] = {}
        group = np.array([sigs.setdefault(_signature(c), len(sigs)) for c in clips], np.int64)
        d: dict[str, Any] = {
            "clip_len": self.clip_len,
            "n_groups": len(sigs),
            "rng_state": json.dumps(self.rng.bit_generator.state),
            "hashes": np.array([c.hash for c in clips], dtype=np.str_),
            "env_ids": np.array([c.env_id for c in clips], dtype=np.str_),
            "source_runs": np.array([c.source_run for c in clips], dtype=np.str_),
            "steps": np.array([c.step for c in clips], dtype=np.int64),
            "scores": np.array([self._scores.get(c.hash, math.inf) for c in clips], np.float64),
            "group": group,
        }
        for g in range(len(sigs)):
            cs = [c for c, k in zip(clips, group.tolist(), strict=True) if k == g]
            keys = sorted(cs[0].render_state)
            d[f"g{g}_obs"] = np.stack([c.obs for c in cs])
            d[f"g{g}_acts"] = np.stack([c.acts for c in cs])
            d[f"g{g}_true_rews"] = np.stack([c.true_rews for c in cs])
            d[f"g{g}_rs_keys"] = np.array(keys, dtype=np.str_)
            for j, key in enumerate(keys):
                d[f"g{g}_rs{j}"] = np.stack([c.render_state[key] for c in cs])
        return d

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Replace the pool with the one in ``d`` (from :meth:`state_dict`, possibly via npz).

        ``clip_len`` must match; this buffer's own caps and eviction policy apply afterwards.
        """
        if int(d["clip_len"]) != self.clip_len:
            raise ValueError(f"state has clip_len {int(d['clip_len'])}, buffer has {self.clip_len}")
        groups = []  # read every array once (an NpzFile re-reads on each access)
        for g in range(int(d["n_groups"])):
            keys = [str(k) for k in np.asarray(d[f"g{g}_rs_keys"]).reshape(-1).tolist()]
            rs = {k: np.asarray(d[f"g{g}_rs{j}"]) for j, k in enumerate(keys)}
            arrs = [np.asarray(d[f"g{g}_{f}"]) for f in ("obs", "acts", "true_rews")]
            groups.append((*arrs, rs))
        meta = zip(
            *(np.asarray(d[k]).tolist() for k in ("hashes", "env_ids", "source_runs", "steps")),
            np.asarray(d["scores"], np.float64).tolist(),
            np.asarray(d["group"]).tolist(),
            strict=True,
        )
        pos = [0] * len(groups)
        loaded: list[tuple[Clip, float]] = []
        for i, (h, env_id, run, step, score, g) in enumerate(meta):
            p, (obs, acts, rews, rs) = pos[g], groups[g]
            pos[g] += 1
            clip = Clip(obs=obs[p], acts=acts[p], true_rews=rews[p], env_id=str(env_id),
                        render_state={k: v[p] for k, v in rs.items()}, source_run=str(run),
                        step=int(step))
            if clip.hash != h:
                raise ValueError(f"clip {i}: content hash {clip.hash} != stored hash {h}")
            loaded.append((clip, float(score)))
        self._clips.clear()
        self._seq.clear()
        self._scores.clear()
        self._heap.clear()
        self._nbytes = 0
        self._list_cache = None
        for clip, score in loaded:
            self._insert(clip, score)
        self.rng.bit_generator.state = json.loads(str(d["rng_state"]))
        self._enforce_caps()


def _signature(c: Clip) -> tuple:
    rs = tuple(sorted((k, v.shape, v.dtype.str) for k, v in c.render_state.items()))
    return (c.obs.shape, c.obs.dtype.str, c.acts.shape, c.acts.dtype.str, rs)


from prefrl.trajectories import TrajectoryAccumulator  # noqa: E402,F401 - re-export
