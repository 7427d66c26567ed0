"""Command line: ``prefrl train | export | demo | bench | presets``.

Every user error (unknown env, impossible budget, bad run directory, corrupt label store) ends
in a one-line ``prefrl: error: ...`` and exit status 2, never a traceback (set
``PREFRL_DEBUG=1`` to see one).
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import tyro

USAGE = """usage: prefrl COMMAND [OPTIONS]

commands:
  train     train an agent on a reward learned from clip comparisons (--help for options)
  train --resume DIR
            continue a stopped or killed run
  gui       label clip pairs in a browser while a run trains (--help for options)
  export    write a run's labels and clips as portable JSONL + npz
  import    merge an export into a run or a store (prefrl import EXPORT_DIR --into RUN_DIR)
  reward    the learned reward as a model folder (reward train | eval | export)
  demo      a short real run on Pendulum: learned vs true reward, table and PNG curve
  bench     benchmarks (bench reward | gui; bench run SUITE: the paper's grids, resumable)
  plot      figures and summary tables of a suite's results (prefrl plot results/<suite>)
  presets   list the environment presets
"""


@dataclass
class ExportArgs:
    """Export a run's label store as labels.jsonl + clips.npz (no pickle)."""

    run_dir: tyro.conf.Positional[Path]
    """The run directory (or a .sqlite label store)."""
    out: Path | None = None
    """Output folder (default: <run_dir>/export)."""


@dataclass
class ImportArgs:
    """Merge an export (labels.jsonl + clips.npz) into a run's label store, all or nothing."""

    export_dir: tyro.conf.Positional[Path]
    """The export folder (written by prefrl export)."""
    into: Path
    """A run directory (its labels.sqlite) or a .sqlite store (created if it does not exist)."""


def _fail(msg: str) -> int:
    print(f"prefrl: error: {msg}", file=sys.stderr)
    return 2


def _train(args: list[str], command: str) -> int:
    from prefrl.config import TrainConfig

    if "--resume" in args:
        i = args.index("--resume")
        if i + 1 >= len(args):
            return _fail("--resume needs a run directory")
        extra = args[:i] + args[i + 2:]
        if extra:
            return _fail(f"--resume takes no other options (got {' '.join(extra)})")
        from prefrl.training import resume

        result = resume(Path(args[i + 1]), command=command)
    else:
        cfg = tyro.cli(TrainConfig, args=args, prog="prefrl train",
                       description=TrainConfig.__doc__)
        from prefrl.training import train

        result = train(cfg, command=command)
    _print_result(result.as_dict())
    return 0


def _print_result(res: dict) -> None:
    def fmt(v: object) -> str:
        if isinstance(v, list):  # alarms: how many, of which kinds
            return f"{len(v)} " + " ".join(str(a.get("kind")) for a in v if isinstance(a, dict))
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    width = max(len(k) for k in res)
    for k, v in res.items():
        print(f"{k:<{width}}  {fmt(v)}")


def _export(args: list[str]) -> int:
    from prefrl.store import LabelStore

    a = tyro.cli(ExportArgs, args=args, prog="prefrl export", description=ExportArgs.__doc__)
    src = a.run_dir / "labels.sqlite" if a.run_dir.is_dir() else a.run_dir
    if not src.exists():
        return _fail(f"no label store at {src}")
    out = a.out or (a.run_dir if a.run_dir.is_dir() else a.run_dir.parent) / "export"
    with LabelStore(src, create=False) as store:
        counts = store.export(out)
    print(f"exported {counts} to {out}")
    return 0


def _import(args: list[str]) -> int:
    from prefrl.store import LabelStore

    a = tyro.cli(ImportArgs, args=args, prog="prefrl import", description=ImportArgs.__doc__)
    if not a.export_dir.is_dir():
        return _fail(f"export folder {a.export_dir} does not exist")
    dest = a.into / "labels.sqlite" if a.into.is_dir() else a.into
    if not a.into.is_dir() and a.into.suffix != ".sqlite":
        return _fail(f"--into {a.into}: not a run directory nor a .sqlite label store")
    if a.into.is_dir() and not dest.exists():
        return _fail(f"--into {a.into}: the run directory has no labels.sqlite")
    created = not dest.exists()
    try:
        with LabelStore(dest, create=created) as store:
            n = store.import_(a.export_dir)
    except BaseException:
        if created:  # a failed import leaves no new store behind
            for p in (dest, *(dest.with_name(dest.name + s) for s in ("-wal", "-shm"))):
                p.unlink(missing_ok=True)
        raise
    print(f"imported into {dest}{' (new store)' if created else ''}: {n['clips_added']} clips "
          f"({n['clips_present']} already there), {n['queries_added']} queries "
          f"({n['queries_skipped']} already asked), {n['labels_added']} labels "
          f"({n['labels_skipped']} already there)")
    return 0


def _run_command(cmd: str, rest: list[str], command: str) -> int:
    """Run one ``prefrl`` command and return its exit status."""
    if cmd == "train":
        return _train(rest, command)
    if cmd == "export":
        return _export(rest)
    if cmd == "import":
        return _import(rest)
    if cmd == "reward":
        from prefrl.reward_cli import reward_main

        return reward_main(rest)
    if cmd == "gui":
        from prefrl.gui.cli import gui_main

        return gui_main(rest)
    if cmd == "demo":
        from prefrl.demo import main as demo_main

        return demo_main(rest)
    if cmd == "bench":
        from prefrl.bench import main as bench_main

        return bench_main(rest)
    if cmd == "plot":
        from prefrl.plotting import plot_main

        return plot_main(rest)
    if cmd == "presets":
        from prefrl.envs import list_presets, load_preset

        for name in list_presets():
            p = load_preset(name)
            print(f"{name:<24} {p.env_id:<28} clip_len={p.clip_len:<4} labels={p.labels:<5} "
                  f"steps={p.steps}")
        return 0
    return _fail(f"unknown command {cmd!r}\n{USAGE}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``prefrl`` command."""
    argv = sys.argv[1:] if argv is None else argv
    command = "prefrl " + shlex.join(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    from prefrl.config import ConfigError
    from prefrl.rundir import RunDirError
    from prefrl.store import StoreError

    try:
        status = _run_command(cmd, rest, command)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at interpreter exit
        return status
    except (ConfigError, RunDirError, StoreError, ValueError, FileNotFoundError) as e:
        if os.environ.get("PREFRL_DEBUG"):
            raise
        return _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    except KeyboardInterrupt:
        return _fail("interrupted (the run can be continued with --resume)")
    except BrokenPipeError:  # e.g. `prefrl presets | head`: the reader has gone, say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as other command-line tools end


if __name__ == "__main__":
    sys.exit(main())
