"""Encode clip frames to browser video, once per clip, cached on disk as ``<hash>.<ext>``.

H.264 mp4 (``yuv420p``, ``+faststart``) is the default; VP9 webm is the fallback for browsers
without H.264 (Debian's Chromium plays both). Encoding uses the ffmpeg binary shipped by
imageio-ffmpeg. :class:`VideoCache` renders in ``workers`` background threads (default 2,
each with its own GL context: one renders while ffmpeg encodes the other's clip), most urgent
request first, and writes each file atomically, so several servers may share one cache folder.

>>> import tempfile, numpy as np
>>> from prefrl.types import Clip
>>> clip = Clip(obs=np.zeros((6, 84, 84), np.uint8), acts=np.zeros((6, 1)),
...             true_rews=np.zeros(6), env_id="ALE/Pong-v5")
>>> with tempfile.TemporaryDirectory() as d:
...     cache = VideoCache(Path(d))
...     path = cache.get(clip)
...     again = cache.get(clip)
...     cache.close()
...     (path.name == f"{clip.hash}.mp4", cache.n_encoded)
(True, 1)
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prefrl.gui.render import DEFAULT_SIZE, RenderError, clip_frames, close_renderers
from prefrl.types import Clip

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoFormat:
    """How one container/codec is written and served."""

    ext: str
    mime: str
    codec: str
    params: tuple[str, ...]


FORMATS: dict[str, VideoFormat] = {
    "mp4": VideoFormat("mp4", "video/mp4", "libx264", (
        "-preset", "superfast", "-crf", "23", "-movflags", "+faststart")),
    "webm": VideoFormat("webm", "video/webm", "libvpx-vp9", (
        "-b:v", "0", "-crf", "34", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1")),
}
URGENT, PREFETCH = 0, 10  # request priorities: shown now, or wanted soon
RENDER_NICE = 5  # niceness added to the rendering threads
WORKERS = 2  # rendering threads per cache


def encode_video(frames: np.ndarray, path: Path, fps: float, fmt: str = "mp4") -> Path:
    """Write ``(T, H, W, 3)`` uint8 frames to ``path`` (atomically) as ``fmt``; return path."""
    import imageio_ffmpeg

    vf = FORMATS[fmt]
    frames = np.asarray(frames, np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise RenderError(f"frames must be (T, H, W, 3), got {frames.shape}")
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2  # yuv420p needs even sides
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    h, w = frames.shape[1:3]
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp.{vf.ext}")
    try:
        writer = imageio_ffmpeg.write_frames(
            str(tmp), (w, h), fps=float(fps), codec=vf.codec, pix_fmt_out="yuv420p",
            quality=None, macro_block_size=1, ffmpeg_log_level="error",
            output_params=list(vf.params))
        writer.send(None)  # start ffmpeg
        for f in frames:
            writer.send(np.ascontiguousarray(f))
        writer.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class VideoCache:
    """Clip videos on disk under ``cache_dir``, made on demand by one worker thread.

    ``env_id`` is the run's env, used for clips whose own env id is not a Gymnasium id.
    """

    def __init__(self, cache_dir: Path, *, env_id: str | None = None,
                 size: int = DEFAULT_SIZE, workers: int = WORKERS) -> None:
        self.dir = Path(cache_dir)
        self.env_id, self.size = env_id, size
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str], tuple[Future[Path], Callable[[], Clip]]] = {}
        self._queue: queue.PriorityQueue[tuple[int, int, tuple[str, str] | None]] = \
            queue.PriorityQueue()
        self._seq = itertools.count()
        self._priority: dict[tuple[str, str], int] = {}  # best priority queued per job
        self._running: set[tuple[str, str]] = set()  # jobs a worker is on
        self.workers = max(1, int(workers))
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.n_encoded = 0
        self.timings: deque[tuple[int, float, float]] = deque(maxlen=200)
        """Recent (frames, render seconds, encode seconds) per encoded clip."""

    def path(self, clip_hash: str, fmt: str = "mp4") -> Path:
        """Where the video of a clip is (or will be) cached."""
        return self.dir / f"{clip_hash}.{FORMATS[fmt].ext}"

    def request(self, clip_hash: str, load: Callable[[], Clip], fmt: str = "mp4", *,
                priority: int = URGENT) -> Future[Path]:
        """Future of the clip's video path; ``load`` is called (in the worker) only if needed.

        A clip already waiting is moved up when asked for again more urgently.
        """
        fut: Future[Path] = Future()
        path = self.path(clip_hash, fmt)
        if path.is_file():
            fut.set_result(path)
            return fut
        key = (clip_hash, fmt)
        with self._lock:
            if self._closed:
                raise RuntimeError("video cache is closed")
            job_fut: Future[Path]
            if key in self._jobs:
                job_fut = self._jobs[key][0]
            else:
                job_fut = Future()
                self._jobs[key] = (job_fut, load)
            if priority < self._priority.get(key, priority + 1):  # new, or now more urgent
                self._priority[key] = priority
                self._queue.put((priority, next(self._seq), key))
            if len(self._threads) < min(self.workers, len(self._jobs)):
                self.dir.mkdir(parents=True, exist_ok=True)
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"prefrl-gui-video-{len(self._threads)}")
                thread.start()
                self._threads.append(thread)
        _follow(job_fut, fut)  # callers may cancel theirs; the job goes on
        return fut

    def get(self, clip: Clip, fmt: str = "mp4", timeout: float | None = None) -> Path:
        """Blocking: the clip's video path, rendering and encoding it if not cached."""
        return self.request(clip.hash, lambda: clip, fmt).result(timeout)

    def _work(self) -> None:
        if RENDER_NICE and hasattr(os, "nice"):  # on Linux this lowers this thread (and the
            with contextlib.suppress(OSError):  # GL threads and ffmpeg it starts) only:
                os.nice(RENDER_NICE)  # training on the same machine keeps priority
        try:
            while True:
                _, _, key = self._queue.get()
                if key is None:
                    return
                with self._lock:
                    job = self._jobs.get(key)
                    if job is None or job[0].done() or key in self._running:
                        continue  # done, or taken by another worker (a re-queued request)
                    self._running.add(key)
                fut, load = job
                try:
                    _settle(fut, self._make(key[0], key[1], load))
                except Exception as e:  # noqa: BLE001 - handed to whoever waits
                    _log.warning("cannot make video of clip %s: %r", key[0], e)
                    _settle(fut, e)
                finally:
                    with self._lock:
                        self._jobs.pop(key, None)
                        self._priority.pop(key, None)
                        self._running.discard(key)
        finally:
            close_renderers()

    def _make(self, clip_hash: str, fmt: str, load: Callable[[], Clip]) -> Path:
        path = self.path(clip_hash, fmt)
        if path.is_file():  # made by another process meanwhile
            return path
        clip = load()
        t0 = time.perf_counter()
        frames, fps = clip_frames(clip, env_id=self.env_id, size=self.size)
        t1 = time.perf_counter()
        encode_video(frames, path, fps, fmt)
        t2 = time.perf_counter()
        with self._lock:
            self.n_encoded += 1
            self.timings.append((len(frames), t1 - t0, t2 - t1))
        return path

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker after the clip it is on; pending requests fail."""
        with self._lock:
            self._closed = True
            jobs, self._jobs = list(self._jobs.values()), {}
            self._priority.clear()
            threads = list(self._threads)
        for fut, _ in jobs:
            _settle(fut, RuntimeError("video cache closed"))
        for _ in threads:
            self._queue.put((-1, -1, None))
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def _settle(fut: Future[Path], value: Path | BaseException) -> None:
    """Complete a future unless it is already done."""
    with contextlib.suppress(InvalidStateError):
        if isinstance(value, BaseException):
            fut.set_exception(value)
        else:
            fut.set_result(value)


def _follow(src: Future[Path], dst: Future[Path]) -> None:
    """Complete ``dst`` like ``src`` once ``src`` is done."""
    def done(f: Future[Path]) -> None:
        exc = f.exception()
        _settle(dst, exc if exc is not None else f.result())

    src.add_done_callback(done)
