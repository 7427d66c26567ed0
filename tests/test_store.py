"""Tests for prefrl.store: round trips, schema/versioning, corruption, concurrency, kill safety.

Export/import tests are in test_store_io.py.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prefrl import store_schema as schema_mod
from prefrl.store import DuplicateQueryError, LabelStore, PreferenceDataset, StoreError
from prefrl.types import Answer, Clip, ClipPair, Label

REPO = Path(__file__).resolve().parents[1]


def make_clip(seed: int, t: int = 5, *, discrete: bool = False, render: bool = True,
              env_id: str = "Test-v0") -> Clip:
    rng = np.random.default_rng(seed)
    acts = rng.integers(0, 4, size=t).astype(np.int64) if discrete else \
        rng.normal(size=(t, 2)).astype(np.float32)
    rs = {"qpos": rng.normal(size=(t, 3)), "frames": rng.integers(0, 255, (t, 4, 4, 3), np.uint8)}
    return Clip(obs=rng.normal(size=(t, 3)).astype(np.float32), acts=acts,
                true_rews=rng.normal(size=t).astype(np.float32), env_id=env_id,
                render_state=rs if render else {}, source_run=f"run{seed % 3}", step=10 * seed)


def assert_same_clip(a: Clip, b: Clip) -> None:
    assert a.hash == b.hash and a.env_id == b.env_id
    assert (a.source_run, a.step) == (b.source_run, b.step)
    for x, y in [(a.obs, b.obs), (a.acts, b.acts), (a.true_rews, b.true_rews)]:
        assert x.dtype == y.dtype and np.array_equal(x, y)
    assert a.render_state.keys() == b.render_state.keys()
    for k in a.render_state:
        assert a.render_state[k].dtype == b.render_state[k].dtype
        assert np.array_equal(a.render_state[k], b.render_state[k])


def lab(a: Clip | str, b: Clip | str, ans: str, who: str = "", **kw: object) -> Label:
    ha = a if isinstance(a, str) else a.hash
    hb = b if isinstance(b, str) else b.hash
    return Label(ha, hb, Answer(ans), annotator=who, **kw)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> LabelStore:
    with LabelStore(tmp_path / "run.db") as s:
        yield s


def populate(s: LabelStore) -> list[Clip]:
    """Clips (continuous, discrete), queries, labels with all answers, a human label, an undo."""
    clips = [make_clip(i) for i in range(6)]
    assert s.add_clips(clips) == 6
    discrete = [make_clip(i, discrete=True, env_id="Disc-v0") for i in (50, 51)]
    s.add_query(ClipPair(*discrete), "random", 0.0)  # stays pending, never labelled
    q = [s.add_query(ClipPair(clips[i], clips[i + 1]), "disagreement", 0.1 * i, env_step=100 * i)
         for i in range(4)]
    s.add_label(lab(clips[0], clips[1], "left", query_id=q[0]))
    s.add_label(lab(clips[1], clips[2], "right", query_id=q[1]))
    s.add_label(lab(clips[2], clips[3], "equal", query_id=q[2]))
    s.add_label(lab(clips[3], clips[4], "skip", query_id=q[3]))
    s.add_label(Label(clips[4].hash, clips[5].hash, Answer.RIGHT, source="human",
                      annotator="alice", response_time_s=1.25))
    s.add_label(Label(clips[5].hash, clips[0].hash, Answer.LEFT, source="human", annotator="bob"))
    assert s.undo_last_label("bob") is not None
    s.put_meta("env_id", "Test-v0")
    return clips


def test_training_set(db: LabelStore) -> None:
    clips = populate(db)
    ds = db.training_set()
    assert isinstance(ds, PreferenceDataset) and len(ds) == 4  # skip and undone excluded
    assert ds.mu.dtype == np.float32 and ds.mu.tolist() == [0.0, 1.0, 0.5, 1.0]
    assert ds.left_obs.shape == (4, 5, 3) and ds.right_obs.shape == (4, 5, 3)
    assert ds.left_acts.shape[:2] == (4, 5)
    assert ds.left_hashes[1] == clips[1].hash and ds.right_hashes[1] == clips[2].hash
    assert np.array_equal(ds.right_obs[3], clips[5].obs)
    assert ds.pair_keys[0] == ClipPair(clips[0], clips[1]).key
    sub = ds.subset(np.array([3, 0]))
    assert len(sub) == 2 and sub.mu.tolist() == [1.0, 0.0] and sub.left_hashes[1] == clips[0].hash
    assert len(ds.subset(ds.mu > 0.7)) == 2


def test_training_set_edge_cases(db: LabelStore) -> None:
    assert len(db.training_set()) == 0
    a, b = make_clip(1, t=5, render=False), make_clip(2, t=7, render=False)
    c = make_clip(3, t=5, render=False)
    db.add_clips([a, b, c])
    db.add_label(lab(a, c, "left"))
    assert len(db.training_set()) == 1
    db.add_label(lab(a, b, "left"))
    with pytest.raises(StoreError, match="different lengths"):
        db.training_set()


def test_queries_duplicates_and_status(db: LabelStore) -> None:
    a, b, c = make_clip(1), make_clip(2), make_clip(3)
    qid = db.add_query(ClipPair(a, b), "random", 0.5, env_step=7)
    assert db.has_asked(ClipPair(b, a).key) and db.asked_keys() == {ClipPair(a, b).key}
    for pair in (ClipPair(a, b), ClipPair(b, a)):
        with pytest.raises(DuplicateQueryError):
            db.add_query(pair, "random", 0.0)
    assert db.n_queries() == 1 and db.n_clips() == 2
    q2 = db.add_query(ClipPair(b, c), "random", 0.0)
    assert [q.id for q in db.pending_queries()] == [qid, q2]
    assert [q.id for q in db.pending_queries(limit=1)] == [qid]
    rec = db.pending_queries()[0]
    assert (rec.left, rec.right, rec.selector, rec.env_step) == (a.hash, b.hash, "random", 7)
    assert db.query(qid) == rec and db.query(q2).pair_key == ClipPair(b, c).key
    assert db.query(10_000) is None
    db.add_label(lab(b, c, "skip", "ann", query_id=q2))
    assert db.queries("skipped")[0].id == q2
    db.add_label(lab(a, b, "left", "ann", query_id=qid))
    assert db.pending_queries() == [] and db.queries("answered")[0].id == qid
    with pytest.raises(StoreError, match="another pair"):
        db.add_label(lab(a, c, "left", query_id=qid))
    with pytest.raises(StoreError, match="clips must be"):
        db.add_label(lab(a, make_clip(9), "left"))
    with pytest.raises(ValueError, match="finite"):
        db.add_query(ClipPair(a, c), "random", float("nan"))


def test_add_queries_labels_a_batch_in_one_all_or_nothing_transaction(db: LabelStore) -> None:
    clips = [make_clip(i) for i in range(6)]
    pairs = [(ClipPair(clips[i], clips[i + 1]), 0.1 * i) for i in range(3)]
    qids = db.add_queries(pairs, "disagreement", env_step=5,
                          answer=lambda pair, qid: lab(pair.left, pair.right, "left", query_id=qid))
    assert [q.id for q in db.queries("answered")] == qids and len(set(qids)) == 3
    assert [(lb.key, lb.query_id) for lb in db.labels()] == [
        (p.key, q) for (p, _), q in zip(pairs, qids, strict=True)]
    assert [q.score for q in db.queries()] == pytest.approx([0.0, 0.1, 0.2])
    before = (db.n_queries(), db.n_labels(), db.n_clips())
    fresh = ClipPair(clips[4], clips[5])
    with pytest.raises(DuplicateQueryError):  # the second pair was asked before
        db.add_queries([(fresh, 0.0), (ClipPair(clips[1], clips[0]), 0.0)], "random")
    assert (db.n_queries(), db.n_labels(), db.n_clips()) == before and not db.has_asked(fresh.key)

    def failing_teacher(pair: ClipPair, qid: int) -> Label:
        raise RuntimeError("teacher failed")
    with pytest.raises(RuntimeError, match="teacher failed"):
        db.add_queries([(fresh, 0.0)], "random", answer=failing_teacher)
    assert (db.n_queries(), db.n_labels(), db.n_clips()) == before
    assert db.add_queries([(fresh, 0.3)], "random") == [max(qids) + 1]
    assert db.pending_queries()[0].pair_key == fresh.key


def test_undo_per_annotator(db: LabelStore) -> None:
    a, b, c = make_clip(1), make_clip(2), make_clip(3)
    q1 = db.add_query(ClipPair(a, b), "random", 0.0)
    q2 = db.add_query(ClipPair(b, c), "random", 0.0)
    db.add_label(lab(a, b, "left", "alice", query_id=q1))
    db.add_label(lab(b, c, "right", "bob", query_id=q2))
    db.add_label(lab(b, c, "equal", "alice", query_id=q2))
    assert db.undo_last_label("carol") is None
    undone = db.undo_last_label("alice")
    assert undone is not None and undone.answer is Answer.EQUAL
    assert db.n_labels() == 2 and db.queries("answered") != []  # bob still answers q2
    assert db.undo_last_label("alice").answer is Answer.LEFT  # type: ignore[union-attr]
    assert [q.id for q in db.pending_queries()] == [q1]
    assert db.undo_last_label("alice") is None
    assert db.undo_last_label("bob") is not None and len(db.pending_queries()) == 2
    assert db.n_labels() == 0 and len(db.labels(include_undone=True)) == 3


def test_labels_since_and_meta(db: LabelStore) -> None:
    a, b = make_clip(1), make_clip(2)
    db.add_clips([a, b])
    ids = db.add_labels([lab(a, b, "left", created_at=1.0), lab(a, b, "skip", created_at=2.0)])
    assert [i for i, _ in db.labels_since(0)] == ids
    assert db.labels_since(ids[0]) == [(ids[1], lab(a, b, "skip", created_at=2.0))]
    assert db.labels_since(0, include_skips=False)[0][0] == ids[0]
    assert db.n_labels() == 1 and db.n_labels(include_skips=True) == 2
    assert db.get_meta("nope") is None
    db.put_meta("seed", "3")
    assert db.get_meta("seed") == "3"
    with pytest.raises(ValueError, match="reserved"):
        db.put_meta("schema_version", "2")


def test_clip_api_and_corrupt_clip(db: LabelStore) -> None:
    a, b = make_clip(1), make_clip(2)
    assert db.add_clip(a) and not db.add_clip(a) and not db.has_clip(b.hash)
    db.add_clip(b)
    assert db.clip_hashes() == [a.hash, b.hash]
    assert_same_clip(db.get_clip(a.hash), a)
    with pytest.raises(KeyError, match="not in label store"):
        db.get_clip("0" * 16)
    # swap a's stored data for b's: the content no longer hashes to a's hash
    with sqlite3.connect(db.path) as raw:
        raw.execute("UPDATE clips SET data = (SELECT data FROM clips WHERE hash = ?) "
                    "WHERE hash = ?", (b.hash, a.hash))
    with pytest.raises(StoreError, match=f"clip {a.hash} .* corrupt"):
        db.get_clip(a.hash)
    with sqlite3.connect(db.path) as raw:
        raw.execute("UPDATE clips SET data = X'00112233' WHERE hash = ?", (b.hash,))
    with pytest.raises(StoreError, match="corrupt"):
        db.get_clip(b.hash)


def test_threads_share_one_store(db: LabelStore) -> None:
    a, b = make_clip(1), make_clip(2)
    db.add_clips([a, b])

    def work(i: int) -> int:
        db.add_label(lab(a, b, "left", f"t{i % 4}", created_at=float(i)))
        return db.n_labels()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(80)))
    assert db.n_labels() == 80


def test_open_errors_and_close(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        LabelStore(tmp_path / "missing.db", create=False)
    with pytest.raises(StoreError, match="directory"):
        LabelStore(tmp_path)
    s = LabelStore(tmp_path / "x.db")
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.n_labels()
    with LabelStore(tmp_path / "x.db", create=False) as s2:
        assert s2.n_labels() == 0


# -- schema versioning -----------------------------------------------------------------------

def test_schema_newer_and_foreign(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    LabelStore(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    raw.close()
    with pytest.raises(StoreError, match=r"newer prefrl \(schema 999 > 1\)"):
        LabelStore(path)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as raw:
        raw.execute("CREATE TABLE users(id INTEGER, name TEXT)")
    raw.close()
    with pytest.raises(StoreError, match="not a prefrl label store"):
        LabelStore(other)
    meta_other = tmp_path / "meta.db"
    with sqlite3.connect(meta_other) as raw:
        raw.execute("CREATE TABLE meta(key TEXT, value TEXT)")
        raw.execute("INSERT INTO meta VALUES ('application', 'something-else')")
    raw.close()
    with pytest.raises(StoreError, match="not a prefrl label store"):
        LabelStore(meta_other)


def test_migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(schema_mod._MIGRATIONS) == schema_mod.SCHEMA_VERSION
    empty = tmp_path / "empty.db"
    empty.touch()  # version 0: an empty file gets every migration
    with LabelStore(empty) as s:
        assert s.n_labels() == 0
    with sqlite3.connect(empty) as raw:
        assert raw.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    raw.close()

    path = tmp_path / "run.db"
    with LabelStore(path) as s:
        populate(s)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done(x)")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(schema_mod, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(schema_mod, "_MIGRATIONS", [*schema_mod._MIGRATIONS, broken])
    with pytest.raises(RuntimeError, match="migration bug"):
        LabelStore(path)

    def v2(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE labels ADD COLUMN confidence REAL")

    monkeypatch.setattr(schema_mod, "_MIGRATIONS", [*schema_mod._MIGRATIONS[:1], v2])
    with LabelStore(path) as s:  # the failed migration left nothing behind
        assert s.n_labels() == 4
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("2",)
        cols = [r[1] for r in raw.execute("PRAGMA table_info(labels)")]
        assert "confidence" in cols
        assert not raw.execute("SELECT 1 FROM sqlite_master WHERE name='half_done'").fetchall()
    raw.close()
    monkeypatch.undo()
    with pytest.raises(StoreError, match="newer prefrl"):
        LabelStore(path)


def test_truncated_and_garbage_store(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    with LabelStore(path) as s:
        rng = np.random.default_rng(0)
        s.add_clips(Clip(obs=rng.normal(size=(50, 17)).astype(np.float32),
                         acts=rng.normal(size=(50, 6)).astype(np.float32),
                         true_rews=rng.normal(size=50), env_id="T") for _ in range(30))
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    size = path.stat().st_size
    assert size > 50_000
    for frac in (0.5, 0.9):
        cut = tmp_path / f"cut{frac}.db"
        shutil.copy(path, cut)
        with open(cut, "r+b") as f:
            f.truncate(int(size * frac))
        with pytest.raises(StoreError, match=f"{cut.name}.*(corrupt|not a readable)"):
            LabelStore(cut)
    # cut inside the last page: the b-tree still checks out, the clip hash check catches it
    cut = tmp_path / "cut_last_page.db"
    shutil.copy(path, cut)
    with open(cut, "r+b") as f:
        f.truncate(size - 1000)
    with pytest.raises(StoreError, match="corrupt"), LabelStore(cut) as s:
        s.get_clips(s.clip_hashes())
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(np.random.default_rng(1).bytes(8192))
    with pytest.raises(StoreError, match="garbage.db is not a readable SQLite label store"):
        LabelStore(garbage)
    text = tmp_path / "notes.db"
    text.write_text("hello, I am not a database\n" * 100)
    with pytest.raises(StoreError, match="not a readable"):
        LabelStore(text)


# -- property test ---------------------------------------------------------------------------

OPS = st.lists(st.one_of(
    st.tuples(st.just("add"), st.sampled_from("abc"), st.sampled_from(list(Answer))),
    st.tuples(st.just("undo"), st.sampled_from("abc"), st.none())), max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_label_undo_model(ops: list[tuple[str, str, Answer | None]]) -> None:
    a, b = make_clip(1, render=False), make_clip(2, render=False)
    model: dict[str, list[Answer]] = {k: [] for k in "abc"}
    with tempfile.TemporaryDirectory() as d, LabelStore(Path(d) / "p.db", check=False) as s:
        s.add_clips([a, b])
        for i, (op, who, ans) in enumerate(ops):
            if op == "add":
                assert ans is not None
                s.add_label(lab(a, b, ans.name.lower(), who, created_at=float(i)))
                model[who].append(ans)
            else:
                got = s.undo_last_label(who)
                want = model[who].pop() if model[who] else None
                assert (got.answer if got else None) == want
            live = [x for v in model.values() for x in v]
            assert s.n_labels(include_skips=True) == len(live)
            assert s.n_labels() == sum(x is not Answer.SKIP for x in live)
        assert len(s.training_set()) == s.n_labels()


# -- processes -------------------------------------------------------------------------------

def _writer(path: str, left: str, right: str, who: str, n: int, pause: float,
            barrier: object | None) -> None:
    if barrier is not None:
        barrier.wait()  # type: ignore[attr-defined]
    with LabelStore(path) as s:
        s.add_clips([make_clip(1, render=False), make_clip(2, render=False)])
        for i in range(n):
            s.add_label(Label(left, right, Answer.LEFT, annotator=who, created_at=float(i)))
            if pause:
                time.sleep(pause)


def test_concurrent_writer_and_reader(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    a, b = make_clip(1, render=False), make_clip(2, render=False)
    with LabelStore(path) as s:
        s.add_clips([a, b])
        ctx = mp.get_context("spawn")
        p = ctx.Process(target=_writer, args=(str(path), a.hash, b.hash, "w", 200, 0.001, None))
        p.start()
        seen = [s.n_labels()]
        while p.is_alive():
            seen.append(s.n_labels())
            assert len(s.training_set()) == seen[-1] or s.n_labels() > seen[-1]
        p.join()
        assert p.exitcode == 0
        seen.append(s.n_labels())
    assert all(x <= y for x, y in zip(seen, seen[1:], strict=False))
    assert seen[-1] == 200 and len(set(seen)) > 2


def test_two_writer_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "new.db"  # both processes create and migrate the same new file at once
    a, b = make_clip(1, render=False), make_clip(2, render=False)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(str(path), a.hash, b.hash, w, 100, 0.0, barrier))
             for w in ("w1", "w2")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with LabelStore(path) as s:
        assert s.n_labels() == 200 and s.n_clips() == 2
        assert sorted(x.created_at for x in s.labels() if x.annotator == "w1") == \
            [float(i) for i in range(100)]


_KILL_CHILD = """
import sys
from prefrl.store import LabelStore
from prefrl.types import Answer, Label
s = LabelStore(sys.argv[1])
for i in range(100000):
    s.add_label(Label(sys.argv[2], sys.argv[3], Answer.RIGHT, annotator="k", created_at=float(i)))
    print(i + 1, flush=True)
"""


def test_kill_9_loses_nothing_committed(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    a, b = make_clip(1), make_clip(2)
    with LabelStore(path) as s:
        s.add_clips([a, b])
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen([sys.executable, "-c", _KILL_CHILD, str(path), a.hash, b.hash],
                             stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    reported = 0
    while reported < 60:
        line = child.stdout.readline()
        assert line, "child died early"
        reported = int(line)
    os.kill(child.pid, signal.SIGKILL)
    rest = child.stdout.read().split()
    child.wait()
    assert child.returncode == -signal.SIGKILL
    reported = int(rest[-1]) if rest else reported
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA quick_check").fetchone() == ("ok",)
    raw.close()
    with LabelStore(path, create=False) as s:
        n = s.n_labels()
        assert reported <= n <= reported + 1
        assert [x.created_at for x in s.labels()] == [float(i) for i in range(n)]
        assert all(x.answer is Answer.RIGHT and x.left == a.hash for x in s.labels())
        assert len(s.training_set()) == n
