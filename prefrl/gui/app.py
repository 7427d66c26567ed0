"""The labelling web app: a page and a small JSON API over one run's label store.

Routes (every one needs an annotator token: ``?token=`` or ``Authorization: Bearer``):

* ``GET /``: the page; ``GET /static/{app.js,style.css}``: its script and style;
* ``GET /api/status``: labels done, queue length, labels per hour, annotator name, and the
  run's state (``run``: training, finished, stopped; None when no run wrote one);
* ``GET /api/next?exclude=ID``: the next pair for this annotator (``null`` if none), reserved
  for them; ``exclude`` lets the page prefetch the pair after the one it shows;
* ``POST /api/answer``: ``{"query_id", "answer": left|right|equal|skip, "left", "right",
  "response_time_s"}``, stored as a human :class:`~prefrl.types.Label`;
* ``POST /api/undo``: undo this annotator's last label; returns its pair to show again;
* ``GET /api/video/{hash}.{mp4|webm}``: a clip's video, rendered once and cached on disk;
* ``GET /stats``: agreement between annotators and with the synthetic teacher.

Sides are shuffled per annotator and pair (a fixed draw) against position bias; the label
stores the pair as it was shown. Nothing here blocks training: it only reads and writes the
store, and renders in its own thread.

>>> import tempfile
>>> from fastapi.testclient import TestClient
>>> with tempfile.TemporaryDirectory() as d:
...     app = create_app(Path(d) / "labels.sqlite", env_id=None,
...                      annotators_file=Path(d) / "annotators.json")
...     token = app.state.gui.registry.add("alice")
...     client = TestClient(app)
...     r = client.get("/api/status", headers={"Authorization": f"Bearer {token}"})
...     (r.status_code, r.json()["annotator"], client.get("/api/status").status_code)
(200, 'alice', 401)
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from prefrl.gui.auth import AnnotatorRegistry
from prefrl.gui.clipset import prepare_clip_set
from prefrl.gui.pairs import PairQueue, overlap_draw
from prefrl.gui.render import DEFAULT_SIZE
from prefrl.gui.stats import compute_stats, labels_per_hour
from prefrl.gui.video import FORMATS, PREFETCH, URGENT, VideoCache
from prefrl.store import LabelStore, QueryRecord, StoreError
from prefrl.types import Answer, Clip, Label

_log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
HASH_PATTERN = r"^[0-9a-f]{16}$"
VIDEO_RE = re.compile(r"([0-9a-f]{16})\.(mp4|webm)")
MAX_RESPONSE_S = 600.0
DEFAULT_QUESTION = "Which clip does the task better?"
MAX_QUESTION = 500
AHEAD = 3  # pending pairs whose videos are made in advance, after the one handed out
WARM_PAIRS = 8  # the oldest pending pairs, rendered in the background as soon as they are asked
WARM_EVERY_S = 1.0
SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; media-src 'self' blob:; "
                               "img-src 'self' data:; object-src 'none'; base-uri 'none'",
}


class AnswerIn(BaseModel):
    """An annotator's answer about the pair ``left`` / ``right`` as it was shown."""

    model_config = ConfigDict(extra="forbid")
    query_id: int = Field(ge=1)
    answer: Literal["left", "right", "equal", "skip"]
    left: str | None = Field(default=None, pattern=HASH_PATTERN)
    right: str | None = Field(default=None, pattern=HASH_PATTERN)
    response_time_s: float | None = Field(default=None, allow_inf_nan=False)


@dataclass
class GuiState:
    """What the routes share: the store, annotators, pair queue and video cache."""

    store: LabelStore
    registry: AnnotatorRegistry
    queue: PairQueue
    cache: VideoCache
    env_id: str | None
    swap_sides: bool = True
    answer_lock: threading.Lock = field(default_factory=threading.Lock)
    _returns: dict[str, Clip] = field(default_factory=dict)

    def pair_json(self, annotator: str, q: QueryRecord) -> dict[str, Any]:
        """A query as the page shows it (sides possibly swapped for this annotator)."""
        left, right = q.left, q.right
        if self.swap_sides and overlap_draw(annotator + "\0side", q.pair_key) < 0.5:
            left, right = right, left
        return {"id": q.id, "left": left, "right": right}

    def status(self, annotator: str) -> dict[str, Any]:
        """The numbers in the page's header."""
        view = self.queue.view()
        mine = [lab.created_at for lab in view.labels if lab.annotator == annotator]
        return {
            "annotator": annotator, "env_id": self.env_id, "labels_done": len(mine),
            "labels_total": sum(lab.answer is not Answer.SKIP for lab in view.labels),
            "queue": self.queue.n_pending(view),
            "available": len(self.queue.candidates(annotator, view)),
            "labels_per_hour": round(labels_per_hour(mine), 1),
            "run": self.store.get_meta("run_state"),  # training | finished | stopped | None
        }

    def warm(self, queries: list[QueryRecord], priority: int) -> None:
        """Start making the videos of these pairs (mp4) in the background."""
        for q in queries:
            for h in (q.left, q.right):
                self.cache.request(h, _loader(self.store, h), "mp4", priority=priority)

    def warm_pending(self, stop: threading.Event) -> None:
        """Until ``stop``: render the oldest pending pairs before anyone asks for them."""
        while not stop.wait(WARM_EVERY_S):
            try:
                self.warm(self.store.pending_queries(limit=WARM_PAIRS), PREFETCH + 1)
            except (StoreError, RuntimeError) as e:  # busy store, or cache closing
                _log.debug("warming videos failed: %r", e)

    def return_clips(self, hashes: list[str]) -> dict[str, Clip]:
        """Light stand-ins (true rewards only) of stored clips, for teacher agreement."""
        missing = [h for h in hashes if h not in self._returns]
        for i in range(0, len(missing), 64):
            for c in self.store.get_clips(missing[i:i + 64]):
                z = np.zeros((c.length, 1), np.float32)
                self._returns[c.hash] = Clip(obs=z, acts=z, true_rews=c.true_rews,
                                             env_id=c.env_id, _hash=c.hash)
        return {h: self._returns[h] for h in hashes}


def _loader(store: LabelStore, h: str) -> Any:
    return lambda: store.get_clip(h)


def current_annotator(request: Request) -> str:
    """The annotator whose token the request carries (``Authorization: Bearer`` or ``?token=``).

    Raises 401 for a missing or unknown token.
    """
    token = request.query_params.get("token")
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        token = auth[7:].strip()
    name = request.app.state.gui.registry.verify(token)
    if name is None:
        raise HTTPException(401, "missing or invalid token: open the personal link from "
                                 "'prefrl gui --add-annotator NAME'",
                            headers={"WWW-Authenticate": "Bearer"})
    return str(name)


Who = Annotated[str, Depends(current_annotator)]


def check_question(text: str) -> str:
    """``text`` stripped if it is a usable question (1-500 characters), else ValueError."""
    q = " ".join(str(text).split())
    if not 0 < len(q) <= MAX_QUESTION:
        raise ValueError(f"--question must be 1-{MAX_QUESTION} characters, got {len(q)}")
    return q


def create_app(store_path: Path, *, env_id: str | None, annotators_file: Path,
               overlap: float = 0.0, clips_file: Path | None = None,
               cache_dir: Path | None = None, video_size: int = DEFAULT_SIZE,
               swap_sides: bool = True, lease_s: float = 300.0, question: str | None = None,
               default_question: str | None = None) -> FastAPI:
    """Build the app over the label store at ``store_path`` (created if missing).

    ``env_id`` renders clips whose own env id is unknown; ``overlap`` is the probability that
    a pair answered by one annotator is shown to a second one; ``clips_file`` is an export
    folder to import and label (see :mod:`prefrl.gui.clipset`); videos are cached in
    ``cache_dir`` (default ``<store folder>/gui_cache``). The page asks ``question`` (which is
    then kept in the store's meta ``question``), else the store's, else ``default_question``,
    else :data:`DEFAULT_QUESTION`.
    """
    store = LabelStore(store_path)
    try:
        if clips_file is not None:
            prepare_clip_set(Path(clips_file), store)
        if question is not None:
            store.put_meta("question", check_question(question))
        asked = store.get_meta("question") or default_question or DEFAULT_QUESTION
    except BaseException:
        store.close()
        raise
    state = GuiState(
        store=store, registry=AnnotatorRegistry(annotators_file),
        queue=PairQueue(store, overlap=overlap, lease_s=lease_s),
        cache=VideoCache(cache_dir or Path(store_path).parent / "gui_cache", env_id=env_id,
                         size=video_size),
        env_id=env_id, swap_sides=swap_sides)
    pages = {name: (STATIC / name).read_text("utf-8")
             for name in ("index.html", "app.js", "style.css")}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        warmer = threading.Thread(target=state.warm_pending, args=(stop,), daemon=True,
                                  name="prefrl-gui-warm")
        warmer.start()
        yield
        stop.set()
        warmer.join(5)
        state.cache.close()
        state.store.close()

    app = FastAPI(title="prefrl labelling", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.gui = state
    _install_handlers(app)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, who: Who) -> HTMLResponse:
        token = request.query_params.get("token") or ""
        page = pages["index.html"].replace("__TOKEN__", html.escape(quote(token, safe="")))
        page = page.replace("__QUESTION__", html.escape(asked))
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/static/{name}")
    def static(name: str, who: Who) -> Response:
        types = {"app.js": "text/javascript", "style.css": "text/css"}
        if name not in types:
            raise HTTPException(404, "not found")
        return Response(pages[name], media_type=types[name],
                        headers={"Cache-Control": "no-cache"})

    @app.get("/api/status")
    def status(who: Who) -> dict[str, Any]:
        return state.status(who)

    @app.get("/api/next")
    def next_pair(who: Who, exclude: Annotated[list[int], Query()] = []) -> dict[str, Any]:  # noqa: B006
        picked = state.queue.pick(who, exclude, ahead=AHEAD)
        if picked:
            state.warm(picked[:1], URGENT + 1)
            state.warm(picked[1:], PREFETCH)
        return {"query": state.pair_json(who, picked[0]) if picked else None,
                "status": state.status(who)}

    @app.post("/api/answer")
    def answer(body: AnswerIn, who: Who) -> dict[str, Any]:
        q = state.queue.query(body.query_id)
        if q is None:
            raise HTTPException(404, f"unknown query {body.query_id}")
        left, right = body.left or q.left, body.right or q.right
        if {left, right} != {q.left, q.right} or left == right:
            raise HTTPException(422, "left/right are not the clips of this query")
        now = time.time()
        rt = body.response_time_s
        if rt is not None:
            served = state.queue.served_at(who, q.id)
            cap = MAX_RESPONSE_S if served is None else min(MAX_RESPONSE_S, now - served + 1.0)
            rt = float(min(max(rt, 0.0), max(cap, 0.0)))
        with state.answer_lock:
            if any(lab.annotator == who and lab.key == q.pair_key
                   for lab in state.store.labels()):
                raise HTTPException(409, "you already answered this pair")
            label_id = state.store.add_label(Label(
                left, right, Answer(body.answer), source="human", annotator=who,
                created_at=now, response_time_s=rt, query_id=q.id))
        state.queue.release(who, q.id)
        return {"label_id": label_id, "status": state.status(who)}

    @app.post("/api/undo")
    def undo(who: Who) -> dict[str, Any]:
        with state.answer_lock:
            lab = state.store.undo_last_label(who)
        q = None if lab is None or lab.query_id is None else state.queue.query(lab.query_id)
        if q is not None:
            state.queue.reserve(who, q.id)
        return {"undone": None if lab is None else {"left": lab.left, "right": lab.right,
                                                     "answer": lab.answer.value},
                "query": None if q is None else state.pair_json(who, q),
                "status": state.status(who)}

    @app.get("/api/video/{name}")
    async def video(name: str, who: Who) -> FileResponse:
        m = VIDEO_RE.fullmatch(name)
        if m is None or not await run_in_threadpool(state.store.has_clip, m.group(1)):
            raise HTTPException(404, "unknown clip")
        h, fmt = m.groups()
        fut = state.cache.request(h, _loader(state.store, h), fmt, priority=URGENT)
        path = await asyncio.wrap_future(fut)
        return FileResponse(path, media_type=FORMATS[fmt].mime,
                            headers={"Cache-Control": "private, max-age=86400"})

    @app.get("/stats")
    def stats(who: Who) -> dict[str, Any]:
        view = state.queue.view()
        out = compute_stats(view.labels, state.return_clips, state.queue.n_pending(view))
        out["you"] = who
        return out

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.url.path.startswith(("/api/", "/stats")) and \
                not request.url.path.startswith("/api/video/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    return app


def _install_handlers(app: FastAPI) -> None:
    """Install JSON error handlers that reveal no internals.

    422 without echoing the input, 503 for a busy store, else 500.
    """

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> JSONResponse:
        _log.error("label store error: %s", exc)
        return JSONResponse({"detail": "label store unavailable, try again"}, status_code=503)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        _log.error("internal error: %r", exc, exc_info=exc)
        return JSONResponse({"detail": "internal server error"}, status_code=500)
