"""Tests for prefrl.store_io: export/import round trips, merging, corrupt exports."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from test_store import assert_same_clip, make_clip, populate

from prefrl.store import LabelStore, StoreError
from prefrl.store_io import export_store, import_store
from prefrl.types import Answer, ClipPair


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


def test_corrupt_export_npz(exported: Path, tmp_path: Path) -> None:
    npz = exported / "clips.npz"
    good = npz.read_bytes()
    npz.write_bytes(good[: len(good) // 2])
    with pytest.raises(StoreError, match="clips.npz is corrupt"):
        _fresh_import(exported, tmp_path)
    np.savez(npz, a=np.zeros(3))  # a foreign npz
    with pytest.raises(StoreError, match="clips.npz"):
        _fresh_import(exported, tmp_path)
    # tampered array: same keys, different content
    npz.write_bytes(good)
    with np.load(npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    victim = next(k for k in arrays if k.endswith("/obs"))
    arrays[victim] = arrays[victim] + 1
    np.savez_compressed(npz, **arrays)
    with pytest.raises(StoreError, match=f"clip {victim[:16]} .*corrupt"):
        _fresh_import(exported, tmp_path)
    npz.unlink()
    with pytest.raises(StoreError, match="missing"):
        _fresh_import(exported, tmp_path)
    with pytest.raises(StoreError, match="cannot read export"):
        _fresh_import(tmp_path / "nowhere", tmp_path)


def test_corrupt_export_jsonl(exported: Path, tmp_path: Path) -> None:
    path = exported / "labels.jsonl"
    lines = path.read_text().splitlines(keepends=True)

    def check(text: str, match: str) -> None:
        path.write_text(text)
        with pytest.raises(StoreError, match=match):
            _fresh_import(exported, tmp_path)

    check("".join(lines[:3] + ['{"type": "label", "left": \n'] + lines[4:]), "line 4: bad record")
    check("".join(lines[:-1]), "truncated")
    check("".join(lines)[:-20], "bad record")
    check("", "empty")
    check(json.dumps({"format": "something-else", "version": 1}) + "\n", "not a prefrl labels")
    header = json.loads(lines[0])
    check(json.dumps({**header, "version": 99}) + "\n" + "".join(lines[1:]), "version 99")
    check("".join(lines[:1] + [json.dumps({"type": "label", "answer": "maybe"}) + "\n"]),
          "bad record")
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(StoreError, match="cannot read"):
        _fresh_import(exported, tmp_path)
