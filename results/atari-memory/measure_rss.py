"""RSS over a Pong preference run, with the true-reward run of the same length beside it.

Both runs start at once (`prefrl train` subprocesses); /proc/<pid>/status is sampled every 2 s
and each run's metrics.csv says how far it is. Writes ``rss.json`` (samples, a per-window
summary, provenance) next to the runs. Usage::

    .venv/bin/python results/atari-memory/measure_rss.py OUT_DIR STEPS LABELS POOL_MB
"""

import json
import subprocess
import sys
import time
from pathlib import Path

from prefrl.provenance import provenance

out, steps, labels, pool = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
common = ["--env", "Pong", "--algo", "a2c", "--steps", steps, "--n-envs", "4", "--no-progress",
          "--no-tensorboard", "--torch-threads", "1", "--seed", "0"]
cmds = {
    "learned": [".venv/bin/prefrl", "train", *common, "--labels", labels,
                "--pretrain-clips", "200", "--pretrain-epochs", "2", "--update-epochs", "1",
                "--pool-mb", pool, "--reward-training", "background",
                "--run-dir", str(out / "learned")],
    "true": [".venv/bin/prefrl", "train", *common, "--reward", "true",
             "--run-dir", str(out / "true")],
}
procs = {k: subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
         for k, c in cmds.items()}
t0 = time.time()
samples: dict[str, list[dict[str, float]]] = {k: [] for k in cmds}


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(x.split()[1]) / 1024 for x in f if x.startswith("VmRSS"))
    except (OSError, StopIteration):
        return None


def last_step(run: Path) -> int:
    m = run / "metrics.csv"
    rows = m.read_text().strip().splitlines() if m.exists() else []
    return int(rows[-1].split(",")[0]) if len(rows) > 1 else 0


while any(p.poll() is None for p in procs.values()):
    for k, p in procs.items():
        rss = rss_mb(p.pid) if p.poll() is None else None
        if rss is not None:
            samples[k].append({"t": round(time.time() - t0, 1), "rss_mb": round(rss, 1),
                               "step": last_step(out / k)})
    time.sleep(2)
for k, p in procs.items():
    print(k, "exit", p.returncode, p.stdout.read()[-600:] if p.stdout else "")


def windows(rows: list[dict[str, float]], n: int = 10) -> list[dict[str, float]]:
    """Median and max RSS per tenth of the run (by step)."""
    total = max(r["step"] for r in rows) or 1
    res = []
    for i in range(n):
        w = [r["rss_mb"] for r in rows if i * total / n < r["step"] <= (i + 1) * total / n]
        if w:
            w.sort()
            res.append({"steps_to": round((i + 1) * total / n), "median_mb": w[len(w) // 2],
                        "max_mb": w[-1]})
    return res


doc = {"provenance": provenance(" ".join(sys.argv)), "commands": cmds,
       "summary": {k: windows(v) for k, v in samples.items() if v}, "samples": samples}
(out / "rss.json").write_text(json.dumps(doc, indent=1))
print(json.dumps(doc["summary"], indent=1))
