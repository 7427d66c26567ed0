"""RSS of a Pong preference run over time (sampled from /proc every 2 s)."""
import json, subprocess, sys, time
from pathlib import Path
out = Path(sys.argv[1]); steps = sys.argv[2]; pool = sys.argv[3]
cmd = [".venv/bin/prefrl", "train", "--env", "Pong", "--algo", "a2c", "--steps", steps, "--labels", "120",
       "--n-envs", "4", "--pretrain-clips", "100", "--pretrain-epochs", "2", "--update-epochs", "1",
       "--pool-mb", pool, "--no-progress", "--no-tensorboard", "--torch-threads", "2",
       "--run-dir", str(out / "run")]
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
t0 = time.time(); samples = []
while p.poll() is None:
    try:
        rss = int([l for l in open(f"/proc/{p.pid}/status") if l.startswith("VmRSS")][0].split()[1]) / 1024
    except (OSError, IndexError):
        break
    step = 0
    m = out / "run" / "metrics.csv"
    if m.exists():
        rows = m.read_text().strip().splitlines()
        if len(rows) > 1:
            step = int(rows[-1].split(",")[0])
    samples.append({"t": round(time.time() - t0, 1), "rss_mb": round(rss, 1), "step": step})
    time.sleep(2)
print(p.stdout.read()[-1500:])
(out / "rss.json").write_text(json.dumps({"command": cmd, "samples": samples}, indent=1))
print(samples[::max(1, len(samples)//25)])
