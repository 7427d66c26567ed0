"""GUI fixes: annotators added from two processes, the link's port, failed starts, the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prefrl.gui.auth import AnnotatorRegistry

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, cwd: Path | None = None, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=cwd, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MUJOCO_GL": "disable", **env})


def test_two_processes_adding_annotators_lose_none(tmp_path: Path) -> None:
    path = tmp_path / "annotators.json"
    code = ("import sys; from prefrl.gui.auth import AnnotatorRegistry\n"
            "reg = AnnotatorRegistry(sys.argv[1])\n"
            "for i in range(60): reg.add(f'{sys.argv[2]}{i}')\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), who],
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
             for who in ("a", "b")]
    assert [p.wait(120) for p in procs] == [0, 0]
    names = AnnotatorRegistry(path).names()
    assert sorted(names) == sorted(f"{w}{i}" for w in "ab" for i in range(60))
    assert not list(tmp_path.glob(".*tmp"))


def _link(out: str) -> str:
    return next(w for w in out.split() if "/?token=" in w).split("/?token=")[0]


def test_add_annotator_links_to_the_port_the_run_serves(tmp_path: Path, capsys) -> None:
    pytest.importorskip("fastapi")
    from prefrl.gui.cli import gui_main

    cfg = {"train": {"gui_host": "127.0.0.1", "gui_port": 9123},
           "resolved": {"env_id": "Pendulum-v1"}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert gui_main(["--run", str(tmp_path), "--add-annotator", "dana"]) == 0
    assert _link(capsys.readouterr().out) == "http://127.0.0.1:9123"  # the run's config
    live = {"url": "http://127.0.0.1:5555", "pid": os.getpid()}
    (tmp_path / "gui.json").write_text(json.dumps(live))
    assert gui_main(["--run", str(tmp_path), "--add-annotator", "eve"]) == 0
    assert _link(capsys.readouterr().out) == "http://127.0.0.1:5555"  # where it listens now
    assert gui_main(["--run", str(tmp_path), "--add-annotator", "fay", "--port", "9000"]) == 0
    assert _link(capsys.readouterr().out) == "http://127.0.0.1:9000"  # told explicitly
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (tmp_path / "gui.json").write_text(json.dumps({**live, "pid": int(dead.stdout)}))
    assert gui_main(["--run", str(tmp_path), "--add-annotator", "gil"]) == 0
    assert _link(capsys.readouterr().out) == "http://127.0.0.1:9123"  # that GUI is gone


def _export(tmp_path: Path) -> Path:
    import numpy as np

    from prefrl.store import LabelStore
    from prefrl.types import Clip

    with LabelStore(tmp_path / "src.sqlite") as s:
        s.add_clips([Clip(obs=np.full((4, 2), v, np.float32), acts=np.zeros((4, 1), np.float32),
                          true_rews=np.full(4, v, np.float32), env_id="demo") for v in range(4)])
        s.export(tmp_path / "export")
    return tmp_path / "export"


def test_failed_clips_start_leaves_nothing_behind(tmp_path: Path, capsys) -> None:
    pytest.importorskip("fastapi")
    import socket

    from prefrl.gui.cli import gui_main

    export = _export(tmp_path)
    before = sorted(p.name for p in export.iterdir())
    with socket.socket() as busy:  # the port is taken: the start fails after the import
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert gui_main(["--clips", str(export), "--port", str(port)]) == 2
    assert "cannot listen" in capsys.readouterr().err
    assert sorted(p.name for p in export.iterdir()) == before
    (export / "clips.npz").write_bytes(b"not a zip")  # a corrupt export
    assert gui_main(["--clips", str(export), "--port", "0"]) == 2
    assert "error" in capsys.readouterr().err
    assert sorted(p.name for p in export.iterdir()) == before


def test_question_is_kept_in_the_store_and_shown(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from prefrl.gui.app import DEFAULT_QUESTION, create_app
    from prefrl.store import LabelStore

    def page(**kw: object) -> str:
        app = create_app(tmp_path / "labels.sqlite", env_id=None,
                         annotators_file=tmp_path / "ann.json", **kw)  # type: ignore[arg-type]
        token = app.state.gui.registry.add("alice")
        with TestClient(app) as c:
            return c.get("/", params={"token": token}).text

    assert DEFAULT_QUESTION in page()
    assert "Which one keeps the torso higher?" in page(default_question="Which one keeps the "
                                                                        "torso higher?")
    html = page(question="Which <b>runs</b>  backward?")
    assert "Which &lt;b&gt;runs&lt;/b&gt; backward?" in html and DEFAULT_QUESTION not in html
    assert "backward?" in page(default_question="ignored: the store has one")
    with LabelStore(tmp_path / "labels.sqlite") as s:
        assert s.get_meta("question") == "Which <b>runs</b> backward?"
        s.export(tmp_path / "export")
    from prefrl.gui.clipset import export_question

    assert export_question(tmp_path / "export") == "Which <b>runs</b> backward?"
    with pytest.raises(ValueError, match="--question"):
        page(question="  ")


def test_rendering_writes_no_mujoco_log_into_the_cwd(tmp_path: Path) -> None:
    pytest.importorskip("mujoco")
    import ctypes.util

    if ctypes.util.find_library("OSMesa") is None:
        pytest.skip("OSMesa is not installed (apt-get install libosmesa6): no MuJoCo rendering")
    code = ("import os, numpy as np\n"  # MuJoCo warns once per process: compile only here
            "from prefrl.gui.render import clip_frames\n"
            "from prefrl.types import Clip\n"
            "qpos = np.zeros((5, 9)); qpos[:, 1] = 0.1 * np.arange(5)\n"
            "clip = Clip(obs=np.zeros((5, 17), np.float32), acts=np.zeros((5, 6), np.float32),\n"
            "            true_rews=np.zeros(5), env_id='HalfCheetah-v5',\n"
            "            render_state={'qpos': qpos, 'qvel': np.zeros((5, 9))})\n"
            "frames, _ = clip_frames(clip, size=64)\n"
            "assert frames.std() > 0, 'not a MuJoCo picture'\n")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = _python(code, cwd=cwd, MUJOCO_GL="osmesa", PYOPENGL_PLATFORM="osmesa")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "cannot render" not in err  # the MuJoCo renderer ran (no chart fallback)
    assert not (cwd / "MUJOCO_LOG.TXT").exists()


def _chart_clip(seed: int):  # noqa: ANN202 - a Clip
    import numpy as np

    from prefrl.types import Clip

    rng = np.random.default_rng(seed)
    return Clip(obs=rng.normal(size=(6, 3)).astype(np.float32),
                acts=np.zeros((6, 1), np.float32), true_rews=np.zeros(6, np.float32),
                env_id="Test-v0")


def test_pending_pairs_are_rendered_before_anyone_asks(tmp_path: Path) -> None:
    pytest.importorskip("imageio_ffmpeg")
    import time

    from fastapi.testclient import TestClient

    from prefrl.gui.app import create_app
    from prefrl.store import LabelStore
    from prefrl.types import ClipPair

    with LabelStore(tmp_path / "labels.sqlite") as s:
        for i in range(3):
            s.add_query(ClipPair(_chart_clip(2 * i), _chart_clip(2 * i + 1)), "random", 0.0)
        hashes = {h for q in s.queries() for h in (q.left, q.right)}
    app = create_app(tmp_path / "labels.sqlite", env_id=None,
                     annotators_file=tmp_path / "ann.json")
    with TestClient(app):  # serving (lifespan), but nobody asks for anything
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            made = {p.stem for p in (tmp_path / "gui_cache").glob("*.mp4")}
            if made >= hashes:
                break
            time.sleep(0.2)
    assert made >= hashes


def test_a_clip_asked_again_more_urgently_is_encoded_once(tmp_path: Path) -> None:
    pytest.importorskip("imageio_ffmpeg")
    from prefrl.gui.video import PREFETCH, URGENT, VideoCache

    clips = [_chart_clip(i) for i in range(4)]
    cache = VideoCache(tmp_path / "cache", workers=2)
    try:
        futs = [cache.request(c.hash, (lambda c=c: c), priority=PREFETCH) for c in clips]
        futs += [cache.request(c.hash, (lambda c=c: c), priority=URGENT) for c in clips]
        paths = [f.result(60) for f in futs]
    finally:
        cache.close()
    assert paths[:4] == paths[4:] and all(p.is_file() for p in paths)
    assert cache.n_encoded == 4
