"""Export a :class:`~prefrl.store.LabelStore` to portable files and merge such files back in.

Export format (:func:`export_store`, read back by :func:`import_store`), no pickle:

* ``labels.jsonl``: UTF-8, one JSON object per line. Line 1 is the header ``{"format":
  "prefrl-labels", "version": FORMAT_VERSION, "schema_version", "exported_at", "export_id",
  "n_queries", "n_labels"}``; then ``{"type": "query", "id", "left", "right", "pair_key",
  "selector", "score", "asked_at", "env_step", "status"}`` per query and ``{"type": "label", "id",
  "query_id", "left", "right", "pair_key", "answer", "value", "source", "annotator",
  "created_at", "response_time_s", "undone"}`` per label, in id order. ``left``/``right`` are
  clip hashes; ``value`` is mu = P(right is better), null for a skip.
* ``clips.npz``: a NumPy zip archive (``np.load(path, allow_pickle=False)``) with, per clip,
  ``<hash>/obs``, ``<hash>/acts``, ``<hash>/true_rews`` and ``<hash>/rs_<name>`` for each
  render-state array, and ``__index__``: a 0-d string array holding the JSON document
  ``{"format": "prefrl-clips", "version": 1, "export_id", "clips": [{"hash", "env_id",
  "source_run", "step", "render_state": [names]}]}``. Hashes are recomputed and checked on import.
* ``export_id`` (in both files) ties the two files of one export together.

Import validates everything first (see :mod:`prefrl.store_validate` and :mod:`prefrl.store_npz`).

:meth:`LabelStore.export <prefrl.store.LabelStore.export>` and
:meth:`LabelStore.import_ <prefrl.store.LabelStore.import_>` delegate here.

>>> import tempfile, numpy as np
>>> from prefrl.store import LabelStore
>>> from prefrl.types import Answer, Clip, ClipPair, Label
>>> def clip(v):
...     return Clip(obs=np.full((4, 2), v, np.float32), acts=np.zeros((4, 1), np.float32),
...                 true_rews=np.full(4, v, np.float32), env_id="demo")
>>> with tempfile.TemporaryDirectory() as d:
...     with LabelStore(f"{d}/a.db") as a, LabelStore(f"{d}/b.db") as b:
...         qid = a.add_query(ClipPair(clip(0), clip(1)), selector="random", score=0.0)
...         _ = a.add_label(Label(clip(0).hash, clip(1).hash, Answer.RIGHT, query_id=qid))
...         print(export_store(a, f"{d}/exp"))
...         print(import_store(b, f"{d}/exp")["labels_added"], b.labels() == a.labels())
{'clips': 2, 'queries': 1, 'labels': 1}
1 True
"""

from __future__ import annotations

import json
import os
import time
import uuid
import zipfile
from dataclasses import asdict, astuple, replace
from pathlib import Path
from typing import Any

import numpy as np

from prefrl.store import (
    _LABEL_COLS,
    _QUERY_COLS,
    SCHEMA_VERSION,
    LabelStore,
    QueryRecord,
    StoreError,
    _label,
)
from prefrl.store_codec import clip_arrays
from prefrl.store_npz import ClipArchive
from prefrl.store_validate import check_links, read_labels
from prefrl.types import FORMAT_VERSION


def export_store(store: LabelStore, dir: str | Path) -> dict[str, int]:
    """Write ``labels.jsonl`` and ``clips.npz`` into ``dir`` (one snapshot); return counts.

    Both files are written in full under temporary names, then renamed; a shared ``export_id``
    lets an import detect a pair torn by a crash between the two renames.
    """
    out = Path(dir)
    if out.exists() and not out.is_dir():
        raise StoreError(f"export folder {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create export folder {out}: {e}") from e
    export_id = uuid.uuid4().hex
    tmp = {name: out / f".{name}.{export_id}.tmp" for name in ("clips.npz", "labels.jsonl")}
    try:
        with store._tx("DEFERRED") as conn:
            queries = conn.execute(f"SELECT {_QUERY_COLS} FROM queries ORDER BY id").fetchall()
            labels = conn.execute(f"SELECT {_LABEL_COLS} FROM labels ORDER BY id").fetchall()
            hashes = [r[0] for r in conn.execute("SELECT hash FROM clips ORDER BY rowid")]
            index = []
            with zipfile.ZipFile(tmp["clips.npz"], "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for i in range(0, len(hashes), 64):  # stream: few clips in memory at once
                    for h, c in store._load_clips(conn, hashes[i:i + 64]).items():
                        index.append({"hash": h, "env_id": c.env_id, "source_run": c.source_run,
                                      "step": c.step, "render_state": list(c.render_state)})
                        for k, a in clip_arrays(c).items():
                            with zf.open(f"{h}/{k}.npy", "w", force_zip64=True) as f:
                                np.lib.format.write_array(f, a, allow_pickle=False)
                doc = {"format": "prefrl-clips", "version": FORMAT_VERSION,
                       "export_id": export_id, "clips": index}
                with zf.open("__index__.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.array(json.dumps(doc)), allow_pickle=False)
        lines: list[dict[str, Any]] = [{
            "format": "prefrl-labels", "version": FORMAT_VERSION,
            "schema_version": SCHEMA_VERSION, "exported_at": time.time(),
            "export_id": export_id, "n_queries": len(queries), "n_labels": len(labels)}]
        question = store.get_meta("question")  # what the GUI asked (train/gui --question)
        if question is not None:
            lines[0]["question"] = question
        lines += [{"type": "query", **asdict(QueryRecord(*r))} for r in queries]
        for r in labels:
            lab = _label(r)
            lines.append({"type": "label", "id": r[0], "query_id": lab.query_id,
                          "left": lab.left, "right": lab.right, "pair_key": lab.key,
                          "answer": lab.answer.value, "value": lab.mu, "source": lab.source,
                          "annotator": lab.annotator, "created_at": lab.created_at,
                          "response_time_s": lab.response_time_s, "undone": bool(r[9])})
        tmp["labels.jsonl"].write_text(
            "".join(json.dumps(obj, allow_nan=False) + "\n" for obj in lines), "utf-8")
        for name, path in tmp.items():
            os.replace(path, out / name)
    except OSError as e:
        raise StoreError(f"cannot write export into {out}: {e}") from e
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
    return {"clips": len(hashes), "queries": len(queries), "labels": len(labels)}


def import_store(store: LabelStore, dir: str | Path) -> dict[str, int]:
    """Merge an :func:`export_store` directory into ``store`` in one transaction; return counts.

    Both files are validated first (:mod:`prefrl.store_validate`, :mod:`prefrl.store_npz`;
    clip arrays as they are decoded, one clip at a time); any error is an ``ExportError``
    naming the file, line or member and field, and leaves ``store`` unchanged. Clips already
    present and queries whose pair was already asked are kept as they are; labels are appended
    unless one with the same (pair, annotator, created_at, answer) exists. Added queries take
    their status from their labels.
    """
    src = Path(dir)
    if not src.is_dir():
        raise StoreError(f"cannot read export {src}: not a folder")
    labels = read_labels(src / "labels.jsonl")
    n = dict.fromkeys(("clips_added", "clips_present", "queries_added", "queries_skipped",
                       "labels_added", "labels_skipped"), 0)
    with ClipArchive(src / "clips.npz") as clips, store._tx() as conn:
        check_links(labels, clips)
        for h in clips.index:
            if conn.execute("SELECT 1 FROM clips WHERE hash = ?", (h,)).fetchone():
                n["clips_present"] += 1
            else:
                n["clips_added"] += store._insert_clip(conn, clips.clip(h))
        qmap: dict[int, int] = {}
        added: list[int] = []
        for _, q in labels.queries:
            row = conn.execute("SELECT id FROM queries WHERE pair_key = ?",
                               (q.pair_key,)).fetchone()
            if row:
                n["queries_skipped"] += 1
                qmap[q.id] = int(row[0])
                continue
            n["queries_added"] += 1
            qmap[q.id] = int(conn.execute(
                f"INSERT INTO queries({_QUERY_COLS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                astuple(q)[1:-1]).lastrowid or 0)
            added.append(qmap[q.id])
        for _, _, lab, undone in labels.labels:
            if conn.execute("SELECT 1 FROM labels WHERE pair_key = ? AND annotator = ? AND "
                            "created_at = ? AND answer = ?", (lab.key, lab.annotator,
                            lab.created_at, lab.answer.value)).fetchone():
                n["labels_skipped"] += 1
                continue
            qid = None if lab.query_id is None else qmap[lab.query_id]
            store._insert_label(conn, replace(lab, query_id=qid), undone)
            n["labels_added"] += 1
        for qid in added:
            store._refresh_status(conn, qid)
    return n
