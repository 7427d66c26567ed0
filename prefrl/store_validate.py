"""Read and validate an export (``labels.jsonl`` + ``clips.npz``) before it touches a store.

Everything is checked by type and range before use: JSON without repeated keys, finite
numbers (no NaN/Infinity), bools that are bools, ids and steps that fit SQLite's 64-bit
integers, times >= 0, known enums, 16-hex-digit clip hashes, pair keys and values that agree
with their record, no pair of a clip with itself, unique ids and pairs, links that point somewhere,
and header counts that match (so a file cut at a line boundary is caught). ``clips.npz`` is
read by :mod:`prefrl.store_npz`. Every error is an :class:`ExportError` naming the file, the
line or member, and the field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from prefrl.store import QueryRecord, StoreError
from prefrl.types import FORMAT_VERSION, Answer, Label, pair_key

if TYPE_CHECKING:
    from prefrl.store_npz import ClipArchive

INT64_MAX = 2**63 - 1
MAX_LINE_BYTES = 1 << 20  # a record is a few hundred bytes
_HASH = re.compile(r"[0-9a-f]{16}")
_QUERY_KEYS = {"type", "id", "left", "right", "pair_key", "selector", "score", "asked_at",
               "env_step", "status"}
_LABEL_KEYS = {"type", "id", "query_id", "left", "right", "pair_key", "answer", "value",
               "source", "annotator", "created_at", "response_time_s", "undone"}


class ExportError(StoreError):
    """An export file is invalid; ``file``, ``line`` and ``field`` say where (None: unknown)."""

    def __init__(self, path: Path, msg: str, *, line: int | None = None,
                 member: str | None = None, field: str | None = None) -> None:
        self.file, self.line, self.member, self.field = path.name, line, member, field
        where = "".join([f", line {line}" if line is not None else "",
                         f", member {member!r}" if member is not None else "",
                         f", field {field!r}" if field is not None else ""])
        super().__init__(f"export {path}{where}: {msg}" if where else f"export {path} {msg}")


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__("appears twice in the object")
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _RepeatedKey(k)
        out[k] = v
    return out


def _loads(text: str) -> Any:
    """JSON without repeated keys; NaN, Infinity and huge ints become floats the fields reject."""
    return json.loads(text, parse_constant=float, object_pairs_hook=_unique_keys,
                      parse_int=lambda s: int(s) if len(s) < 40 else math.inf)


def _json_object(text: str, fail: Any) -> dict[str, Any]:
    """One JSON object (see :func:`_loads`); anything else -> ``fail(field, message)``."""
    try:
        obj = _loads(text)
    except _RepeatedKey as e:
        raise fail(e.key, str(e)) from e
    except (ValueError, RecursionError) as e:
        raise fail(None, f"not valid JSON ({e})") from e
    if not isinstance(obj, dict):
        raise fail(None, "must be a JSON object")
    return obj


class _Fields:
    """Typed access to one JSON object's fields; every failure names the field."""

    def __init__(self, obj: dict[str, Any], fail: Any, keys: set[str] | None) -> None:
        self.obj, self.fail = obj, fail
        if keys is not None:
            for k in obj.keys() - keys:
                raise fail(k, "unknown field")

    def get(self, key: str) -> Any:
        if key not in self.obj:
            raise self.fail(key, "is missing")
        return self.obj[key]

    def integer(self, key: str, lo: int = 0, null: bool = False) -> Any:
        v = self.get(key)
        if v is None and null:
            return None
        if type(v) is not int or not lo <= v <= INT64_MAX:
            raise self.fail(key, f"must be an integer in [{lo}, 2**63 - 1]"
                            f"{' or null' if null else ''}, got {v!r:.60}")
        return v

    def number(self, key: str, lo: float = -math.inf, null: bool = False) -> Any:
        v = self.get(key)
        if v is None and null:
            return None
        if type(v) not in (int, float) or not math.isfinite(v) or v < lo:
            rng = "a finite number" + (f" >= {lo:g}" if lo > -math.inf else "")
            raise self.fail(key, f"must be {rng}{' or null' if null else ''}, got {v!r:.60}")
        return float(v)

    def string(self, key: str, choices: tuple[str, ...] | None = None,
            pattern: re.Pattern[str] | None = None) -> Any:
        v = self.get(key)
        if not isinstance(v, str) or (choices is not None and v not in choices) or (
                pattern is not None and not pattern.fullmatch(v)):
            what = f"one of {list(choices)}" if choices else "a 16-hex-digit clip hash" \
                if pattern is _HASH else "a string"
            raise self.fail(key, f"must be {what}, got {v!r:.60}")
        return v

    def boolean(self, key: str) -> bool:
        v = self.get(key)
        if type(v) is not bool:
            raise self.fail(key, f"must be true or false, got {v!r:.60}")
        return v


@dataclass
class ExportLabels:
    """A validated ``labels.jsonl``: header, and queries and labels with their line numbers."""

    path: Path
    header: dict[str, Any]
    header_line: int
    queries: list[tuple[int, QueryRecord]] = field(default_factory=list)
    labels: list[tuple[int, int, Label, bool]] = field(default_factory=list)  # line, id, ...


def _pair(f: _Fields, line: int, fail: Any) -> tuple[str, str]:
    left, right = f.string("left", pattern=_HASH), f.string("right", pattern=_HASH)
    if left == right:
        raise fail("right", "a pair needs two different clips (right == left)")
    if f.string("pair_key") != pair_key(left, right):
        raise fail("pair_key", f"is not the pair key of left and right ({pair_key(left, right)})")
    return left, right


def _lines(path: Path, fh: IO[bytes]) -> Any:
    no = 0
    while raw := fh.readline(MAX_LINE_BYTES + 1):
        no += 1
        if len(raw) > MAX_LINE_BYTES:
            raise ExportError(path, f"line longer than {MAX_LINE_BYTES} bytes", line=no)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ExportError(path, f"cannot read: not UTF-8 ({e})", line=no) from e
        if text.strip():
            yield no, text


def read_labels(path: Path) -> ExportLabels:
    """Parse and validate ``labels.jsonl`` on its own (links to clips: :func:`check_links`)."""
    try:
        fh = path.open("rb")
    except OSError as e:
        raise ExportError(path, f"is missing or unreadable ({e})") from e
    out: ExportLabels | None = None
    with fh:
        for no, text in _lines(path, fh):
            def fail(key: str | None, msg: str, no: int = no) -> ExportError:
                return ExportError(path, msg, line=no, field=key)

            obj = _json_object(text, fail)
            if out is None:
                out = ExportLabels(path, _header(_Fields(obj, fail, None), fail), no)
                continue
            f = _Fields(obj, fail, None)
            kind = f.string("type", ("query", "label"))
            if kind == "query":
                f = _Fields(obj, fail, _QUERY_KEYS)
                left, right = _pair(f, no, fail)
                out.queries.append((no, QueryRecord(
                    f.integer("id", 1), left, right, pair_key(left, right), f.string("selector"),
                    f.number("score"), f.number("asked_at", 0.0), f.integer("env_step"),
                    f.string("status", ("pending", "answered", "skipped")))))
            else:
                f = _Fields(obj, fail, _LABEL_KEYS)
                left, right = _pair(f, no, fail)
                answer = Answer(f.string("answer", tuple(a.value for a in Answer)))
                value = f.number("value", null=True)
                if value != answer.mu:
                    raise fail("value", f"must be {answer.mu} for answer {answer.value!r}, "
                                        f"got {value!r}")
                lid = f.integer("id", 1)
                lab = Label(left, right, answer, f.string("source", ("synthetic", "human")),
                            f.string("annotator"), f.number("created_at", 0.0),
                            f.number("response_time_s", 0.0, null=True),
                            f.integer("query_id", 1, null=True))
                out.labels.append((no, lid, lab, f.boolean("undone")))
    if out is None:
        raise ExportError(path, "is empty (no header line)")
    _check_consistent(out)
    return out


def _header(f: _Fields, fail: Any) -> dict[str, Any]:
    if f.obj.get("format") != "prefrl-labels":
        raise fail("format", f"not a prefrl labels file (format {f.obj.get('format')!r:.40})")
    version = f.get("version")
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        hint = "; upgrade prefrl" if type(version) is int and version > FORMAT_VERSION else ""
        raise fail("version", f"format version {version!r:.40} is not in 1..{FORMAT_VERSION}"
                              f"{hint}")
    f.integer("schema_version", 1)
    f.number("exported_at", 0.0)
    f.integer("n_queries")
    f.integer("n_labels")
    if "export_id" in f.obj:
        f.string("export_id")
    if "question" in f.obj and len(f.string("question")) > 500:  # prefrl train/gui --question
        raise fail("question", "must be at most 500 characters")
    return f.obj


def _check_consistent(ex: ExportLabels) -> None:
    """Counts match the header; ids and pairs are unique; each query_id names its pair."""
    path = ex.path
    for key, got in (("n_queries", len(ex.queries)), ("n_labels", len(ex.labels))):
        if ex.header[key] != got:
            raise ExportError(path, f"truncated or edited: the header says {key} = "
                                    f"{ex.header[key]}, the file holds {got}",
                              line=ex.header_line, field=key)
    qline: dict[int, int] = {}
    qpair: dict[str, int] = {}
    qkey: dict[int, str] = {}
    for no, q in ex.queries:
        if q.id in qline:
            raise ExportError(path, f"duplicate query id {q.id} (also on line {qline[q.id]})",
                              line=no, field="id")
        if q.pair_key in qpair:
            raise ExportError(path, f"pair asked twice (also on line {qpair[q.pair_key]})",
                              line=no, field="pair_key")
        qline[q.id], qpair[q.pair_key], qkey[q.id] = no, no, q.pair_key
    lline: dict[int, int] = {}
    for no, lid, lab, _ in ex.labels:
        if lid in lline:
            raise ExportError(path, f"duplicate label id {lid} (also on line {lline[lid]})",
                              line=no, field="id")
        lline[lid] = no
        if lab.query_id is not None:
            if lab.query_id not in qkey:
                raise ExportError(path, f"query {lab.query_id} is not in the file", line=no,
                                  field="query_id")
            if qkey[lab.query_id] != lab.key:
                raise ExportError(path, f"query {lab.query_id} asked {qkey[lab.query_id]}, not "
                                        f"this label's pair {lab.key}", line=no, field="query_id")


def check_links(labels: ExportLabels, clips: ClipArchive) -> None:
    """Every clip a query or label names is in ``clips.npz``; both files are of one export."""
    theirs = clips.export_id
    ours = labels.header.get("export_id")
    if ours != theirs:
        raise ExportError(labels.path, "labels.jsonl and clips.npz are not from the same export "
                          f"(export_id {ours!r} vs {theirs!r}); export again",
                          line=labels.header_line, field="export_id")
    records = [(no, q.left, q.right) for no, q in labels.queries]
    records += [(no, lab.left, lab.right) for no, _, lab, _ in labels.labels]
    for no, *pair in records:
        for key, h in zip(("left", "right"), pair, strict=True):
            if h not in clips.index:
                raise ExportError(labels.path, f"clip {h} is not in clips.npz", line=no,
                                  field=key)
