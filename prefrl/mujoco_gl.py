"""MuJoCo's OpenGL backend: none to simulate, one chosen only where a frame is rendered.

``import mujoco`` loads the GL library that ``MUJOCO_GL`` names (``osmesa`` loads PyOpenGL's
OSMesa platform) and dies where it is missing, although simulation never needs one.
:func:`import_mujoco` imports MuJoCo with ``MUJOCO_GL=disable`` for that one import (the
variable is then restored). :func:`ensure_gl_context` gives MuJoCo's offscreen ``Renderer`` a
GL context when a frame is first rendered: the backend ``MUJOCO_GL`` names (``egl``,
``osmesa``, ``glfw``), else ``glfw`` where there is a display and ``osmesa`` where there is
none. Where that backend cannot be loaded it raises :class:`GLUnavailable`, whose message is
one line saying what to install.

>>> import_mujoco().__name__
'mujoco'
>>> render_backend({"MUJOCO_GL": "egl"}), render_backend({"MUJOCO_GL": "disable"}, "linux")
('egl', 'osmesa')
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import Any

BACKENDS = ("egl", "osmesa", "glfw", "cgl", "wgl")
"""Values of ``MUJOCO_GL`` that name a backend (others choose one by platform)."""

_PYOPENGL_PLATFORM = {"egl": "egl", "osmesa": "osmesa"}
_lock = threading.Lock()
_failure: str | None = None  # the first failure's message: later calls fail at once


class GLUnavailable(RuntimeError):
    """No OpenGL library for MuJoCo's offscreen rendering; the message says what to install."""


def import_mujoco() -> ModuleType:
    """``import mujoco`` without loading any GL library (it is loaded when a frame is drawn)."""
    if "mujoco" in sys.modules:
        return sys.modules["mujoco"]
    with _lock:
        saved = os.environ.get("MUJOCO_GL")
        os.environ["MUJOCO_GL"] = "disable"
        try:
            import mujoco
        finally:
            if saved is None:
                os.environ.pop("MUJOCO_GL", None)
            else:
                os.environ["MUJOCO_GL"] = saved
    return mujoco


def render_backend(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """The GL backend rendering will use: ``MUJOCO_GL`` if it names one, else by platform."""
    env = os.environ if environ is None else environ
    platform = platform or sys.platform
    gl = env.get("MUJOCO_GL", "").lower().strip()
    if gl in BACKENDS:
        return gl
    if platform == "darwin":
        return "cgl"
    if platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return "osmesa"
    return "glfw"


def install_hint(backend: str, error: BaseException | str) -> str:
    """One line: why MuJoCo cannot render with ``backend``, and what to install."""
    why = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if len(why) > 160:
        why = why[:157] + "..."
    head = f"MuJoCo cannot render clips: the {backend} GL backend does not load ({why}); "
    if backend == "osmesa":
        fix = "install OSMesa (apt-get install libosmesa6), or on a GPU set MUJOCO_GL=egl"
    elif backend == "egl":
        fix = ("install the GPU driver's EGL (apt-get install libegl1), or set MUJOCO_GL=osmesa "
               "and apt-get install libosmesa6")
    else:
        fix = "without a display set MUJOCO_GL=osmesa and apt-get install libosmesa6"
    return head + fix


def _context_holders(mujoco: Any) -> list[Any]:
    """The modules whose ``GLContext`` MuJoCo's ``Renderer`` reads (its ``gl_context``)."""
    renderer = getattr(mujoco, "Renderer", None)
    module = sys.modules.get(getattr(renderer, "__module__", ""))
    holder = getattr(module, "gl_context", None)
    if holder is None:
        raise GLUnavailable(install_hint(render_backend(), "mujoco.Renderer not found"))
    return [holder, mujoco]


def _backend_of(holder: Any) -> str | None:
    """``"osmesa"`` for ``mujoco.osmesa.GLContext`` etc.; None when MuJoCo has none."""
    context_class = getattr(holder, "GLContext", None)
    if context_class is None:
        return None
    return str(getattr(context_class, "__module__", "")).rsplit(".", 1)[-1]


def ensure_gl_context() -> None:
    """Make MuJoCo's ``Renderer`` able to draw; :class:`GLUnavailable` (one line) where not.

    Call in the thread that renders (a GL context belongs to one thread). A backend already
    set up is kept if it is the one :func:`render_backend` names (MuJoCo imported elsewhere with
    ``MUJOCO_GL`` unset on a headless machine got GLFW, which cannot draw there: replaced).
    """
    global _failure
    mujoco = import_mujoco()
    holders = _context_holders(mujoco)
    backend = render_backend()
    if _backend_of(holders[0]) == backend:
        return
    with _lock:
        if _failure is not None:
            raise GLUnavailable(_failure)
        if _backend_of(holders[0]) == backend:
            return
        if backend in _PYOPENGL_PLATFORM:
            os.environ.setdefault("PYOPENGL_PLATFORM", _PYOPENGL_PLATFORM[backend])
        try:
            context_class = importlib.import_module(f"mujoco.{backend}").GLContext
            context_class(1, 1).free()  # a library that loads but makes no context fails here
        except Exception as e:  # noqa: BLE001 - PyOpenGL fails in many ways without a library
            _failure = install_hint(backend, e)
            raise GLUnavailable(_failure) from e
        for holder in holders:
            holder.GLContext = context_class
