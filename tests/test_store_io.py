"""Tests for prefrl.store_io: export/import round trips, merging, corrupt exports."""

from __future__ import annotations

import io
import json
import pickle
import re
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_store import assert_same_clip, make_clip, populate

from prefrl import store_npz
from prefrl.cli import main
from prefrl.store import LabelStore, StoreError
from prefrl.store_io import export_store, import_store
from prefrl.store_validate import ExportError
from prefrl.types import Answer, ClipPair, pair_key


@pytest.fixture
def db(tmp_path: Path) -> LabelStore:
    with LabelStore(tmp_path / "run.db") as s:
        yield s


def test_roundtrip_export_import(db: LabelStore, tmp_path: Path) -> None:
    clips = populate(db)
    counts = db.export(tmp_path / "exp")
    assert counts == {"clips": 8, "queries": 5, "labels": 6}
    header = json.loads((tmp_path / "exp/labels.jsonl").read_text().splitlines()[0])
    assert header["format"] == "prefrl-labels" and header["version"] == 1
    with np.load(tmp_path / "exp/clips.npz", allow_pickle=False) as z:
        assert f"{clips[0].hash}/rs_frames" in z.files
        assert json.loads(str(z["__index__"][()]))["format"] == "prefrl-clips"

    with LabelStore(tmp_path / "copy.db") as new:
        got = new.import_(tmp_path / "exp")
        assert got == {"clips_added": 8, "clips_present": 0, "queries_added": 5,
                       "queries_skipped": 0, "labels_added": 6, "labels_skipped": 0}
        assert new.clip_hashes() == db.clip_hashes()
        for a, b in zip(db.get_clips(db.clip_hashes()), new.get_clips(new.clip_hashes()),
                        strict=True):
            assert_same_clip(a, b)
        disc = new.get_clip(new.clip_hashes()[-1])
        assert disc.acts.dtype == np.int64 and disc.acts.shape == (5,) and disc.env_id == "Disc-v0"
        assert new.queries() == db.queries()
        assert new.labels(include_undone=True) == db.labels(include_undone=True)
        assert new.labels() == db.labels() and len(new.labels()) == 5
        human = [x for x in new.labels() if x.source == "human"]
        assert human[0].annotator == "alice" and human[0].response_time_s == 1.25
        assert new.n_labels() == db.n_labels() == 4
        a, b = db.training_set(), new.training_set()
        assert np.array_equal(a.left_obs, b.left_obs) and np.array_equal(a.mu, b.mu)
        # importing again adds nothing
        again = new.import_(tmp_path / "exp")
        assert again["clips_present"] == 8 and again["queries_skipped"] == 5
        assert again["labels_skipped"] == 6 and new.n_labels(include_skips=True) == 5


def test_import_merges_and_remaps_query_ids(db: LabelStore, tmp_path: Path) -> None:
    clips = populate(db)
    db.export(tmp_path / "exp")
    with LabelStore(tmp_path / "other.db") as other:
        extra = [make_clip(100), make_clip(101)]
        q0 = other.add_query(ClipPair(*extra), "random", 0.0)
        q1 = other.add_query(ClipPair(clips[2], clips[1]), "random", 0.0)  # same pair, swapped
        got = other.import_(tmp_path / "exp")
        assert got["queries_added"] == 4 and got["queries_skipped"] == 1
        assert got["clips_present"] == 2 and got["clips_added"] == 6
        right = [x for x in other.labels() if x.answer is Answer.RIGHT and x.source != "human"]
        assert right[0].query_id == q1 and other.queries()[1].status == "answered"
        assert other.queries()[0].id == q0 and other.n_queries() == 6


def test_functions_match_methods(db: LabelStore, tmp_path: Path) -> None:
    populate(db)
    assert export_store(db, tmp_path / "a") == db.export(tmp_path / "b")
    with LabelStore(tmp_path / "x.db") as x, LabelStore(tmp_path / "y.db") as y:
        assert import_store(x, tmp_path / "a") == y.import_(tmp_path / "b")
        assert x.labels(include_undone=True) == y.labels(include_undone=True)
        assert x.queries() == y.queries() and x.clip_hashes() == y.clip_hashes()


# -- corrupt exports -------------------------------------------------------------------------

@pytest.fixture
def exported(db: LabelStore, tmp_path: Path) -> Path:
    populate(db)
    db.export(tmp_path / "exp")
    return tmp_path / "exp"


def _fresh_import(src: Path, tmp_path: Path) -> None:
    with LabelStore(tmp_path / f"fresh{time.monotonic_ns()}.db") as s:
        try:
            s.import_(src)
        finally:
            assert s.n_clips() == 0 and s.n_labels() == 0  # all or nothing


def _import_error(src: Path, tmp_path: Path) -> ExportError:
    with pytest.raises(ExportError) as info:
        _fresh_import(src, tmp_path)
    return info.value


def _records(exp: Path) -> list[dict]:
    return [json.loads(x) for x in (exp / "labels.jsonl").read_text().splitlines()]


def _write_records(exp: Path, recs: list[dict]) -> None:
    (exp / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))


def _first(recs: list[dict], kind: str, pred=lambda r: True) -> dict:
    return next(r for r in recs if r.get("type") == kind and pred(r))


def test_corrupt_export_npz(exported: Path, tmp_path: Path) -> None:
    npz = exported / "clips.npz"
    good = npz.read_bytes()
    npz.write_bytes(good[: len(good) // 2])
    assert "clips.npz is corrupt" in str(_import_error(exported, tmp_path))
    np.savez(npz, a=np.zeros(3))  # a foreign npz
    e = _import_error(exported, tmp_path)
    assert e.file == "clips.npz" and e.member == "__index__.npy" and "missing" in str(e)
    # tampered array: same keys, different content
    npz.write_bytes(good)
    with np.load(npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    victim = next(k for k in arrays if k.endswith("/obs"))
    arrays[victim] = arrays[victim] + 1
    np.savez_compressed(npz, **arrays)
    e = _import_error(exported, tmp_path)
    assert re.search(f"clip {victim[:16]} is corrupt", str(e)) and e.field.endswith(".hash")
    npz.unlink()
    assert "clips.npz is missing" in str(_import_error(exported, tmp_path))
    with pytest.raises(StoreError, match="cannot read export"):
        _fresh_import(tmp_path / "nowhere", tmp_path)


def test_corrupt_export_jsonl(exported: Path, tmp_path: Path) -> None:
    path = exported / "labels.jsonl"
    lines = path.read_text().splitlines(keepends=True)

    def check(text: str, match: str, line: int | None = None) -> None:
        path.write_text(text)
        e = _import_error(exported, tmp_path)
        assert e.file == "labels.jsonl" and re.search(match, str(e)), str(e)
        assert line is None or e.line == line

    check("".join(lines[:3] + ['{"type": "label", "left": \n'] + lines[4:]), "not valid JSON", 4)
    path.write_text("".join(lines[:3] + ["\n", "  \n"] + lines[3:]))  # blank lines are fine
    with LabelStore(tmp_path / "blank.db") as s:
        assert s.import_(exported)["labels_added"] == 6
    check("".join(lines[:3] + ["\n", "{]\n"] + lines[3:]), "not valid JSON", 5)  # real line no.
    check("".join(lines[:-1]), "truncated or edited.*n_labels = 6, the file holds 5", 1)
    check("".join(lines)[:-20], "not valid JSON")
    check("", "empty")
    check(json.dumps({"format": "something-else", "version": 1}) + "\n", "not a prefrl labels")
    header = json.loads(lines[0])
    check(json.dumps({**header, "version": 99}) + "\n" + "".join(lines[1:]), "version 99.*upgrade")
    check("".join(lines[:1] + [json.dumps({"type": "label", "answer": "maybe"}) + "\n"]),
          "field 'left': is missing")
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert "not UTF-8" in str(_import_error(exported, tmp_path))


def _self_pair(r: dict) -> None:
    r["right"] = r["left"]


def _unknown_left(r: dict) -> None:
    r["left"] = "0123456789abcdef"
    r["pair_key"] = pair_key(r["left"], r["right"])
    r["query_id"] = None


def _del(key: str):
    return lambda r: r.pop(key)


def _set(key: str, value: object):
    return lambda r: r.update({key: value})


# (record kind, mutation, field named in the error): the classes that used to get through
BAD_RECORDS = [
    ("label", _set("undone", "false"), "undone"),
    ("label", _set("undone", 0), "undone"),
    ("label", _set("query_id", 999), "query_id"),
    ("label", _set("query_id", "1"), "query_id"),
    ("header", _del("n_labels"), "n_labels"),
    ("header", _del("n_queries"), "n_queries"),
    ("header", _set("version", 0), "version"),
    ("header", _set("version", True), "version"),
    ("query", _self_pair, "right"),
    ("label", _self_pair, "right"),
    ("label", _set("response_time_s", -1.0), "response_time_s"),
    ("query", _set("score", float("inf")), "score"),
    ("query", _set("score", float("nan")), "score"),
    ("query", _set("score", 10**400), "score"),
    ("query", _set("env_step", 2**63), "env_step"),
    ("query", _set("env_step", 10**50), "env_step"),
    ("query", _set("id", 2**64), "id"),
    ("label", _set("created_at", "yesterday"), "created_at"),
    ("label", _set("value", 0.25), "value"),
    ("label", _set("pair_key", "a:b"), "pair_key"),
    ("label", _unknown_left, "left"),  # a clip not in clips.npz
    ("label", _set("source", "oracle"), "source"),
    ("label", _set("annotator", None), "annotator"),
    ("label", _set("extra", 1), "extra"),
    ("query", _set("status", "done"), "status"),
]


@pytest.mark.parametrize("kind,mutate,field", BAD_RECORDS)
def test_bad_records_name_file_line_and_field(exported: Path, tmp_path: Path, kind, mutate,
                                              field) -> None:
    recs = _records(exported)
    target = recs[0] if kind == "header" else \
        _first(recs, kind, lambda r: kind == "query" or r["query_id"])
    mutate(target)
    (exported / "labels.jsonl").write_text(
        "".join(json.dumps(r, allow_nan=True) + "\n" for r in recs))
    e = _import_error(exported, tmp_path)
    assert (e.file, e.field, e.line) == ("labels.jsonl", field, recs.index(target) + 1), str(e)
    assert "labels.jsonl" in str(e) and repr(field) in str(e) and "\n" not in str(e)


def test_duplicates_and_cut_files(exported: Path, tmp_path: Path) -> None:
    good = (exported / "labels.jsonl").read_text()
    recs = _records(exported)
    lab = _first(recs, "label")
    _write_records(exported, recs + [dict(lab, created_at=lab["created_at"] + 1)])
    e = _import_error(exported, tmp_path)
    assert e.field == "n_labels"  # the header count comes first
    recs[0]["n_labels"] += 1
    _write_records(exported, recs + [dict(lab, created_at=lab["created_at"] + 1)])
    e = _import_error(exported, tmp_path)
    assert e.field == "id" and "duplicate label id" in str(e) and e.line == len(recs) + 1
    recs = _records(exported)
    q = _first(recs, "query")
    recs[0]["n_queries"] += 1
    _write_records(exported, recs + [dict(q, id=99)])
    e = _import_error(exported, tmp_path)
    assert e.field == "pair_key" and "asked twice" in str(e)
    (exported / "labels.jsonl").write_text("".join(good.splitlines(keepends=True)[:-2]))
    # cut at a line boundary, header intact
    assert _import_error(exported, tmp_path).field == "n_labels"


def test_bad_time_blames_labels_jsonl_not_clips(exported: Path, tmp_path: Path) -> None:
    recs = _records(exported)
    _first(recs, "label")["created_at"] = float("inf")
    (exported / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    e = _import_error(exported, tmp_path)
    assert e.file == "labels.jsonl" and "clips.npz" not in str(e)


def _rewrite_npz(npz: Path, change) -> None:
    """Copy npz, letting change(name, data) return new bytes (or None to drop the member)."""
    with zipfile.ZipFile(npz) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    with zipfile.ZipFile(npz, "w") as z:
        for name, data in members.items():
            new = change(name, data)
            if new is not None:
                z.writestr(name, new)


def npy_bytes(a: np.ndarray, header: dict | None = None, pickle: bool = False) -> bytes:
    """The bytes of ``a`` as a .npy member, with ``header`` written as given if set."""
    buf = io.BytesIO()
    if header is None:
        np.lib.format.write_array(buf, a, allow_pickle=pickle)
    else:
        np.lib.format.write_array_header_1_0(buf, header)
        buf.write(a.tobytes())
    return buf.getvalue()


def _index(data: bytes) -> dict:
    return json.loads(str(np.lib.format.read_array(io.BytesIO(data))[()]))


def test_npz_headers_are_checked_before_allocating(exported: Path, tmp_path: Path,
                                                  monkeypatch) -> None:
    def never(*args: object, **kw: object) -> None:
        raise AssertionError("import unpickled something")

    monkeypatch.setattr(pickle, "load", never)
    monkeypatch.setattr(pickle, "loads", never)
    npz = exported / "clips.npz"
    good = npz.read_bytes()
    victim = next(n for n in zipfile.ZipFile(npz).namelist() if n.endswith("/obs.npy"))
    huge = {"descr": "<f4", "fortran_order": False, "shape": (10**12, 3)}
    bad_members = [
        npy_bytes(np.zeros(3, np.float32), huge),  # would be a MemoryError
        npy_bytes(np.zeros(3, np.float32), {**huge, "shape": (2**62, 2**62)}),  # overflows int64
        npy_bytes(np.zeros(3, np.float32), {**huge, "shape": (5, 3)}),  # data shorter than shape
        npy_bytes(np.zeros((4, 3), np.float32)),  # wrong length
        npy_bytes(np.array([{"a": 1}] * 5, dtype=object), pickle=True),  # never unpickled
        npy_bytes(np.zeros((5, 3), "U2")),
        npy_bytes(np.full((5, 3), np.nan, np.float32)),
        b"\x93NUMPY\x09\x00garbage",
        b"",
    ]
    tracemalloc.start()
    for data in bad_members:
        npz.write_bytes(good)
        _rewrite_npz(npz, lambda name, old, data=data: data if name == victim else old)
        e = _import_error(exported, tmp_path)
        assert e.file == "clips.npz" and e.member.startswith(victim[:17]), str(e)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50e6
    npz.write_bytes(good)
    _rewrite_npz(npz, lambda name, old: None if name == victim else old)
    assert _import_error(exported, tmp_path).member == victim  # missing
    npz.write_bytes(good)
    _rewrite_npz(npz, lambda name, old: old)
    with zipfile.ZipFile(npz, "a") as z:
        z.writestr("stray.npy", npy_bytes(np.zeros(3)))
    assert _import_error(exported, tmp_path).member == "stray.npy"


def test_clip_size_limit(exported: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(store_npz, "MAX_CLIP_BYTES", 1000)  # a clip has ~1070 B in 5 members
    e = _import_error(exported, tmp_path)
    assert e.member.endswith("/rs_frames.npy") and "per clip" in str(e)
    monkeypatch.setattr(store_npz, "MAX_CLIP_BYTES", 200)
    e = _import_error(exported, tmp_path)
    assert e.member.endswith("/rs_frames.npy") and "declares shape (5, 4, 4, 3)" in str(e)


@pytest.mark.parametrize("doc,field", [
    ([], None),  # a JSON index of the wrong type
    ({"format": "prefrl-clips", "version": 1, "clips": {}}, "clips"),
    ({"format": "prefrl-clips", "version": 0, "clips": []}, "version"),
    ({"format": "prefrl-clips", "version": 1, "clips": [7]}, "clips[0]"),
])
def test_bad_index_documents(exported: Path, tmp_path: Path, doc, field) -> None:
    _rewrite_npz(exported / "clips.npz", lambda name, old: npy_bytes(np.array(json.dumps(doc)))
                 if name == "__index__.npy" else old)
    e = _import_error(exported, tmp_path)
    assert (e.file, e.member, e.field) == ("clips.npz", "__index__.npy", field), str(e)


@pytest.mark.parametrize("key,value", [("step", 2**63), ("step", -1), ("step", 1.5),
                                       ("hash", "XYZ"), ("env_id", 3), ("render_state", "ab"),
                                       ("render_state", ["frames", "frames"])])
def test_bad_index_entries(exported: Path, tmp_path: Path, key, value) -> None:
    def change(name: str, old: bytes) -> bytes:
        if name != "__index__.npy":
            return old
        doc = _index(old)
        doc["clips"][1][key] = value
        return npy_bytes(np.array(json.dumps(doc)))

    _rewrite_npz(exported / "clips.npz", change)
    e = _import_error(exported, tmp_path)
    assert (e.file, e.field) == ("clips.npz", f"clips[1].{key}"), str(e)


def test_torn_export_pair_is_detected(db: LabelStore, exported: Path, tmp_path: Path) -> None:
    old_labels = (exported / "labels.jsonl").read_bytes()
    db.export(exported)  # a new export; then pretend the labels rename never happened
    (exported / "labels.jsonl").write_bytes(old_labels)
    e = _import_error(exported, tmp_path)
    assert e.field == "export_id" and "same export" in str(e)


def test_failed_import_leaves_store_byte_for_byte(exported: Path, tmp_path: Path) -> None:
    target = tmp_path / "target.sqlite"
    with LabelStore(target) as t:
        t.add_query(ClipPair(make_clip(200), make_clip(201)), "random", 0.0)
    before = target.read_bytes()
    good = _records(exported)
    recs = _records(exported)
    recs[-1]["undone"] = "false"  # the last line: everything before it is valid
    _write_records(exported, recs)
    with LabelStore(target) as t, pytest.raises(ExportError, match="undone"):
        t.import_(exported)
    assert target.read_bytes() == before
    _write_records(exported, good)
    npz = exported / "clips.npz"  # found while inserting clips, inside the transaction
    last = _index(zipfile.ZipFile(npz).read("__index__.npy"))["clips"][-1]["hash"]
    _rewrite_npz(npz, lambda name, old: npy_bytes(np.full((5, 3), 7, np.float32))
                 if name == f"{last}/obs.npy" else old)
    with LabelStore(target) as t, pytest.raises(ExportError, match=f"clip {last} is corrupt"):
        t.import_(exported)
    assert target.read_bytes() == before


# -- a store that must not be replaced, the CLI ---------------------------------------------

def test_empty_store_file_is_refused_without_create(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite"
    path.touch()
    with pytest.raises(StoreError, match="is empty.*create=False"):
        LabelStore(path, create=False)
    assert path.read_bytes() == b""


def test_cli_export_never_overwrites_good_export(exported: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "labels.sqlite").touch()
    before = {p.name: p.read_bytes() for p in exported.iterdir()}
    assert main(["export", str(run), "--out", str(exported)]) == 2
    err = capsys.readouterr().err
    assert "is empty" in err and err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in exported.iterdir()} == before
    assert main(["export", str(tmp_path / "run.db"), "--out", str(exported / "clips.npz")]) == 2
    err = capsys.readouterr().err
    assert "exists and is not a folder" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in exported.iterdir()} == before


def test_cli_import(db: LabelStore, exported: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    assert main(["import", str(exported), "--into", str(run)]) == 2
    assert "no labels.sqlite" in capsys.readouterr().err
    new = tmp_path / "new.sqlite"
    assert main(["import", str(exported), "--into", str(new)]) == 0
    out = capsys.readouterr().out
    assert "(new store): 8 clips (0 already there), 5 queries" in out and "6 labels" in out
    with LabelStore(new, create=False) as s:
        assert s.labels(include_undone=True) == db.labels(include_undone=True)
    (run / "labels.sqlite").write_bytes(new.read_bytes())
    assert main(["import", str(exported), "--into", str(run)]) == 0
    assert "0 clips (8 already there)" in capsys.readouterr().out
    assert main(["import", str(exported), "--into", str(tmp_path / "x.txt")]) == 2
    assert ".sqlite" in capsys.readouterr().err
    recs = _records(exported)
    recs[1]["score"] = "high"
    _write_records(exported, recs)
    before = new.read_bytes()
    for dest in (new, tmp_path / "other.sqlite"):
        assert main(["import", str(exported), "--into", str(dest)]) == 2
        err = capsys.readouterr().err
        assert "labels.jsonl, line 2, field 'score'" in err and err.count("\n") == 1
    assert new.read_bytes() == before and not list(tmp_path.glob("other.sqlite*"))
    assert main(["import", str(tmp_path / "nowhere"), "--into", str(new)]) == 2
    assert "does not exist" in capsys.readouterr().err
