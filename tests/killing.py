"""Kill -9 a training subprocess once its checkpoint has reached a step (for resume tests)."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path


def kill_after_checkpoint(proc: subprocess.Popen, run: Path, min_steps: int,
                          timeout: float = 240.0) -> dict:
    """Wait until ``run``'s checkpoint holds ``min_steps`` steps, then SIGKILL ``proc``.

    Fails the test if the process exits first (with its stderr). Returns the checkpoint's
    ``state.json`` as it was at the kill.
    """
    state = Path(run) / "checkpoint" / "state.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if state.exists():
            try:
                if json.loads(state.read_text())["num_timesteps"] >= min_steps:
                    break
            except (json.JSONDecodeError, KeyError):
                pass
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return json.loads(state.read_text())
