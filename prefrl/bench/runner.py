"""``prefrl bench run SUITE``: run a suite's grid of cells, resumably, on a local pool or Ray.

Every cell lives in ``<out>/<env>/<setting>/<seed>/`` (a normal run directory, see
:mod:`prefrl.rundir`) and is brought to *done* by :func:`run_cell`:

* ``result.json`` and ``eval.json`` exist: done, skipped (its files are not touched);
* ``result.json`` but no ``eval.json``: only the evaluation runs;
* ``config.json`` but no ``result.json`` (a killed run): continued with
  :func:`prefrl.training.resume`;
* otherwise: a fresh :func:`prefrl.training.train`.

After training, ``eval.json`` holds the mean true return of the final policy over
``--eval-episodes`` deterministic episodes (:func:`prefrl.evaluate.evaluate_run`).
``<out>/suite.json`` records the suite, its cells, the commands and their provenance.
Running the same command again after any stop or crash finishes what is missing.

>>> from prefrl.bench.suites import SUITES
>>> from pathlib import Path
>>> [(c.key, s) for c, s in plan(SUITES["smoke"].cells(seeds=[0]), Path("/nonexistent"))][:2]
[('Pendulum/labels-200/0', 'new'), ('Pendulum/true/0', 'new')]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefrl.bench.backends import Backend, cpu_count, make_backend
from prefrl.bench.suites import CELL_ORDERS, SUITES, Cell, Suite, get_suite
from prefrl.rundir import write_json

FORMAT = "prefrl-suite"
VERSION = 1
EVAL_SEED = 12345
_IGNORED_FIELDS = {"run_dir", "progress", "tensorboard", "device", "torch_threads"}
"""TrainConfig fields that may differ between a cell's existing run and the suite's cell."""


def cell_status(path: Path) -> str:
    """``done``, ``eval`` (trained, not evaluated), ``resume`` (started, unfinished) or ``new``."""
    path = Path(path)
    if (path / "result.json").is_file():
        return "done" if (path / "eval.json").is_file() else "eval"
    if (path / "config.json").is_file():
        return "resume"
    return "new"


def plan(cells: Sequence[Cell], out: Path) -> list[tuple[Cell, str]]:
    """Each cell with its :func:`cell_status` under ``out``."""
    return [(c, cell_status(c.path(out))) for c in cells]


def config_mismatch(cell: Cell, out: Path) -> str | None:
    """Why an existing run in the cell's directory is not the run the suite asks for, or None."""
    import dataclasses

    path = cell.path(out) / "config.json"
    try:
        have = json.loads(path.read_text())["train"]
    except (OSError, ValueError, KeyError) as e:
        return f"{path}: unreadable ({e})"
    want = dataclasses.asdict(cell.train_config(out))
    diff = [f"{k}={have[k]!r} (suite: {v!r})" for k, v in want.items()
            if k not in _IGNORED_FIELDS and k in have and have[k] != v]
    return f"{cell.key} was run with {', '.join(diff)}" if diff else None


def run_cell(task: dict[str, Any]) -> dict[str, Any]:
    """Bring one cell to done (train, resume and/or evaluate); never raises.

    ``task``: ``key``, ``path``, ``config`` (TrainConfig arguments), ``command``,
    ``eval_episodes``. Returns ``key``, ``action``, ``ok``, ``error``, ``wall_s``,
    ``eval_return``. Runs in a worker process (pool or Ray), so it imports what it needs.
    """
    from prefrl.config import TrainConfig
    from prefrl.evaluate import evaluate_run, evaluate_standard
    from prefrl.training import resume, train

    path, t0 = Path(task["path"]), time.perf_counter()
    action = {"new": "train", "resume": "resume", "eval": "eval", "done": "skip"}[
        cell_status(path)]
    out: dict[str, Any] = {"key": task["key"], "action": action, "ok": False, "error": None,
                           "eval_return": None}
    try:
        cfg = dict(task["config"])
        if cfg.get("torch_threads"):
            import torch

            torch.set_num_threads(int(cfg["torch_threads"]))
        if action == "train":
            train(TrainConfig(**cfg, run_dir=path), command=task.get("command"))
        elif action == "resume":
            resume(path, command=task.get("command"))
        if action != "skip":
            episodes = int(task.get("eval_episodes", 10))
            ret = evaluate_run(path, episodes=episodes, seed=EVAL_SEED, deterministic=True)
            standard = evaluate_standard(path, episodes=episodes, seed=EVAL_SEED)
            write_json(path / "eval.json", {
                "true_return": ret, "episodes": episodes, "seed": EVAL_SEED,
                "deterministic": True, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "standard_env": standard,
            })
        out["eval_return"] = json.loads((path / "eval.json").read_text())["true_return"]
        out["ok"] = True
        (path / "error.txt").unlink(missing_ok=True)
    except BaseException as e:  # noqa: BLE001 - reported, the grid goes on
        if isinstance(e, KeyboardInterrupt):
            raise
        out["error"] = f"{type(e).__name__}: {e}".splitlines()[0]
        if path.is_dir():
            (path / "error.txt").write_text(traceback.format_exc())
    out["wall_s"] = time.perf_counter() - t0
    return out


@dataclass
class SuiteReport:
    """What one call of :func:`run_suite` did."""

    out: str
    cells: int
    skipped: list[str] = field(default_factory=list)
    ran: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every cell is done."""
        return not self.failed


def _check_cells(cell_plan: list[tuple[Cell, str]], out: Path) -> None:
    """Refuse to start when a new cell's config is invalid or an old run doesn't match."""
    from prefrl.config import ConfigError

    missing: dict[str, str] = {}
    invalid: list[str] = []
    differ: list[str] = []
    for cell, status in cell_plan:
        if status != "new":
            if (why := config_mismatch(cell, out)) is not None:
                differ.append(why)
            continue
        try:
            cell.train_config(out).resolve()
        except ConfigError as e:
            if str(e).startswith("unknown env"):
                missing[cell.env] = str(e)
            else:
                invalid.append(f"{cell.key}: {e}")
    if missing:
        known = next(iter(missing.values())).partition("known: ")[2]
        raise ValueError(
            f"no preset for {', '.join(missing)} (known: {known}); add envs/<Name>.toml "
            "presets or leave these envs out with --envs")
    for problems, hint in ((invalid, ""), (differ, "; use another --out for a different grid")):
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise ValueError("; ".join(problems[:3]) + more + hint)


def _write_suite_json(suite: Suite, cells: Sequence[Cell], out: Path, command: str | None,
                      options: dict[str, Any]) -> None:
    from prefrl.provenance import provenance

    path = out / "suite.json"
    old: dict[str, Any] = {}
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("suite") != suite.name:
            raise ValueError(f"{out} holds suite {old.get('suite')!r}, not {suite.name!r}; "
                             "use another --out")
    known = {c["key"]: c for c in old.get("cells", [])}
    known.update({c.key: {"key": c.key, **c.to_json(), "path": c.key} for c in cells})
    prov = provenance(command)
    write_json(path, {
        "format": FORMAT, "version": VERSION, "suite": suite.name,
        "definition": suite.to_json(), "options": options, "cells": list(known.values()),
        "command": command, "provenance": prov,
        "invocations": [*old.get("invocations", []),
                        {"command": command, "date": prov["date"], "options": options,
                         "git_commit": prov["git_commit"], "git_dirty": prov["git_dirty"]}],
    })


def run_suite(suite: Suite, out: Path, *, backend: str | Backend = "local",
              workers: int | None = None, address: str | None = None,
              envs: Sequence[str] | None = None, settings: Sequence[str] | None = None,
              seeds: Sequence[int] | None = None, steps_scale: float = 1.0,
              order: str = "env", eval_episodes: int = 10, command: str | None = None,
              log: Callable[[str], None] = print) -> SuiteReport:
    """Run every cell of ``suite`` that is not done; return what happened.

    Raises ``ValueError`` (before starting anything) for a bad grid: a missing preset, an
    impossible config, or an existing run whose config differs from the suite's.
    """
    out = Path(out).resolve()
    cells = suite.cells(envs=envs, settings=settings, seeds=seeds, steps_scale=steps_scale,
                        order=order)
    cell_plan = plan(cells, out)
    pending = [(c, s) for c, s in cell_plan if s != "done"]
    _check_cells(cell_plan, out)
    be = make_backend(backend, workers=workers, address=address) \
        if isinstance(backend, str) else backend
    out.mkdir(parents=True, exist_ok=True)
    options = {"backend": be.name, "envs": envs, "settings": settings, "seeds": seeds,
               "steps_scale": steps_scale, "order": order, "eval_episodes": eval_episodes}
    _write_suite_json(suite, cells, out, command, options)
    report = SuiteReport(out=str(out), cells=len(cells),
                         skipped=[c.key for c, s in cell_plan if s == "done"])
    if not pending:
        log(f"prefrl bench: all {len(cells)} cells of {suite.name} are done in {out}")
        return report
    counts = {s: sum(1 for _, st in pending if st == s) for s in ("new", "resume", "eval")}
    workers = getattr(be, "workers", None)
    log(f"prefrl bench: {suite.name}: {len(cells)} cells, {len(report.skipped)} done, "
        f"{counts['new']} to train, {counts['resume']} to resume, {counts['eval']} to evaluate; "
        f"backend {be.name} ({workers or 'cluster'} worker{'' if workers == 1 else 's'}); "
        f"out {out}")
    tasks = [{"key": c.key, "path": str(c.path(out)), "config": dict(c.config),
              "command": command, "eval_episodes": eval_episodes} for c, _ in pending]
    t0 = time.perf_counter()
    for i, (task, res) in enumerate(be.map_unordered(run_cell, tasks), 1):
        if isinstance(res, BaseException):
            res = {"key": task["key"], "action": "?", "ok": False,
                   "error": f"worker failed: {type(res).__name__}: {res}".splitlines()[0]}
        (report.ran if res["ok"] else report.failed).append(res)
        what = (f"eval return {res['eval_return']:.1f}, {res.get('wall_s', 0):.0f} s"
                if res["ok"] else f"FAILED: {res['error']}")
        log(f"  [{i}/{len(tasks)}] {res['action']:<6} {task['key']}: {what}")
    report.wall_s = time.perf_counter() - t0
    log(f"prefrl bench: {len(report.ran)} ran, {len(report.skipped)} skipped, "
        f"{len(report.failed)} failed in {report.wall_s:.0f} s"
        + ("" if report.ok else " (run the same command again to retry; tracebacks in "
           "<cell>/error.txt)"))
    return report


def print_plan(suite: Suite, cells: Sequence[Cell], out: Path) -> None:
    """The ``--dry-run`` listing: one line per cell with its status and budgets."""
    from prefrl.envs import load_preset

    presets: dict[str, Any] = {}
    for env in dict.fromkeys(c.env for c in cells):
        try:
            presets[env] = load_preset(env)
        except ValueError:
            presets[env] = None
    print(f"suite {suite.name}: {suite.description}")
    print(f"out {out}")
    width = max(len(c.key) for c in cells)
    for cell, status in plan(cells, out):
        p = presets[cell.env]
        steps = cell.config.get("steps") or (p.steps if p else "?")
        labels = cell.config.get("labels", "-") if cell.config.get("reward") == "learned" \
            else "-"
        note = "" if p else "  (no preset: cannot run yet)"
        if status != "new" and (why := config_mismatch(cell, out)) is not None:
            note += "  (differs: " + why.partition(" was run with ")[2] + ")"
        print(f"  {cell.key:<{width}}  {status:<6}  steps={steps:<9} labels={labels}{note}")
    by = {s: sum(1 for _, st in plan(cells, out) if st == s)
          for s in ("done", "eval", "resume", "new")}
    print(f"{len(cells)} cells: " + ", ".join(f"{n} {s}" for s, n in by.items()))


USAGE = "prefrl bench run SUITE"


def build_parser() -> argparse.ArgumentParser:
    """The ``prefrl bench run`` argument parser."""
    ap = argparse.ArgumentParser(
        prog="prefrl bench run",
        description="Run a benchmark suite's grid of (env x setting x seed) training runs; "
                    "finished cells are skipped, killed ones resumed.",
        epilog=f"suites: {', '.join(SUITES)} (or a suite .json file). On a Ray cluster the "
               "--out folder must be on a filesystem shared by all nodes.")
    ap.add_argument("suite", help="suite name or .json file")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default "
                    "results/<suite>)")
    ap.add_argument("--backend", choices=("local", "ray"), default="local")
    ap.add_argument("--address", default=None,
                    help="Ray address (e.g. auto, ray://head:10001); default: a local Ray")
    ap.add_argument("--workers", type=int, default=None,
                    help=f"parallel runs (default: one per core, {cpu_count()} here)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--envs", nargs="+", default=None)
    ap.add_argument("--settings", nargs="+", default=None, help="e.g. labels-700 true")
    ap.add_argument("--steps-scale", type=float, default=1.0,
                    help="multiply every step budget (e.g. 0.1 for a quick look)")
    ap.add_argument("--order", choices=CELL_ORDERS, default="env",
                    help="run order: env (env, setting, seed) or seed (seed, env, setting: "
                         "with a worker per setting, each learned cell runs beside its "
                         "true-reward twin)")
    ap.add_argument("--eval-episodes", type=int, default=10)
    ap.add_argument("--dry-run", action="store_true", help="list the cells and their status")
    ap.add_argument("--plot", action="store_true", help="make the figures when done")
    return ap


def main(argv: Sequence[str]) -> int:
    """``prefrl bench run``: 0 when every cell is done, 1 when some failed, 2 on bad input."""
    a = build_parser().parse_args(list(argv))
    command = "prefrl bench run " + shlex.join(list(argv))
    try:
        suite = get_suite(a.suite)
        out = a.out or Path("results") / suite.name
        if a.steps_scale <= 0:
            raise ValueError(f"--steps-scale must be > 0, got {a.steps_scale}")
        cells = suite.cells(envs=a.envs, settings=a.settings, seeds=a.seeds,
                            steps_scale=a.steps_scale, order=a.order)
        if a.dry_run:
            print_plan(suite, cells, out)
            return 0
        report = run_suite(suite, out, backend=a.backend, workers=a.workers, address=a.address,
                           envs=a.envs, settings=a.settings, seeds=a.seeds,
                           steps_scale=a.steps_scale, order=a.order,
                           eval_episodes=a.eval_episodes,
                           command=command)
    except (ValueError, RuntimeError) as e:
        if os.environ.get("PREFRL_DEBUG"):
            raise
        print(f"prefrl: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prefrl: interrupted; run the same command again to finish the grid",
              file=sys.stderr)
        return 130
    if a.plot and report.ok:
        from prefrl.plotting.report import plot_main

        plot_main([str(out)])
    elif report.ok:
        print(f"plot with: prefrl plot {out}")
    return 0 if report.ok else 1


__all__ = ["SuiteReport", "cell_status", "main", "plan", "run_cell", "run_suite"]
