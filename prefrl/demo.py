"""``make demo`` / ``prefrl demo``: a short, real preference-learning run, explained.

Trains PPO on Pendulum-v1 twice, side by side (one process per core): once on a reward learned
from a few hundred synthetic clip comparisons (the paper's teacher, 10% random answers), once
on the true reward. Then it evaluates both policies and a random policy on the true reward,
prints a table and writes a PNG learning curve.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import sys
import time
from pathlib import Path

from prefrl.config import TrainConfig


def _run(cfg: TrainConfig) -> dict:
    from prefrl.training import train

    return train(cfg, command="prefrl demo").as_dict()


def _report_progress(cfgs: dict[str, TrainConfig], steps: int) -> None:
    """One line: where each run is (read from its metrics.csv)."""
    from prefrl.rundir import MetricsLog

    parts = []
    for k, c in cfgs.items():
        path = Path(c.run_dir or "") / "metrics.csv"
        rows = MetricsLog(path).read() if path.exists() else []
        if not rows:
            parts.append(f"{k}: starting")
            continue
        r = rows[-1]
        ret = next((x["true_return"] for x in reversed(rows) if x["true_return"]), "")
        part = f"{k}: step {int(float(r['step'])):>6}/{steps}"
        if ret:
            part += f", true return {float(ret):8.1f}"
        if k == "learned":
            part += f", labels {r['labels']}"
        parts.append(part)
    print("  " + "  |  ".join(parts), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return an exit status."""
    ap = argparse.ArgumentParser(prog="prefrl demo", description=__doc__)
    ap.add_argument("--env", default="Pendulum")
    ap.add_argument("--labels", type=int, default=300)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="folder (default results/runs/demo-*)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the true-reward run")
    a = ap.parse_args(argv)
    out = a.out or Path("results/runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    common = dict(env=a.env, steps=a.steps, seed=a.seed, progress=False, torch_threads=1,
                  tensorboard=False)
    cfgs = {"learned": TrainConfig(**common, labels=a.labels, oracle="paper",
                                   run_dir=out / "learned")}
    if not a.no_baseline:
        cfgs["true"] = TrainConfig(**common, reward="true", run_dir=out / "true")
    for c in cfgs.values():
        c.resolve()  # fail fast on a bad configuration
    print(f"prefrl demo: PPO on {a.env}, {a.steps} steps, seed {a.seed}")
    print(f"  learned reward: {a.labels} synthetic labels ('paper' teacher, 10% random answers)")
    if "true" in cfgs:
        print("  baseline: the same PPO on the true reward, in parallel")
    print(f"  run directories under {out} (metrics.csv, labels.sqlite, checkpoint/)")
    t0 = time.perf_counter()
    results = {}
    with cf.ProcessPoolExecutor(len(cfgs), mp_context=mp.get_context("spawn")) as pool:
        futs = {k: pool.submit(_run, c) for k, c in cfgs.items()}
        while cf.wait(list(futs.values()), timeout=15).not_done:
            _report_progress(cfgs, a.steps)
        for k, f in futs.items():
            results[k] = f.result()
            print(f"  {k:<8} run finished after {results[k]['wall_s']:.0f} s")

    from prefrl.envs import load_preset
    from prefrl.evaluate import evaluate_run, random_policy_return
    from prefrl.plotting import plot_learning_curves

    preset = load_preset(a.env)
    rand = random_policy_return(preset, episodes=10, seed=a.seed)
    evals = {k: evaluate_run(Path(r["run_dir"]), episodes=10) for k, r in results.items()}
    lr = results["learned"]
    rows = [("random policy", f"{rand:.1f}", "", "", "")]
    rows.append(("PPO, learned reward", f"{evals['learned']:.1f}", str(lr["labels"]),
                 f"{lr['reward_val_acc']:.3f}" if lr["reward_val_acc"] is not None else "n/a",
                 f"{lr['corr_spearman']:.3f}" if lr["corr_spearman"] is not None else "n/a"))
    if "true" in results:
        rows.append(("PPO, true reward", f"{evals['true']:.1f}", "", "", ""))
    head = ("agent", "true return", "labels", "reward acc", "spearman")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    print()
    for r in [head, *rows]:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print("  (true return: mean of 10 deterministic evaluation episodes; reward acc: held-out "
          "label accuracy; spearman: learned vs true return on fresh clips)")
    if "true" in evals:
        span = evals["true"] - rand
        if abs(span) > 1e-9:
            print(f"  learned-reward agent reaches {100 * (evals['learned'] - rand) / span:.0f}% "
                  "of the true-reward agent's improvement over random")
    png = plot_learning_curves(
        {f"{k} reward": Path(r["run_dir"]) / "metrics.csv" for k, r in results.items()},
        out / "learning_curve.png", title=f"PPO on {preset.env_id}: learned vs true reward",
        hlines={"random policy": rand},
    )
    print(f"\n  learning curve: {png}   total time {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
