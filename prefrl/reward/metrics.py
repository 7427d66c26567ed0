"""Diagnostics of a reward model: accuracy, calibration, learned-vs-true agreement.

All functions take arrays and return numbers or small dataclasses; nothing is logged here.

>>> import numpy as np
>>> preference_accuracy(np.array([0.9, 0.2, 0.6]), np.array([1.0, 0.0, 0.5]))
1.0
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats


def preference_accuracy(p_right: np.ndarray, mu: np.ndarray) -> float:
    """Share of decided labels (mu != 0.5) whose side the model prefers; NaN when none."""
    p_right, mu = np.asarray(p_right), np.asarray(mu)
    decided = np.abs(mu - 0.5) > 1e-6
    if not decided.any():
        return float("nan")
    return float(np.mean((p_right[decided] > 0.5) == (mu[decided] > 0.5)))


@dataclass(frozen=True)
class CalibrationBin:
    """Predicted P(right) vs the observed frequency of 'right' in one probability bin."""

    lo: float
    hi: float
    mean_predicted: float
    observed: float
    count: int


def calibration(
    p_right: np.ndarray, mu: np.ndarray, n_bins: int = 10
) -> tuple[list[CalibrationBin], float]:
    """Reliability bins and the expected calibration error (count-weighted |pred - obs|)."""
    p_right, mu = np.asarray(p_right, float), np.asarray(mu, float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p_right, edges[1:-1]), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        sel = which == b
        c = int(sel.sum())
        if c == 0:
            continue
        mp, ob = float(p_right[sel].mean()), float(mu[sel].mean())
        bins.append(CalibrationBin(float(edges[b]), float(edges[b + 1]), mp, ob, c))
        ece += c * abs(mp - ob)
    return bins, (ece / len(p_right) if len(p_right) else float("nan"))


@dataclass(frozen=True)
class RewardAgreement:
    """Correlation between learned and true clip returns on a set of clips."""

    pearson: float
    spearman: float
    n_clips: int

    def as_dict(self) -> dict[str, float]:
        """Plain dict."""
        return asdict(self)


def return_correlation(learned: np.ndarray, true: np.ndarray) -> RewardAgreement:
    """Pearson and Spearman correlation of learned vs true clip returns (NaN if degenerate)."""
    learned, true = np.asarray(learned, float), np.asarray(true, float)
    if len(learned) != len(true):
        raise ValueError(f"{len(learned)} learned returns vs {len(true)} true returns")
    if len(learned) < 3 or np.std(learned) == 0 or np.std(true) == 0:
        return RewardAgreement(float("nan"), float("nan"), len(learned))
    return RewardAgreement(
        float(stats.pearsonr(learned, true)[0]),
        float(stats.spearmanr(learned, true)[0]),
        len(learned),
    )


@dataclass
class TrainStats:
    """Diagnostics of one training round (returned, never logged behind the caller's back)."""

    n_train: int
    n_val: int
    epochs: int
    l2: float
    member_train_loss: list[float]
    member_val_loss: list[float]
    member_train_acc: list[float]
    member_val_acc: list[float]
    train_acc: float
    val_acc: float
    val_loss: float
    calibration: list[CalibrationBin] = field(default_factory=list)
    ece: float = float("nan")
    pairs_per_s: float = float("nan")
    seconds: float = 0.0

    def summary(self) -> dict[str, float]:
        """Flat scalar metrics with stable names (for CSV / TensorBoard)."""
        return {
            "reward/n_train": self.n_train,
            "reward/n_val": self.n_val,
            "reward/l2": self.l2,
            "reward/train_loss": float(np.mean(self.member_train_loss)),
            "reward/val_loss": self.val_loss,
            "reward/train_acc": self.train_acc,
            "reward/val_acc": self.val_acc,
            "reward/ece": self.ece,
            "reward/pairs_per_s": self.pairs_per_s,
            "reward/train_seconds": self.seconds,
        }

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-able."""
        return asdict(self)
