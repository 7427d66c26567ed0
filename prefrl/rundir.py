"""A run directory: config, label store, metrics CSV, TensorBoard events and checkpoints.

Layout::

    <run>/config.json        what was asked for, merged with the env preset
    <run>/labels.sqlite      the label store (clips, queries, labels)
    <run>/metrics.csv        one row per log interval, stable column names (METRIC_COLUMNS)
    <run>/tb/                TensorBoard event files
    <run>/checkpoint/        policy.zip, learner.pt, buffer.npz, vecnorm.npz, state.json
                             (SAC: replay.npz, the filled part of the replay buffer)
    <run>/result.json        the final summary, once the run has finished

Checkpoints are written to ``checkpoint.tmp/`` and swapped in by renames, so a kill at any
moment leaves a complete checkpoint behind. An exclusive ``flock`` on ``<run>/.lock`` stops two
processes from driving one run (the kernel drops it when a process dies, even by SIGKILL).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     log = MetricsLog(Path(d) / "metrics.csv")
...     log.append({"step": 10, "labels": 3})
...     log.append({"step": 20, "labels": 5})
...     log.truncate_after(10)
...     [r["labels"] for r in log.read()]
['3']
"""

from __future__ import annotations

import csv
import fcntl
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

METRIC_COLUMNS = [
    "step", "wall_s", "true_return", "learned_return", "game_score", "episodes", "labels",
    "queries", "falls", "unhealthy_frac",
    "reward_val_acc", "reward_train_acc", "reward_val_loss", "reward_l2", "corr_pearson",
    "corr_spearman", "fps", "reward_infer_s", "reward_train_s", "rss_mb", "reward_data_mb",
    "pool_mb", "hack_ood", "hack_corr", "hack_trend", "hack_trend_learned", "hack_trend_true",
    "hack_alarm",
    # time per part of the preference side (PreferenceLearner.timers, recording into the pool)
    "record_s", "reward_epochs", "query_score_s", "query_store_s", "label_sync_s",
    "reward_fit_s", "reward_norm_s", "reward_agreement_s", "pretrain_collect_s", "pretrain_s",
]
"""Metrics-row columns; the ``hack_*`` ones are :data:`prefrl.guard.GUARD_COLUMNS`."""


class RunDirError(RuntimeError):
    """A run directory that cannot be used (one-line message for users)."""


class MetricsLog:
    """Append-only CSV of metrics with a fixed header (missing values are blank)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(METRIC_COLUMNS)

    def append(self, row: dict[str, Any]) -> None:
        """Write one row and flush it to disk."""
        def fmt(v: Any) -> str:
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return ""
            return f"{v:.6g}" if isinstance(v, float) else str(v)

        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([fmt(row.get(c)) for c in METRIC_COLUMNS])
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> list[dict[str, str]]:
        """All rows as dicts of strings."""
        with self.path.open(newline="") as f:
            return list(csv.DictReader(f))

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (a resumed run continues the curve from there)."""
        rows = [r for r in self.read() if r.get("step") and int(float(r["step"])) <= step]
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, METRIC_COLUMNS)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, self.path)


class RunDir:
    """Paths and checkpoint I/O of one run."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None

    config_path = property(lambda self: self.path / "config.json")
    store_path = property(lambda self: self.path / "labels.sqlite")
    metrics_path = property(lambda self: self.path / "metrics.csv")
    result_path = property(lambda self: self.path / "result.json")
    tb_path = property(lambda self: self.path / "tb")
    checkpoint_path = property(lambda self: self.path / "checkpoint")

    def create(self) -> None:
        """Make a new run directory; refuse one that already holds a run."""
        if self.config_path.exists():
            raise RunDirError(f"{self.path} already holds a run; use --resume {self.path}")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirError(f"cannot create run directory {self.path}: {e.strerror}") from None
        if not os.access(self.path, os.W_OK):
            raise RunDirError(f"run directory {self.path} is not writable")

    def lock(self) -> None:
        """Take the run's exclusive lock (fails at once if another process holds it)."""
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirError(f"{self.path} is in use by another prefrl process") from None
        self._lock_fd = fd

    def unlock(self) -> None:
        """Release the lock."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def write_json(self, path: Path, doc: dict[str, Any]) -> None:
        """Write JSON atomically (see :func:`write_json`)."""
        write_json(path, doc)

    # ------------------------------------------------------------------ checkpoints
    def begin_checkpoint(self) -> Path:
        """A fresh temporary folder to write the next checkpoint into."""
        tmp = self.path / "checkpoint.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        return tmp

    def commit_checkpoint(self, tmp: Path) -> None:
        """Swap ``tmp`` in as the current checkpoint (the previous one is kept until then)."""
        old = self.path / "checkpoint.old"
        shutil.rmtree(old, ignore_errors=True)
        if self.checkpoint_path.exists():
            os.replace(self.checkpoint_path, old)
        os.replace(tmp, self.checkpoint_path)
        shutil.rmtree(old, ignore_errors=True)

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint folder, or None."""
        for p in (self.checkpoint_path, self.path / "checkpoint.old"):
            if (p / "state.json").is_file():
                return p
        return None


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` as JSON to a temporary file, then rename it over ``path`` (atomic)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    os.replace(tmp, path)


def save_npz(path: Path, arrays: dict[str, Any]) -> None:
    """Save a dict of arrays / scalars / strings with ``np.savez`` (no pickle)."""
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]


def load_npz(path: Path) -> dict[str, Any]:
    """Inverse of :func:`save_npz` (0-d arrays come back as numpy scalars)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: (z[k][()] if z[k].ndim == 0 else z[k]) for k in z.files}
