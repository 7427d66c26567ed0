"""Summarise the reward-artifact benchmark (results/reward-artifact/HalfCheetah-<seed>/).

Run from the repository root after run.sh (or while it runs, on snapshots of its checkpoints):
``python results/reward-artifact/summarize.py [--snapshots DIR] [--step N]``. With
``--snapshots``, DIR/<run>/<step>/ hold copies of each run's checkpoints and the largest step
both runs reached (or ``--step``) is evaluated; without it, each run's latest checkpoint.
Both policies play 10 deterministic episodes scored by the true reward and by the frozen
learned reward; a random policy gives the floor. Writes summary.md and summary.json.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from prefrl.envs import load_preset, make_env
from prefrl.evaluate import random_policy_return
from prefrl.reward.model import load_reward
from prefrl.rundir import load_npz
from prefrl.sb3.reward_wrapper import LearnedRewardVecEnv
from prefrl.training import algo_class, provenance

HERE = Path("results/reward-artifact/HalfCheetah-0")
ONLINE = Path("results/loop-benchmark/HalfCheetah-0")


def play(ckpt: Path, model, preset, episodes: int = 10, seed: int = 12345) -> dict:
    """True and learned returns of a checkpoint's policy, deterministic, fresh episodes."""
    venv = DummyVecEnv([lambda: make_env(preset, seed=seed)])
    scored = LearnedRewardVecEnv(venv, model.ensemble, None, env_id=preset.env_id)
    env = VecNormalize(scored, training=False, norm_reward=False)
    v = load_npz(ckpt / "vecnorm.npz")
    env.obs_rms.mean, env.obs_rms.var = v["obs_mean"], v["obs_var"]
    policy = algo_class("ppo").load(ckpt / "policy.zip", device="cpu")
    true, learned = [], []
    obs, t_ret, l_ret = env.reset(), 0.0, 0.0
    while len(true) < episodes:
        act, _ = policy.predict(obs, deterministic=True)
        obs, _, dones, infos = env.step(act)
        t_ret += infos[0]["true_reward"]
        l_ret += infos[0]["learned_reward"]
        if dones[0]:
            true.append(t_ret)
            learned.append(l_ret)
            t_ret, l_ret = 0.0, 0.0
    env.close()
    return {"true_return": float(np.mean(true)), "true_std": float(np.std(true)),
            "learned_return": float(np.mean(learned)), "episodes": episodes}


def curve(path: Path, upto: int) -> list[dict]:
    """Metric rows with a true return, up to step ``upto``."""
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if r["true_return"] and int(r["step"]) <= upto]
    return [{"step": int(r["step"]), "true": float(r["true_return"]),
             "learned": float(r["learned_return"]) if r["learned_return"] else None}
            for r in rows]


def at(rows: list[dict], step: int, key: str = "true") -> float | None:
    """Mean of the last 3 rows at or before ``step`` (training-episode returns)."""
    sel = [r[key] for r in rows if r["step"] <= step and r[key] is not None][-3:]
    return float(np.mean(sel)) if sel else None


def exploitation(rows: list[dict]) -> dict:
    """Signs that the learned return rises while the true return falls (frozen run's curve)."""
    lr = np.array([r["learned"] for r in rows], float)
    tr = np.array([r["true"] for r in rows], float)
    d_l, d_t = np.diff(lr), np.diff(tr)
    half = len(rows) // 2
    return {
        "rows": len(rows),
        "spearman_learned_vs_true": float(stats.spearmanr(lr, tr)[0]) if len(rows) > 2 else None,
        "intervals_learned_up_true_down": int(np.sum((d_l > 0) & (d_t < 0))),
        "intervals": int(len(d_l)),
        "second_half_learned_change": float(lr[-1] - lr[half]) if len(rows) > 2 else None,
        "second_half_true_change": float(tr[-1] - tr[half]) if len(rows) > 2 else None,
    }


def main() -> int:
    """Evaluate both runs and write summary.md / summary.json."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapshots", type=Path)
    ap.add_argument("--step", type=int)
    a = ap.parse_args()
    preset = load_preset("HalfCheetah")
    model = load_reward(HERE / "model", device="cpu")
    if a.snapshots:
        steps = [{int(p.name) for p in (a.snapshots / r).iterdir() if p.name.isdigit()}
                 for r in ("frozen", "true")]
        step = a.step or max(steps[0] & steps[1])
        ckpts = {r: a.snapshots / r / str(step) for r in ("frozen", "true")}
    else:
        ckpts = {r: HERE / r / "checkpoint" for r in ("frozen", "true")}
        step = min(json.loads((c / "state.json").read_text())["num_timesteps"]
                   for c in ckpts.values())
    variant = (a.snapshots / "frozen-fixed-norm" / str(step)) if a.snapshots else None
    if variant is not None and variant.is_dir():
        ckpts["frozen-fixed-norm"] = variant
    ev = {r: play(c, model, preset) for r, c in ckpts.items()}
    rand = random_policy_return(preset, episodes=10)
    frac = (ev["frozen"]["true_return"] - rand) / (ev["true"]["true_return"] - rand)
    frozen_rows = curve(HERE / "frozen" / "metrics.csv", step)
    online = {m: at(curve(ONLINE / m / "metrics.csv", step), step) for m in ("learned", "true")}
    doc = {
        "step": step, "eval": ev, "random_return": rand, "fraction_of_true": frac,
        "model": json.loads((HERE / "model_eval.json").read_text()),
        "model_training": load_reward(HERE / "model", device="cpu").meta["training"],
        "exploitation": exploitation(frozen_rows),
        "fixed_norm_curve": curve(HERE / "frozen-fixed-norm" / "metrics.csv", step),
        "training_curve_at_step": {
            "frozen_offline_reward": at(frozen_rows, step),
            "true_reward_here": at(curve(HERE / "true" / "metrics.csv", step), step),
            "online_learned_reward_loop_benchmark": online["learned"],
            "online_true_reward_loop_benchmark": online["true"]},
        "provenance": provenance(" ".join(sys.argv)),
    }
    (HERE / "summary.json").write_text(json.dumps(doc, indent=2))
    e, x, c = doc["eval"], doc["exploitation"], doc["training_curve_at_step"]

    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f}"

    lines = [
        f"# Offline-trained reward, frozen, vs the true reward: PPO on HalfCheetah-v5, {step} "
        "steps, seed 0", "",
        "| policy | true return (10 det. episodes) | learned return (same episodes) |",
        "| --- | --- | --- |",
        f"| PPO on the frozen offline reward | {e['frozen']['true_return']:.1f} ± "
        f"{e['frozen']['true_std']:.1f} | {e['frozen']['learned_return']:.1f} |",
        f"| PPO on the true reward | {e['true']['true_return']:.1f} ± {e['true']['true_std']:.1f}"
        f" | {e['true']['learned_return']:.1f} |",
        *([f"| PPO on the frozen reward, normalisation never refit | "
           f"{e['frozen-fixed-norm']['true_return']:.1f} ± {e['frozen-fixed-norm']['true_std']:.1f}"
           f" | {e['frozen-fixed-norm']['learned_return']:.1f} |"] if "frozen-fixed-norm" in e
          else []),
        f"| random policy | {rand:.1f} | |", "",
        "Learned returns are scored by the model file as saved (normalised on the labelled "
        "clips), the same for every policy.", "",
        f"Fraction of true return: (frozen - random) / (true - random) = **{frac:.2f}**.", "",
        f"Reward model: trained offline on the 700 labels of {ONLINE}/learned, held-out accuracy "
        f"{doc['model']['accuracy']:.3f} on {doc['model']['n_pairs']} pairs (the online run's "
        "model: 0.870 on the same pairs), ECE "
        f"{doc['model']['ece']:.3f}, Spearman vs true clip returns {doc['model']['spearman']:.3f}.",
        "",
        f"Training-episode true return at step {step} (mean of the last 3 metric rows): frozen "
        f"offline reward {f(c['frozen_offline_reward'])}, true reward here "
        f"{f(c['true_reward_here'])}; the online loop benchmark (reward learned during the run, "
        f"1M-step run) {f(c['online_learned_reward_loop_benchmark'])}, its true-reward run "
        f"{f(c['online_true_reward_loop_benchmark'])}.", "",
        f"Exploitation check on the frozen run's {x['rows']} metric rows: Spearman of learned vs "
        f"true training return {x['spearman_learned_vs_true']:.2f}; in "
        f"{x['intervals_learned_up_true_down']} of {x['intervals']} intervals the learned return "
        f"rose while the true return fell; over the second half the learned return changed by "
        f"{x['second_half_learned_change']:+.1f} and the true return by "
        f"{x['second_half_true_change']:+.1f} (training returns under the run's refit "
        "normalisation, whose offset moves at each refit). No hacking guard has landed in "
        "prefrl yet, so no guard readings.", "",
        "The first frozen run (frozen-fixed-norm/, stopped at 41k steps) kept the model's "
        "normalisation from the labelled clips: the agent's per-step learned reward sat near "
        "-0.9 with little spread and PPO (with VecNormalize on rewards) barely moved; training "
        "true return " + ", ".join(f"{r['true']:.0f} at {r['step']}" for r in doc[
            "fixed_norm_curve"][4::5]) + ".",
    ]
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
