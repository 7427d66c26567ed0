"""Run the labelling app with uvicorn: blocking (:func:`serve`) or in a thread.

A run directory gives the label store (``<run>/labels.sqlite``), the env (``config.json``'s
``resolved.env_id``), the annotators (``<run>/annotators.json``) and the video cache
(``<run>/gui_cache/``), the question (``train.question``) and where the GUI listens
(``train.gui_host`` / ``train.gui_port``). An export folder (``--clips``) gives the same, inside
it. While :func:`serve` runs, ``gui.json`` beside the store says where it listens (for links).
The server binds to 127.0.0.1 unless told otherwise and writes no access log (URLs carry
tokens).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     handle = start_background(Path(d), port=0)
...     import httpx
...     code = httpx.get(handle.url + "/api/status").status_code
...     handle.stop()
...     code
401
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from prefrl.gui.app import create_app
from prefrl.gui.clipset import export_dir_of, export_question

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


class GuiError(RuntimeError):
    """The GUI cannot start (one-line message for users)."""


@dataclass(frozen=True)
class GuiTarget:
    """What a GUI serves: a store, its env, annotators; and an export to import, if any."""

    store_path: Path
    env_id: str | None
    annotators_file: Path
    clips_dir: Path | None = None
    question: str | None = None
    host: str | None = None
    """Where the run's config says its GUI listens (None: not said)."""
    port: int | None = None

    @property
    def address_file(self) -> Path:
        """``gui.json``: where a GUI serving this store listens, while it runs."""
        return self.store_path.parent / "gui.json"


def _run_config(run_dir: Path) -> dict[str, Any]:
    try:
        doc = json.loads((Path(run_dir) / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def run_env_id(run_dir: Path) -> str | None:
    """The Gymnasium id of a run's env, from ``config.json`` (None if unknown)."""
    try:
        doc = _run_config(run_dir)
        env = doc.get("resolved", {}).get("env_id")
        if env:
            return str(env)
        from prefrl.envs import load_preset

        return load_preset(doc["train"]["env"]).env_id
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def resolve_target(run_dir: Path | None = None, clips_dir: Path | None = None) -> GuiTarget:
    """Paths for ``--run DIR`` or ``--clips EXPORT_DIR``; :class:`GuiError` if unusable."""
    if clips_dir is not None:
        d = export_dir_of(Path(clips_dir))
        missing = [n for n in ("labels.jsonl", "clips.npz") if not (d / n).is_file()]
        if missing:
            raise GuiError(f"{d} is not a prefrl export (no {' or '.join(missing)}); "
                           "make one with 'prefrl export RUN_DIR'")
        return GuiTarget(d / "labels.sqlite", None, d / "annotators.json", d,
                         question=export_question(d))
    if run_dir is None:
        raise GuiError("give a run directory (--run DIR) or an export (--clips DIR)")
    run = Path(run_dir)
    if not run.is_dir():
        raise GuiError(f"run directory {run} does not exist")
    train = _run_config(run).get("train", {})
    train = train if isinstance(train, dict) else {}
    question, host, port = train.get("question"), train.get("gui_host"), train.get("gui_port")
    return GuiTarget(run / "labels.sqlite", run_env_id(run), run / "annotators.json",
                     question=question if isinstance(question, str) else None,
                     host=host if isinstance(host, str) else None,
                     port=port if isinstance(port, int) and 0 < port < 65536 else None)


def build_app(target: GuiTarget, overlap: float = 0.0, question: str | None = None) -> FastAPI:
    """The app for a target (see :func:`~prefrl.gui.app.create_app`).

    ``question`` (e.g. ``--question``) replaces the one the store or run config holds.
    """
    if not 0.0 <= overlap <= 1.0:
        raise GuiError(f"--overlap must be in [0, 1], got {overlap}")
    return create_app(target.store_path, env_id=target.env_id,
                      annotators_file=target.annotators_file, overlap=overlap,
                      clips_file=target.clips_dir, question=question,
                      default_question=target.question)


def live_url(target: GuiTarget) -> str | None:
    """The URL a running :func:`serve` of this target announced in ``gui.json``, or None."""
    try:
        doc = json.loads(target.address_file.read_text("utf-8"))
        pid, url = int(doc["pid"]), str(doc["url"])
        os.kill(pid, 0)  # is it still running?
    except PermissionError:  # running, as another user
        return url
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as e:
        raise GuiError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def base_url(host: str, port: int) -> str:
    """``http://host:port`` for a listening address (a wildcard address gives the hostname)."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: FastAPI) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=3)
    return uvicorn.Server(config)


class GuiHandle:
    """A server running in a daemon thread: ``url``, ``port``, ``app`` and :meth:`stop`."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0,
                 timeout: float = 20.0) -> None:
        sock = _bind(host, port)
        self.app, self.host, self.port = app, host, int(sock.getsockname()[1])
        self.url = base_url(host, self.port)
        self.server = _server(app)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       name="prefrl-gui", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise GuiError(f"the GUI server did not start on {self.url}")
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> GuiHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_background(run_dir: Path | None, host: str = "127.0.0.1", port: int = 8765, *,
                     overlap: float = 0.0, clips_dir: Path | None = None) -> GuiHandle:
    """Serve a run (or an export with ``clips_dir``) from a daemon thread; port 0 = any free."""
    return GuiHandle(build_app(resolve_target(run_dir, clips_dir), overlap), host, port)


def open_server(target: GuiTarget, host: str, port: int, *, overlap: float = 0.0,
                question: str | None = None) -> tuple[FastAPI, socket.socket]:
    """Build the app and bind its socket; on failure nothing new is left behind."""
    created = [p for p in _store_files(target.store_path) if not p.exists()]
    try:
        app = build_app(target, overlap, question)
    except BaseException:
        _remove(created)
        raise
    try:
        return app, _bind(host, port)
    except BaseException:
        app.state.gui.cache.close()
        app.state.gui.store.close()
        _remove(created)
        raise


def _store_files(store_path: Path) -> list[Path]:
    return [store_path, *(store_path.with_name(store_path.name + x) for x in ("-wal", "-shm"))]


def _remove(paths: list[Path]) -> None:
    for p in paths:
        with contextlib.suppress(OSError):
            p.unlink()


def run_server(target: GuiTarget, app: FastAPI, sock: socket.socket, host: str) -> None:
    """Serve until interrupted (Ctrl-C), announcing the address in ``gui.json`` meanwhile."""
    url = base_url(host, int(sock.getsockname()[1]))
    doc = {"url": url, "pid": os.getpid(), "started_at": time.time()}
    tmp = target.address_file.with_name(f".gui.json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc), "utf-8")
    os.replace(tmp, target.address_file)
    print(f"prefrl gui: serving on {url} (Ctrl-C to stop)", flush=True)
    try:
        _server(app).run(sockets=[sock])
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(target.address_file.read_text("utf-8")).get("pid") == os.getpid():
                target.address_file.unlink()


def serve(run_dir: Path | None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
          overlap: float = 0.0, clips_dir: Path | None = None,
          question: str | None = None) -> None:
    """Serve a run (or an export with ``clips_dir``) until interrupted (Ctrl-C)."""
    target = resolve_target(run_dir, clips_dir)
    app, sock = open_server(target, host, port, overlap=overlap, question=question)
    run_server(target, app, sock, host)
