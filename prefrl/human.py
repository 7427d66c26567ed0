"""Runs taught by people (``--oracle human``): the run's state for the GUI, waiting for answers.

The trainer keeps ``run_state`` in the label store's meta (``training``, ``finished`` or
``stopped``) so that the labelling page can say when a run is over, and, before RL starts,
waits until the pre-training questions are answered (:func:`wait_for_answers`).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO, Any

from prefrl.store import LabelStore

_log = logging.getLogger(__name__)
RUN_STATE = "run_state"
"""Store meta key: ``training``, ``finished`` or ``stopped``."""


def set_run_state(store: LabelStore, state: str) -> None:
    """Record where the run is, for the labelling page."""
    store.put_meta(RUN_STATE, state)


def start_human_run(store: LabelStore, question: str | None) -> None:
    """Tell the labelling page what to ask (``--question``) and that the run trains."""
    if question is not None:
        store.put_meta("question", " ".join(question.split()))
    set_run_state(store, "training")


def waiter(store: LabelStore, host: str, port: int, gui: Any) -> Callable[[], int]:
    """:func:`wait_for_answers` for a run's store and GUI, ready to call before pre-training."""
    return partial(wait_for_answers, store, partial(gui_url, store.path.parent, host, port),
                   gui=gui)


FINISH_GRACE_S = 3.5
"""Seconds the GUI keeps serving after a run ends: open pages poll every 3 s and say so."""


def finish_run(store: LabelStore, state: str, gui: Any = None) -> None:
    """Mark the run ``finished`` or ``stopped``; give a running GUI's pages time to see it.

    Errors are logged, never raised (this runs while a run is ending).
    """
    try:
        set_run_state(store, state)
    except Exception as e:  # noqa: BLE001 - a closed or busy store must not mask the run's end
        _log.warning("cannot record run state %r: %r", state, e)
        return
    if gui is not None and gui.poll() is None and state == "finished":
        time.sleep(FINISH_GRACE_S)


def gui_url(run_dir: Path, host: str, port: int) -> str:
    """Where the run's GUI listens: its ``gui.json`` if it wrote one, else ``host:port``."""
    try:
        url = json.loads((Path(run_dir) / "gui.json").read_text("utf-8"))["url"]
        if isinstance(url, str):
            return url
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def wait_for_answers(store: LabelStore, url: Callable[[], str], *, poll_s: float = 1.0,
                     gui: Any = None, out: IO[str] | None = None) -> int:
    """Block until no question in ``store`` is pending; return how many were waited for.

    Shows ``waiting for N answers at URL`` (one refreshing line on a terminal, else a line per
    change). ``gui`` is the GUI's process (a ``Popen``): if it exits, the line says so. Ctrl-C
    raises ``KeyboardInterrupt`` here; the questions stay in the store for a resumed run.
    """
    out = out or sys.stdout
    try:
        first = _wait(store, url, poll_s, gui, out)
    except KeyboardInterrupt:
        out.write(f"\nprefrl: stopped before RL started; the questions stay queued. "
                  f"Continue with: prefrl train --resume {store.path.parent}\n")
        out.flush()
        raise
    return first


def _wait(store: LabelStore, url: Callable[[], str], poll_s: float, gui: Any,
          out: IO[str]) -> int:
    tty = bool(getattr(out, "isatty", lambda: False)())
    first = n = len(store.pending_queries())
    shown = ""
    while n:
        gone = gui is not None and gui.poll() is not None
        note = (f" (the GUI exited; start it with 'prefrl gui --run {store.path.parent}')"
                if gone else " (Ctrl-C stops; --resume continues)")
        line = f"prefrl: waiting for {n} answer{'s' * (n != 1)} at {url()}{note}"
        if line != shown:
            out.write(f"\r{line:<{len(shown)}}" if tty else line + "\n")
            out.flush()
            shown = line
        time.sleep(poll_s)
        n = len(store.pending_queries())
    if shown:
        out.write(("\r" if tty else "") + f"prefrl: all {first} pre-training questions answered"
                  + " " * max(0, len(shown) - 40) + "\n")
        out.flush()
    return first
