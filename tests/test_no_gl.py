"""Training needs no GL library; where none loads, the renderer says in one line what to install.

The subprocesses run with ``MUJOCO_GL=osmesa`` (as a CI machine or an old Makefile sets it) and
a ``sitecustomize`` that makes the OSMesa library unloadable, whether or not it is installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HIDE_OSMESA = '''
import ctypes, ctypes.util
_find = ctypes.util.find_library
ctypes.util.find_library = lambda name: None if "osmesa" in name.lower() else _find(name)
_init = ctypes.CDLL.__init__
def _cdll_init(self, name, *args, **kwargs):
    if name and "osmesa" in str(name).lower():
        raise OSError(f"{name}: cannot open shared object file (hidden by the test)")
    _init(self, name, *args, **kwargs)
ctypes.CDLL.__init__ = _cdll_init
'''
RENDER_MUJOCO_CLIP = '''
import numpy as np
from prefrl.envs import load_preset, make_env
from prefrl.gui.render import clip_frames
from prefrl.rollouts import collect_clips
preset = load_preset("InvertedPendulum")
clips = collect_clips(make_env(preset, seed=0), 2, 5, np.random.default_rng(0))
for clip in clips:
    frames, fps = clip_frames(clip, size=32)
    print("frames", frames.shape)
'''


def no_gl_env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(HIDE_OSMESA)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(MUJOCO_GL="osmesa", PYOPENGL_PLATFORM="osmesa",
               PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    return env


def run(code_or_args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *code_or_args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=240)


def test_the_environment_really_has_no_osmesa(tmp_path: Path) -> None:
    """The control: in this environment plain ``import mujoco`` dies, as on a bare machine."""
    r = run(["-c", "import mujoco"], no_gl_env(tmp_path), tmp_path)
    assert r.returncode != 0, r.stdout + r.stderr


def test_training_runs_without_a_gl_library(tmp_path: Path) -> None:
    args = ["-m", "prefrl.cli", "train", "--env", "InvertedPendulum", "--steps", "400",
            "--labels", "10", "--pretrain-clips", "12", "--pretrain-epochs", "2",
            "--update-epochs", "1", "--n-envs", "1", "--no-progress", "--no-tensorboard",
            "--torch-threads", "1", "--run-dir", str(tmp_path / "run")]
    r = run(args, no_gl_env(tmp_path), tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "run" / "result.json").is_file()
    assert "Traceback" not in r.stderr


def test_renderer_says_once_what_to_install(tmp_path: Path) -> None:
    pytest.importorskip("gymnasium.envs.mujoco")
    r = run(["-c", RENDER_MUJOCO_CLIP], no_gl_env(tmp_path), tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("frames (5, 32, 32, 3)") == 2  # charts instead of pictures
    hints = [line for line in r.stderr.splitlines() if "apt-get install libosmesa6" in line]
    assert len(hints) == 1, r.stderr
    assert "osmesa" in hints[0] and "Traceback" not in r.stderr
