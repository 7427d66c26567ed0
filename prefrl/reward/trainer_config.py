"""What reward training needs and how it is set: the data protocol, the settings, the split.

:class:`TrainerConfig` holds the settings of :class:`prefrl.reward.trainer.RewardTrainer`
(defaults follow Christiano et al. 2017); :class:`PreferenceData` is what it trains on;
:func:`is_validation` is the stable hash split that keeps a label in one split as the set grows.

>>> TrainerConfig.for_run("full").replay is None, is_validation("a|b", 0.0)
(True, False)
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class PreferenceData(Protocol):
    """What the trainer needs: labels and their pairs' arrays on demand.

    :class:`prefrl.store.PreferenceDataset` (dense arrays) and
    :class:`prefrl.reward.dataset.LabelledPairs` (compact, incremental) provide it.
    """

    @property
    def mu(self) -> np.ndarray: ...  # noqa: D102 - (N,) float32 P(right is better)
    @property
    def pair_keys(self) -> list[str]: ...  # noqa: D102

    def __len__(self) -> int: ...

    def pairs(self, idx: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """``(left_obs, left_acts, right_obs, right_acts)`` of pairs ``idx`` (None: all)."""
        ...

    def dense_nbytes(self) -> int:
        """Bytes of all pairs as dense arrays."""
        ...


@dataclass
class TrainerConfig:
    """Reward-model training settings (defaults follow Christiano et al. 2017)."""

    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 20
    misclick_eps: float = 0.1
    val_frac: float = 1.0 / math.e
    bootstrap: bool = True
    l2_init: float = 1e-4
    adapt_l2: bool = True
    l2_ratio_low: float = 1.1
    l2_ratio_high: float = 1.5
    l2_factor: float = 1.3
    l2_min: float = 1e-7
    l2_max: float = 10.0
    max_grad_norm: float = 10.0
    calibration_bins: int = 10
    eval_max_pairs: int = 2000
    """Per-epoch losses (for the L2 adaptation) and train diagnostics use at most this many."""
    norm_max_steps: int = 20000
    """Steps sampled from the labelled clips to normalise the members' outputs."""
    device_data_bytes: int | None = None
    """Datasets up to this size (dense) are held whole on the device; larger ones are decoded and
    moved there batch by batch, the next batch prepared in a thread while the current one
    trains. None: 64 MiB on the CPU (a dense copy there only costs memory), 1 GiB on CUDA."""
    sample_max_bytes: int = 64 << 20
    """Bytes of steps sampled for input and output normalisation (pixels: ~2,300 frames)."""
    forward_max_bytes: int | None = None
    """Float input bytes per forward pass (None: 64 MiB on the CPU, 1 GiB on CUDA). Larger
    training batches are split into micro-batches whose gradients add up to the batch's, so a
    batch of 64 Atari pairs (3,200 frames) never holds all its activations at once."""

    batched: bool | None = None
    """Train same-shaped MLP members as one stacked model (one batched step for all K; same
    gradients as K separate steps). Other members (CNNs, dropout) train one by one. None: on
    CUDA only (on the CPU the stacked matmuls measured no faster, see results/overhead)."""
    patience: int = 0
    """Early stopping: stop after this many epochs without a lower validation loss and go
    back to the best epoch's weights; ``epochs`` is then a maximum. 0: always all epochs."""
    replay: float | None = None
    """None: every epoch covers all training labels. A number r: once the model has been
    trained, an epoch covers the labels new since the last :meth:`RewardTrainer.train` plus
    ``max(replay_min, r x new)`` of the earlier ones, drawn afresh each epoch."""
    replay_min: int = 64
    epoch_eval_pairs: int | None = None
    """Training pairs on which the per-epoch training loss (for the L2 adaptation) and the
    reported training accuracy are measured (None: ``eval_max_pairs``)."""
    epoch_val_pairs: int | None = None
    """Validation pairs evaluated after every epoch, for early stopping and the L2 adaptation: a
    fixed random subset per :meth:`RewardTrainer.train` call (None: ``eval_max_pairs``). The
    rest of the validation set is evaluated once at the end, so the reported validation
    metrics always cover it all. Not in :meth:`fast` yet: 128 pairs cut reward training's CPU
    time by 4-36% at 1,400 labels, not measurably at 700, for about 2% of a run's wall time,
    and no RL run has checked it (results/overhead/val-subset)."""

    @classmethod
    def fast(cls, **overrides: Any) -> TrainerConfig:
        """The cheap schedule runs use by default: early stopping, replay, small train eval."""
        settings: dict[str, Any] = {"patience": 3, "replay": 4.0, "epoch_eval_pairs": 128}
        return cls(**{**settings, **overrides})

    @classmethod
    def for_run(cls, schedule: str = "fast", l2: str = "adaptive",
                val_frac: float = 1.0 / math.e) -> TrainerConfig:
        """A run's trainer from its reward_schedule, reward_l2 and reward_val_frac.

        ``schedule`` fast or full, ``l2`` adaptive or off, ``val_frac`` the share of labels
        held out (0: train on every label; needs full and off).

        >>> TrainerConfig.for_run("full", "off").adapt_l2, TrainerConfig.for_run().patience
        (False, 3)
        """
        kw: dict[str, Any] = {"val_frac": val_frac}
        if l2 != "adaptive":
            kw.update(adapt_l2=False, l2_init=0.0)
        return cls.fast(**kw) if schedule == "fast" else cls(**kw)

    def __post_init__(self) -> None:
        if self.patience < 0 or (self.replay is not None and self.replay < 0):
            raise ValueError("patience >= 0 and replay >= 0 (or None) are required")
        if not 0.0 <= self.val_frac < 1.0:
            raise ValueError(f"val_frac must be in [0, 1), got {self.val_frac}")
        if self.val_frac == 0 and (self.adapt_l2 or self.patience > 0):
            raise ValueError("val_frac 0 holds no labels out, which adaptive L2 and early "
                             "stopping need: turn both off")
        if self.batch_size < 1 or self.epochs < 0 or self.lr <= 0:
            raise ValueError("batch_size >= 1, epochs >= 0 and lr > 0 are required")


def is_validation(pair_key: str, frac: float) -> bool:
    """Stable split: a pair is in the validation set iff its hash falls below ``frac``."""
    h = int(hashlib.sha256(pair_key.encode()).hexdigest()[:12], 16) / float(16**12)
    return h < frac
