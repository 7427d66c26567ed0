"""Export a :class:`~prefrl.store.LabelStore` to portable files and merge such files back in.

Export format (:func:`export_store`, read back by :func:`import_store`), no pickle:

* ``labels.jsonl``: UTF-8, one JSON object per line. Line 1 is the header ``{"format":
  "prefrl-labels", "version": FORMAT_VERSION, "schema_version", "exported_at", "n_queries",
  "n_labels"}``; then ``{"type": "query", "id", "left", "right", "pair_key", "selector",
  "score", "asked_at", "env_step", "status"}`` per query and ``{"type": "label", "id",
  "query_id", "left", "right", "pair_key", "answer", "value", "source", "annotator",
  "created_at", "response_time_s", "undone"}`` per label, in id order. ``left``/``right`` are
  clip hashes; ``value`` is mu = P(right is better), null for a skip.
* ``clips.npz``: a NumPy zip archive (``np.load(path, allow_pickle=False)``) with, per clip,
  ``<hash>/obs``, ``<hash>/acts``, ``<hash>/true_rews`` and ``<hash>/rs_<name>`` for each
  render-state array, and ``__index__``: a 0-d string array holding the JSON document
  ``{"format": "prefrl-clips", "version": 1, "clips": [{"hash", "env_id", "source_run",
  "step", "render_state": [names]}]}``. Hashes are recomputed and checked on import.

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
import zipfile
from collections.abc import Callable
from dataclasses import asdict, astuple, replace
from pathlib import Path
from typing import Any

import numpy as np

from prefrl.store import (
    _DECODE_ERRORS,
    _LABEL_COLS,
    _QUERY_COLS,
    SCHEMA_VERSION,
    LabelStore,
    QueryRecord,
    StoreError,
    _clip_arrays,
    _label,
    _make_clip,
)
from prefrl.types import FORMAT_VERSION, Answer, Label, pair_key


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_store(store: LabelStore, dir: str | Path) -> dict[str, int]:
    """Write ``labels.jsonl`` and ``clips.npz`` into ``dir`` (one snapshot); return counts."""
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    with store._tx("DEFERRED") as conn:
        queries = conn.execute(f"SELECT {_QUERY_COLS} FROM queries ORDER BY id").fetchall()
        labels = conn.execute(f"SELECT {_LABEL_COLS} FROM labels ORDER BY id").fetchall()
        hashes = [r[0] for r in conn.execute("SELECT hash FROM clips ORDER BY rowid")]

        def write_clips(tmp: Path) -> None:
            index = []
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for i in range(0, len(hashes), 64):  # stream: few clips in memory at once
                    for h, c in store._load_clips(conn, hashes[i:i + 64]).items():
                        index.append({"hash": h, "env_id": c.env_id, "source_run": c.source_run,
                                      "step": c.step, "render_state": list(c.render_state)})
                        for k, a in _clip_arrays(c).items():
                            with zf.open(f"{h}/{k}.npy", "w", force_zip64=True) as f:
                                np.lib.format.write_array(f, a, allow_pickle=False)
                doc = {"format": "prefrl-clips", "version": FORMAT_VERSION, "clips": index}
                with zf.open("__index__.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.array(json.dumps(doc)), allow_pickle=False)

        _write_atomic(out / "clips.npz", write_clips)
    lines: list[dict[str, Any]] = [{
        "format": "prefrl-labels", "version": FORMAT_VERSION, "schema_version": SCHEMA_VERSION,
        "exported_at": time.time(), "n_queries": len(queries), "n_labels": len(labels)}]
    question = store.get_meta("question")  # what the GUI asked (prefrl train/gui --question)
    if question is not None:
        lines[0]["question"] = question
    lines += [{"type": "query", **asdict(QueryRecord(*r))} for r in queries]
    for r in labels:
        lab = _label(r)
        lines.append({"type": "label", "id": r[0], "query_id": lab.query_id, "left": lab.left,
                      "right": lab.right, "pair_key": lab.key, "answer": lab.answer.value,
                      "value": lab.mu, "source": lab.source, "annotator": lab.annotator,
                      "created_at": lab.created_at, "response_time_s": lab.response_time_s,
                      "undone": bool(r[9])})
    text = "".join(json.dumps(obj, allow_nan=False) + "\n" for obj in lines)
    _write_atomic(out / "labels.jsonl", lambda tmp: tmp.write_text(text, "utf-8"))
    return {"clips": len(hashes), "queries": len(queries), "labels": len(labels)}


def import_store(store: LabelStore, dir: str | Path) -> dict[str, int]:
    """Merge an :func:`export_store` directory into ``store`` in one transaction; return counts.

    Clips already present and queries whose pair was already asked are kept as they are;
    labels are appended unless one with the same (pair, annotator, created_at, answer) exists.
    """
    queries, labels = _read_labels_jsonl(Path(dir) / "labels.jsonl")
    npz = Path(dir) / "clips.npz"
    if not npz.is_file():
        raise StoreError(f"export {npz} is missing")
    n = dict.fromkeys(("clips_added", "clips_present", "queries_added", "queries_skipped",
                       "labels_added", "labels_skipped"), 0)
    try:
        with np.load(npz, allow_pickle=False) as z, store._tx() as conn:
            doc = json.loads(str(z["__index__"][()]))
            if doc.get("format") != "prefrl-clips" or doc.get("version", 1e9) > FORMAT_VERSION:
                raise StoreError(f"{npz} is not a prefrl clips file of version <= "
                                 f"{FORMAT_VERSION}")
            for m in doc["clips"]:
                h = str(m["hash"])
                if conn.execute("SELECT 1 FROM clips WHERE hash = ?", (h,)).fetchone():
                    n["clips_present"] += 1
                    continue
                keys = ["obs", "acts", "true_rews"] + [f"rs_{k}" for k in m["render_state"]]
                clip = _make_clip({k: z[f"{h}/{k}"] for k in keys},
                                  (m["env_id"], m["source_run"], m["step"]), h, str(npz))
                n["clips_added"] += store._insert_clip(conn, clip)
            qmap: dict[int, int] = {}
            for q in queries:
                row = conn.execute("SELECT id FROM queries WHERE pair_key = ?",
                                   (q.pair_key,)).fetchone()
                n["queries_skipped" if row else "queries_added"] += 1
                qmap[q.id] = int(row[0] if row else conn.execute(
                    f"INSERT INTO queries({_QUERY_COLS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
                    astuple(q)[1:]).lastrowid or 0)
            for lab, undone in labels:
                if conn.execute("SELECT 1 FROM labels WHERE pair_key = ? AND annotator = ? AND "
                                "created_at = ? AND answer = ?", (lab.key, lab.annotator,
                                lab.created_at, lab.answer.value)).fetchone():
                    n["labels_skipped"] += 1
                    continue
                qid = None if lab.query_id is None else qmap.get(lab.query_id)
                store._insert_label(conn, replace(lab, query_id=qid), undone)
                n["labels_added"] += 1
    except _DECODE_ERRORS as e:  # includes json.JSONDecodeError (a ValueError)
        raise StoreError(f"export {npz} is corrupt or not a prefrl clips file: {e!r}") from e
    return n


def _read_labels_jsonl(path: Path) -> tuple[list[QueryRecord], list[tuple[Label, bool]]]:
    """Parse and validate an exported ``labels.jsonl``: (queries, [(label, undone)])."""
    try:
        lines = [ln for ln in path.read_text("utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise StoreError(f"cannot read export {path}: {e}") from e
    queries: list[QueryRecord] = []
    labels: list[tuple[Label, bool]] = []
    for no, line in enumerate(lines, 1):
        where = f"export {path}, line {no}"
        try:
            o = json.loads(line)
            if no == 1:
                if not isinstance(o, dict) or o.get("format") != "prefrl-labels":
                    raise StoreError(f"{where}: not a prefrl labels file (bad header)")
                if not isinstance(o.get("version"), int) or o["version"] > FORMAT_VERSION:
                    raise StoreError(f"{where}: format version {o.get('version')!r} is not "
                                     f"<= {FORMAT_VERSION}; upgrade prefrl")
                header = o
            elif o["type"] == "query":
                if o["status"] not in ("pending", "answered", "skipped"):
                    raise ValueError(f"bad status {o['status']!r}")
                queries.append(QueryRecord(
                    int(o["id"]), str(o["left"]), str(o["right"]), pair_key(o["left"], o["right"]),
                    str(o["selector"]), float(o["score"]), float(o["asked_at"]),
                    int(o["env_step"]), o["status"]))
            elif o["type"] == "label":
                rt, qid = o["response_time_s"], o["query_id"]
                labels.append((Label(
                    str(o["left"]), str(o["right"]), Answer(o["answer"]), str(o["source"]),
                    str(o["annotator"]), float(o["created_at"]), None if rt is None else float(rt),
                    None if qid is None else int(qid)), bool(o["undone"])))
            else:
                raise ValueError(f"unknown record type {o['type']!r}")
        except (KeyError, TypeError, ValueError) as e:  # JSONDecodeError is a ValueError
            raise StoreError(f"{where}: bad record ({e!r})") from e
    if not lines:
        raise StoreError(f"export {path} is empty")
    for key, got in (("n_queries", len(queries)), ("n_labels", len(labels))):
        if key in header and header[key] != got:
            raise StoreError(f"export {path} is truncated or edited: its header says {key} = "
                             f"{header[key]}, it holds {got}")
    return queries, labels
