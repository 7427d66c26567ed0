"""Reward-model throughput: training (label pairs per second) and batched inference.

``prefrl bench reward`` collects clips of a preset's env with random actions (50-step MuJoCo
clips by default; ``--env Pong --clip-len 25 --labels 200`` for the CNN on Atari frames),
labels random pairs with the perfect teacher, then times reward-model training epochs (the
preset's reward model, 3 members, bootstrap, misclick loss, adaptive L2) on the CPU and on
CUDA when present, and the cost of predicting the reward of one vectorised env step for
several numbers of envs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefrl.envs import load_preset, make_env
from prefrl.reward import RewardEnsemble, RewardTrainer, TrainerConfig
from prefrl.rollouts import collect_clips
from prefrl.store import PreferenceDataset
from prefrl.types import ClipPair


def labelled_pairs(env_name: str, n_labels: int, clip_len: int, seed: int
                   ) -> tuple[PreferenceDataset, object]:
    """Random pairs of random-policy clips, labelled by true return."""
    env = make_env(load_preset(env_name), seed=seed)
    rng = np.random.default_rng(seed)
    clips = collect_clips(env, max(200, n_labels // 2), clip_len, rng, clips_per_episode=20)
    pairs = [ClipPair(*[clips[i] for i in rng.choice(len(clips), 2, replace=False)])
             for _ in range(n_labels)]
    mu = np.array([p.right.true_return > p.left.true_return for p in pairs], np.float32)
    keys = [p.key for p in pairs]
    data = PreferenceDataset(
        np.stack([p.left.obs for p in pairs]), np.stack([p.left.acts for p in pairs]),
        np.stack([p.right.obs for p in pairs]), np.stack([p.right.acts for p in pairs]),
        mu, [p.left.hash for p in pairs], [p.right.hash for p in pairs], keys,
        np.arange(n_labels))
    return data, env


def _ensemble(env: Any, device: str, net_kwargs: dict[str, Any]) -> RewardEnsemble:
    """The reward model a run on this env would train (the preset's ``[reward_model]``)."""
    return RewardEnsemble.from_spaces(env.observation_space, env.action_space, seed=0,
                                      device=device, **net_kwargs)


def time_training(data: PreferenceDataset, env: object, device: str, epochs: int,
                  batch_size: int, net_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Seconds per epoch and label pairs per second (pairs x members / time)."""
    ens = _ensemble(env, device, net_kwargs)
    tr = RewardTrainer(ens, TrainerConfig(epochs=1, batch_size=batch_size),
                       rng=np.random.default_rng(0))
    tr.train(data, epochs=1)  # warm-up (allocations, CUDA context, input statistics)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    stats = tr.train(data, epochs=epochs)
    if device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    per_epoch = dt / epochs
    return {
        "device": device, "labels": len(data), "train_pairs": stats.n_train,
        "members": ens.n_members, "epochs": epochs, "seconds_per_epoch": per_epoch,
        "label_pairs_per_s": stats.n_train / per_epoch,
        "member_pair_updates_per_s": stats.n_train * ens.n_members / per_epoch,
        "val_acc": stats.val_acc,
    }


def time_inference(env: object, device: str, n_envs_list: list[int], reps: int,
                   net_kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """Microseconds per ``predict`` call for one step of ``n`` envs."""
    ens = _ensemble(env, device, net_kwargs)
    space_o, space_a = env.observation_space, env.action_space  # type: ignore[attr-defined]
    out = []
    for n in n_envs_list:
        obs = np.stack([space_o.sample() for _ in range(n)])  # the env's dtype (uint8 frames)
        acts = np.stack([space_a.sample() for _ in range(n)])
        if obs.dtype == np.float64:
            obs = obs.astype(np.float32)
        if acts.dtype == np.float64:
            acts = acts.astype(np.float32)
        ens.predict(obs, acts)
        t0 = time.perf_counter()
        for _ in range(reps):
            ens.predict(obs, acts)
        dt = (time.perf_counter() - t0) / reps
        out.append({"device": device, "n_envs": n, "us_per_call": dt * 1e6,
                    "us_per_env_step": dt * 1e6 / n})
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    ap = argparse.ArgumentParser(prog="prefrl bench reward", description=__doc__)
    ap.add_argument("--env", default="HalfCheetah")
    ap.add_argument("--labels", type=int, default=1400)
    ap.add_argument("--clip-len", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--out", type=Path, default=None, help="write results as JSON")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    t0 = time.perf_counter()
    data, env = labelled_pairs(a.env, a.labels, a.clip_len, seed=0)
    print(f"{a.labels} labels of {a.clip_len}-step {a.env} clips "
          f"(obs {data.left_obs.shape[2:]}, act {data.left_acts.shape[2:]}), "
          f"collected in {time.perf_counter() - t0:.1f} s; torch threads "
          f"{torch.get_num_threads()}")
    net_kwargs = dict(load_preset(a.env).reward_model)
    train_rows = [time_training(data, env, d, a.epochs, a.batch_size, net_kwargs)
                  for d in devices]
    reps = 300 if data.left_obs.ndim == 3 else 20  # vectors: cheap; frames: a CNN per call
    infer_rows = [r for d in devices
                  for r in time_inference(env, d, [1, 8, 64, 256], reps, net_kwargs)]
    print("\ntraining (3 members, bootstrap, misclick loss, adaptive L2, validation 1/e):")
    for r in train_rows:
        print(f"  {r['device']:>4}: {r['seconds_per_epoch']:.3f} s/epoch, "
              f"{r['label_pairs_per_s']:.0f} label pairs/s per epoch "
              f"({r['member_pair_updates_per_s']:.0f} member-pair updates/s), "
              f"val acc {r['val_acc']:.3f}")
    print("\ninference (reward of one VecEnv step, mean + spread of 3 members):")
    for r in infer_rows:
        print(f"  {r['device']:>4} n_envs={r['n_envs']:<4} {r['us_per_call']:8.1f} us/call "
              f"{r['us_per_env_step']:8.2f} us per env step")
    if a.out:
        from prefrl.provenance import provenance

        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"training": train_rows, "inference": infer_rows,
                                     "provenance": provenance("prefrl bench reward")}, indent=2))
    return 0
