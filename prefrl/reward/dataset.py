"""Labelled clip pairs for reward training, kept compactly and updated incrementally.

:class:`LabelledPairs` mirrors the live labels of a :class:`~prefrl.store.LabelStore`. Each
:meth:`LabelledPairs.sync` reads the label rows (cheap) and decodes only the clips it has not
seen yet; a clip used by several pairs is held once (:class:`ClipTable`). Pixel clips are held
compressed: a clip of stacked frames keeps each distinct frame once, zlib-compressed, so a
25-step Atari clip (705,600 bytes as stacked ``(4, 84, 84)`` observations) takes a few kB.
Batches are decoded on demand by :meth:`LabelledPairs.pairs`; memory grows with the number of
labelled clips at their compressed size, never with the number of reward updates.

>>> import numpy as np
>>> table = ClipTable(compress=True)
>>> frames = np.random.default_rng(0).integers(0, 255, (28, 84, 84), dtype=np.uint8)
>>> obs = np.stack([frames[t:t + 4] for t in range(25)])  # (25, 4, 84, 84) stacked frames
>>> table.add("c0", obs, np.zeros((25,), np.int64))
>>> bool(np.array_equal(table.get("c0")[0], obs)), table.nbytes < obs.nbytes / 3
(True, True)
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from prefrl.store import LabelStore

COMPRESS_MIN_BYTES = 16384
"""With ``compress=None`` (auto), uint8 observations of at least this many bytes per clip are
compressed; smaller or float observations (vector envs) are kept as they are: they are small
and decoding them per batch would only cost time."""


@dataclass(frozen=True)
class _Packed:
    """One clip's observations, compressed; ``stack`` > 0: distinct frames of a frame stack."""

    blob: bytes
    shape: tuple[int, ...]
    dtype: np.dtype
    stack: int

    def unpack(self) -> np.ndarray:
        flat = np.frombuffer(zlib.decompress(self.blob), self.dtype)
        if not self.stack:
            return flat.reshape(self.shape)
        t, k = self.shape[0], self.stack
        frames = flat.reshape((t + k - 1, *self.shape[2:]))
        windows = np.lib.stride_tricks.sliding_window_view(frames, k, axis=0)  # (T, ..., K)
        return np.moveaxis(windows, -1, 1)


def _frame_stack(obs: np.ndarray) -> int:
    """K if ``obs`` ``(T, K, ...)`` is a channel-first stack of K consecutive frames, else 0."""
    if obs.ndim < 3 or obs.shape[1] < 2 or len(obs) < 2:
        return 0
    return obs.shape[1] if np.array_equal(obs[1:, :-1], obs[:-1, 1:]) else 0


def pack_obs(obs: np.ndarray) -> _Packed:
    """Compress one clip's observations (each frame of a frame stack once)."""
    k = _frame_stack(obs)
    data = np.concatenate([obs[0], obs[1:, -1]]) if k else obs
    return _Packed(zlib.compress(np.ascontiguousarray(data).tobytes(), 1), obs.shape,
                   obs.dtype, k)


class ClipTable:
    """Observations and actions of clips by hash, each held once (compressed when it pays).

    ``compress``: True, False, or None to decide per clip (see :data:`COMPRESS_MIN_BYTES`).
    """

    def __init__(self, compress: bool | None = None) -> None:
        self.compress = compress
        self._obs: dict[str, np.ndarray | _Packed] = {}
        self._acts: dict[str, np.ndarray] = {}
        self._nbytes = 0

    def __len__(self) -> int:
        return len(self._obs)

    def __contains__(self, h: object) -> bool:
        return h in self._obs

    def hashes(self) -> list[str]:
        """Hashes held, in insertion order."""
        return list(self._obs)

    @property
    def nbytes(self) -> int:
        """Bytes held by the table's arrays and compressed blobs."""
        return self._nbytes

    @staticmethod
    def _size(o: np.ndarray | _Packed) -> int:
        return len(o.blob) if isinstance(o, _Packed) else o.nbytes

    def add(self, h: str, obs: np.ndarray, acts: np.ndarray) -> None:
        """Hold a clip's ``(T, *obs_shape)`` observations and ``(T, *act_shape)`` actions."""
        if h in self._obs:
            return
        obs = np.asarray(obs)
        squeeze = self.compress if self.compress is not None else (
            obs.dtype == np.uint8 and obs.nbytes >= COMPRESS_MIN_BYTES)
        held: np.ndarray | _Packed = pack_obs(obs) if squeeze else np.array(obs)
        self._obs[h] = held
        self._acts[h] = np.array(acts)
        self._nbytes += self._size(held) + self._acts[h].nbytes

    def remove(self, h: str) -> None:
        """Forget a clip (no error if unknown)."""
        held = self._obs.pop(h, None)
        if held is not None:
            self._nbytes -= self._size(held) + self._acts.pop(h).nbytes

    def get(self, h: str) -> tuple[np.ndarray, np.ndarray]:
        """``(obs, acts)`` of one clip (decoded; read-only views may be returned)."""
        held = self._obs[h]
        return (held.unpack() if isinstance(held, _Packed) else held), self._acts[h]

    def gather(self, hashes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Stacked ``(n, T, ...)`` observations and actions of ``hashes`` (fresh arrays)."""
        if not hashes:
            raise ValueError("gather needs at least one hash")
        o0, a0 = self.get(hashes[0])
        obs = np.empty((len(hashes), *o0.shape), o0.dtype)
        acts = np.empty((len(hashes), *a0.shape), a0.dtype)
        obs[0], acts[0] = o0, a0
        for i, h in enumerate(hashes[1:], 1):
            obs[i], acts[i] = self.get(h)
        return obs, acts


class LabelledPairs:
    """The live, non-skip labels of a store with their clips; see the module docstring.

    Satisfies the trainer's ``PreferenceData`` protocol (``mu``, ``pair_keys``, ``pairs``).
    """

    def __init__(self, compress: bool | None = None, decode_chunk: int = 256) -> None:
        self.clips = ClipTable(compress)
        self.decode_chunk = decode_chunk
        self.mu = np.zeros(0, np.float32)
        self.pair_keys: list[str] = []
        self.left_hashes: list[str] = []
        self.right_hashes: list[str] = []
        self.label_ids = np.zeros(0, np.int64)
        self._clip_shape: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def __len__(self) -> int:
        return len(self.mu)

    def sync(self, store: LabelStore) -> int:
        """Catch up with ``store`` (new labels, undos); return how many clips were decoded."""
        from prefrl.store import StoreError

        rows = store.label_rows()
        wanted = dict.fromkeys(h for r in rows for h in (r[1], r[2]))
        for h in [h for h in self.clips.hashes() if h not in wanted]:
            self.clips.remove(h)  # its labels were undone
        new = [h for h in wanted if h not in self.clips]
        for i in range(0, len(new), self.decode_chunk):  # bounded temporary memory
            for clip in store.get_clips(new[i:i + self.decode_chunk], render_state=False):
                shape = ((clip.length, *clip.obs.shape[1:]), clip.acts.shape)
                if self._clip_shape is None or not len(self.clips):
                    self._clip_shape = shape
                elif shape != self._clip_shape:
                    raise StoreError(
                        f"clip {clip.hash} in {store.path} has obs/acts shapes {shape}, earlier "
                        f"labelled clips {self._clip_shape}; training needs equal-length clips "
                        "of one environment")
                self.clips.add(clip.hash, clip.obs, clip.acts)
        self.label_ids = np.array([r[0] for r in rows], np.int64)
        self.left_hashes = [r[1] for r in rows]
        self.right_hashes = [r[2] for r in rows]
        self.pair_keys = [r[3] for r in rows]
        self.mu = np.array([r[4] for r in rows], np.float32)
        return len(new)

    def dense_nbytes(self) -> int:
        """Bytes of all pairs as dense arrays (what :meth:`pairs` of everything returns)."""
        if not len(self):
            return 0
        o, a = self.clips.get(self.left_hashes[0])
        return 2 * len(self) * (o.nbytes + a.nbytes)

    def pairs(self, idx: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """``(left_obs, left_acts, right_obs, right_acts)`` of pairs ``idx`` (None: all)."""
        pick = range(len(self)) if idx is None else np.asarray(idx).reshape(-1).tolist()
        lo, la = self.clips.gather([self.left_hashes[i] for i in pick])
        ro, ra = self.clips.gather([self.right_hashes[i] for i in pick])
        return lo, la, ro, ra
