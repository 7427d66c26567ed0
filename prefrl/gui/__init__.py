"""Clip-comparison web GUI: people label clip pairs in a browser while the agent trains.

``prefrl gui --run DIR`` (see :mod:`prefrl.gui.cli`); in Python, :func:`create_app`,
:func:`serve` and :func:`start_background`. Imports are lazy, so ``import prefrl.gui`` works
without the GUI's optional dependencies (fastapi, uvicorn, imageio-ffmpeg).
"""

from __future__ import annotations

from typing import Any

__all__ = ["GuiHandle", "create_app", "gui_main", "serve", "start_background"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from prefrl.gui.app import create_app

        return create_app
    if name in ("serve", "start_background", "GuiHandle"):
        from prefrl.gui import server

        return getattr(server, name)
    if name == "gui_main":
        from prefrl.gui.cli import gui_main

        return gui_main
    raise AttributeError(f"module 'prefrl.gui' has no attribute {name!r}")
