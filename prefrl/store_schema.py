"""The label store's SQLite schema, its migrations, and opening a store file safely.

:func:`open_connection` refuses what is not a healthy prefrl store of a known schema (a
directory, a missing or empty file with ``create=False``, a foreign or corrupt database, a
newer schema) with a :class:`StoreError`, puts the file in WAL mode and migrates old schemas.

``_MIGRATIONS[i]`` upgrades schema version ``i`` to ``i + 1`` (0 = an empty file) inside the
opener's transaction, which then records the new ``schema_version``. Append; never edit old
entries.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

APPLICATION = "prefrl-labelstore"
SCHEMA_VERSION = 1

_SCHEMA_V1 = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE clips(hash TEXT PRIMARY KEY, env_id TEXT NOT NULL, source_run TEXT NOT NULL,
  step INTEGER NOT NULL, length INTEGER NOT NULL, true_return REAL NOT NULL, data BLOB NOT NULL,
  created_at REAL NOT NULL);
CREATE TABLE queries(id INTEGER PRIMARY KEY AUTOINCREMENT,
  "left" TEXT NOT NULL REFERENCES clips(hash), "right" TEXT NOT NULL REFERENCES clips(hash),
  pair_key TEXT NOT NULL UNIQUE, selector TEXT NOT NULL, score REAL NOT NULL,
  asked_at REAL NOT NULL, env_step INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'answered', 'skipped')));
CREATE INDEX queries_status ON queries(status, id);
CREATE TABLE labels(id INTEGER PRIMARY KEY AUTOINCREMENT, query_id INTEGER REFERENCES queries(id),
  "left" TEXT NOT NULL REFERENCES clips(hash), "right" TEXT NOT NULL REFERENCES clips(hash),
  pair_key TEXT NOT NULL,
  answer TEXT NOT NULL CHECK (answer IN ('left', 'right', 'equal', 'skip')), value REAL,
  source TEXT NOT NULL, annotator TEXT NOT NULL, created_at REAL NOT NULL,
  response_time_s REAL, undone INTEGER NOT NULL DEFAULT 0);
CREATE INDEX labels_pair ON labels(pair_key);
CREATE INDEX labels_annotator ON labels(annotator, undone, id);
CREATE INDEX labels_query ON labels(query_id);
"""


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    for stmt in _SCHEMA_V1.split(";"):
        if stmt.strip():
            conn.execute(stmt)
    conn.execute("INSERT INTO meta(key, value) VALUES ('application', ?)", (APPLICATION,))


_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_0_to_1]
assert len(_MIGRATIONS) == SCHEMA_VERSION


BUSY_TIMEOUT_S = 30.0


class StoreError(Exception):
    """The label store (or an export) is missing, corrupt, foreign, too new or unusable."""


def db_error(path: Path, e: sqlite3.DatabaseError, what: str) -> StoreError:
    """A :class:`StoreError` for an SQLite error, saying when another process held the lock."""
    if isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e)):
        return StoreError(f"label store {path} is locked by another process (waited "
                          f"up to {BUSY_TIMEOUT_S:g} s): {e}")
    return StoreError(f"label store {path} {what}: {e}")


def open_connection(path: Path, *, create: bool, check: bool) -> sqlite3.Connection:
    """A checked, migrated, WAL-mode connection to the store at ``path`` (see the module doc).

    ``check`` runs ``PRAGMA quick_check``; ``create=False`` refuses to start a new store.
    """
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a label store")
    if not create and not path.exists():
        raise StoreError(f"label store {path} does not exist (create=False)")
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
    except sqlite3.Error as e:
        raise StoreError(f"cannot open label store {path}: {e}") from e
    try:
        _prepare(path, conn, check, create)
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(path: Path, conn: sqlite3.Connection, check: bool, create: bool) -> None:
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        version = _schema_version(path, conn)
        if version == 0 and not create:  # before anything writes to the file
            raise StoreError(f"label store {path} is empty ({path.stat().st_size} "
                             "bytes, no tables); not creating one there (create=False)")
        res = [r[0] for r in conn.execute("PRAGMA quick_check")] if check else ["ok"]
        if res != ["ok"]:
            raise StoreError(f"label store {path} is corrupt (quick_check: "
                             f"{'; '.join(map(str, res[:3]))}); restore a backup or export")
        if version > SCHEMA_VERSION:
            raise StoreError(f"label store {path} was written by a newer prefrl (schema "
                             f"{version} > {SCHEMA_VERSION}); upgrade prefrl")
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:  # switching mode ignores busy_timeout: retry while another opener holds it
                if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
                    raise StoreError(f"cannot put label store {path} in WAL mode")
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        conn.execute("PRAGMA synchronous = FULL")
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")  # re-read: another process may have migrated
            try:
                for i in range(_schema_version(path, conn), SCHEMA_VERSION):
                    _MIGRATIONS[i](conn)
                    conn.execute("INSERT OR REPLACE INTO meta(key, value) "
                                 "VALUES ('schema_version', ?)", (str(i + 1),))
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.rollback()
    except sqlite3.DatabaseError as e:
        raise db_error(path, e, "is not a readable SQLite label store (corrupt, truncated "
                                "or another kind of file)") from e


def _schema_version(path: Path, conn: sqlite3.Connection) -> int:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return 0
    foreign = StoreError(f"{path} is not a prefrl label store (no prefrl meta table)")
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.OperationalError as e:
        raise foreign from e
    if meta.get("application") != APPLICATION:
        raise foreign
    try:
        return int(meta["schema_version"])
    except (KeyError, ValueError) as e:
        raise StoreError(f"label store {path} has a bad schema_version") from e
