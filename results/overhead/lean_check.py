"""Compare learned-reward cells of two grids, cell by cell (same env, setting, seed).

``python results/overhead/lean_check.py BASE_DIR NEW_DIR [ENV ...]``: for each
``ENV/SETTING/SEED`` present in both, the final true return (eval.json), the fraction of the
true-reward agent of BASE_DIR (random from ``results/mujoco-paper/random.json``), the held-out
label accuracy, the reward-fitting seconds and the CPU seconds of each.
"""
import json
import sys
from pathlib import Path

base, new = Path(sys.argv[1]), Path(sys.argv[2])
envs = sys.argv[3:] or sorted(p.name for p in new.iterdir() if p.is_dir())
rand = json.loads(Path("results/mujoco-paper/random.json").read_text())["returns"]


def read(cell):
    res = json.loads((cell / "result.json").read_text())
    ev = json.loads((cell / "eval.json").read_text())
    return ev["true_return"], res.get("reward_val_acc"), res["timers"].get("reward_fit_s"), res["cpu_s"]


print("| env | setting | seed | final return base / new | fraction base / new | held-out acc base / new "
      "| reward fit s base / new | CPU s base / new |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for env in envs:
    for cell in sorted((new / env).glob("labels-*/*")):
        rel = cell.relative_to(new)
        if not (base / rel / "eval.json").is_file() or not (cell / "eval.json").is_file():
            continue
        true = json.loads((base / env / "true" / cell.name / "eval.json").read_text())["true_return"]
        rnd = rand[env]
        (rb, ab, fb, cb), (rn, an, fn, cn) = read(base / rel), read(cell)
        frac = lambda r: (r - rnd) / (true - rnd)  # noqa: E731
        print(f"| {env} | {rel.parent.name} | {cell.name} | {rb:.1f} / {rn:.1f} | {frac(rb):.2f} / "
              f"{frac(rn):.2f} | {ab:.3f} / {an:.3f} | {fb:.1f} / {fn:.1f} | {cb:.0f} / {cn:.0f} |")
