"""The suite runner: a tiny real grid on the local pool and on Ray; skip, resume, layout."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from prefrl.bench.runner import cell_status, main, run_suite
from prefrl.bench.suites import SUITES, Setting, Suite, get_suite

TINY = Suite(
    name="tiny", envs=("Pendulum",),
    settings=(Setting.learned(10, pretrain_clips=20, pretrain_epochs=2, update_epochs=1),
              Setting.true()),
    seeds=(0, 1), steps={"Pendulum": 2048},
    common={"progress": False, "tensorboard": False, "torch_threads": 1, "n_envs": 1},
)
CELLS = ["Pendulum/labels-10/0", "Pendulum/labels-10/1", "Pendulum/true/0", "Pendulum/true/1"]
RUN_FILES = {"config.json", "metrics.csv", "result.json", "eval.json", "checkpoint"}


def run(out, **kw):
    return run_suite(TINY, out, eval_episodes=2, log=lambda _: None, **kw)


def files(cell):
    return {p.relative_to(cell): p.stat().st_mtime_ns for p in cell.rglob("*") if p.is_file()}


def check_complete(out):
    suite = json.loads((out / "suite.json").read_text())
    assert suite["suite"] == "tiny" and sorted(c["key"] for c in suite["cells"]) == CELLS
    assert suite["provenance"]["git_commit"] and suite["definition"]["steps"] == {
        "Pendulum": 2048}
    for key in CELLS:
        cell = out / key
        assert RUN_FILES <= {p.name for p in cell.iterdir()}, key
        assert cell_status(cell) == "done" and not (cell / "error.txt").exists()
        res = json.loads((cell / "result.json").read_text())
        cfg = json.loads((cell / "config.json").read_text())
        assert res["steps"] == 2048 and res["seed"] == int(key[-1])
        assert res["labels"] == (10 if "labels" in key else 0) and "provenance" in res
        assert cfg["train"]["run_dir"] == str(cell)
        ev = json.loads((cell / "eval.json").read_text())
        assert ev["episodes"] == 2 and ev["deterministic"] and ev["true_return"] < 0
        std = ev["standard_env"]  # the same policy on Gymnasium's own Pendulum-v1
        assert std["env_id"] == "Pendulum-v1" and std["length"] == 200 and std["falls"] == 0
        assert len(std["returns"]) == 2 and std["return"] < 0
        with (cell / "metrics.csv").open() as f:
            steps = [int(r["step"]) for r in csv.DictReader(f)]
        assert steps == sorted(set(steps)) and steps[-1] == 2048, (key, steps)
    return suite


def test_local_runner_skips_finished_cells_and_resumes_killed_ones(tmp_path):
    out = tmp_path / "grid"
    first = run(out, workers=2)
    assert first.ok and sorted(r["key"] for r in first.ran) == CELLS
    assert {r["action"] for r in first.ran} == {"train"}
    check_complete(out)

    again = run(out, workers=2)
    assert again.ran == [] and sorted(again.skipped) == CELLS

    # one cell lost its result.json (killed after its last checkpoint), one was killed before
    # its first checkpoint (metrics rows, no checkpoint, no result)
    (out / CELLS[0] / "result.json").unlink()
    killed = out / CELLS[3]
    for name in ("result.json", "eval.json"):
        (killed / name).unlink()
    shutil.rmtree(killed / "checkpoint")
    untouched = {k: files(out / k) for k in (CELLS[1], CELLS[2])}
    assert cell_status(out / CELLS[0]) == cell_status(killed) == "resume"

    third = run(out, workers=2)
    assert third.ok and sorted(r["key"] for r in third.ran) == [CELLS[0], CELLS[3]]
    assert {r["action"] for r in third.ran} == {"resume"}
    assert sorted(third.skipped) == [CELLS[1], CELLS[2]]
    assert {k: files(out / k) for k in untouched} == untouched
    suite = check_complete(out)
    assert len(suite["invocations"]) == 3
    # a grid resumed at another commit says which commit ran each invocation
    assert all(len(inv["git_commit"]) == 40 and isinstance(inv["git_dirty"], bool)
               for inv in suite["invocations"])


def test_runner_refuses_a_grid_that_does_not_match_existing_runs(tmp_path, capsys):
    out = tmp_path / "grid"
    cell = out / CELLS[2]
    cell.mkdir(parents=True)
    cfg = {"train": {"env": "Pendulum", "reward": "true", "steps": 999, "seed": 0}}
    (cell / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="steps=999"):
        run(out, workers=1)
    tiny = tmp_path / "tiny.json"
    tiny.write_text(json.dumps(TINY.to_json()))
    assert main([str(tiny), "--out", str(out)]) == 2
    assert "steps=999" in capsys.readouterr().err


def test_suite_definitions_and_dry_run(tmp_path, capsys):
    cells = SUITES["mujoco-paper"].cells()
    assert len(cells) == 8 * 4 * 3 and {c.config["oracle"] for c in cells} == {"paper"}
    assert {c.setting for c in cells} == {"labels-350", "labels-700", "labels-1400", "true"}
    assert len(SUITES["atari-paper"].cells()) == 7 * 2 * 3
    assert {c.config.get("labels") for c in SUITES["atari-paper"].cells()} == {5500, None}
    smoke = SUITES["smoke"].cells(steps_scale=0.5)
    assert {c.config["steps"] for c in smoke} == {20_000, 10_000}
    assert get_suite("smoke") is SUITES["smoke"]
    assert get_suite(str(_write(tmp_path, TINY))).cells() == TINY.cells()
    assert main(["smoke", "--out", str(tmp_path / "s"), "--dry-run", "--seeds", "5"]) == 0
    text = capsys.readouterr().out
    assert "Pendulum/labels-200/5  new" in text and "4 cells" in text
    assert not (tmp_path / "s").exists()
    with pytest.raises(ValueError, match="no env 'Nope'"):
        SUITES["smoke"].cells(envs=["Nope"])


def test_a_misplaced_or_unknown_suite_key_is_refused(tmp_path, capsys):
    """``selector`` beside a setting's name (not in ``overrides``) used to run the default."""
    doc = TINY.to_json()
    doc["settings"][0] = {"name": "labels-20-entropy", "labels": 20, "selector": "entropy"}
    path = tmp_path / "misplaced.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "out"
    assert main([str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown key(s) selector" in err
    assert "'overrides'" in err and not out.exists()
    doc = TINY.to_json()
    doc["seed"] = [4]  # a typo of `seeds`
    path.write_text(json.dumps(doc))
    assert main([str(path), "--out", str(out)]) == 2
    assert "unknown key(s) seed;" in capsys.readouterr().err
    # in `overrides` the same value reaches every cell of the setting
    doc = TINY.to_json()
    doc["settings"][0]["overrides"] = {"selector": "entropy"}
    cells = Suite.from_json(doc).cells()
    assert {c.config["selector"] for c in cells if c.setting == doc["settings"][0]["name"]} == {
        "entropy"}


def test_missing_presets_give_a_clear_error(tmp_path, capsys):
    suite = Suite(name="x", envs=("Pendulum", "NoSuchGame"), settings=(Setting.true(),),
                  seeds=(0,))
    with pytest.raises(ValueError, match="no preset for NoSuchGame .*--envs"):
        run_suite(suite, tmp_path / "x", log=lambda _: None)
    assert not (tmp_path / "x" / "Pendulum").exists()
    assert main(["nope"]) == 2 and "unknown suite" in capsys.readouterr().err


def test_ray_backend_needs_ray_or_says_how_to_get_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *a, **kw):
        if name == "ray":
            raise ImportError("no ray")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    from prefrl.bench.backends import make_backend

    with pytest.raises(RuntimeError, match="pip install"):
        make_backend("ray")


def test_ray_backend_writes_the_same_outputs(tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        report = run(tmp_path / "grid", backend="ray")
    finally:
        ray.shutdown()
    assert report.ok and sorted(r["key"] for r in report.ran) == CELLS, report.failed
    suite = check_complete(tmp_path / "grid")
    assert suite["options"]["backend"] == "ray"


def _write(tmp_path, suite):
    p = tmp_path / "suite.json"
    p.write_text(json.dumps(suite.to_json()))
    return p


def test_reward_bench_reports_throughput(tmp_path):
    import json

    from prefrl.bench import reward_bench

    out = tmp_path / "rb.json"
    assert reward_bench.main(["--env", "Pendulum", "--labels", "60", "--clip-len", "10",
                              "--epochs", "1", "--threads", "1", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    (cpu,) = [r for r in doc["training"] if r["device"] == "cpu"]
    assert cpu["labels"] == 60 and cpu["label_pairs_per_s"] > 0
    assert [r["n_envs"] for r in doc["inference"] if r["device"] == "cpu"] == [1, 8, 64, 256]
    assert doc["provenance"]["git_commit"]


WORKER_SCRIPT = '''
import os, sys, time
from pathlib import Path
from prefrl.bench.backends import LocalBackend

def work(path):
    Path(path).write_text(str(os.getpid()))
    time.sleep(120)

if __name__ == "__main__":
    for _ in LocalBackend(workers=1).map_unordered(work, [sys.argv[1]]):
        pass
'''


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_local_backend_workers_end_when_the_runner_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    script, pid_file = tmp_path / "runner.py", tmp_path / "worker.pid"
    script.write_text(WORKER_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(pid_file)])
    worker = None
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and parent.poll() is None, "worker never started"
            time.sleep(0.2)
        worker = int(pid_file.read_text())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 15
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(worker), "the worker outlived its killed runner"
    finally:
        parent.kill()
        if worker is not None and _alive(worker):  # a failed run leaves no stray sleeper
            os.kill(worker, signal.SIGKILL)


class _RecordingBackend:
    """Records the order in which the runner hands out cells; trains nothing."""

    name = "recording"
    workers = 2

    def __init__(self):
        self.keys = []

    def map_unordered(self, fn, tasks):
        for t in tasks:
            self.keys.append(t["key"])
            yield t, {"key": t["key"], "action": "train", "ok": False, "error": "not run"}


def test_seed_order_runs_each_learned_cell_beside_its_true_twin(tmp_path, capsys):
    by_env, by_seed = _RecordingBackend(), _RecordingBackend()
    run(tmp_path / "e", backend=by_env)
    run(tmp_path / "s", backend=by_seed, order="seed")
    assert by_env.keys == CELLS
    assert by_seed.keys == ["Pendulum/labels-10/0", "Pendulum/true/0",
                            "Pendulum/labels-10/1", "Pendulum/true/1"]
    assert json.loads((tmp_path / "s" / "suite.json").read_text())["options"]["order"] == "seed"
    assert main(["smoke", "--out", str(tmp_path / "d"), "--dry-run", "--seeds", "3", "4",
                 "--order", "seed"]) == 0
    keys = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()
            if ln.startswith("  ")]  # print_plan indents its cell lines
    assert keys == [f"{env}/{st}/{seed}" for seed in (3, 4) for env in SUITES["smoke"].envs
                    for st in ("labels-200", "true")]
    with pytest.raises(ValueError, match="unknown cell order 'setting'"):
        TINY.cells(order="setting")
