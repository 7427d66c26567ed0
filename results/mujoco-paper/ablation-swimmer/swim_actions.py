"""How much a run's learned reward depends on the action: the same states, other actions.
usage: swim_actions.py MODEL_RUN POLICY_RUN"""
import sys, subprocess, tempfile
from pathlib import Path
import numpy as np
from swim_steps import episode  # noqa: E402  (runs nothing at import when given no argv)
dst = Path(tempfile.mkdtemp()) / "m"
subprocess.run([sys.executable, "-m", "prefrl.cli", "reward", "export", sys.argv[1], "--out", str(dst)], check=True, capture_output=True)
rm = load = __import__("prefrl.reward.model", fromlist=["load_reward"]).load_reward(dst, device="cpu")
o, a, r = episode(sys.argv[2])
rng = np.random.default_rng(0)
own = rm(o, a)
for name, acts in [("policy's actions", a), ("zero actions", np.zeros_like(a)),
                   ("uniform random actions", rng.uniform(-1, 1, a.shape).astype(np.float32)),
                   ("policy + N(0, 0.5) noise", np.clip(a + rng.normal(0, 0.5, a.shape), -1, 1).astype(np.float32))]:
    l = rm(o, acts)
    print(f"{name:26s} learned per step mean {l.mean():+.3f}  (true ctrl cost is 1e-4 |a|^2: {(-1e-4*(acts**2).sum(1)).mean():+.5f})")
