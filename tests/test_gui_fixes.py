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
