"""Per-step agreement of a run's learned reward with the true reward, on two policies' episodes.
usage: swim_steps.py MODEL_RUN POLICY_RUN[,...]"""
import sys, subprocess, tempfile
from pathlib import Path
import numpy as np
from prefrl.evaluate import _load_policy
from prefrl.training import make_vec_env
from prefrl.reward.model import load_reward

def episode(run, ep=0):
    model, obs_rms, rc, _ = _load_policy(Path(run))
    rc = type(rc)(**{**rc.__dict__, "n_envs": 1})
    venv = make_vec_env(rc, seed=12345); venv.seed(12345 + ep); obs = venv.reset()
    O, A, R, done = [], [], [], False
    while not done:
        o = np.clip((obs - obs_rms[0]) / np.sqrt(obs_rms[1] + 1e-8), -10, 10)
        a, _ = model.predict(o, deterministic=True)
        O.append(obs[0].copy()); A.append(a[0].copy())
        obs, r, d, _ = venv.step(a); R.append(float(r[0])); done = bool(d[0])
    return np.array(O, np.float32), np.array(A, np.float32), np.array(R)

if __name__ == "__main__":
    dst = Path(tempfile.mkdtemp()) / "m"
    subprocess.run([sys.executable, "-m", "prefrl.cli", "reward", "export", sys.argv[1], "--out", str(dst)], check=True, capture_output=True)
    rm = load_reward(dst, device="cpu")
    for p in sys.argv[2].split(","):
        o, a, r = episode(p)
        l = rm(o, a)
        w = 38
        cs = lambda x: np.convolve(x, np.ones(w), "valid")
        print(f"{Path(p).parent.name}/{Path(p).name}: true {r.sum():.1f}; per-step learned mean {l.mean():.3f} sd {l.std():.3f}; "
              f"true mean {r.mean():.4f} sd {r.std():.4f}; Pearson per step {np.corrcoef(l, r)[0,1]:.2f}, over 38-step windows {np.corrcoef(cs(l), cs(r))[0,1]:.2f}")
