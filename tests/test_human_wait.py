"""Runs taught by people: RL waits for the pre-training answers; --no-wait does not."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import prefrl.human
from prefrl.config import TrainConfig
from prefrl.store import LabelStore
from prefrl.training import resume, train
from prefrl.types import Answer, Label

pytest.importorskip("fastapi", reason="the human oracle starts the GUI")
ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(env="Pendulum", oracle="human", steps=1024, labels=8, pretrain_frac=0.5,
             pretrain_clips=20, pretrain_epochs=2, update_epochs=1, progress=False,
             tensorboard=False, torch_threads=1, gui_port=0, n_envs=1)


class Answerer(threading.Thread):
    """A scripted person answering every pending question through the store."""

    def __init__(self, run: Path, delay_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.run_dir, self.delay_s = run, delay_s
        self.stop = threading.Event()
        self.rl_rows_while_waiting: int | None = None
        self.answered = 0

    def _rows(self) -> int:
        path = self.run_dir / "metrics.csv"
        return len(list(csv.reader(path.open()))) - 1 if path.exists() else 0

    def run(self) -> None:
        while not (self.run_dir / "labels.sqlite").exists() and not self.stop.is_set():
            time.sleep(0.05)
        with LabelStore(self.run_dir / "labels.sqlite") as store:
            while not store.pending_queries() and not self.stop.is_set():
                time.sleep(0.05)
            time.sleep(self.delay_s)  # a person is slow: RL must not start meanwhile
            self.rl_rows_while_waiting = self._rows()
            while not self.stop.is_set():
                for q in store.pending_queries():
                    store.add_label(Label(q.left, q.right, Answer.LEFT, source="human",
                                          annotator="bot", query_id=q.id))
                    self.answered += 1
                time.sleep(0.05)


def test_rl_waits_for_the_pretraining_answers(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(prefrl.human, "FINISH_GRACE_S", 0.0)
    run = tmp_path / "run"
    bot = Answerer(run)
    bot.start()
    try:
        res = train(TrainConfig(**SMALL, run_dir=run, question="Which pole stays up?"))
    finally:
        bot.stop.set()
        bot.join(10)
    out = capsys.readouterr().out
    assert "prefrl: waiting for 4 answers at http://127.0.0.1:" in out
    assert "all 4 pre-training questions answered" in out
    assert bot.rl_rows_while_waiting == 0  # no RL step before the answers came
    with (run / "metrics.csv").open() as f:
        first = next(csv.DictReader(f))
    assert int(first["labels"]) >= 4 and first["reward_val_acc"] not in ("", None)
    assert res.labels == bot.answered >= 4
    with LabelStore(run / "labels.sqlite") as s:
        assert s.get_meta("question") == "Which pole stays up?"
        assert s.get_meta("run_state") == "finished"
    assert json.loads((run / "config.json").read_text())["train"]["question"] == \
        "Which pole stays up?"


def test_no_wait_starts_rl_at_once(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(prefrl.human, "FINISH_GRACE_S", 0.0)
    res = train(TrainConfig(**SMALL, run_dir=tmp_path / "run", wait=False))
    assert res.labels == 0 and res.steps == 1024
    assert "waiting for" not in capsys.readouterr().out


@pytest.mark.slow
def test_ctrl_c_while_waiting_then_resume(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(prefrl.human, "FINISH_GRACE_S", 0.0)
    run = tmp_path / "run"
    args = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()
            if k not in ("progress", "tensorboard")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefrl.cli", "train", *args, "--no-progress", "--no-tensorboard",
         f"--run-dir={run}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MUJOCO_GL": "disable"})
    assert proc.stdout is not None
    for line in proc.stdout:
        if "waiting for 4 answers" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "Traceback" not in err and "--resume" in err
    assert f"Continue with: prefrl train --resume {run}" in rest
    with LabelStore(run / "labels.sqlite") as s:
        assert len(s.pending_queries()) == 4 and s.get_meta("run_state") == "stopped"
    bot = Answerer(run, delay_s=0.2)
    bot.start()
    try:
        res = resume(run)
    finally:
        bot.stop.set()
        bot.join(10)
    assert res.labels >= 4 and res.steps == 1024
    with LabelStore(run / "labels.sqlite") as s:
        assert s.n_queries() == 8  # the pre-training questions were not asked twice
