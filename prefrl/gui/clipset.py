"""Label an exported clip set (``prefrl export``): import it into a store and ask about pairs.

The export (``labels.jsonl`` + ``clips.npz``, see :mod:`prefrl.store`) is merged into
``<EXPORT_DIR>/labels.sqlite``; if no question is pending afterwards, every clip is paired with
the next one of the same env and length in a shuffled ring (about one question per clip,
never a pair that was asked before).

>>> import tempfile, numpy as np
>>> from prefrl.store import LabelStore
>>> from prefrl.types import Clip
>>> clips = [Clip(obs=np.full((3, 2), v, np.float32), acts=np.zeros((3, 1), np.float32),
...               true_rews=np.full(3, v, np.float32), env_id="demo") for v in range(4)]
>>> with tempfile.TemporaryDirectory() as d:
...     with LabelStore(f"{d}/src.db") as src:
...         _ = src.add_clips(clips)
...         _ = src.export(f"{d}/export")
...     with LabelStore(f"{d}/export/labels.sqlite") as store:
...         prepare_clip_set(Path(d) / "export", store)["queries_created"]
4
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from prefrl.store import DuplicateQueryError, LabelStore, StoreError
from prefrl.types import ClipPair, pair_key

SELECTOR = "gui-clipset"


def export_dir_of(path: Path) -> Path:
    """The export folder for a path to it or to one of its two files."""
    path = Path(path)
    return path.parent if path.name in ("labels.jsonl", "clips.npz") else path


def export_question(export_dir: Path) -> str | None:
    """The question an export's header carries (``prefrl train --question``), or None."""
    try:
        with open(Path(export_dir) / "labels.jsonl", encoding="utf-8") as f:
            header = json.loads(f.readline(1 << 20))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    q = header.get("question") if isinstance(header, dict) else None
    return q if isinstance(q, str) and q.strip() else None


def _stamp(export_dir: Path) -> str:
    h = hashlib.sha256()
    for name in ("labels.jsonl", "clips.npz"):
        st = (export_dir / name).stat()
        h.update(f"{name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def prepare_clip_set(export_dir: Path, store: LabelStore, *, seed: int = 0) -> dict[str, Any]:
    """Import ``export_dir`` into ``store`` (once per version of the files) and queue pairs."""
    export_dir = export_dir_of(export_dir)
    for name in ("labels.jsonl", "clips.npz"):
        if not (export_dir / name).is_file():
            raise StoreError(f"{export_dir} is not a prefrl export (no {name})")
    out: dict[str, Any] = {"imported": False, "queries_created": 0}
    stamp = _stamp(export_dir)
    if store.get_meta("gui_clipset_stamp") != stamp:
        out.update(store.import_(export_dir))
        store.put_meta("gui_clipset_stamp", stamp)
        out["imported"] = True
    if store.pending_queries(limit=1):
        return out
    hashes = store.clip_hashes()
    rng = np.random.default_rng(seed)
    asked = store.asked_keys()
    groups: dict[tuple[str, int], list[str]] = {}
    for h in hashes:  # group by (env, length) without keeping clips in memory
        c = store.get_clip(h)
        groups.setdefault((c.env_id, c.length), []).append(h)
    for members in groups.values():
        order = [members[i] for i in rng.permutation(len(members))]
        n = len(order)
        ring = [(order[i], order[(i + 1) % n]) for i in range(n if n > 2 else n - 1)]
        for a, b in ring:
            if pair_key(a, b) in asked:
                continue
            try:
                store.add_query(ClipPair(*store.get_clips([a, b])), SELECTOR, 0.0)
            except DuplicateQueryError:
                continue
            asked.add(pair_key(a, b))
            out["queries_created"] += 1
    return out
