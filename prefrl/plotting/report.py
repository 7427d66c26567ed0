"""``prefrl plot EXP``: figures and a summary of a suite's results, from its CSVs/JSONs alone.

Writes into ``EXP/figures/``:

* ``curves.png``: one subplot per env (the paper's layout), true return vs environment steps,
  one line per setting (label budgets and the true reward), mean over seeds with a 95%
  bootstrap band; the random policy as a dashed line where known;
* ``summary.md`` / ``summary.csv``: per env x setting, the mean final return, the fraction of
  the true-reward agent ``(learned - random) / (true - random)``, the learned-vs-true reward
  correlations and validation accuracy; the aggregate scores in the markdown;
* ``aggregate.png`` / ``aggregate.csv``: IQM and mean of the normalised scores over tasks, with
  stratified-bootstrap 95% CIs (see :mod:`prefrl.plotting.aggregate`).

Random-policy returns are computed once per env and cached in ``EXP/random.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prefrl.plotting.aggregate import aggregate, normalized, seed_band
from prefrl.plotting.curves import smooth
from prefrl.plotting.load import CellData, load_experiment, random_returns, setting_sort_key

TRUE = "true"
"""The setting name of the true-reward agent (the normaliser)."""


def _mean(values: Sequence[float | None]) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else None


def _by(cells: Sequence[CellData]) -> dict[tuple[str, str], list[CellData]]:
    groups: dict[tuple[str, str], list[CellData]] = {}
    for c in cells:
        groups.setdefault((c.env, c.setting), []).append(c)
    return groups


def envs_and_settings(cells: Sequence[CellData]) -> tuple[list[str], list[str]]:
    """Envs (in order of appearance) and settings (label budgets ascending, true last)."""
    envs = list(dict.fromkeys(c.env for c in cells))
    return envs, sorted({c.setting for c in cells}, key=setting_sort_key)


def suite_order(exp: Path, cells: list[CellData]) -> list[CellData]:
    """``cells`` with envs in the order of the suite in ``<exp>/suite.json`` (the paper's).

    Without a suite.json the order is unchanged; envs the suite doesn't list come last.
    """
    try:
        envs = json.loads((exp / "suite.json").read_text())["definition"]["envs"]
    except (OSError, ValueError, KeyError, TypeError):
        return cells
    rank = {e: i for i, e in enumerate(envs)}
    return sorted(cells, key=lambda c: rank.get(c.env, len(rank)))


def summary_rows(cells: Sequence[CellData], random: dict[str, float | None]
                 ) -> list[dict[str, Any]]:
    """One row per env x setting: final returns, fraction of true, correlations."""
    groups = _by(cells)
    envs, settings = envs_and_settings(cells)
    rows = []
    for env in envs:
        true = _mean([c.final_return for c in groups.get((env, TRUE), [])])
        true_cells = groups.get((env, TRUE), [])
        for s in settings:
            g = groups.get((env, s))
            if not g:
                continue
            finals = [c.final_return for c in g if math.isfinite(c.final_return)]
            mean = float(np.mean(finals)) if finals else float("nan")
            sources = {c.final_source for c in g}
            rows.append({
                "env": env, "setting": s, "seeds": len(g),
                "finished": sum(c.finished for c in g),
                "final_return": mean,
                "final_return_sd": float(np.std(finals, ddof=1)) if len(finals) > 1 else None,
                "final_source": sources.pop() if len(sources) == 1 else "mixed",
                "random_return": random.get(env), "true_reward_return": true,
                "fraction_of_true": normalized(mean, random=random.get(env), true=true),
                "corr_spearman": _mean([c.corr_spearman for c in g]),
                "corr_pearson": _mean([c.corr_pearson for c in g]),
                "reward_val_acc": _mean([c.reward_val_acc for c in g]),
                "wall_ratio": _median(time_ratios(g, true_cells, "wall_s")),
                "cpu_ratio": _median(time_ratios(g, true_cells, "cpu_s")),
            })
    return rows


def time_ratios(cells: Sequence[CellData], true_cells: Sequence[CellData],
                field: str) -> list[float]:
    """Per cell, its ``wall_s`` or ``cpu_s`` over that of the true-reward cell of its seed."""
    true = {c.seed: getattr(c, field) for c in true_cells if getattr(c, field)}
    return [getattr(c, field) / true[c.seed] for c in cells
            if getattr(c, field) and c.seed in true]


def cell_time_ratios(cells: Sequence[CellData]) -> dict[str, list[float]]:
    """``wall`` and ``cpu`` ratios learned / true of every learned cell with a true twin."""
    groups = _by(cells)
    envs, settings = envs_and_settings(cells)
    out: dict[str, list[float]] = {"wall": [], "cpu": []}
    for env in envs:
        for s in settings:
            if s == TRUE:
                continue
            for kind in out:
                out[kind] += time_ratios(groups.get((env, s), []),
                                         groups.get((env, TRUE), []), f"{kind}_s")
    return out


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if values else None


def normalized_scores(cells: Sequence[CellData], random: dict[str, float | None]
                      ) -> dict[str, list[list[float]]]:
    """Per setting, the normalised final score of every run, grouped by task (env)."""
    groups = _by(cells)
    envs, settings = envs_and_settings(cells)
    out: dict[str, list[list[float]]] = {}
    for s in settings:
        tasks = []
        for env in envs:
            true = _mean([c.final_return for c in groups.get((env, TRUE), [])])
            scores = [normalized(c.final_return, random=random.get(env), true=true)
                      for c in groups.get((env, s), [])]
            scores = [x for x in scores if math.isfinite(x)]
            if scores:
                tasks.append(scores)
        out[s] = tasks
    return out


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colors(settings: Sequence[str]) -> dict[str, Any]:
    plt = _plt()
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    learned = [s for s in settings if s != TRUE]
    return {**{s: cycle[i % len(cycle)] for i, s in enumerate(learned)}, TRUE: "black"}


def plot_curves(cells: Sequence[CellData], out: Path, *, random: dict[str, float | None],
                smooth_window: int = 5, title: str = "", seed: int = 0) -> Path:
    """The grid of per-env learning curves (mean over seeds, 95% bootstrap band)."""
    plt = _plt()
    envs, settings = envs_and_settings(cells)
    groups, colors = _by(cells), _colors(settings)
    ncols = min(4, len(envs))
    nrows = math.ceil(len(envs) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows + 0.5), dpi=110,
                             squeeze=False, layout="constrained")
    for ax, env in zip(axes.flat, envs, strict=False):
        for s in settings:
            runs = [c for c in groups.get((env, s), []) if len(c.steps)]
            if not runs:
                continue
            grid = max((c.steps for c in runs), key=len)
            ys = np.stack([np.interp(grid, c.steps, smooth(c.returns, smooth_window),
                                     left=np.nan, right=np.nan) for c in runs])
            mean, lo, hi = seed_band(ys, seed=seed)
            label = "RL on true reward" if s == TRUE else s.replace("labels-", "") + " labels"
            ax.plot(grid, mean, color=colors[s], lw=1.4, label=f"{label}")
            ax.fill_between(grid, lo, hi, color=colors[s], alpha=0.2, lw=0)
        if random.get(env) is not None:
            ax.axhline(random[env], color="grey", ls="--", lw=0.8, label="random policy")
        ax.set_title(env, fontsize=10)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        ax.xaxis.get_offset_text().set_fontsize(7)
    for ax in axes.flat[len(envs):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("environment steps", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("true return", fontsize=8)
    handles: dict[str, Any] = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center",
               ncol=len(handles), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, out)


def plot_aggregate(agg: dict[str, dict[str, Any]], out: Path, title: str = "") -> Path:
    """IQM and mean normalised score per setting with their CIs (rliable-style intervals)."""
    plt = _plt()
    settings = [s for s in sorted(agg, key=setting_sort_key) if agg[s]["runs"]]
    colors = _colors(settings)
    fig, axes = plt.subplots(1, 2, figsize=(8, 0.5 * max(len(settings), 1) + 1.4), dpi=110,
                             sharey=True)
    for ax, stat in zip(axes, ("iqm", "mean"), strict=True):
        for i, s in enumerate(settings):
            est, lo, hi = agg[s][stat]
            ax.barh(i, hi - lo, left=lo, height=0.6, color=colors[s], alpha=0.35)
            ax.plot([est, est], [i - 0.3, i + 0.3], color=colors[s], lw=2)
        ax.axvline(1.0, color="black", ls=":", lw=0.8)
        ax.axvline(0.0, color="grey", ls="--", lw=0.8)
        ax.set_title("IQM" if stat == "iqm" else "Mean", fontsize=10)
        ax.set_xlabel("normalised score", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(settings)), settings, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def _save(fig: Any, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    _plt().close(fig)
    return out


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def write_summary(rows: list[dict[str, Any]], agg: dict[str, dict[str, Any]], out_dir: Path,
                  *, name: str, excluded: Sequence[str] = (),
                  cell_ratios: dict[str, list[float]] | None = None) -> tuple[Path, Path, Path]:
    """``summary.md``, ``summary.csv`` and ``aggregate.csv`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "summary.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows({k: _fmt(v, 6) for k, v in r.items()} for r in rows)
    agg_rows = [{"setting": s, "tasks": a["tasks"], "runs": a["runs"],
                 **{f"{st}{suf}": a[st][i] if a["runs"] else None for st in ("iqm", "mean")
                    for i, suf in enumerate(("", "_low", "_high"))},
                 "method": a["method"], "reps": a["reps"]}
                for s, a in sorted(agg.items(), key=lambda kv: setting_sort_key(kv[0]))]
    with (out_dir / "aggregate.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, list(agg_rows[0]) if agg_rows else ["setting"])
        w.writeheader()
        w.writerows({k: _fmt(v, 6) for k, v in r.items()} for r in agg_rows)
    lines = [f"# {name}: results", "",
             "| env | setting | seeds | final return | sd | random | fraction of true "
             "| spearman | pearson | reward val acc | wall learned / true "
             "| CPU learned / true |",
             "|" + " --- |" * 12]
    for r in rows:
        frac = r["fraction_of_true"]
        lines.append("| " + " | ".join([
            r["env"], r["setting"], f"{r['seeds']}" + ("" if r["finished"] == r["seeds"]
                                                       else f" ({r['finished']} finished)"),
            _fmt(r["final_return"], 4), _fmt(r["final_return_sd"], 3),
            _fmt(r["random_return"], 4), "" if not math.isfinite(frac) else f"{frac:.2f}",
            _fmt(r["corr_spearman"]), _fmt(r["corr_pearson"]), _fmt(r["reward_val_acc"]),
            *("" if r[k] is None or r["setting"] == TRUE else f"{r[k]:.2f}x"
              for k in ("wall_ratio", "cpu_ratio")),
        ]) + " |")
    ratios = cell_ratios or {}
    if ratios.get("wall"):
        med = {k: f"{np.median(v):.2f}x" if v else "n/a" for k, v in ratios.items()}
        lines += ["", f"Median over the {len(ratios['wall'])} learned-reward cells with a "
                  f"true-reward twin: wall {med['wall']}, CPU {med.get('cpu', 'n/a')} "
                  f"({len(ratios.get('cpu', []))} cells with CPU times)."]
    lines += ["", "## Aggregate over tasks (normalised score)", "",
              "| setting | tasks | runs | IQM [95% CI] | mean [95% CI] |", "|" + " --- |" * 5]
    for r in agg_rows:
        ci = {st: (f"{r[st]:.3f} [{r[st + '_low']:.3f}, {r[st + '_high']:.3f}]"
                   if r[st] is not None else "") for st in ("iqm", "mean")}
        lines.append(f"| {r['setting']} | {r['tasks']} | {r['runs']} | {ci['iqm']} | "
                     f"{ci['mean']} |")
    method = {a["method"] for a in agg.values()}
    reps = next(iter(agg.values()))["reps"] if agg else 0
    lines += ["", "Notes:", "",
              "- final return: the deterministic evaluation of the final policy (`eval.json`) "
              "where present, else the mean true return of the last 10% of the metrics rows "
              "(column `final_source` of summary.csv says which); mean over seeds, sd across "
              "seeds.",
              "- fraction of true: (final return - random) / (true-reward agent - random), "
              "random = uniformly random policy (`random.json`); blank without a baseline.",
              "- spearman / pearson: learned vs true reward correlation on fresh clips at the "
              "end of the run; reward val acc: held-out label accuracy (means over seeds).",
              "- wall learned / true: the run's wall time over that of the true-reward run of "
              "the same seed (median over seeds); the grid runs one process per core, so both "
              "ran under the same kind of load, not necessarily at the same time.",
              "- CPU learned / true: the same with the runs' CPU seconds (every thread), which "
              "load moves much less than wall time; like the wall ratio it counts all that "
              "differs between the two runs, the agents' behaviour included.",
              "- aggregate: normalised final scores of all runs of a setting pooled over tasks; "
              "IQM = mean of the middle 50% (floor(n/4) trimmed from each end); where tasks "
              "have different run counts, each task weighs the same (each run 1 / runs of its "
              "task) and the IQM keeps the middle half of the weight; 95% CIs by "
              f"stratified bootstrap over runs within tasks, percentile method, {reps} "
              f"replicates ({', '.join(sorted(method)) or 'n/a'}).",
              ]
    if excluded:
        lines.append("- left out of the aggregate (no random baseline or no true-reward "
                     f"agent): {', '.join(excluded)}.")
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n")
    return out_dir / "summary.md", out_dir / "summary.csv", out_dir / "aggregate.csv"


def make_report(exp: Path, out: Path | None = None, *, compute_random: bool = True,
                reps: int = 2000, seed: int = 0, smooth_window: int = 5,
                method: str = "auto", random_episodes: int = 10) -> dict[str, Any]:
    """Every figure and table of ``exp``; returns the paths, rows and aggregate numbers."""
    exp = Path(exp)
    out = Path(out) if out else exp / "figures"
    cells = suite_order(exp, load_experiment(exp))
    envs, _ = envs_and_settings(cells)
    random = random_returns(exp, envs, compute=compute_random, episodes=random_episodes)
    rows = summary_rows(cells, random)
    scores = normalized_scores(cells, random)
    excluded = [e for e in envs if not any(r["env"] == e and math.isfinite(
        r["fraction_of_true"]) for r in rows)]
    agg = aggregate(scores, reps=reps, seed=seed, method=method)
    paths = {"curves": plot_curves(cells, out / "curves.png", random=random,
                                   smooth_window=smooth_window, title=exp.name, seed=seed)}
    if any(a["runs"] for a in agg.values()):
        paths["aggregate"] = plot_aggregate(agg, out / "aggregate.png",
                                            title=f"{exp.name}: normalised final score")
    md, csv_path, agg_csv = write_summary(rows, agg, out, name=exp.name, excluded=excluded,
                                          cell_ratios=cell_time_ratios(cells))
    paths.update(summary_md=md, summary_csv=csv_path, aggregate_csv=agg_csv)
    return {"paths": paths, "rows": rows, "aggregate": agg, "random": random,
            "excluded": excluded}


def plot_main(argv: Sequence[str] | None = None) -> int:
    """``prefrl plot EXP``: 0 on success, 2 on bad input."""
    ap = argparse.ArgumentParser(
        prog="prefrl plot", description="Figures and summary tables of a suite's results "
        "(EXP/<env>/<setting>/<seed>/), regenerated from its CSV/JSON files alone.")
    ap.add_argument("exp", type=Path, help="experiment folder, e.g. results/mujoco-paper")
    ap.add_argument("--out", type=Path, default=None, help="default EXP/figures")
    ap.add_argument("--no-random", action="store_true",
                    help="don't compute missing random-policy returns (use random.json only)")
    ap.add_argument("--random-episodes", type=int, default=10)
    ap.add_argument("--reps", type=int, default=2000, help="bootstrap replicates")
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    ap.add_argument("--smooth", type=int, default=5, help="moving-average window (rows)")
    ap.add_argument("--ci-method", choices=("auto", "rliable", "prefrl"), default="auto")
    a = ap.parse_args(argv)
    try:
        rep = make_report(a.exp, a.out, compute_random=not a.no_random, reps=a.reps,
                          seed=a.seed, smooth_window=a.smooth, method=a.ci_method,
                          random_episodes=a.random_episodes)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"prefrl: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    print(Path(rep["paths"]["summary_md"]).read_text())
    for p in rep["paths"].values():
        print(f"wrote {p}")
    return 0
