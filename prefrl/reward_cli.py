"""``prefrl reward train | eval | export``: the learned reward as an artifact of its own.

* ``prefrl reward train LABELS --out MODEL``: train an ensemble offline (no RL) on a label
  store, a run directory or an export folder, as a run would (same loss, validation split,
  adaptive L2, normalisation).
* ``prefrl reward eval MODEL LABELS``: held-out accuracy, calibration (ECE, reliability table)
  and, where clips carry true rewards, Pearson / Spearman against true clip returns.
* ``prefrl reward export RUN --out MODEL``: the latest ensemble of a run's checkpoint.

A MODEL is a folder in the format of :mod:`prefrl.reward.model`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

USAGE = """usage: prefrl reward COMMAND [OPTIONS]

commands:
  train LABELS --out MODEL   train a reward model offline from labels (store, run or export)
  eval MODEL LABELS          accuracy, calibration and true-reward agreement on labels
  export RUN --out MODEL     take the latest reward model out of a run's checkpoint
"""


@dataclass
class TrainArgs:
    """Train a reward model offline (no RL) from labels, as a run would."""

    labels: tyro.conf.Positional[Path]
    """A .sqlite label store, a run directory, or an export folder (labels.jsonl + clips.npz)."""
    out: Path
    """The model folder to write."""
    env: str | None = None
    """Preset or Gymnasium id (default: the run's config next to the store, else the clips')."""
    epochs: int = 100
    """Passes over the labels (a run's pre-training uses 100)."""
    ensemble_size: int | None = None
    """Members (default: the run's or the preset's, else 3)."""
    seed: int = 0
    """Seed of the initialisation, bootstrap resamples and batches."""
    device: str = "auto"
    """Torch device: auto (CUDA if present), cpu or cuda."""


@dataclass
class EvalArgs:
    """Score a reward model on labels: accuracy, calibration, agreement with the true reward."""

    model: tyro.conf.Positional[Path]
    """The model folder."""
    labels: tyro.conf.Positional[Path]
    """A .sqlite label store, a run directory, or an export folder."""
    split: Literal["val", "train", "all"] = "val"
    """val: the labels a run holds out (hash split); train; or all."""
    bins: int = 10
    """Bins of the reliability table."""
    json: bool = False
    """Print the report as JSON."""


@dataclass
class ExportArgs:
    """Write the latest reward model of a run's checkpoint as a model folder."""

    run: tyro.conf.Positional[Path]
    """The run directory."""
    out: Path
    """The model folder to write."""


def _train(argv: list[str]) -> int:
    from prefrl.reward.offline import train_offline

    a = tyro.cli(TrainArgs, args=argv, prog="prefrl reward train", description=TrainArgs.__doc__)
    if a.epochs < 0:
        raise ValueError(f"--epochs must be >= 0, got {a.epochs}")
    model, stats = train_offline(a.labels, env=a.env, epochs=a.epochs,
                                 ensemble_size=a.ensemble_size, seed=a.seed,
                                 device=None if a.device == "auto" else a.device)
    model.save(a.out)
    print(f"trained on {stats['labels']} labels ({stats['n_train']} train, {stats['n_val']} "
          f"held out), {stats['epochs']} epochs in {stats['seconds']:.1f} s: train accuracy "
          f"{stats['train_acc']:.3f}, held-out accuracy {stats['val_acc']:.3f}, ECE "
          f"{stats['ece']:.3f}; wrote {a.out}")
    return 0


def _eval(argv: list[str]) -> int:
    from prefrl.reward.model import load_reward
    from prefrl.reward.offline import evaluate_model

    a = tyro.cli(EvalArgs, args=argv, prog="prefrl reward eval", description=EvalArgs.__doc__)
    report = evaluate_model(load_reward(a.model), a.labels, split=a.split, bins=a.bins)
    print(json.dumps(report.as_dict(), indent=2) if a.json else report.table())
    return 0


def _export(argv: list[str]) -> int:
    from prefrl.reward.offline import export_run_model

    a = tyro.cli(ExportArgs, args=argv, prog="prefrl reward export",
                 description=ExportArgs.__doc__)
    model = export_run_model(a.run)
    model.save(a.out)
    src = model.meta["source"]
    print(f"exported the reward model of {a.run} (step {src['env_step']}, "
          f"{src['labels_trained_on']} labels) to {a.out}")
    return 0


def reward_main(argv: list[str]) -> int:
    """Dispatch ``prefrl reward ...`` (errors are turned into one line by ``prefrl.cli``)."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    commands = {"train": _train, "eval": _eval, "export": _export}
    if argv[0] not in commands:
        print(f"prefrl: error: unknown reward command {argv[0]!r}\n{USAGE}", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])
