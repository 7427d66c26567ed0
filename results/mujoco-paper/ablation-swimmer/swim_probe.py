"""Does a stuck learned-reward Swimmer run's reward model prefer the true-reward agent's swimming?

For each model run M and each policy run P: roll P's final policy (deterministic, 3 episodes of
the fixed-horizon env) and sum M's learned reward and the true reward over each episode.
usage: swim_probe.py MODEL_RUN[,...] -- POLICY_RUN[,...]
"""
import sys, subprocess, tempfile
from pathlib import Path
import numpy as np
from prefrl.evaluate import _load_policy
from prefrl.training import make_vec_env
from prefrl.reward.model import load_reward

def rollouts(run, episodes=3):
    model, obs_rms, rc, _ = _load_policy(Path(run))
    rc = type(rc)(**{**rc.__dict__, "n_envs": 1})
    venv = make_vec_env(rc, seed=12345)
    out = []
    for ep in range(episodes):
        venv.seed(12345 + ep)
        obs = venv.reset()
        O, A, R = [], [], []
        done = False
        while not done:
            o = obs if obs_rms is None else np.clip((obs - obs_rms[0]) / np.sqrt(obs_rms[1] + 1e-8), -10, 10)
            a, _ = model.predict(o, deterministic=True)
            O.append(obs[0].copy()); A.append(a[0].copy())
            obs, r, d, info = venv.step(a)
            R.append(float(r[0])); done = bool(d[0])
        out.append((np.array(O, np.float32), np.array(A, np.float32), float(np.sum(R))))
    return out

models, policies = sys.argv[1].split(","), sys.argv[3].split(",")
tmp = Path(tempfile.mkdtemp())
rms = {}
for m in models:
    dst = tmp / Path(m).name.replace("/", "_")
    subprocess.run([sys.executable, "-m", "prefrl.cli", "reward", "export", m, "--out", str(dst)], check=True, capture_output=True)
    rms[m] = load_reward(dst, device="cpu")
for p in policies:
    eps = rollouts(p)
    for m in models:
        learned = [float(rms[m](o, a).sum()) for o, a, _ in eps]
        print(f"policy {p:60s} true {np.mean([t for *_, t in eps]):8.1f}  learned by {m}: {np.mean(learned):9.1f}")
