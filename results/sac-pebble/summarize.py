"""Table for the SAC benchmark (issue 16), beside the PPO path at 700 labels.

Per cell: fraction of the same algorithm on the true reward, return per label and per
wall-second.

    python results/sac-pebble/summarize.py results/sac-pebble [results/mujoco-paper]

Reads ``<env>/<setting>/<seed>/{eval,result}.json`` of a ``prefrl bench run sac-pebble`` folder;
random returns from ``results/mujoco-paper/random.json``; the PPO rows from the mujoco-paper
grid's ``labels-700`` and ``true`` cells of the same env. A second table gives each SAC cell's
training-episode true return at fixed steps, and a third the mean over seeds per setting with
the issue's goals. Writes ``summary.md`` beside the runs.
"""

import json
import sys
from pathlib import Path

from prefrl.plotting.curves import load_curve

GOALS = {("HalfCheetah", "labels-100"): 0.7, ("HalfCheetah", "labels-250"): 0.8,
         ("Walker2d", "labels-250"): 0.8, ("Hopper", "labels-250"): 0.8}
"""Issue 16's goals: fraction of SAC on the true reward per (env, setting)."""

MILESTONES = (10_000, 25_000, 50_000, 100_000, 200_000, 300_000)
"""Steps at which the curve table reads the training episodes' true return."""


def cells(root: Path):
    """(env, setting, seed, eval.json, result.json) of every evaluated cell under ``root``."""
    for ev in sorted(root.glob("*/*/*/eval.json")):
        d = ev.parent
        res = json.loads((d / "result.json").read_text())
        yield d.parent.parent.name, d.parent.name, int(d.name), json.loads(ev.read_text()), res


def curve_table(root: Path, window: int = 5) -> list[str]:
    """Training-episode true return per SAC cell at :data:`MILESTONES` (from metrics.csv).

    Each entry is the mean of the last ``window`` logged returns at or before the milestone;
    milestones more than one episode (1000 steps) past the cell's last row stay empty.
    """
    lines = ["| env | setting | seed | " + " | ".join(f"{m // 1000}k" for m in MILESTONES)
             + " |", "|" + " --- |" * (3 + len(MILESTONES))]
    for m in sorted(root.glob("*/*/*/metrics.csv")):
        d = m.parent
        steps, returns = load_curve(m)
        vals = []
        for milestone in MILESTONES:
            upto = returns[steps <= milestone][-window:]
            reached = len(steps) and milestone <= steps[-1] + 1000
            vals.append(f"{upto.mean():.0f}" if reached and len(upto) else "")
        lines.append(f"| {d.parent.parent.name} | {d.parent.name} | {d.name} | "
                     + " | ".join(vals) + " |")
    return lines


def setting_table(rows, random) -> list[str]:
    """Mean final return over seeds per (env, setting), as the PPO grid's summary computes it.

    The fraction is (mean learned - random) / (mean true - random), the true mean over the
    seeds the setting has (so a learned cell is read against its own seeds' twins).
    """
    by: dict[tuple[str, str], dict[int, float]] = {}
    for env, setting, seed, ev, _ in rows:
        by.setdefault((env, setting), {})[seed] = ev["true_return"]
    lines = ["| env | setting | seeds | final returns | mean | fraction of SAC-on-true "
             "| goal |", "|" + " --- |" * 7]
    for (env, setting), returns in sorted(by.items()):
        seeds = sorted(returns)
        mean = sum(returns.values()) / len(seeds)
        true = by.get((env, "true"), {})
        twins = [true[s] for s in seeds if s in true]
        frac = None
        if setting != "true" and len(twins) == len(seeds) and env in random:
            frac = (mean - random[env]) / (sum(twins) / len(twins) - random[env])
        budget = "-".join(setting.split("-")[:2])  # an ablation's goal is its budget's
        goal = GOALS.get((env, setting), GOALS.get((env, budget)))
        verdict = "" if goal is None or frac is None else \
            f">= {goal}: {'met' if frac >= goal else 'not met'}"  # unrounded, as the goal reads
        lines.append(f"| {env} | {setting} | {', '.join(map(str, seeds))} | "
                     + " / ".join(f"{returns[s]:.1f}" for s in seeds)
                     + f" | {mean:.1f} | {'' if frac is None else f'{frac:.2f}'} | {verdict} |")
    return lines


def main() -> None:
    """Print the table and write ``summary.md``."""
    root = Path(sys.argv[1])
    ppo_root = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("results/mujoco-paper")
    random = json.loads((ppo_root / "random.json").read_text())["returns"]
    rows = list(cells(root))
    true = {(e, s): ev["true_return"] for e, st, s, ev, _ in rows if st == "true"}
    ppo = list(cells(ppo_root))
    ppo_true = {(e, s): ev["true_return"] for e, st, s, ev, _ in ppo if st == "true"}
    lines = ["| algo | env | setting | seed | steps | final return | fraction of true (same algo) "
             "| labels | return per label | wall s | return per wall-second "
             "| standard env: return / falls of 10 | commit |",
             "|" + " --- |" * 13]

    def row(algo, env, setting, seed, ev, res, base):
        rnd = random.get(env)
        frac = ("" if base is None or rnd is None
                else f"{(ev['true_return'] - rnd) / (base - rnd):.2f}")
        labels = res.get("labels") or 0
        per_label = f"{ev['true_return'] / labels:.1f}" if labels else ""
        std = ev.get("standard_env") or {}
        lines.append(
            f"| {algo} | {env} | {setting} | {seed} | {res['steps']} | {ev['true_return']:.1f} | "
            f"{frac} | {labels or ''} | {per_label} | {res['wall_s']:.0f} | "
            f"{ev['true_return'] / res['wall_s']:.2f} | "
            f"{std.get('return', float('nan')):.0f} / {std.get('falls', '')} | "
            f"{res['provenance']['git_commit'][:7]}"
            f"{' (dirty)' if res['provenance']['git_dirty'] else ''} |")

    for env, setting, seed, ev, res in rows:
        row("SAC", env, setting, seed, ev, res, true.get((env, seed)))
    envs = {r[0] for r in rows}
    for env, setting, seed, ev, res in ppo:
        if env in envs and setting in ("labels-700", "true"):
            row("PPO", env, setting, seed, ev, res, ppo_true.get((env, seed)))
    lines += ["", "Per setting, mean over seeds (fraction: (mean - random) / (mean of the same "
              "seeds' SAC-on-true runs - random); a fraction is left out until every seed has "
              "its true twin):", ""] + setting_table(rows, random)
    lines += ["", "True return of the training episodes (mean of the last 5 logged rows at or "
              "before each step; metrics.csv):", ""] + curve_table(root)
    out = "\n".join(lines) + "\n"
    (root / "summary.md").write_text(out)
    print(out, end="")


if __name__ == "__main__":
    main()
