"""Short `prefrl train` runs at the old and the new glibc mmap threshold.

The old one is 256 KiB (before commit 119255c), the new one the run's own
(``prefrl.run_setup.mmap_threshold_for``: 4 MiB for vector observations).

    python results/overhead/allocator/measure.py OUT_DIR > results/overhead/allocator/allocator.json

Runs one after another in this process's core; each child prints its own rusage.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from prefrl.provenance import provenance

CASES = {
    "sac-learned": ["--env", "HalfCheetah", "--algo", "sac", "--steps", "3000", "--labels", "40",
                    "--unsup-steps", "0"],
    "sac-true": ["--env", "HalfCheetah", "--algo", "sac", "--steps", "3000", "--reward", "true"],
    "ppo-learned": ["--env", "HalfCheetah", "--steps", "30000", "--labels", "100"],
    "ppo-true": ["--env", "HalfCheetah", "--steps", "30000", "--reward", "true"],
}
THRESHOLDS = {"256KiB": str(256 << 10), "run-default": "default"}

CHILD = """
import json, resource, sys, time
import prefrl.training as tr
thr, run_dir, *args = sys.argv[1:]
if thr != "default":
    tr.mmap_threshold_for = lambda space: int(thr)
from prefrl.cli import main
sys.argv = ["prefrl", "train", "--run-dir", run_dir, "--no-progress", "--seed", "0", *args]
t = time.perf_counter()
try:
    main()
except SystemExit as e:
    if e.code:
        raise
r = resource.getrusage(resource.RUSAGE_SELF)
print("RUSAGE " + json.dumps({"wall_s": round(time.perf_counter() - t, 2),
      "user_s": r.ru_utime, "sys_s": r.ru_stime, "minor_faults": r.ru_minflt}))
"""


def steady_fps(metrics: Path, start: int) -> float:
    """Steps per second from step ``start`` to the last logged step."""
    rows = [(int(r["step"]), float(r["wall_s"])) for r in csv.DictReader(metrics.open())]
    s0, w0 = min((r for r in rows if r[0] >= start), key=lambda r: r[0])
    s1, w1 = rows[-1]
    return round((s1 - s0) / (w1 - w0), 1)


def main() -> None:
    """Run every case at every threshold; print the table as JSON."""
    out = Path(sys.argv[1])
    rows = []
    for case, args in CASES.items():
        for name, thr in THRESHOLDS.items():
            run_dir = out / f"{case}-{name}"
            res = subprocess.run([sys.executable, "-c", CHILD, thr, str(run_dir), *args],
                                 capture_output=True, text=True, check=True)
            usage = json.loads(res.stdout.split("RUSAGE ")[-1])
            result = json.loads((run_dir / "result.json").read_text())
            start = 1500 if "sac" in case else 10000
            rows.append({"case": case, "mmap_threshold": name, **usage,
                         "steps_per_s_after": {"step": start,
                                               "fps": steady_fps(run_dir / "metrics.csv", start)},
                         "reward_train_s": result.get("reward_train_s"),
                         "true_return": result.get("true_return")})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"provenance": provenance(" ".join(["python", *sys.argv])), "runs": rows},
                     indent=1))


if __name__ == "__main__":
    main()
