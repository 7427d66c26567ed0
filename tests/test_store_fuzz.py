"""Property-based fuzzing of import: a valid export mutated field by field must fail cleanly.

Each example changes one thing (a field's type or range, NaN/inf, a deleted or added field, a
repeated key or line, a cut file, a forged or reshaped array, a wrong index entry) and asserts:
an :class:`ExportError` naming the file and the field (or zip member), the target store left
byte-for-byte unchanged, no other exception type, and a bounded tracemalloc peak.
``-m slow`` runs a larger profile.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import tempfile
import tracemalloc
import warnings
import zipfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store import make_clip, populate
from test_store_io import npy_bytes

from prefrl.store import LabelStore, StoreError
from prefrl.store_validate import ExportError
from prefrl.types import Answer, ClipPair

INDEX = "__index__.npy"
PEAK_LIMIT = 32e6  # bytes traced during one import; the export itself is ~100 kB
HEX = "0123456789abcdef"


@dataclass
class Base:
    """A valid export, held in memory, and a target store's bytes."""

    lines: list[dict[str, Any]]
    members: dict[str, bytes]
    index: dict[str, Any]
    target: bytes


@cache
def base() -> Base:
    with tempfile.TemporaryDirectory() as d:
        with LabelStore(Path(d) / "src.db") as src:
            populate(src)
            src.export(Path(d) / "exp")
        with LabelStore(Path(d) / "target.sqlite") as t:
            t.add_query(ClipPair(make_clip(300), make_clip(301)), "random", 0.0)
        text = (Path(d) / "exp/labels.jsonl").read_text()
        with zipfile.ZipFile(Path(d) / "exp/clips.npz") as z:
            members = {i.filename: z.read(i) for i in z.infolist()}
        index = json.loads(str(np.lib.format.read_array(io.BytesIO(members[INDEX]))[()]))
        return Base([json.loads(x) for x in text.splitlines()], members, index,
                    (Path(d) / "target.sqlite").read_bytes())


@dataclass
class Case:
    """A mutated export and where its error must point."""

    labels: str = field(repr=False)
    members: list[tuple[str, bytes]] = field(repr=False)
    file: str
    fields: set[str | None] | None = None  # accepted ExportError.field values (None: any)
    members_ok: tuple[str, ...] = ()  # accepted ExportError.member prefixes
    desc: str = ""

    def __repr__(self) -> str:
        return f"Case({self.desc!r}, file={self.file!r}, fields={self.fields})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # hypothesis' printer
        p.text(repr(self))


def _jsonl(lines: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(x, allow_nan=True) + "\n" for x in lines)


# -- hostile values ------------------------------------------------------------------------

JUNK = st.one_of(st.none(), st.booleans(), st.text(max_size=4), st.lists(st.integers(),
                 max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))
BAD_NUM = st.sampled_from([math.nan, math.inf, -math.inf, 10**400, -(10**400)])


def _not_none(v: Any) -> bool:
    return v is not None


def bad_int(lo: int, nullable: bool = False) -> st.SearchStrategy[Any]:
    junk = JUNK.filter(_not_none) if nullable else JUNK
    return st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=2**63), BAD_NUM,
                     st.floats(allow_nan=True), junk)


def bad_num(lo: float | None, nullable: bool = False) -> st.SearchStrategy[Any]:
    junk = JUNK.filter(_not_none) if nullable else JUNK
    low = [st.floats(max_value=-1e-3), st.integers(max_value=-1)] if lo is not None else []
    return st.one_of(BAD_NUM, junk.filter(lambda v: type(v) not in (int, float)), *low)


def bad_str() -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.lists(st.text()))


def bad_choice(choices: tuple[str, ...]) -> st.SearchStrategy[Any]:
    return st.one_of(st.text(max_size=8).filter(lambda v: v not in choices), bad_str())


def other_than(v: Any) -> st.SearchStrategy[Any]:
    return st.one_of(st.text(max_size=20), JUNK, st.integers()).filter(lambda x: x != v)


def bad_value(draw: Any, rec: dict[str, Any], key: str, b: Base) -> Any:
    """A value for ``rec[key]`` that no valid export holds."""
    kind = rec.get("type", "header")
    if key in ("n_queries", "n_labels", "version"):
        return draw(st.one_of(st.integers(), JUNK).filter(lambda v: v != rec[key]))
    if key == "id":
        same = [x["id"] for x in b.lines if x.get("type") == kind and x["id"] != rec["id"]]
        return draw(st.one_of(st.sampled_from(same), bad_int(1)))
    if key == "query_id":
        ok = {x["id"] for x in b.lines if x.get("type") == "query" and
              x["pair_key"] == rec["pair_key"]}
        return draw(st.one_of(st.integers(), bad_int(1)).filter(
            lambda v: v is not None and not (type(v) is int and v in ok)))
    if key in ("env_step", "schema_version"):
        return draw(bad_int(0 if key == "env_step" else 1))
    if key in ("score",):
        return draw(bad_num(None))
    if key in ("asked_at", "created_at", "exported_at", "response_time_s"):
        return draw(bad_num(0.0, nullable=key == "response_time_s"))
    if key in ("selector", "annotator"):
        return draw(bad_str())
    if key in ("left", "right", "pair_key", "export_id", "format"):
        return draw(other_than(rec[key]))
    if key == "status":
        return draw(bad_choice(("pending", "answered", "skipped")))
    if key == "source":
        return draw(bad_choice(("synthetic", "human")))
    if key == "answer":
        return draw(bad_choice(tuple(a.value for a in Answer)))
    if key == "type":
        return draw(bad_choice(("query", "label")))
    if key == "value":
        mu = Answer(rec["answer"]).mu
        return draw(st.one_of(st.floats(allow_nan=True), JUNK, st.integers()).filter(
            lambda v: (v is not None or mu is not None) and v != mu or type(v) is bool))
    if key == "undone":
        return draw(st.one_of(st.text(max_size=6), st.integers(), st.none(), st.floats()))
    raise AssertionError(f"no bad values for {key}")


# -- mutations -----------------------------------------------------------------------------

def _fields_for(key: str) -> set[str | None]:
    return {"left", "right", "pair_key"} if key in ("left", "right") else {key}


@st.composite
def jsonl_cases(draw: Any) -> Case:
    b = base()
    lines = [dict(x) for x in b.lines]
    members = list(b.members.items())
    no = draw(st.integers(0, len(lines) - 1))
    rec = lines[no]
    what = draw(st.sampled_from(["set", "set", "set", "delete", "add", "repeat_key",
                                 "dup_line", "drop_line", "cut"]))
    if what == "set":
        key = draw(st.sampled_from(sorted(rec)))
        rec[key] = bad_value(draw, rec, key, b)
        return Case(_jsonl(lines), members, "labels.jsonl", _fields_for(key),
                    desc=f"line {no + 1}: {key} = {rec[key]!r:.40}")
    if what == "delete":
        key = draw(st.sampled_from(sorted(rec)))
        del rec[key]
        return Case(_jsonl(lines), members, "labels.jsonl", {key}, desc=f"line {no + 1}: del {key}")
    if what == "add" and no > 0:
        key = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in rec))
        rec[key] = draw(JUNK)
        return Case(_jsonl(lines), members, "labels.jsonl", {key}, desc=f"line {no + 1}: +{key}")
    if what == "repeat_key":
        key = draw(st.sampled_from(sorted(rec)))
        text = json.dumps(rec)[:-1] + f", {json.dumps(key)}: {json.dumps(rec[key])}}}"
        out = _jsonl(lines).splitlines(keepends=True)
        out[no] = text + "\n"
        return Case("".join(out), members, "labels.jsonl", {key}, desc=f"line {no + 1}: {key} x2")
    if what in ("dup_line", "drop_line") and no > 0:
        count = "n_queries" if rec["type"] == "query" else "n_labels"
        if what == "dup_line":
            lines.insert(no, dict(rec))
            lines[0][count] += 1
            return Case(_jsonl(lines), members, "labels.jsonl", {"id"}, desc=f"dup line {no + 1}")
        del lines[no]
        return Case(_jsonl(lines), members, "labels.jsonl", {count}, desc=f"drop line {no + 1}")
    text = _jsonl(lines)
    cut = draw(st.integers(0, len(text) - 2))  # keeping all but the final newline is valid
    return Case(text[:cut], members, "labels.jsonl", {None, "n_queries", "n_labels"},
                desc=f"cut at {cut}/{len(text)}")


def _bad_member(draw: Any, name: str, data: bytes) -> tuple[str, bytes]:
    shape, _, dtype = np.lib.format.read_array_header_1_0(io.BytesIO(data[8:]))
    hashed = not name.split("/")[1].startswith("rs_")  # render state is not in the hash
    what = draw(st.sampled_from(["pickle", "huge", "shape", "dtype", "cut", "junk"]
                                + ["nan"] * hashed))
    return what, _mutated_member(draw, what, hashed, shape, dtype, data)


def _mutated_member(draw: Any, what: str, hashed: bool, shape: tuple[int, ...],
                    dtype: np.dtype, data: bytes) -> bytes:
    if what == "pickle":
        return npy_bytes(np.array([{"x": 1}] * max(1, shape[0]), dtype=object), pickle=True)
    if what == "huge":
        dims = draw(st.lists(st.integers(1, 2**62), min_size=1, max_size=3))
        body = np.zeros(draw(st.integers(0, 64)), np.uint8)
        return npy_bytes(body, {"descr": dtype.str, "fortran_order": False, "shape": tuple(dims)})
    if what == "shape":
        new = draw(st.lists(st.integers(0, 7), max_size=3).filter(
            lambda s: tuple(s) != shape and (hashed or not s or s[0] != shape[0])))
        return npy_bytes(np.zeros(new, dtype))
    if what == "dtype":
        new = draw(st.sampled_from(["<f4", "<f8", "<i8", "|u1", "|b1", "<U3", "<c8"] if hashed
                                   else ["<U3", "<c8"]))
        if np.dtype(new) == dtype:
            new = "<U3"
        return npy_bytes(np.zeros(shape, new))
    if what == "cut":
        return data[:draw(st.integers(0, len(data) - 1))]
    if what == "junk":
        return draw(st.binary(max_size=64)).rjust(1, b"\0")
    a = np.lib.format.read_array(io.BytesIO(data)).astype(np.float32)
    a.reshape(-1)[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([np.nan, np.inf]))
    return npy_bytes(a)


@st.composite
def npz_cases(draw: Any) -> Case:
    b = base()
    members = list(b.members.items())
    names = [n for n, _ in members if n != INDEX]
    what = draw(st.sampled_from(["member", "member", "member", "drop", "dup", "stray",
                                 "index"]))
    if what == "index":
        return draw(index_cases())
    i = draw(st.integers(0, len(names) - 1))
    name = names[i]
    h = name.split("/")[0]
    pos = next(j for j, c in enumerate(b.index["clips"]) if c["hash"] == h)
    ok = (f"{h}/", f"{INDEX}:clips[{pos}].hash")
    if what == "member":
        how, data = _bad_member(draw, name, b.members[name])
        members = [(n, data if n == name else d) for n, d in members]
        return Case(_jsonl(b.lines), members, "clips.npz", None, ok, f"{how} {name}")
    if what == "drop":
        return Case(_jsonl(b.lines), [m for m in members if m[0] != name], "clips.npz", None,
                    (name,), f"drop {name}")
    if what == "dup":
        return Case(_jsonl(b.lines), members + [(name, b.members[name])], "clips.npz", None,
                    (name,), f"dup {name}")
    stray = draw(st.text(HEX + "/._x", min_size=1, max_size=20).filter(
        lambda s: s not in b.members))
    return Case(_jsonl(b.lines), members + [(stray, b.members[name])], "clips.npz", None,
                (stray,), f"stray {stray}")


@st.composite
def index_cases(draw: Any) -> Case:
    b = base()
    doc = json.loads(json.dumps(b.index))
    where = draw(st.sampled_from(["top", "entry", "entry", "entry", "dup_entry"]))
    if where == "top":
        key = draw(st.sampled_from(["format", "version", "clips", "export_id"]))
        bad = {"format": other_than("prefrl-clips"), "version": st.one_of(
            st.integers(), JUNK).filter(lambda v: v != 1 or type(v) is bool),
            "clips": JUNK.filter(lambda v: not isinstance(v, list)), "export_id": bad_str()}
        if draw(st.booleans()):
            doc[key] = draw(bad[key])
        else:
            del doc[key]
            if key == "export_id":  # then the two files no longer agree
                return _index_case(b, doc, "labels.jsonl", {"export_id"})
        return _index_case(b, doc, "clips.npz", {key})
    i = draw(st.integers(0, len(doc["clips"]) - 1))
    entry = doc["clips"][i]
    if where == "dup_entry":
        doc["clips"].append(dict(entry))
        return _index_case(b, doc, "clips.npz", {f"clips[{len(doc['clips']) - 1}].hash"})
    key = draw(st.sampled_from(sorted(entry)))
    bad = {"hash": st.one_of(bad_str(), st.text(max_size=20).filter(
        lambda s: len(s) != 16 or set(s) - set(HEX))), "env_id": bad_str(),
        "source_run": bad_str(), "step": bad_int(0),
        "render_state": st.one_of(JUNK.filter(lambda v: not isinstance(v, list)),
                                  st.just(["qpos", "qpos", "frames"]), st.just(["a/b"]),
                                  st.just([1, "frames"]), st.just([""]))}
    if draw(st.booleans()):
        entry[key] = draw(bad[key])
    else:
        del entry[key]
    return _index_case(b, doc, "clips.npz", {f"clips[{i}].{key}"})


def _index_case(b: Base, doc: Any, file: str, fields: set[str | None]) -> Case:
    text = json.dumps(doc, allow_nan=True)
    data = npy_bytes(np.array(text))
    members = [(n, data if n == INDEX else d) for n, d in b.members.items()]
    return Case(_jsonl(b.lines), members, file, fields, (), f"index {fields}: {text[:80]}")


# -- the property --------------------------------------------------------------------------

def check(case: Case) -> None:
    b = base()
    with tempfile.TemporaryDirectory() as d:
        exp, target = Path(d) / "exp", Path(d) / "target.sqlite"
        exp.mkdir()
        (exp / "labels.jsonl").write_text(case.labels)
        with warnings.catch_warnings(), zipfile.ZipFile(exp / "clips.npz", "w") as z:
            warnings.simplefilter("ignore", UserWarning)  # duplicate member names on purpose
            for name, data in case.members:
                z.writestr(name, data)
        target.write_bytes(b.target)
        tracemalloc.start()
        try:
            with LabelStore(target, create=False) as store, pytest.raises(StoreError) as info:
                store.import_(exp)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert target.read_bytes() == b.target
        shutil.rmtree(exp)
    e = info.value
    msg = str(e)
    assert type(e) is ExportError, msg
    assert e.file == case.file and case.file in msg and "\n" not in msg, msg
    if case.fields is not None:
        assert e.field in case.fields, msg
        assert e.field is None or repr(e.field) in msg, msg
    if case.members_ok:
        where = f"{e.member}:{e.field}" if e.field else str(e.member)
        assert any(where.startswith(m) for m in case.members_ok), msg
    assert peak < PEAK_LIMIT, f"{peak} bytes traced: {msg}"


FAST = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
SLOW = settings(FAST, max_examples=2000, derandomize=False)


@FAST
@given(jsonl_cases())
def test_fuzz_labels_jsonl(case: Case) -> None:
    check(case)


@FAST
@given(npz_cases())
def test_fuzz_clips_npz(case: Case) -> None:
    check(case)


@pytest.mark.slow
@SLOW
@given(st.one_of(jsonl_cases(), npz_cases()))
def test_fuzz_export_large(case: Case) -> None:
    check(case)


def test_unmutated_base_imports() -> None:
    """The base export is valid, so every failure above comes from its one mutation."""
    b = base()
    with tempfile.TemporaryDirectory() as d:
        exp = Path(d) / "exp"
        exp.mkdir()
        (exp / "labels.jsonl").write_text(_jsonl(b.lines))
        with zipfile.ZipFile(exp / "clips.npz", "w") as z:
            for name, data in b.members.items():
                z.writestr(name, data)
        (Path(d) / "t.sqlite").write_bytes(b.target)
        with LabelStore(Path(d) / "t.sqlite") as s:
            assert s.import_(exp)["labels_added"] == 6
