"""SQLite-backed store of clips, queries and labels: one file per run, shared by processes.

A trainer and a labelling GUI may use the same file at once (WAL mode, 30 s busy timeout).
Every write is one transaction, so killing a process never loses a committed label. The schema
is versioned (``meta.schema_version``) and upgraded on open by ``_MIGRATIONS``.

Export and import (``labels.jsonl`` + ``clips.npz``) live in :mod:`prefrl.store_io`.

>>> import tempfile, numpy as np
>>> from prefrl.types import Answer, Clip, ClipPair, Label
>>> def clip(v):
...     return Clip(obs=np.full((4, 2), v, np.float32), acts=np.zeros((4, 1), np.float32),
...                 true_rews=np.full(4, v, np.float32), env_id="demo")
>>> with tempfile.TemporaryDirectory() as d, LabelStore(f"{d}/run.db") as store:
...     qid = store.add_query(ClipPair(clip(0), clip(1)), selector="random", score=0.0)
...     _ = store.add_label(Label(clip(0).hash, clip(1).hash, Answer.RIGHT, query_id=qid))
...     ds = store.training_set()
...     (len(ds), ds.left_obs.shape, float(ds.mu[0]), store.pending_queries())
(1, (1, 4, 2), 1.0, [])
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prefrl.store_codec import decode_clip, encode_clip
from prefrl.store_schema import (
    APPLICATION,
    SCHEMA_VERSION,
    StoreError,
    db_error,
    open_connection,
)
from prefrl.types import Answer, Clip, ClipPair, Label, PreferenceDataset

__all__ = ["APPLICATION", "SCHEMA_VERSION", "DuplicateQueryError", "LabelStore",
           "PreferenceDataset", "QueryRecord", "StoreError"]

_LABEL_COLS = ('id, query_id, "left", "right", answer, source, annotator, created_at, '
               "response_time_s, undone")
_QUERY_COLS = 'id, "left", "right", pair_key, selector, score, asked_at, env_step, status'
_TRAINING_ROWS = ('SELECT id, "left", "right", pair_key, value FROM labels '
                  "WHERE undone = 0 AND answer != 'skip' ORDER BY id")


class DuplicateQueryError(StoreError):
    """The pair (in either order) was already asked."""


@dataclass(frozen=True)
class QueryRecord:
    """A question put to a teacher, as stored; ``status`` is pending, answered or skipped."""

    id: int
    left: str
    right: str
    pair_key: str
    selector: str
    score: float
    asked_at: float
    env_step: int
    status: str


def _label(row: tuple[Any, ...]) -> Label:
    _, qid, left, right, answer, source, annotator, created_at, rt, _ = row
    return Label(left, right, Answer(answer), source, annotator, created_at, rt, qid)


class LabelStore:
    """Clips, queries and labels of one run in one SQLite file (see the module docstring).

    Thread-safe (one connection behind a lock) and shareable between processes.
    ``check=False`` skips the ``PRAGMA quick_check`` integrity scan on open.
    """

    def __init__(self, path: str | Path, *, create: bool = True, check: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = open_connection(self.path, create=create,
                                                                check=check)

    def _db_error(self, e: sqlite3.DatabaseError, what: str) -> StoreError:
        return db_error(self.path, e, what)

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise StoreError(f"label store {self.path} is closed")
            try:
                yield self._conn
            except sqlite3.DatabaseError as e:
                raise self._db_error(e, "failed") from e

    @contextmanager
    def _tx(self, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        """One transaction: IMMEDIATE (write lock up front) or DEFERRED (consistent reads)."""
        with self._locked() as conn:
            conn.execute(f"BEGIN {mode}")
            try:
                yield conn
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.rollback()

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._locked() as conn:
            return conn.execute(sql, args).fetchall()

    def close(self) -> None:
        """Checkpoint the WAL into the main file (best effort) and close; idempotent."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                conn.execute("PRAGMA busy_timeout = 2000")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # another process is busy with the file; the WAL stays valid
            finally:
                conn.close()

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put_meta(self, key: str, value: str) -> None:
        """Store run-level info (keys ``application`` and ``schema_version`` are reserved)."""
        if key in ("application", "schema_version"):
            raise ValueError(f"meta key {key!r} is reserved")
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, str(value)))

    def get_meta(self, key: str) -> str | None:
        """Return run-level info stored with :meth:`put_meta`, or None."""
        rows = self._q("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    # -- clips -----------------------------------------------------------------------------
    @staticmethod
    def _insert_clip(conn: sqlite3.Connection, clip: Clip) -> bool:
        if conn.execute("SELECT 1 FROM clips WHERE hash = ?", (clip.hash,)).fetchone():
            return False  # skip compressing a clip that is already stored
        cur = conn.execute("INSERT OR IGNORE INTO clips VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (
            clip.hash, clip.env_id, clip.source_run, int(clip.step), clip.length,
            clip.true_return, encode_clip(clip), time.time()))
        return cur.rowcount == 1

    def add_clip(self, clip: Clip) -> bool:
        """Store a clip; False if it was already there."""
        with self._tx() as conn:
            return self._insert_clip(conn, clip)

    def add_clips(self, clips: Iterable[Clip]) -> int:
        """Store clips in one transaction; returns how many were new."""
        with self._tx() as conn:
            return sum(self._insert_clip(conn, c) for c in clips)

    def _load_clips(self, conn: sqlite3.Connection, hashes: Iterable[str],
                    render_state: bool = True) -> dict[str, Clip]:
        want, out = list(dict.fromkeys(hashes)), {}
        for i in range(0, len(want), 500):
            chunk = want[i:i + 500]
            for h, env_id, run, step, blob in conn.execute(
                    "SELECT hash, env_id, source_run, step, data FROM clips WHERE hash IN "
                    f"({','.join('?' * len(chunk))})", chunk):
                out[h] = decode_clip(blob, (env_id, run, step), h, str(self.path), render_state)
        missing = [h for h in want if h not in out]
        if missing:
            raise KeyError(f"clip {missing[0]!r} is not in label store {self.path}"
                           + (f" (nor are {len(missing) - 1} more)" if len(missing) > 1 else ""))
        return {h: out[h] for h in want}  # in the order asked

    def get_clip(self, hash: str) -> Clip:
        """Return the clip with this hash (KeyError if unknown, StoreError if corrupt)."""
        return self.get_clips([hash])[0]

    def get_clips(self, hashes: Iterable[str], *, render_state: bool = True) -> list[Clip]:
        """Return clips in the order asked (``render_state=False``: without it, faster)."""
        hashes = list(hashes)
        with self._tx("DEFERRED") as conn:
            clips = self._load_clips(conn, hashes, render_state)
        return [clips[h] for h in hashes]

    def has_clip(self, hash: str) -> bool:
        """Whether a clip with this hash is stored."""
        return bool(self._q("SELECT 1 FROM clips WHERE hash = ?", (hash,)))

    def clip_hashes(self) -> list[str]:
        """Return the hashes of all clips, in insertion order."""
        return [r[0] for r in self._q("SELECT hash FROM clips ORDER BY rowid")]

    def n_clips(self) -> int:
        """Count stored clips."""
        return int(self._q("SELECT COUNT(*) FROM clips")[0][0])

    # -- queries ---------------------------------------------------------------------------
    def _insert_query(self, conn: sqlite3.Connection, pair: ClipPair, selector: str,
                      score: float, env_step: int) -> int:
        if not math.isfinite(score):
            raise ValueError(f"query score must be finite, got {score!r}")
        row = conn.execute("SELECT id FROM queries WHERE pair_key = ?", (pair.key,)).fetchone()
        if row is not None:
            raise DuplicateQueryError(f"pair {pair.key} was already asked (query {row[0]})")
        self._insert_clip(conn, pair.left)
        self._insert_clip(conn, pair.right)
        return int(conn.execute(
            f"INSERT INTO queries({_QUERY_COLS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, 'pending')",
            (pair.left.hash, pair.right.hash, pair.key, selector, float(score), time.time(),
             int(env_step))).lastrowid or 0)

    def add_query(self, pair: ClipPair, selector: str, score: float, env_step: int = 0) -> int:
        """Record that ``pair`` is asked, storing its clips; returns the query id.

        Raises DuplicateQueryError if the pair was asked before (in either order).
        """
        return self.add_queries([(pair, score)], selector, env_step)[0]

    def add_queries(self, chosen: Iterable[tuple[ClipPair, float]], selector: str,
                    env_step: int = 0,
                    answer: Callable[[ClipPair, int], Label] | None = None) -> list[int]:
        """Record many ``(pair, score)`` queries in one transaction; returns their ids.

        ``answer(pair, query_id)``, if given, labels each query in the same transaction (a
        synthetic teacher). All or nothing: one commit (one fsync) for the whole batch, where
        a query and a label each would cost a commit of their own.
        """
        with self._tx() as conn:
            qids = []
            for pair, score in chosen:
                qids.append(self._insert_query(conn, pair, selector, score, env_step))
                if answer is not None:
                    self._insert_label(conn, answer(pair, qids[-1]))
            return qids

    def has_asked(self, key: str) -> bool:
        """Whether the pair with this :func:`~prefrl.types.pair_key` was ever asked."""
        return bool(self._q("SELECT 1 FROM queries WHERE pair_key = ?", (key,)))

    def asked_keys(self) -> set[str]:
        """Return the pair keys of all queries ever asked."""
        return {r[0] for r in self._q("SELECT pair_key FROM queries")}

    def queries(self, status: str | None = None, limit: int | None = None) -> list[QueryRecord]:
        """Return queries (all, or those with one status), oldest first."""
        where = "WHERE status = ?" if status else "WHERE ? IS NULL"
        return [QueryRecord(*r) for r in self._q(
            f"SELECT {_QUERY_COLS} FROM queries {where} ORDER BY id LIMIT ?",
            (status, -1 if limit is None else int(limit)))]

    def query(self, query_id: int) -> QueryRecord | None:
        """Return the query with this id, or None."""
        rows = self._q(f"SELECT {_QUERY_COLS} FROM queries WHERE id = ?", (int(query_id),))
        return QueryRecord(*rows[0]) if rows else None

    def pending_queries(self, limit: int | None = None) -> list[QueryRecord]:
        """Return unanswered queries, oldest first."""
        return self.queries("pending", limit)

    def n_queries(self) -> int:
        """Count queries ever asked."""
        return int(self._q("SELECT COUNT(*) FROM queries")[0][0])

    # -- labels ----------------------------------------------------------------------------
    @staticmethod
    def _refresh_status(conn: sqlite3.Connection, query_id: int) -> None:
        """Set a query's status from its live labels: answered > skipped > pending."""
        real, n = conn.execute("SELECT COALESCE(SUM(answer != 'skip'), 0), COUNT(*) FROM labels "
                               "WHERE query_id = ? AND undone = 0", (query_id,)).fetchone()
        status = "answered" if real else "skipped" if n else "pending"
        conn.execute("UPDATE queries SET status = ? WHERE id = ?", (status, query_id))

    def _insert_label(self, conn: sqlite3.Connection, label: Label, undone: bool = False) -> int:
        if not all(math.isfinite(x) for x in (label.created_at, label.response_time_s or 0.0)):
            raise ValueError(f"label times must be finite, got {label!r}")
        if conn.execute("SELECT COUNT(*) FROM clips WHERE hash IN (?, ?)",
                        (label.left, label.right)).fetchone()[0] != 2:
            raise StoreError(f"label for {label.key}: both clips must be in {self.path} first")
        if label.query_id is not None:
            row = conn.execute("SELECT pair_key FROM queries WHERE id = ?",
                               (label.query_id,)).fetchone()
            if row is None or row[0] != label.key:
                raise StoreError(f"label for {label.key} names query {label.query_id}, which "
                                 f"{'does not exist' if row is None else 'asked another pair'}")
        cur = conn.execute(
            f"INSERT INTO labels({_LABEL_COLS}, pair_key, value) "
            "VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (label.query_id, label.left, label.right, label.answer.value, label.source,
             label.annotator, float(label.created_at), label.response_time_s, int(undone),
             label.key, label.mu))
        if label.query_id is not None:
            self._refresh_status(conn, label.query_id)
        return int(cur.lastrowid or 0)

    def add_label(self, label: Label) -> int:
        """Store a label (its clips must be stored); marks its query answered or skipped."""
        with self._tx() as conn:
            return self._insert_label(conn, label)

    def add_labels(self, labels: Iterable[Label]) -> list[int]:
        """Store many labels in one transaction; returns their ids."""
        with self._tx() as conn:
            return [self._insert_label(conn, lab) for lab in labels]

    def undo_last_label(self, annotator: str) -> Label | None:
        """Mark ``annotator``'s latest live label undone and reopen its query; None if none."""
        with self._tx() as conn:
            row = conn.execute(f"SELECT {_LABEL_COLS} FROM labels WHERE annotator = ? AND "
                               "undone = 0 ORDER BY id DESC LIMIT 1", (annotator,)).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE labels SET undone = 1 WHERE id = ?", (row[0],))
            if row[1] is not None:
                self._refresh_status(conn, row[1])
            return _label(row)

    def labels(self, include_skips: bool = True, include_undone: bool = False) -> list[Label]:
        """Return labels in id order."""
        return [lab for _, lab in self._labels(0, include_skips, include_undone)]

    def labels_since(self, label_id: int, *, include_skips: bool = True) -> list[tuple[int, Label]]:
        """Return live labels with id > ``label_id`` as (id, label), for a polling trainer.

        Undos are not reported; watch :meth:`n_labels` or rebuild :meth:`training_set`.
        """
        return self._labels(label_id, include_skips, False)

    def _labels(self, after: int, skips: bool, undone: bool) -> list[tuple[int, Label]]:
        cond = ("" if skips else " AND answer != 'skip'") + ("" if undone else " AND undone = 0")
        rows = self._q(f"SELECT {_LABEL_COLS} FROM labels WHERE id > ?{cond} ORDER BY id", (after,))
        return [(r[0], _label(r)) for r in rows]

    def n_labels(self, include_skips: bool = False) -> int:
        """Count live (not undone) labels."""
        cond = "" if include_skips else " AND answer != 'skip'"
        return int(self._q(f"SELECT COUNT(*) FROM labels WHERE undone = 0{cond}")[0][0])

    def label_rows(self) -> list[tuple[int, str, str, str, float]]:
        """``(id, left, right, pair_key, mu)`` of every live, non-skip label, in id order."""
        return [tuple(r) for r in self._q(_TRAINING_ROWS)]  # type: ignore[misc]

    def training_set(self) -> PreferenceDataset:
        """All live, non-skip labels with their clips' observations and actions, as dense arrays.

        Decodes every clip each call; a trainer that polls should keep a
        :class:`prefrl.reward.dataset.LabelledPairs` and ``sync`` it instead.
        """
        with self._tx("DEFERRED") as conn:
            rows = conn.execute(_TRAINING_ROWS).fetchall()
            clips = self._load_clips(conn, [h for r in rows for h in r[1:3]], False)
        if len(lengths := {c.length for c in clips.values()}) > 1:
            raise StoreError(f"clips in {self.path} have different lengths {sorted(lengths)}; "
                             "training needs equal-length clips")

        def stack(col: int, attr: str) -> np.ndarray:
            try:
                return np.stack([getattr(clips[r[col]], attr) for r in rows]) if rows else \
                    np.zeros((0,), np.float32)
            except ValueError as e:
                raise StoreError(f"clips in {self.path} disagree on {attr} shape: {e}") from e

        return PreferenceDataset(
            stack(1, "obs"), stack(1, "acts"), stack(2, "obs"), stack(2, "acts"),
            np.array([r[4] for r in rows], np.float32), [r[1] for r in rows],
            [r[2] for r in rows], [r[3] for r in rows], np.array([r[0] for r in rows], np.int64))

    # -- export / import -------------------------------------------------------------------
    def export(self, dir: str | Path) -> dict[str, int]:
        """Write ``labels.jsonl`` and ``clips.npz`` into ``dir`` (see ``store_io.export_store``)."""
        from prefrl.store_io import export_store

        return export_store(self, dir)

    def import_(self, dir: str | Path) -> dict[str, int]:
        """Merge an :meth:`export` directory into this store in one transaction; return counts.

        Clips already present and queries whose pair was already asked are kept as they are;
        labels are appended unless one with the same (pair, annotator, created_at, answer) exists.
        See :func:`prefrl.store_io.import_store`.
        """
        from prefrl.store_io import import_store

        return import_store(self, dir)
