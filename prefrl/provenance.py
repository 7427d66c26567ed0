"""Where a result came from: git commit (and whether the tree was dirty), command, machine, date.

>>> sorted(provenance("prefrl demo"))[:4]
['command', 'cpu_count', 'cuda', 'date']
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch


def provenance(command: str | None = None) -> dict[str, Any]:
    """Git commit, machine and date, for results that must say where they came from."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                                  cwd=Path(__file__).parent).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {
        "git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain")),
        "command": command, "machine": platform.node(), "platform": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__,
        "cpu_count": os.cpu_count(), "cuda": torch.cuda.is_available(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
