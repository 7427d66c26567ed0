"""The labelling GUI's JSON API: auth, pairs, answers, undo, status, overlap, stats, safety."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="GUI dependencies not installed (pip install -e '.[gui]')")
pytest.importorskip("httpx", reason="GUI test dependency httpx not installed")
pytest.importorskip("uvicorn", reason="GUI dependencies not installed (pip install -e '.[gui]')")

with warnings.catch_warnings():  # starlette >= 1 deprecates httpx in its TestClient
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from prefrl.gui.app import create_app  # noqa: E402
from prefrl.gui.cli import gui_main  # noqa: E402
from prefrl.gui.pairs import overlap_draw  # noqa: E402
from prefrl.gui.server import GuiHandle  # noqa: E402
from prefrl.store import LabelStore  # noqa: E402
from prefrl.types import Answer, Clip, ClipPair, Label, pair_key  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def make_clip(seed: int, ret: float = 0.0, t: int = 6) -> Clip:
    rng = np.random.default_rng(seed)
    return Clip(obs=rng.normal(size=(t, 3)).astype(np.float32), acts=np.zeros((t, 1), np.float32),
                true_rews=np.full(t, ret / t, np.float32), env_id="Test-v0")


def make_store(path: Path, n_queries: int, *, returns: bool = True) -> list[int]:
    """A store with ``n_queries`` pending pairs; clip 2i has return i, clip 2i+1 return -i."""
    with LabelStore(path) as s:
        return [s.add_query(ClipPair(make_clip(2 * i, i + 1.0 if returns else 0.0),
                                     make_clip(2 * i + 1, -i - 1.0 if returns else 0.0)),
                            "random", 0.0) for i in range(n_queries)]


class Gui:
    """An app over a fresh store with annotators alice, bob and carol."""

    def __init__(self, tmp: Path, n_queries: int = 6, **kw: object) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.store_path = tmp / "labels.sqlite"
        self.qids = make_store(self.store_path, n_queries, returns=bool(kw.pop("returns", True)))
        self.app = create_app(self.store_path, env_id=None, annotators_file=tmp / "ann.json",
                              **kw)  # type: ignore[arg-type]
        self.state = self.app.state.gui
        self.tokens = {n: self.state.registry.add(n) for n in ("alice", "bob", "carol")}

    def client(self, who: str | None = None, **kw: object) -> TestClient:
        c = TestClient(self.app, **kw)  # type: ignore[arg-type]
        if who:
            c.headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return c

    def labels(self, include_undone: bool = False) -> list[Label]:
        return self.state.store.labels(include_undone=include_undone)

    def close(self) -> None:
        """Stop background video work (no lifespan runs without ``with TestClient``)."""
        self.state.cache.close()
        self.state.store.close()


@pytest.fixture
def make_gui(tmp_path: Path) -> Iterator[Callable[..., Gui]]:
    made: list[Gui] = []

    def make(n_queries: int = 6, **kw: object) -> Gui:
        made.append(Gui(tmp_path / f"gui{len(made)}", n_queries, **kw))
        return made[-1]

    yield make
    for g in made:
        g.close()


@pytest.fixture
def gui(make_gui: Callable[..., Gui]) -> Gui:
    return make_gui()


def answer(c: TestClient, q: dict, ans: str, **extra: object) -> dict:
    r = c.post("/api/answer", json={"query_id": q["id"], "answer": ans, "left": q["left"],
                                    "right": q["right"], **extra})
    assert r.status_code == 200, r.text
    return r.json()


# ---------------------------------------------------------------------------------- auth
@pytest.mark.parametrize("method,path", [
    ("GET", "/"), ("GET", "/static/app.js"), ("GET", "/api/status"), ("GET", "/api/next"),
    ("POST", "/api/answer"), ("POST", "/api/undo"), ("GET", "/api/video/0123456789abcdef.mp4"),
    ("GET", "/stats"),
])
def test_every_route_needs_a_valid_token(gui: Gui, method: str, path: str) -> None:
    c = gui.client()
    assert c.request(method, path).status_code == 401
    assert c.request(method, path, params={"token": "nope"}).status_code == 401
    tok = gui.tokens["alice"]
    bad = {"Authorization": "Bearer " + tok[:-1] + ("A" if tok[-1] != "A" else "B")}
    r = c.request(method, path, headers=bad)
    assert r.status_code == 401 and r.json()["detail"].startswith("missing or invalid token")


def test_good_token_by_header_or_query(gui: Gui) -> None:
    c = gui.client()
    tok = gui.tokens["bob"]
    assert c.get("/api/status", headers={"Authorization": f"Bearer {tok}"}).json()[
        "annotator"] == "bob"
    assert c.get("/api/status", params={"token": tok}).json()["annotator"] == "bob"
    page = c.get("/", params={"token": tok})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert f"static/app.js?token={tok}" in page.text and "<video" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    js = c.get("/static/app.js", params={"token": tok})
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert c.get("/static/secret.txt", params={"token": tok}).status_code == 404


def test_tokens_are_stored_hashed(gui: Gui) -> None:
    text = (gui.store_path.parent / "ann.json").read_text()
    for tok in gui.tokens.values():
        assert tok not in text and hashlib.sha256(tok.encode()).hexdigest() in text


# ---------------------------------------------------------------------- pairs and answers
def test_next_returns_a_pending_query(gui: Gui) -> None:
    r = gui.client("alice").get("/api/next")
    assert r.status_code == 200
    q = r.json()["query"]
    rec = {x.id: x for x in gui.state.store.queries()}[q["id"]]
    assert rec.status == "pending" and {q["left"], q["right"]} == {rec.left, rec.right}
    assert r.json()["status"]["queue"] == len(gui.qids)


def test_answer_stores_a_human_label_with_timing(gui: Gui) -> None:
    c = gui.client("alice")
    q = c.get("/api/next").json()["query"]
    t0 = time.time()
    res = answer(c, q, "left", response_time_s=0.75)
    [lab] = gui.labels()
    assert (lab.left, lab.right, lab.answer) == (q["left"], q["right"], Answer.LEFT)
    assert lab.source == "human" and lab.annotator == "alice" and lab.query_id == q["id"]
    assert lab.response_time_s == pytest.approx(0.75) and t0 - 1 <= lab.created_at <= time.time()
    assert {x.id: x.status for x in gui.state.store.queries()}[q["id"]] == "answered"
    st = res["status"]
    assert st["labels_done"] == 1 and st["queue"] == len(gui.qids) - 1
    assert c.get("/api/next").json()["query"]["id"] != q["id"]


def test_response_time_is_clamped(gui: Gui) -> None:
    c = gui.client("alice")
    q1 = c.get("/api/next").json()["query"]
    answer(c, q1, "right", response_time_s=10_000.0)  # cannot exceed time since it was served
    q2 = c.get("/api/next").json()["query"]
    answer(c, q2, "skip", response_time_s=-3.0)
    q3 = c.post("/api/answer", json={"query_id": gui.qids[-1], "answer": "equal",
                                     "response_time_s": 9999})  # never served: 600 s at most
    assert q3.status_code == 200
    rts = [lab.response_time_s for lab in gui.labels()]
    assert rts[0] is not None and 0 <= rts[0] <= 5 and rts[1] == 0.0 and rts[2] == 600.0


def test_sides_are_shuffled_and_labels_keep_what_was_shown(make_gui: Callable[..., Gui]) -> None:
    g = make_gui(n_queries=16)
    c = g.client("alice")
    recs = {x.id: x for x in g.state.store.queries()}
    swapped = 0
    for _ in range(16):
        q = c.get("/api/next").json()["query"]
        swapped += q["left"] != recs[q["id"]].left
        answer(c, q, "right")
    assert 0 < swapped < 16
    assert all(lab.answer is Answer.RIGHT for lab in g.labels())
    shown = {(lab.left, lab.right) for lab in g.labels()}
    assert sum((r.left, r.right) not in shown for r in recs.values()) == swapped


def test_undo(gui: Gui) -> None:
    c = gui.client("alice")
    assert c.post("/api/undo").json()["undone"] is None
    q = c.get("/api/next").json()["query"]
    answer(c, q, "right")
    res = c.post("/api/undo").json()
    assert res["undone"]["answer"] == "right" and res["query"]["id"] == q["id"]
    assert res["status"]["labels_done"] == 0 and gui.labels() == []
    [old] = gui.labels(include_undone=True)
    assert old.annotator == "alice"
    assert {x.id: x.status for x in gui.state.store.queries()}[q["id"]] == "pending"
    answer(c, res["query"], "left")  # answering the undone pair again is allowed
    assert [lab.answer for lab in gui.labels()] == [Answer.LEFT]


def test_status_numbers(gui: Gui) -> None:
    now = time.time()
    q = gui.state.store.queries()
    with LabelStore(gui.store_path) as s:  # ten labels over the last 30 minutes: 20 per hour
        for i in range(10):
            s.add_label(Label(q[i % 3].left, q[i % 3].right, Answer.LEFT, "human", "alice",
                              created_at=now - 1800 + 180 * i))
        s.add_label(Label(q[4].left, q[4].right, Answer.LEFT, "human", "bob",
                          created_at=now - 7200))
    st = gui.client("alice").get("/api/status").json()
    assert st["labels_done"] == 10 and st["labels_total"] == 11
    assert st["queue"] == len(gui.qids)  # labels without a query id answer no query
    assert st["labels_per_hour"] == pytest.approx(20.0, abs=0.2)
    assert gui.client("bob").get("/api/status").json()["labels_per_hour"] == 0.0


def test_two_annotators_answering_at_once_lose_nothing(make_gui: Callable[..., Gui]) -> None:
    g = make_gui(n_queries=30)
    done: dict[str, list[int]] = {"alice": [], "bob": []}
    errors: list[BaseException] = []

    def work(who: str) -> None:
        try:
            c = g.client(who)
            while (q := c.get("/api/next").json()["query"]) is not None:
                answer(c, q, "left", response_time_s=0.1)
                done[who].append(q["id"])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in done]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    ids = done["alice"] + done["bob"]
    assert sorted(ids) == sorted(g.qids) and done["alice"] and done["bob"]  # leases: no repeats
    labels = g.labels()
    assert len(labels) == 30 and sorted(lab.query_id for lab in labels) == sorted(ids)
    assert all(q.status == "answered" for q in g.state.store.queries())


def test_second_answer_to_an_answered_query_is_a_second_label(gui: Gui) -> None:
    a, b = gui.client("alice"), gui.client("bob")
    q = a.get("/api/next").json()["query"]
    answer(a, q, "left")
    answer(b, q, "right")
    assert sorted(lab.annotator for lab in gui.labels()) == ["alice", "bob"]
    r = a.post("/api/answer", json={"query_id": q["id"], "answer": "left"})
    assert r.status_code == 409  # but nobody answers the same pair twice


# ------------------------------------------------------------------------------ bad input
def test_bad_inputs(gui: Gui) -> None:
    c = gui.client("alice")
    q = c.get("/api/next").json()["query"]
    post = c.post
    hdr = {"Content-Type": "application/json"}
    assert post("/api/answer", content=b"{not json", headers=hdr).status_code == 422
    assert post("/api/answer", json={"query_id": q["id"], "answer": "maybe"}).status_code == 422
    assert post("/api/answer", json={"answer": "left"}).status_code == 422
    assert post("/api/answer", json={"query_id": q["id"], "answer": "left",
                                     "admin": True}).status_code == 422
    assert post("/api/answer", json={"query_id": q["id"], "answer": "left",
                                     "left": "../../etc/passwd"}).status_code == 422
    nan = b'{"query_id": %d, "answer": "left", "response_time_s": NaN}' % q["id"]
    assert post("/api/answer", content=nan, headers=hdr).status_code == 422
    other = make_clip(999).hash
    assert post("/api/answer", json={"query_id": q["id"], "answer": "left", "left": other,
                                     "right": q["right"]}).status_code == 422
    r = post("/api/answer", json={"query_id": 99999, "answer": "left"})
    assert r.status_code == 404 and "detail" in r.json()
    assert c.get("/api/next", params={"exclude": "abc"}).status_code == 422
    assert gui.labels() == []


@pytest.mark.parametrize("name", [
    "0123456789abcdef.mp4",  # well-formed, unknown
    "0123456789ABCDEF.mp4", "0123456789abcde.mp4", "0123456789abcdef.avi",
    "..%2F..%2Fetc%2Fpasswd", "..%2Flabels.sqlite", "%2Fetc%2Fpasswd.mp4", "...mp4",
])
def test_unknown_or_path_like_clip_is_404(gui: Gui, name: str) -> None:
    r = gui.client("alice").get(f"/api/video/{name}")
    assert r.status_code in (404, 422) and "detail" in r.json()


def test_internal_errors_are_json_without_internals(gui: Gui, monkeypatch) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals at /home/x/.ssh")

    monkeypatch.setattr(gui.state.queue, "view", boom)
    r = gui.client("alice", raise_server_exceptions=False).get("/api/status")
    assert r.status_code == 500 and r.json() == {"detail": "internal server error"}
    assert "secret" not in r.text and "Traceback" not in r.text


def test_video_is_made_once_and_served_with_ranges(gui: Gui) -> None:
    pytest.importorskip("imageio_ffmpeg", reason="imageio-ffmpeg not installed")
    c = gui.client("alice")
    q = c.get("/api/next").json()["query"]
    gui.state.cache.close()  # no background prefetch: count the encodes of this request only
    from prefrl.gui.video import VideoCache

    gui.state.cache = VideoCache(gui.store_path.parent / "fresh_cache")  # (the old one's
    r = c.get(f"/api/video/{q['left']}.mp4")  # workers may have finished a clip while closing)
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert r.content[4:8] == b"ftyp"
    assert (gui.store_path.parent / "fresh_cache" / f"{q['left']}.mp4").is_file()
    part = c.get(f"/api/video/{q['left']}.mp4", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    assert gui.state.cache.n_encoded == 1  # the second request was served from the cache
    w = c.get(f"/api/video/{q['left']}.webm")
    assert w.status_code == 200 and w.headers["content-type"] == "video/webm"
    assert w.content[:4] == b"\x1a\x45\xdf\xa3"


# -------------------------------------------------------------------------------- overlap
def test_no_overlap_nobody_sees_an_answered_pair(make_gui: Callable[..., Gui]) -> None:
    g = make_gui(n_queries=3, overlap=0.0)
    a, b = g.client("alice"), g.client("bob")
    q = a.get("/api/next").json()["query"]
    answer(a, q, "left")
    seen = []
    while (nq := b.get("/api/next").json()["query"]) is not None:
        seen.append(nq["id"])
        answer(b, nq, "left")
    assert q["id"] not in seen and len(seen) == 2


def test_full_overlap_shows_a_pair_to_exactly_two_people(make_gui: Callable[..., Gui]) -> None:
    g = make_gui(n_queries=3, overlap=1.0)
    a, b, c = g.client("alice"), g.client("bob"), g.client("carol")
    q = a.get("/api/next").json()["query"]
    answer(a, q, "left")
    qb = b.get("/api/next").json()["query"]
    assert qb["id"] == q["id"]  # offered again, before the pending ones
    answer(b, qb, "right")
    assert c.get("/api/next").json()["query"]["id"] != q["id"]  # two people answered it
    ids = []
    while (nq := a.get("/api/next").json()["query"]) is not None:
        ids.append(nq["id"])
        answer(a, nq, "left")
    assert q["id"] not in ids  # nobody sees the same pair twice


def test_partial_overlap_follows_the_draw(make_gui: Callable[..., Gui]) -> None:
    g = make_gui(n_queries=40, overlap=0.5)
    a, b = g.client("alice"), g.client("bob")
    for _ in range(30):
        answer(a, a.get("/api/next").json()["query"], "left")
    recs = {x.id: x for x in g.state.store.queries()}
    answered = [i for i, r in recs.items() if r.status == "answered"]
    expect = {i for i in answered if overlap_draw("bob", recs[i].pair_key) < 0.5}
    assert 5 <= len(expect) <= 25
    again = set()
    for _ in range(len(expect)):
        q = b.get("/api/next").json()["query"]
        again.add(q["id"])
        answer(b, q, "left")
    assert again == expect
    assert recs[b.get("/api/next").json()["query"]["id"]].status == "pending"


# ---------------------------------------------------------------------------------- stats
def test_stats_agreement_on_a_constructed_case(make_gui: Callable[..., Gui]) -> None:
    g = make_gui(n_queries=4)
    q = g.state.store.queries()  # in every query the left clip has the higher true return
    with LabelStore(g.store_path) as s:
        def add(i: int, who: str, ans: str, swap: bool = False) -> None:
            left, right = (q[i].right, q[i].left) if swap else (q[i].left, q[i].right)
            s.add_label(Label(left, right, Answer(ans), "human", who, query_id=q[i].id,
                              response_time_s=2.0))

        add(0, "alice", "left")
        add(1, "alice", "left")
        add(2, "alice", "right")  # wrong
        add(3, "alice", "skip")
        add(0, "bob", "left")  # agrees with alice, right
        add(1, "bob", "right")  # disagrees with alice, wrong
        add(2, "bob", "left", swap=True)  # same as alice's (wrong) answer, shown swapped
        s.add_label(Label(q[3].left, q[3].right, Answer.RIGHT, "synthetic", "synthetic:perfect"))
    st = g.client("carol").get("/stats").json()
    ia = st["inter_annotator"]
    assert (ia["pairs"], ia["comparisons"]) == (3, 3)
    assert ia["agreement"] == pytest.approx(2 / 3)
    assert ia["by_pair"] == [{"a": "alice", "b": "bob", "n": 3, "agreement": pytest.approx(2 / 3)}]
    t = st["teacher"]
    assert t["available"] and t["n"] == 6 and t["agreement"] == pytest.approx(0.5)
    assert t["by_annotator"]["alice"] == {"n": 3, "agreement": pytest.approx(2 / 3)}
    assert t["by_annotator"]["bob"] == {"n": 3, "agreement": pytest.approx(1 / 3)}
    assert st["annotators"]["alice"]["labels"] == 4 and st["annotators"]["alice"]["skips"] == 1
    assert st["annotators"]["bob"]["median_response_s"] == 2.0
    assert st["totals"] == {"labels": 8, "human_labels": 7, "synthetic_labels": 1, "pending": 0}


def test_stats_without_true_reward(make_gui: Callable[..., Gui]) -> None:
    g = make_gui(n_queries=2, returns=False)
    c = g.client("alice")
    answer(c, c.get("/api/next").json()["query"], "left")
    t = c.get("/stats").json()["teacher"]
    assert not t["available"] and t["agreement"] is None


# ------------------------------------------------------------------------ clip sets, CLI
def test_label_an_exported_clip_set(tmp_path: Path) -> None:
    with LabelStore(tmp_path / "src.sqlite") as s:
        s.add_clips([make_clip(i, float(i)) for i in range(5)])
        s.export(tmp_path / "export")
    app = create_app(tmp_path / "export" / "labels.sqlite", env_id=None,
                     annotators_file=tmp_path / "export" / "annotators.json",
                     clips_file=tmp_path / "export")
    tok = app.state.gui.registry.add("alice")
    with TestClient(app, headers={"Authorization": f"Bearer {tok}"}) as c:  # runs the lifespan
        assert c.get("/api/status").json()["queue"] == 5
        q = c.get("/api/next").json()["query"]
        answer(c, q, "left")
        keys = {x.pair_key for x in app.state.gui.store.queries()}
    assert len(keys) == 5 and pair_key(q["left"], q["right"]) in keys


def test_cli_add_annotator_prints_a_working_link(tmp_path: Path, capsys) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"resolved": {"env_id": "Pendulum-v1"}}))
    assert gui_main(["--run", str(tmp_path), "--add-annotator", "dana", "--port", "9000"]) == 0
    out = capsys.readouterr().out
    url = next(w for w in out.split() if w.startswith("http://127.0.0.1:9000/?token="))
    token = url.split("token=", 1)[1]
    saved = (tmp_path / "annotators.json").read_text()
    assert token not in saved and hashlib.sha256(token.encode()).hexdigest() in saved
    assert gui_main(["--run", str(tmp_path), "--list-annotators"]) == 0
    assert "dana" in capsys.readouterr().out
    assert gui_main(["--run", str(tmp_path / "missing")]) == 2
    assert gui_main(["--run", str(tmp_path), "--overlap", "1.5"]) == 2
    assert gui_main(["--run", str(tmp_path), "--add-annotator", "../x"]) == 2
    assert gui_main(["--clips", str(tmp_path)]) == 2  # not an export
    assert gui_main([]) == 2
    assert "error" in capsys.readouterr().err


def test_background_server_on_localhost(tmp_path: Path) -> None:
    import httpx

    make_store(tmp_path / "labels.sqlite", 2)
    app = create_app(tmp_path / "labels.sqlite", env_id=None,
                     annotators_file=tmp_path / "annotators.json")
    tok = app.state.gui.registry.add("alice")
    with GuiHandle(app, port=0) as h:
        assert h.url.startswith("http://127.0.0.1:")
        assert httpx.get(h.url + "/api/status").status_code == 401
        r = httpx.get(h.url + "/api/next", headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 200 and r.json()["query"] is not None
    con = sqlite3.connect(tmp_path / "labels.sqlite")
    assert con.execute("SELECT COUNT(*) FROM queries").fetchone()[0] == 2
    con.close()
