"""Annotator tokens: one secret link per person; only the token's SHA-256 is ever stored.

``annotators.json`` (next to the label store) holds ``{"format": "prefrl-annotators",
"version": 1, "annotators": [{"name", "token_sha256", "created_at"}]}``. The registry re-reads
the file when it changes, so ``prefrl gui --add-annotator`` works while a server is running.
Changes are made under an exclusive ``flock`` on ``annotators.json.lock``, so processes adding
annotators at the same time lose no entry.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     reg = AnnotatorRegistry(Path(d) / "annotators.json")
...     token = reg.add("alice")
...     (reg.verify(token), reg.verify("wrong"), token in reg.path.read_text())
('alice', None, False)
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: only the in-process lock
    fcntl = None  # type: ignore[assignment]

FORMAT = "prefrl-annotators"
VERSION = 1
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+ -]{0,63}$")
"""Allowed annotator names: 1-64 characters, letters, digits, ``_ . @ + -`` and spaces."""


class AnnotatorError(ValueError):
    """A bad annotator name or an unreadable annotators file (one-line message)."""


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token (what the annotators file stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    """Return ``name`` stripped if it is a valid annotator name, else raise AnnotatorError."""
    name = name.strip()
    if not NAME_RE.match(name) or name.startswith("synthetic"):
        raise AnnotatorError(
            f"bad annotator name {name!r}: use 1-64 letters, digits, '_ . @ + -' or spaces, "
            "starting with a letter or digit (and not 'synthetic...')")
    return name


class AnnotatorRegistry:
    """The annotators of one run: names and token hashes, backed by a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_hash: dict[str, str] = {}

    def _read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        try:
            doc = json.loads(self.path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise AnnotatorError(f"cannot read annotators file {self.path}: {e}") from e
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise AnnotatorError(f"{self.path} is not a prefrl annotators file")
        if int(doc.get("version", 0)) > VERSION:
            raise AnnotatorError(f"{self.path} was written by a newer prefrl")
        entries = doc.get("annotators", [])
        ok = isinstance(entries, list) and all(
            isinstance(e, dict) and isinstance(e.get("name"), str)
            and isinstance(e.get("token_sha256"), str) for e in entries)
        if not ok:
            raise AnnotatorError(f"{self.path}: malformed annotators list")
        return entries

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp or stamp is None:
            self._by_hash = {e["token_sha256"]: e["name"] for e in self._read()}
            self._stamp = stamp

    def names(self) -> list[str]:
        """Registered annotator names, in the order they were added."""
        with self._lock:
            return [e["name"] for e in self._read()]

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Hold the registry's lock and an exclusive lock on the file beside it (processes)."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = self.path.with_name(self.path.name + ".lock")
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock

    def add(self, name: str) -> str:
        """Register ``name`` (replacing its old token) and return its new raw token."""
        name = check_name(name)
        token = secrets.token_urlsafe(24)
        with self._file_lock():
            entries = [e for e in self._read() if e["name"] != name]
            entries.append({"name": name, "token_sha256": token_hash(token),
                            "created_at": time.time()})
            doc = {"format": FORMAT, "version": VERSION, "annotators": entries}
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=2)
            os.replace(tmp, self.path)
            self._stamp = None
        return token

    def verify(self, token: str | None) -> str | None:
        """Return the annotator whose token this is, or None (constant-time comparison)."""
        if not token or len(token) > 256:
            return None
        digest = token_hash(token)
        with self._lock:
            try:
                self._refresh()
            except AnnotatorError:
                return None
            found = None
            for h, name in self._by_hash.items():
                if hmac.compare_digest(h, digest):
                    found = name
        return found
