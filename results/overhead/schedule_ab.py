"""Table of the fast-vs-full reward schedule comparison (results/overhead/schedule-ab/).

Made by ``prefrl bench run results/overhead/schedule-ab/suite-definition.json --out DIR
--workers 2`` (HalfCheetah and Swimmer, 300k steps, 700 labels, seeds 0 and 1, each schedule
beside the true reward). Run: ``python results/overhead/schedule_ab.py [DIR]``; prints markdown.
"""

import json
import sys
from pathlib import Path

import numpy as np

DIR = Path(sys.argv[1] if len(sys.argv) > 1 else "results/overhead/schedule-ab")
RANDOM = json.loads((DIR / "random.json").read_text())["returns"]  # written by prefrl plot DIR


def cell(env: str, setting: str, seed: int) -> dict:
    d = DIR / env / setting / str(seed)
    res = json.loads((d / "result.json").read_text())
    ev = json.loads((d / "eval.json").read_text())
    return {"ret": ev["true_return"], "wall": res["wall_s"], "cpu": res["cpu_s"],
            "fit": res.get("timers", {}).get("reward_fit_s"), "acc": res.get("reward_val_acc"),
            "spearman": res.get("corr_spearman"), "infer": res.get("reward_infer_s")}


def main() -> None:
    print("| env | seed | schedule | final true return | fraction of true | held-out acc | "
          "Spearman | reward fit s | CPU learned / true |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    summary = []
    for env in ("Swimmer", "HalfCheetah"):
        rnd = RANDOM[env]
        for seed in (0, 1):
            true = cell(env, "true", seed)
            for sched in ("full", "fast"):
                c = cell(env, f"labels-700-{sched}", seed)
                frac = (c["ret"] - rnd) / (true["ret"] - rnd)
                summary.append((env, sched, frac, c["acc"], c["fit"]))
                print(f"| {env} | {seed} | {sched} | {c['ret']:.1f} | {frac:.2f} | "
                      f"{c['acc']:.3f} | {c['spearman']:.3f} | {c['fit']:.1f} | "
                      f"{c['cpu'] / true['cpu']:.2f}x |")
            print(f"| {env} | {seed} | true reward | {true['ret']:.1f} | 1 | | | | |")
    print()
    for env in ("Swimmer", "HalfCheetah"):
        for sched in ("full", "fast"):
            s = [r for r in summary if r[0] == env and r[1] == sched]
            print(f"- {env} {sched}: mean fraction {np.mean([r[2] for r in s]):.2f}, mean "
                  f"held-out acc {np.mean([r[3] for r in s]):.3f}, mean reward fit "
                  f"{np.mean([r[4] for r in s]):.1f} s")


if __name__ == "__main__":
    main()
