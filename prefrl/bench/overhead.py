"""What a learned-reward run costs beyond the true-reward run, per component.

``prefrl bench overhead --envs Walker2d Swimmer --steps 30000`` trains, per env, the true-reward
run and one learned-reward run per ``--variants`` entry (``SCHEDULE-TRAINING``: ``fast`` or
``full`` reward schedule, ``inline`` or ``background`` reward training), all side by side as
separate processes with one torch thread each, same seed and steps. From each run's
``result.json`` it writes a table: wall time learned / true, and the seconds and share of the
learned run's wall time in each component:

* ``pretrain``: collecting the random-policy clips, asking and training on the first labels;
* ``reward_wait``: RL waiting for reward updates (inline: the whole update; background: only
  the waits), split (inline) into ``label_sync`` (store reads, clip decoding), ``fit``
  (trainer), ``norm`` (output normalisation on pool clips), ``agreement`` (learned/true
  correlation on fresh clips);
* ``query``: choosing pairs (pool sampling, ensemble scoring) and storing queries and answers;
* ``inference``: the learned reward of every env step; ``recording``: cutting clips into the
  pool; ``guard``: the reward-hacking guard's readings; ``checkpoints``: checkpoint time beyond
  the true run's (the label store, pool and model); ``other``: the rest of the difference
  (noise included; may be negative).

``timed ratio`` is (true wall + the timed components) / true wall: what the learned run costs
beyond the RL itself, without the run-to-run noise of the machine. On the 2-core VM one and
the same true-reward run (HalfCheetah, seed 0, 300k steps, identical returns) took 618 s,
642 s and 687 s of wall time (571-628 s CPU) in three grids, so a single wall ratio carries
about +-10% of noise, as large as the overhead it measures; ``other`` is mostly that noise.

``prefrl bench overhead --from results/mujoco-paper`` makes the same table from a finished
``prefrl bench run`` grid instead, without training: each ``<env>/<setting>/<seed>`` learned cell
beside ``<env>/true/<seed>`` (runs that the grid ran one process per core, as it always does),
with the median ratio over the cells.

``--as-part-of N`` makes a short run the first ``--steps`` of an N-step run: its labels are
what that run's schedule asks by then, and it updates as often as that run (N / 40 steps).
Wall times on a shared machine carry the load of other work; compare shares, and learned and
true runs that ran side by side. ``CPU ratio`` is the ratio of the processes' CPU seconds (all
threads), steadier under load; background training shows there as CPU, not as waiting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from prefrl.envs import load_preset
from prefrl.query import LabelSchedule

VARIANTS = ("fast-inline", "fast-background", "full-inline", "full-background")
COMPONENTS = ("pretrain", "reward_wait", "query", "inference", "recording", "guard",
              "checkpoint")


def run_command(env: str, steps: int, seed: int, run_dir: Path, *, reward: str,
                labels: int | None = None, update_every: int | None = None,
                variant: str = "fast-inline") -> list[str]:
    """The ``prefrl train`` command line of one run."""
    cmd = [sys.executable, "-m", "prefrl.cli", "train", "--env", env, "--steps", str(steps),
           "--seed", str(seed), "--run-dir", str(run_dir), "--no-progress",
           "--no-tensorboard", "--torch-threads", "1", "--reward", reward]
    if reward == "learned":
        schedule, training = variant.split("-")
        cmd += ["--reward-schedule", schedule, "--reward-training", training]
        if labels is not None:
            cmd += ["--labels", str(labels)]
        if update_every is not None:
            cmd += ["--update-every", str(update_every)]
    return cmd


def components(res: dict[str, Any]) -> dict[str, float]:
    """Seconds per component of a learned run's ``result.json`` (see the module docstring)."""
    t = res.get("timers", {})
    return {
        "pretrain": t.get("pretrain_collect_s", 0.0) + t.get("pretrain_s", 0.0),
        "reward_wait": res["reward_train_s"],
        "label_sync": t.get("label_sync_s", 0.0), "fit": t.get("reward_fit_s", 0.0),
        "norm": t.get("reward_norm_s", 0.0), "agreement": t.get("reward_agreement_s", 0.0),
        "query": t.get("query_score_s", 0.0) + t.get("query_store_s", 0.0),
        "query_score": t.get("query_score_s", 0.0),
        "inference": res["reward_infer_s"], "recording": t.get("record_s", 0.0),
        "guard": t.get("guard_s", 0.0), "checkpoint": t.get("checkpoint_s", 0.0),
    }


def summarise(env: str, variant: str, learned: dict[str, Any], true: dict[str, Any]
              ) -> dict[str, Any]:
    """One table row: wall ratio and every component's seconds and share of learned wall."""
    comp = components(learned)
    comp["checkpoint"] -= true.get("timers", {}).get("checkpoint_s", 0.0)  # the extra only
    wall_l, wall_t = learned["wall_s"], true["wall_s"]
    timed = sum(comp[c] for c in COMPONENTS)
    other = wall_l - wall_t - timed
    row: dict[str, Any] = {
        "env": env, "variant": variant, "steps": learned["steps"], "labels": learned["labels"],
        "wall_learned_s": wall_l, "wall_true_s": wall_t, "ratio": wall_l / wall_t,
        "timed_ratio": (wall_t + timed) / wall_t,
        "background": "background" in variant,
        "cpu_learned_s": learned.get("cpu_s"), "cpu_true_s": true.get("cpu_s"),
        "cpu_ratio": (learned["cpu_s"] / true["cpu_s"]) if true.get("cpu_s") else None,
        "reward_val_acc": learned.get("reward_val_acc"),
        "true_return_learned": learned.get("true_return"),
        "true_return_true": true.get("true_return"),
        "seconds": {**comp, "other": other},
        "share": {k: v / wall_l for k, v in {**comp, "other": other}.items()},
    }
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    """The per-cell table."""
    head = ("| env | variant | steps | labels | learned / true wall | timed ratio | CPU ratio | "
            "pretrain | "
            "reward wait (fit) | query | inference | recording | guard | checkpoints | other | "
            "val acc |")
    lines = [head, "|" + " --- |" * 16]
    for r in rows:
        s, sh = r["seconds"], r["share"]

        def cell(k: str) -> str:
            return f"{s[k]:.1f} s ({100 * sh[k]:.0f}%)"  # noqa: B023 - used at once
        acc = r["reward_val_acc"]
        lines.append(
            f"| {r['env']} | {r['variant']} | {r['steps']} | {r['labels']} | "
            f"{r['wall_learned_s']:.0f} s / {r['wall_true_s']:.0f} s = {r['ratio']:.2f}x | "
            f"{r['timed_ratio']:.2f}x{'*' if r.get('background') else ''} | "
            f"{'' if r['cpu_ratio'] is None else format(r['cpu_ratio'], '.2f') + 'x'} | "
            f"{cell('pretrain')} | {cell('reward_wait')} ({s['fit']:.1f} s) | {cell('query')} | "
            f"{cell('inference')} | {cell('recording')} | {cell('guard')} | "
            f"{cell('checkpoint')} | {cell('other')} | "
            f"{'' if acc is None else f'{acc:.3f}'} |")
    if any(r.get("background") for r in rows):
        lines += ["", BACKGROUND_NOTE]
    return "\n".join(lines) + "\n"


BACKGROUND_NOTE = (
    "\\* background training: the fit ran in a thread, so the timed ratio counts only the "
    "RL's waits and holds only where that thread had a core of its own; without one, its "
    "cost shows in `other` and in the neighbouring runs' wall time (the CPU ratio counts it).")


def run_env(env: str, steps: int, seed: int, out: Path, variants: list[str],
            as_part_of: int | None, labels: int | None) -> list[dict[str, Any]]:
    """True run and every learned variant of one env, side by side; their table rows."""
    preset = load_preset(env)
    n_labels, update_every = labels, None
    if as_part_of is not None:
        n_labels = LabelSchedule(labels or preset.labels, as_part_of).target(steps)
        update_every = max(1, as_part_of // 40)
    runs = {"true": run_command(env, steps, seed, out / env / "true", reward="true")}
    for v in variants:
        runs[v] = run_command(env, steps, seed, out / env / v, reward="learned",
                              labels=n_labels, update_every=update_every, variant=v)
    procs = {}
    for name, cmd in runs.items():
        (out / env).mkdir(parents=True, exist_ok=True)
        log = open(out / env / f"{name}.log", "w")  # noqa: SIM115 - closed by the process end
        procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    failed = [n for n, p in procs.items() if p.wait() != 0]
    if failed:
        raise RuntimeError(f"{env}: runs {failed} failed; see {out / env}/<run>.log")
    results = {n: json.loads((out / env / n / "result.json").read_text()) for n in runs}
    return [summarise(env, v, results[v], results["true"]) for v in variants]


def grid_rows(grid: Path, settings: list[str] | None = None) -> list[dict[str, Any]]:
    """Table rows for every finished learned cell of a bench-run folder that has a true twin.

    A cell is ``<grid>/<env>/<setting>/<seed>/result.json``; its twin is
    ``<grid>/<env>/true/<seed>/result.json``. The variant column is the setting's name and its
    config's ``reward_schedule``-``reward_training``.
    """
    rows = []
    for res_path in sorted(Path(grid).glob("*/*/*/result.json")):
        seed_dir = res_path.parent
        setting, env = seed_dir.parent.name, seed_dir.parent.parent.name
        twin = seed_dir.parent.parent / "true" / seed_dir.name / "result.json"
        if setting == "true" or not twin.is_file() or (settings and setting not in settings):
            continue
        learned = json.loads(res_path.read_text())
        if learned.get("reward") != "learned":
            continue
        cfg_path = seed_dir / "config.json"
        doc = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
        background = doc.get("resolved", {}).get("background_reward")
        training = "?" if background is None else "background" if background else "inline"
        schedule = (doc.get("resolved", {}).get("reward_schedule")
                    or doc.get("train", {}).get("reward_schedule") or "?")
        variant = f"{setting} s{seed_dir.name} ({schedule}-{training})"
        rows.append(summarise(env, variant, learned, json.loads(twin.read_text())))
    return rows


def median_line(rows: list[dict[str, Any]]) -> str:
    """One line: the median wall ratio, the worst cell and how many exceed 1.1x.

    The issue's goal is <= 1.1x on every cell and a median <= 1.05x.
    """
    if not rows:
        return "no cells\n"
    ratios = [r["ratio"] for r in rows]
    median = float(np.median(ratios))
    worst = max(rows, key=lambda r: r["ratio"])
    timed = [r["timed_ratio"] for r in rows]
    return (f"median wall ratio over {len(rows)} cells: {median:.2f}x; worst: {worst['env']} "
            f"{worst['variant']} {worst['ratio']:.2f}x; cells over 1.1x: "
            f"{sum(r > 1.1 for r in ratios)}; timed ratio: median {np.median(timed):.2f}x, "
            f"worst {max(timed):.2f}x, cells over 1.1x: {sum(r > 1.1 for r in timed)}\n")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; write ``overhead.json`` and ``overhead.md`` into ``--out``."""
    ap = argparse.ArgumentParser(prog="prefrl bench overhead", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", nargs="+", default=["Walker2d", "Swimmer", "Pendulum"])
    ap.add_argument("--steps", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--labels", type=int, default=None, help="default: the preset's")
    ap.add_argument("--as-part-of", type=int, default=None, metavar="N",
                    help="run the first --steps of an N-step run (labels, update interval)")
    ap.add_argument("--variants", nargs="+", default=["fast-inline"], choices=VARIANTS)
    ap.add_argument("--out", type=Path, default=None,
                    help="where the runs and tables go (default results/overhead/profile; "
                         "with --from: print only unless given)")
    ap.add_argument("--from", dest="grid", type=Path, default=None, metavar="GRID",
                    help="tabulate a finished `prefrl bench run` folder instead of training "
                         "(print only, unless --out is given)")
    ap.add_argument("--settings", nargs="+", default=None,
                    help="with --from: only these settings (e.g. labels-700)")
    a = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    t0 = time.time()
    if a.grid is not None:
        if not a.grid.is_dir():
            ap.error(f"--from: no such folder: {a.grid}")
        rows = grid_rows(a.grid, a.settings)
        table = markdown(rows) + "\n" + median_line(rows)
        print(table, end="")
        if a.out is not None:
            a.out.mkdir(parents=True, exist_ok=True)
            (a.out / "overhead.md").write_text(table)
            (a.out / "overhead.json").write_text(json.dumps({"rows": rows, "from": str(a.grid)},
                                                            indent=2))
        return 0
    a.out = a.out or Path("results/overhead/profile")
    for env in a.envs:
        rows += run_env(env, a.steps, a.seed, a.out, a.variants, a.as_part_of, a.labels)
        print(markdown(rows[-len(a.variants):]), flush=True)
    from prefrl.provenance import provenance

    cmd = "prefrl bench overhead " + " ".join(argv if argv is not None else sys.argv[2:])
    prov = {**provenance(cmd), "load_avg_1_5_15": os.getloadavg(), "bench_s": time.time() - t0}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "overhead.json").write_text(json.dumps({"rows": rows, "provenance": prov},
                                                    indent=2))
    (a.out / "overhead.md").write_text(markdown(rows))
    print(markdown(rows))
    return 0
