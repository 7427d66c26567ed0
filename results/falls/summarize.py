"""Summarise the falls benchmark (issue 12): results/falls/<env>/<setting>/<seed>/.

Run from the repository root after ``prefrl bench run falls --out results/falls``:
``.venv/bin/python results/falls/summarize.py``. Per task and seed: the final policies'
fixed-horizon true return (10 deterministic episodes, from eval.json), a random policy's,
the fraction of true = (learned - random) / (true - random), and both policies on the standard
Gymnasium env with its own termination (mean return, length, falls in 10 episodes). Writes
summary.md and summary.json beside this file.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

from prefrl.config import resolve_run
from prefrl.evaluate import random_policy_return
from prefrl.guard import reading_summary
from prefrl.provenance import provenance
from prefrl.rundir import MetricsLog

HERE = Path(__file__).parent


def last(metrics: Path, col: str) -> float | None:
    """The last non-empty value of ``col`` in a metrics.csv."""
    with metrics.open() as f:
        vals = [r[col] for r in csv.DictReader(f) if r.get(col)]
    return float(vals[-1]) if vals else None


def pair_row(env: str, seed: int, labels: str, learned_dir: Path, true_dir: Path) -> dict:
    """One table row from a finished learned-reward run and its true-reward twin."""
    cells = {"learned": learned_dir, "true": true_dir}
    ev = {k: json.loads((c / "eval.json").read_text()) for k, c in cells.items()}
    res = {k: json.loads((c / "result.json").read_text()) for k, c in cells.items()}
    preset = resolve_run(true_dir).preset  # the run's own, as it ran
    rand = random_policy_return(preset, episodes=10)
    lr, tr = ev["learned"]["true_return"], ev["true"]["true_return"]
    return {
        "env": env, "seed": seed, "labels": labels,
        "steps": res["true"]["steps"], "learned": lr, "true": tr, "random": rand,
        "fraction_of_true": (lr - rand) / (tr - rand),
        "standard_learned": ev["learned"].get("standard_env"),
        "standard_true": ev["true"].get("standard_env"),
        "unhealthy_frac_learned": last(learned_dir / "metrics.csv", "unhealthy_frac"),
        "unhealthy_frac_true": last(true_dir / "metrics.csv", "unhealthy_frac"),
        "wall_ratio": res["learned"]["wall_s"] / res["true"]["wall_s"],
        "reward_val_acc": res["learned"].get("reward_val_acc"),
        "alarms": len(res["learned"].get("alarms", []) or []),
        "guard": reading_summary(MetricsLog(learned_dir / "metrics.csv").read()),
        "horizon": preset.horizon, "clip_len": preset.clip_len,
        "commit": res["learned"].get("provenance", {}).get("git_commit", "?")[:7],
    }


def suite_rows() -> list[dict]:
    """The finished pairs of the falls suite under this folder (<env>/<setting>/<seed>/)."""
    rows = []
    for env_dir in sorted(p for p in HERE.iterdir() if p.is_dir()):
        learned_dirs = sorted(p for p in env_dir.iterdir() if p.name.startswith("labels-"))
        for ld in learned_dirs:
            for seed_dir in sorted(p for p in ld.iterdir() if p.is_dir()):
                td = env_dir / "true" / seed_dir.name
                if not all((c / "eval.json").is_file() for c in (seed_dir, td)):
                    print(f"{seed_dir}: pair not finished, skipped", file=sys.stderr)
                    continue
                rows.append(pair_row(env_dir.name, int(seed_dir.name), ld.name, seed_dir, td))
    return rows


def main() -> int:
    """Write summary.md and summary.json from the finished pairs.

    ``--pair NAME SEED LEARNED_DIR TRUE_DIR`` (repeatable) with ``--out DIR`` tabulates
    ad-hoc pairs (an ablation's) instead of the suite's, into DIR/summary.md and .json.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pair", nargs=4, action="append", metavar=("NAME", "SEED", "LEARNED",
                                                                 "TRUE"), default=[])
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--title", default="Falls benchmark: termination = continue, "
                                        "700 labels vs true reward")
    args = ap.parse_args()
    rows = [pair_row(n, int(s), "labels-700", Path(ld), Path(td))
            for n, s, ld, td in args.pair] if args.pair else suite_rows()
    head = ("| task | seed | steps | learned | true | random | fraction of true | standard env, "
            "learned: return / length / falls of 10 | standard env, true | unhealthy share, "
            "learned / true | wall learned / true | guard: max ood / min corr / max trend | "
            "guard alarms | commit |")
    lines = [f"# {args.title}", "", head,
             "|" + " --- |" * 13]

    def guard(g: dict) -> str:
        vals = [g["hack_ood_max"], g["hack_corr_min"], g["hack_trend_max"]]
        if all(v is None for v in vals):
            return "not recorded"
        return " / ".join("-" if v is None else f"{v:.2f}" for v in vals)

    def std(s: dict | None) -> str:
        if not s:
            return "-"
        inside = ("" if "falls_within_horizon" not in s
                  else f" ({s['falls_within_horizon']} within {s['horizon']} steps)")
        return f"{s['return']:.0f} / {s['length']:.0f} / {s['falls']}{inside}"

    for r in rows:
        uf = [r["unhealthy_frac_learned"], r["unhealthy_frac_true"]]
        lines.append(
            f"| {r['env']} | {r['seed']} | {r['steps']} | {r['learned']:.1f} | {r['true']:.1f} | "
            f"{r['random']:.1f} | {r['fraction_of_true']:.2f} | {std(r['standard_learned'])} | "
            f"{std(r['standard_true'])} | "
            + " / ".join("-" if u is None else f"{u:.2f}" for u in uf)
            + f" | {r['wall_ratio']:.2f}x | {guard(r['guard'])} | {r['alarms']}"
            + (f" (first at step {r['guard']['first_alarm_step']})"
               if r['guard']['first_alarm_step'] is not None else "")
            + f" | {r['commit']} |")
    lines += ["", "learned, true, random: mean true return over 10 deterministic episodes of the "
              "fixed-horizon env (the preset's horizon); fraction of true = (learned - random) / "
              "(true - random). Standard env: the same final policy on Gymnasium's own env, "
              "with its termination and time limit; '(k within H steps)': k of the falls came "
              "within the run's training horizon H, the rest past it, where the agent was never "
              "trained. Unhealthy share: of the steps of the training episodes in the last "
              "metrics row. Guard: the extremes of the "
              "reward-hacking guard's readings over the learned-reward run (`python -m "
              "prefrl.guard RUN_DIR`); 'not recorded' for runs made before the guard landed."]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    (args.out / "summary.json").write_text(json.dumps(
        {"rows": rows, "provenance": provenance(" ".join(sys.argv))}, indent=2))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
