"""Reward training over a run's label schedule, on stored labels: time and held-out accuracy.

``prefrl bench reward-updates`` labels random pairs of random-policy clips of a preset's env
(true-return order, ``--noise`` of them flipped like the paper's teacher), then replays what a
run does with them: pre-train on the first 25% with ``--pretrain-epochs``, then ``--updates``
updates, each adding an equal share of the rest and training ``--update-epochs``. It reports
the seconds spent per trainer setting and the accuracy of the final ensemble on held-out pairs
(labelled without noise), so a cheaper schedule can be checked not to learn worse.

Times are CPU seconds of this process (``time.process_time``; one torch thread) beside wall
seconds: on a shared, busy machine the CPU seconds are the comparable ones.

Settings (``--configs``): ``full`` (every label, every epoch, K separate member loops: the
trainer before issue 14), ``full-batched`` (the same on the stacked model), ``fast`` (early
stopping, replay, small train eval: what runs use now; K loops on the CPU), ``fast-val128``
(``fast`` with early stopping watching 128 validation pairs, the rest evaluated once at the
end), ``fast-batched``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefrl.bench.reward_bench import labelled_pairs
from prefrl.envs import load_preset
from prefrl.reward import RewardEnsemble, RewardTrainer, TrainerConfig
from prefrl.reward.metrics import preference_accuracy

CONFIGS: dict[str, dict[str, Any]] = {
    "full": {"batched": False},
    "full-batched": {"batched": True},
    "fast": {"fast": True},
    "fast-val128": {"fast": True, "epoch_val_pairs": 128},
    "fast-p1": {"fast": True, "patience": 1},
    "fast-p1-val128": {"fast": True, "patience": 1, "epoch_val_pairs": 128},
    "fast-batched": {"fast": True, "batched": True},
}


def trainer_config(name: str) -> TrainerConfig:
    """The :class:`TrainerConfig` of a ``--configs`` name."""
    if name not in CONFIGS:
        raise ValueError(f"unknown trainer setting {name!r}; known: {', '.join(CONFIGS)}")
    kw = dict(CONFIGS[name])
    return TrainerConfig.fast(**kw) if kw.pop("fast", False) else TrainerConfig(**kw)


def held_out_accuracy(ens: RewardEnsemble, data: Any) -> float:
    """Accuracy of the ensemble's mean P(right) on labelled pairs (0.5 labels left out)."""
    lo, la, ro, ra = data.pairs()
    d = ens.clip_returns(ro, ra) - ens.clip_returns(lo, la)
    p = 1.0 / (1.0 + np.exp(-d))
    return preference_accuracy(p.mean(0), np.asarray(data.mu, np.float64))


def replay_schedule(setting: str, env: Any, data: Any, test: Any, net_kwargs: dict[str, Any],
                    updates: int, pretrain_epochs: int, update_epochs: int,
                    seed: int) -> dict[str, Any]:
    """Pre-train and update as a run would; seconds and final held-out accuracy."""
    ens = RewardEnsemble.from_spaces(env.observation_space, env.action_space, seed=seed,
                                     device="cpu", **net_kwargs)
    tr = RewardTrainer(ens, trainer_config(setting), rng=np.random.default_rng(seed))
    n = len(data)
    n0 = max(2, n // 4)
    t0, c0 = time.perf_counter(), time.process_time()
    s = tr.train(data.subset(np.arange(n0)), pretrain_epochs)
    pre_s, pre_cpu = time.perf_counter() - t0, time.process_time() - c0
    epochs = [s.epochs]
    for u in range(1, updates + 1):
        k = n0 + (n - n0) * u // updates
        s = tr.train(data.subset(np.arange(k)), update_epochs)
        epochs.append(s.epochs)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "setting": setting, "seed": seed, "labels": n, "pretrain_s": pre_s,
        "updates_s": total - pre_s, "total_s": total, "mean_update_s": (total - pre_s) / updates,
        "pretrain_cpu_s": pre_cpu, "total_cpu_s": cpu,
        "mean_update_cpu_s": (cpu - pre_cpu) / updates,
        "epochs_pretrain": epochs[0], "mean_epochs_update": float(np.mean(epochs[1:])),
        "val_acc": s.val_acc, "held_out_acc": held_out_accuracy(ens, test), "l2": tr.l2,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    ap = argparse.ArgumentParser(prog="prefrl bench reward-updates", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="Pendulum")
    ap.add_argument("--labels", type=int, default=700)
    ap.add_argument("--test-labels", type=int, default=500)
    ap.add_argument("--clip-len", type=int, default=None, help="default: the preset's")
    ap.add_argument("--noise", type=float, default=0.1, help="share of training labels flipped")
    ap.add_argument("--updates", type=int, default=40)
    ap.add_argument("--pretrain-epochs", type=int, default=100)
    ap.add_argument("--update-epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--configs", nargs="+", default=["full", "fast"], choices=list(CONFIGS))
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--out", type=Path, default=None, help="write results as JSON")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    preset = load_preset(a.env)
    clip_len = a.clip_len or preset.clip_len
    rows = []
    for seed in a.seeds:
        everything, env = labelled_pairs(a.env, a.labels + a.test_labels, clip_len, seed=seed)
        data = everything.subset(np.arange(a.labels))
        flip = np.random.default_rng(seed + 1).random(a.labels) < a.noise
        data = dataclasses.replace(
            data, mu=np.where(flip, 1.0 - data.mu, data.mu).astype(np.float32))
        test = everything.subset(np.arange(a.labels, a.labels + a.test_labels))
        for setting in a.configs:
            r = replay_schedule(setting, env, data, test, dict(preset.reward_model), a.updates,
                                a.pretrain_epochs, a.update_epochs, seed)
            rows.append({"env": a.env, "clip_len": clip_len, **r})
            print(f"{a.env} seed {seed} {setting:<13} CPU {r['total_cpu_s']:7.1f} s (pretrain "
                  f"{r['pretrain_cpu_s']:6.1f} s, {r['epochs_pretrain']} epochs; updates "
                  f"{r['mean_update_cpu_s']:.2f} s each, {r['mean_epochs_update']:.1f} epochs) "
                  f"wall {r['total_s']:.1f} s "
                  f"held-out acc {r['held_out_acc']:.3f} val acc {r['val_acc']:.3f}",
                  flush=True)
    if a.out:
        from prefrl.provenance import provenance

        a.out.parent.mkdir(parents=True, exist_ok=True)
        cmd = "prefrl bench reward-updates " + " ".join(argv or [])
        a.out.write_text(json.dumps({"rows": rows, "args": {k: str(v) for k, v in
                                                            vars(a).items()},
                                     "provenance": provenance(cmd)}, indent=2))
    return 0
