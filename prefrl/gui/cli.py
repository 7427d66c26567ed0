"""``prefrl gui``: label clip pairs in a browser while the agent trains.

Usage::

    prefrl gui --run DIR [--host 127.0.0.1] [--port 8765] [--overlap FRACTION] [--question TEXT]
    prefrl gui --run DIR --add-annotator NAME      # prints NAME's personal link
    prefrl gui --clips EXPORT_DIR [...]            # label an exported clip set

Errors end in one ``prefrl gui: error: ...`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

DESCRIPTION = """Serve the clip-comparison page over a run's label store: people compare two
clips and their answers go straight into the store, where a run started with --oracle human
picks them up. Each person needs a personal link (--add-annotator NAME)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prefrl gui", description=DESCRIPTION)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", type=Path, metavar="DIR", help="the run directory to label for")
    src.add_argument("--clips", type=Path, metavar="EXPORT_DIR",
                     help="label an exported clip set (labels.jsonl + clips.npz)")
    p.add_argument("--host", default=None,
                   help="address to listen on (default: the run's gui_host, else 127.0.0.1: "
                        "this machine only)")
    p.add_argument("--port", type=int, default=None,
                   help="port (default: the run's gui_port, else 8765)")
    p.add_argument("--question", metavar="TEXT",
                   help="what the page asks, e.g. 'Which robot runs backward better?' (kept in "
                        "the label store; default: the run's --question, else 'Which clip "
                        "does the task better?')")
    p.add_argument("--overlap", type=float, default=0.0, metavar="FRACTION",
                   help="probability that a pair answered by one person is shown to a second "
                        "one, to measure agreement (default 0)")
    p.add_argument("--add-annotator", metavar="NAME",
                   help="register NAME, print their personal link and exit")
    p.add_argument("--list-annotators", action="store_true",
                   help="list the registered annotators and exit")
    return p


def _fail(msg: str) -> int:
    print(f"prefrl gui: error: {msg}", file=sys.stderr)
    return 2


def gui_main(argv: list[str]) -> int:
    """Entry point of ``prefrl gui`` (returns the exit status)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2)
        return int(e.code or 0)
    if not 0.0 <= args.overlap <= 1.0:
        return _fail(f"--overlap must be in [0, 1], got {args.overlap}")
    if args.port is not None and not 0 <= args.port <= 65535:
        return _fail(f"--port must be in [0, 65535], got {args.port}")
    try:
        from prefrl.gui.app import check_question
        from prefrl.gui.auth import AnnotatorError, AnnotatorRegistry
        from prefrl.gui.server import (
            DEFAULT_HOST,
            DEFAULT_PORT,
            GuiError,
            base_url,
            live_url,
            open_server,
            resolve_target,
            run_server,
        )
        from prefrl.store import StoreError
    except ImportError as e:
        return _fail(f"the GUI needs fastapi, uvicorn and imageio-ffmpeg ({e.name} is missing): "
                     "pip install 'prefrl[gui]'")
    try:
        question = None if args.question is None else check_question(args.question)
        target = resolve_target(args.run, args.clips)
        host = args.host or target.host or DEFAULT_HOST
        port = (target.port or DEFAULT_PORT) if args.port is None else args.port
        registry = AnnotatorRegistry(target.annotators_file)
        if args.list_annotators:
            print("\n".join(registry.names()) or "(no annotators yet)")
            return 0
        if args.add_annotator is not None:
            explicit = args.host is not None or args.port is not None
            base = (None if explicit else live_url(target)) or base_url(host, port)
            name = args.add_annotator
            replaced = name.strip() in registry.names()
            token = registry.add(name)
            print(f"{'new link for' if replaced else 'added'} annotator {name.strip()!r}; "
                  f"their personal link (keep it secret):\n  {base}/?token={token}")
            return 0
        app, sock = open_server(target, host, port, overlap=args.overlap, question=question)
        base = base_url(host, int(sock.getsockname()[1]))
        if not registry.names():
            name = _default_name()
            token = registry.add(name)
            print(f"no annotators yet: added {name!r}; personal link:\n  {base}/?token={token}")
        else:
            print(f"annotators: {', '.join(registry.names())} (new links: --add-annotator NAME)")
        if host not in ("127.0.0.1", "localhost", "::1"):
            print(f"warning: listening on {host}: anyone who can reach this machine and has "
                  "a link can label; put HTTPS (a reverse proxy) in front on shared networks",
                  file=sys.stderr)
        run_server(target, app, sock, host)
        return 0
    except (GuiError, AnnotatorError, StoreError, ValueError) as e:
        if os.environ.get("PREFRL_DEBUG"):
            raise
        return _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    except KeyboardInterrupt:
        return 0


def _default_name() -> str:
    try:
        from prefrl.gui.auth import check_name

        return check_name(getpass.getuser())
    except Exception:  # noqa: BLE001 - odd user names: a neutral default
        return "annotator"


if __name__ == "__main__":
    sys.exit(gui_main(sys.argv[1:]))
