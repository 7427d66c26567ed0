"""The label store's SQLite schema and its migrations (see :mod:`prefrl.store`).

``_MIGRATIONS[i]`` upgrades schema version ``i`` to ``i + 1`` (0 = an empty file) inside the
opener's transaction, which then records the new ``schema_version``. Append; never edit old
entries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

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
