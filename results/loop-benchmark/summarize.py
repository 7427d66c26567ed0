"""Summarise the loop benchmark: results/loop-benchmark/<env>-<seed>/{learned,true}.

Run from the repository root: ``.venv/bin/python results/loop-benchmark/summarize.py``.
Evaluates both final policies (10 deterministic episodes on the true reward) and a random
policy, then writes summary.md, summary.json and one learning-curve PNG per task.
"""

import json
import sys
from pathlib import Path

import numpy as np

from prefrl.envs import load_preset
from prefrl.evaluate import evaluate_run, random_policy_return
from prefrl.plotting import plot_learning_curves
from prefrl.provenance import provenance

HERE = Path("results/loop-benchmark")


def main() -> int:
    rows = []
    for task in sorted(p for p in HERE.iterdir() if p.is_dir() and (p / "true").is_dir()):
        res = {m: json.loads((task / m / "result.json").read_text()) for m in ("learned", "true")
               if (task / m / "result.json").exists()}
        if len(res) < 2:
            print(f"{task.name}: not finished, skipped", file=sys.stderr)
            continue
        env = res["true"]["env_id"]
        preset = load_preset(env)
        ev = {m: evaluate_run(task / m, episodes=10) for m in res}
        rand = random_policy_return(preset, episodes=10)
        frac = (ev["learned"] - rand) / (ev["true"] - rand)
        rows.append({
            "task": task.name, "env_id": env, "steps": res["true"]["steps"],
            "labels": res["learned"]["labels"],
            "eval_learned": ev["learned"], "eval_true": ev["true"], "eval_random": rand,
            "fraction_of_true": frac,
            "train_return_learned": res["learned"]["true_return"],
            "train_return_true": res["true"]["true_return"],
            "wall_learned_s": res["learned"]["wall_s"], "wall_true_s": res["true"]["wall_s"],
            "wall_ratio": res["learned"]["wall_s"] / res["true"]["wall_s"],
            "reward_train_s": res["learned"]["reward_train_s"],
            "reward_infer_s": res["learned"]["reward_infer_s"],
            "reward_val_acc": res["learned"]["reward_val_acc"],
            "corr_spearman": res["learned"]["corr_spearman"],
        })
        plot_learning_curves(
            {f"learned reward ({res['learned']['labels']} labels)": task / "learned" / "metrics.csv",
             "true reward": task / "true" / "metrics.csv"},
            task / "learning_curve.png", title=f"PPO on {env}, seed {res['true']['seed']}",
            hlines={"random policy": rand})
    head = ("| task | steps | labels | final return, learned reward | final return, true reward "
            "| random | fraction of true | wall learned / true | reward acc | spearman |")
    lines = ["# Loop benchmark: learned vs true reward, same seed and steps", "", head,
             "|" + " --- |" * 10]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['steps']} | {r['labels']} | {r['eval_learned']:.1f} | "
            f"{r['eval_true']:.1f} | {r['eval_random']:.1f} | {r['fraction_of_true']:.2f} | "
            f"{r['wall_learned_s']:.0f} s / {r['wall_true_s']:.0f} s = {r['wall_ratio']:.2f}x | "
            f"{r['reward_val_acc']:.3f} | {r['corr_spearman']:.3f} |")
    lines += ["", "Final return: 10 deterministic episodes of the final policy on the true reward; "
              "fraction of true = (learned - random) / (true - random). Both runs of a task ran "
              "side by side (one process each) on the same machine."]
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    (HERE / "summary.json").write_text(json.dumps(
        {"rows": rows, "provenance": provenance(" ".join(sys.argv))}, indent=2))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
