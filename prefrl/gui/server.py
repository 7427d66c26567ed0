"""Run the labelling app with uvicorn: blocking (:func:`serve`) or in a thread.

A run directory gives the label store (``<run>/labels.sqlite``), the env (``config.json``'s
``resolved.env_id``), the annotators (``<run>/annotators.json``) and the video cache
(``<run>/gui_cache/``). An export folder (``--clips``) gives the same, inside it.
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

import json
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from prefrl.gui.app import create_app
from prefrl.gui.clipset import export_dir_of


class GuiError(RuntimeError):
    """The GUI cannot start (one-line message for users)."""


@dataclass(frozen=True)
class GuiTarget:
    """What a GUI serves: a store, its env, annotators; and an export to import, if any."""

    store_path: Path
    env_id: str | None
    annotators_file: Path
    clips_dir: Path | None = None


def run_env_id(run_dir: Path) -> str | None:
    """The Gymnasium id of a run's env, from ``config.json`` (None if unknown)."""
    try:
        doc = json.loads((Path(run_dir) / "config.json").read_text("utf-8"))
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
        return GuiTarget(d / "labels.sqlite", None, d / "annotators.json", d)
    if run_dir is None:
        raise GuiError("give a run directory (--run DIR) or an export (--clips DIR)")
    run = Path(run_dir)
    if not run.is_dir():
        raise GuiError(f"run directory {run} does not exist")
    return GuiTarget(run / "labels.sqlite", run_env_id(run), run / "annotators.json")


def build_app(target: GuiTarget, overlap: float = 0.0) -> FastAPI:
    """The app for a target (see :func:`~prefrl.gui.app.create_app`)."""
    if not 0.0 <= overlap <= 1.0:
        raise GuiError(f"--overlap must be in [0, 1], got {overlap}")
    return create_app(target.store_path, env_id=target.env_id,
                      annotators_file=target.annotators_file, overlap=overlap,
                      clips_file=target.clips_dir)


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


def serve(run_dir: Path | None, host: str = "127.0.0.1", port: int = 8765, *,
          overlap: float = 0.0, clips_dir: Path | None = None) -> None:
    """Serve a run (or an export with ``clips_dir``) until interrupted (Ctrl-C)."""
    app = build_app(resolve_target(run_dir, clips_dir), overlap)
    sock = _bind(host, port)
    print(f"prefrl gui: serving on {base_url(host, int(sock.getsockname()[1]))} (Ctrl-C to stop)",
          flush=True)
    _server(app).run(sockets=[sock])
