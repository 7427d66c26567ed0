"""Where does a learned InvertedPendulum reward pay? Upright, falling, or fallen states.

``.venv/bin/python results/falls/probe_ip_reward.py BALANCER_RUN LEARNED_RUN [LEARNED_RUN ...]``

Rolls out (seed 1000+) a balancing policy (BALANCER_RUN, e.g. a true-reward run), and each
LEARNED_RUN's own final policy, in the preset's fixed-horizon env, and prints each learned run's
reward model (``prefrl reward export``, written to a temporary folder) averaged over upright
steps (true reward 1) and fallen steps (0), per-step by time in the episode, and the 50/90/99th
percentiles over a random policy's fallen steps.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from prefrl.evaluate import _load_policy
from prefrl.reward.model import load_reward


def roll(run: Path | None, preset, episodes: int = 20):
    """Observations, actions and true rewards of ``episodes`` episodes (random if run is None)."""
    from prefrl.envs import make_env

    pol = rms = None
    if run is not None:
        pol, rms, _, _ = _load_policy(run)
    env = make_env(preset, seed=123)
    obs, acts, rews = [], [], []
    for e in range(episodes):
        o, _ = env.reset(seed=1000 + e)
        for _ in range(preset.horizon):
            if pol is None:
                a = env.action_space.sample()
            else:
                a, _ = pol.predict(np.clip((o - rms[0]) / np.sqrt(rms[1] + 1e-8), -10, 10),
                                   deterministic=True)
            obs.append(o)
            acts.append(a)
            o, r, _, _, _ = env.step(a)
            rews.append(r)
    return np.array(obs, np.float32), np.array(acts, np.float32), np.array(rews)


def main() -> None:
    """Probe each learned run's reward model (see the module docstring)."""
    balancer, learned = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    preset = _load_policy(balancer)[2].preset
    sets = {"balancing": roll(balancer, preset), "random": roll(None, preset)}
    for run in learned:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "prefrl.cli", "reward", "export", str(run),
                            "--out", f"{tmp}/m"], check=True, capture_output=True)
            rm = load_reward(f"{tmp}/m")
            own = roll(run, preset)
            print(run)
            for name, (obs, acts, rews) in {**sets, "own policy": own}.items():
                mean, _ = rm.predict(obs, acts)
                up = rews > 0
                fmt = lambda m: f"{m.mean():.2f}" if m.size else "-"  # noqa: E731
                print(f"  {name:10s}: upright share {up.mean():.2f}, learned reward upright "
                      f"{fmt(mean[up])}, fallen {fmt(mean[~up])}")
                if name == "random":
                    print("    fallen 50/90/99th pct:",
                          np.round(np.percentile(mean[~up], [50, 90, 99]), 2))
                if name == "own policy":
                    by_t = mean.reshape(-1, preset.horizon).mean(0)
                    ts = [t for t in (0, 2, 5, 10, 20, 39, 99) if t < preset.horizon]
                    print("    by step:", {t: round(float(by_t[t]), 2) for t in ts})


if __name__ == "__main__":
    main()
